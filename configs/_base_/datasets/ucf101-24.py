# UCF101-24 (24 classes, untrimmed, split 0), frames as distributed with the ACT/MOC annotation pickle:
#   data/ucf101_24/UCF101v2-GT.pkl
#   data/ucf101_24/rgb-images/<Class>/<video>/00001.jpg ...   (320x240)
# Videos instead of frames: dataset source='video', video_ext='.avi', data_prefix=dict(video=<videos dir>),
# and DecordInit + DecordDecode instead of RawFrameDecode.
custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)

dataset_type = 'UCF101_24Dataset'
data_root = 'data/ucf101_24'
ann_file = f'{data_root}/UCF101v2-GT.pkl'
frame_prefix = f'{data_root}/rgb-images'
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
        filename_tmpl='{:05d}.jpg',
        split=split,
        subset='train',
        clip_len=clip_len,
        frame_interval=1,
        train_stride=8,
        background_fraction=0.1,
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
