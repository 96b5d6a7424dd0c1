# JHMDB-21 (21 classes, trimmed, 3 splits; split 0 here, change `split` for the others), frames as distributed
# with the ACT/MOC annotation pickle:
#   data/jhmdb/JHMDB-GT.pkl
#   data/jhmdb/Frames/<class>/<video>/00001.png ...   (320x240, 15-40 frames per video)
# Videos shorter than a clip are padded by repeating the last frame (frame_valid=False there).
custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)

dataset_type = 'JHMDB21Dataset'
data_root = 'data/jhmdb'
ann_file = f'{data_root}/JHMDB-GT.pkl'
frame_prefix = f'{data_root}/Frames'
clip_len = 16
split = 0

train_pipeline = [
    dict(type='RawFrameDecode'),
    dict(type='TubeResize', scale=(-1, 256)),
    dict(type='TubeRandomCrop', size=224),
    dict(type='TubeFlip', flip_ratio=0.5),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
test_pipeline = [
    dict(type='RawFrameDecode'),
    dict(type='TubeResize', scale=(-1, 256)),
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
        filename_tmpl='{:05d}.png',
        split=split,
        subset='train',
        clip_len=clip_len,
        frame_interval=1,
        train_stride=4,
        temporal_jitter=2,
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
        filename_tmpl='{:05d}.png',
        split=split,
        subset='test',
        clip_len=clip_len,
        frame_interval=1,
        test_stride=8,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
