# The embedded synthetic tube dataset, written by
#   python tools/data/make_synthetic.py --out data/synth --seed 0
# data/synth/{annotations.pkl, videos/<video>.mp4}; small frames (128x96), 16-frame clips, test stride 8.
custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)

dataset_type = 'SyntheticTubeDataset'
data_root = 'data/synth'
ann_file = f'{data_root}/annotations.pkl'
video_prefix = f'{data_root}/videos'
clip_len = 16

train_pipeline = [
    dict(type='DecordInit', num_threads=1),
    dict(type='DecordDecode'),
    dict(type='TubeResize', scale=(-1, 96)),
    dict(type='TubeRandomCrop', size=(112, 96)),
    dict(type='TubeFlip', flip_ratio=0.5),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
test_pipeline = [
    dict(type='DecordInit', num_threads=1),
    dict(type='DecordDecode'),
    dict(type='TubeResize', scale=(-1, 96)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        data_prefix=dict(video=video_prefix),
        split=0,
        subset='train',
        clip_len=clip_len,
        frame_interval=1,
        train_stride=8,
        background_fraction=0.1,
        temporal_jitter=4,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        data_prefix=dict(video=video_prefix),
        split=0,
        subset='test',
        clip_len=clip_len,
        frame_interval=1,
        test_stride=8,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
