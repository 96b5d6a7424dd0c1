# Fine-tuning the tiny CFAD on your own footage (walkthrough: docs/custom_data.md).
#
# Data layout (what tools/data/import_annotations.py writes):
#   data/custom/annotations.pkl     the standard tube annotation pickle (or a .json copy)
#   data/custom/videos/<video>.mp4  the videos named in it
# Start: the synthetic checkpoint (`make demo` writes work_dirs/synthetic_demo/epoch_16.pth); its
# class-specific layers (the heatmap of the coarse head, the tube classifier) have another number of classes
# and are left at their initialisation -- mmengine's load_from loads every weight that fits and logs the
# others.
#
# What usually needs changing for real footage (full keys, for --cfg-options):
#   model.num_classes=N                      the number of labels in your annotation file (required)
#   load_from=PATH                           None: train from scratch / from a pretrained backbone
#                                            (model.backbone.init_cfg=dict(type='Pretrained',
#                                            checkpoint=PATH))
#   input resolution: train_dataloader.dataset.pipeline.2.scale=(-1,S)
#                     train_dataloader.dataset.pipeline.3.size=(W,S)
#                     val_dataloader.dataset.pipeline.2.scale=(-1,S)
#                     test_dataloader.dataset.pipeline.2.scale=(-1,S)
#   clip span:        {train,val,test}_dataloader.dataset.clip_len=T and .frame_interval=k
#                     (span (T-1)k+1 frames)
#   small actors:     model.backbone.with_pool1=False (feature stride 4 instead of 8: twice the resolution of
#                     the heatmap, about 3x the backbone cost) and model.coarse_head.min_overlap=0.9 (smaller
#                     heatmap radius, so that neighbouring small actors keep separate peaks)
#   schedule:         train_cfg.max_epochs=E param_scheduler.1.T_max=E param_scheduler.1.end=E
_base_ = ['../_base_/models/cfad_r3d-18-tiny.py', '../_base_/default_runtime.py']
custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)

data_root = 'data/custom'
ann_file = f'{data_root}/annotations.pkl'
video_prefix = f'{data_root}/videos'
clip_len = 16
frame_interval = 1
short_side = 128  # frames are resized to this height (real footage has smaller actors than the synthetic set)

model = dict(num_classes=3)  # set to the number of labels of your annotation file
load_from = 'work_dirs/synthetic_demo/epoch_16.pth'

train_pipeline = [
    dict(type='DecordInit', num_threads=1),
    dict(type='DecordDecode'),
    dict(type='TubeResize', scale=(-1, short_side)),
    dict(type='TubeRandomCrop', size=(short_side, short_side)),
    dict(type='TubeFlip', flip_ratio=0.5),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
test_pipeline = [
    dict(type='DecordInit', num_threads=1),
    dict(type='DecordDecode'),
    dict(type='TubeResize', scale=(-1, short_side)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
dataset = dict(
    type='TubeDataset',
    ann_file=ann_file,
    data_prefix=dict(video=video_prefix),
    source='video',
    split=0,
    clip_len=clip_len,
    frame_interval=frame_interval)
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(dataset, subset='train', background_fraction=0.1, temporal_jitter=4,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, subset='test', test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_begin=1, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),  # half the synthetic lr: a fine-tuning start
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=12, eta_min=1e-5, by_epoch=True, begin=0, end=12,
         convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(interval=4, save_best='tube/frame_mAP@0.5', rule='greater',
                                     max_keep_ckpts=2),
                     logger=dict(interval=10))
auto_scale_lr = dict(enable=False, base_batch_size=4)

val_evaluator = dict(type='TubeMetric', ann_file=ann_file, split=0, link_iou=0.3)
test_evaluator = val_evaluator
