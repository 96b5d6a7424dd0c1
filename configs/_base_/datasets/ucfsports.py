# UCFSports (10 classes, trimmed, 1 split), frames as distributed with the ACT annotation pickle:
#   data/ucfsports/UCFSports-GT.pkl
#   data/ucfsports/Frames/<video>/00001.jpg ...   (mostly 720x480, a few other sizes)
# The resolutions differ between videos, so the frames are resized to a fixed 384x256 (no aspect-ratio
# preservation), which lets clips of different videos share a batch.
custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)

dataset_type = 'UCFSportsDataset'
data_root = 'data/ucfsports'
ann_file = f'{data_root}/UCFSports-GT.pkl'
frame_prefix = f'{data_root}/Frames'
clip_len = 16
split = 0

train_pipeline = [
    dict(type='RawFrameDecode'),
    dict(type='TubeResize', scale=(384, 256), keep_ratio=False),
    dict(type='TubeRandomCrop', size=(352, 224)),
    dict(type='TubeFlip', flip_ratio=0.5),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
test_pipeline = [
    dict(type='RawFrameDecode'),
    dict(type='TubeResize', scale=(384, 256), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        data_prefix=dict(video=frame_prefix),
        source='frames',
        filename_tmpl='{:05d}.jpg',
        split=split,
        subset='train',
        clip_len=clip_len,
        frame_interval=1,
        train_stride=8,
        temporal_jitter=4,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        data_prefix=dict(video=frame_prefix),
        source='frames',
        filename_tmpl='{:05d}.jpg',
        split=split,
        subset='test',
        clip_len=clip_len,
        frame_interval=1,
        test_stride=8,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
