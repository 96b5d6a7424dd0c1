# MultiSports (66 classes, untrimmed, split 0 = official train / validation), the layout of mmaction2's
# MultiSports data preparation (tools/data/multisports of mmaction2):
#   data/multisports/annotations/multisports_GT.pkl          (ACT-style pickle: labels, gttubes, nframes, ...)
#   data/multisports/trainval/<sport>/<video>.mp4            (video names of the pickle are '<sport>/<video>')
# 720p / 1080p videos at 25 fps, decoded with decord. The frames are resized to a fixed 456x256 (16:9, no
# aspect-ratio preservation, so that any odd resolution still batches); train crop 400x224.
# Evaluate with protocol='multisports' (mmaction2's frameAP / videoAP conventions, docs/evaluation.md).
custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)

dataset_type = 'MultiSportsDataset'
data_root = 'data/multisports'
ann_file = f'{data_root}/annotations/multisports_GT.pkl'
video_prefix = f'{data_root}/trainval'
clip_len = 16
split = 0

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='DecordDecode'),
    dict(type='TubeResize', scale=(456, 256), keep_ratio=False),
    dict(type='TubeRandomCrop', size=(400, 224)),
    dict(type='TubeFlip', flip_ratio=0.5),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='DecordDecode'),
    dict(type='TubeResize', scale=(456, 256), keep_ratio=False),
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
        data_prefix=dict(video=video_prefix),
        source='video',
        video_ext='.mp4',
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
        data_prefix=dict(video=video_prefix),
        source='video',
        video_ext='.mp4',
        split=split,
        subset='test',
        clip_len=clip_len,
        frame_interval=1,
        test_stride=8,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
