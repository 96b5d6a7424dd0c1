# CFAD, our I3D-style setting on MultiSports (66 classes, untrimmed): I3D-style inflated ResNet-50 on
# 16-frame clips, 10 epochs. Written for 8 GPUs x 8 clips (the `8xb8` of the name); with another total
# batch size enable `auto_scale_lr` (`--auto-scale-lr` of tools/train.py) so the learning rate follows it.
# The backbone needs Kinetics-400 pretrained weights from a LOCAL file (no model hub is contacted):
#   bash tools/dist_train.sh configs/cfad/cfad_i3d-r50_8xb8-16x1x1-10e_multisports.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/i3d_r50_kinetics400.pth
# Test:
#   bash tools/dist_test.sh configs/cfad/cfad_i3d-r50_8xb8-16x1x1-10e_multisports.py \
#       work_dirs/cfad_i3d-r50_8xb8-16x1x1-10e_multisports/best_*.pth 8
# Data layout: configs/_base_/datasets/multisports.py; evaluation: protocol='multisports' reproduces
# mmaction2's frameAP / videoAP conventions (docs/evaluation.md), so the numbers compare with MultiSports'.
# Not trained in this repository (no GPU here): there are no reference numbers for it yet.
_base_ = [
    '../_base_/models/cfad_i3d-r50.py', '../_base_/datasets/multisports.py',
    '../_base_/schedules/adamw_multistep_20e.py', '../_base_/default_runtime.py'
]

model = dict(num_classes=66)

train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=8)
test_dataloader = val_dataloader

# 10 epochs instead of the schedule's 20
train_cfg = dict(max_epochs=10, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=10, milestones=[8], gamma=0.1)
]

# merged into default_runtime.py's optim_wrapper and default_hooks (they cannot live in the schedule file)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1))),
    clip_grad=dict(max_norm=10, norm_type=2))
default_hooks = dict(
    checkpoint=dict(interval=1, save_best='tube/frame_mAP@0.5', rule='greater', max_keep_ckpts=3))

val_evaluator = dict(
    type='TubeMetric', ann_file={{_base_.ann_file}}, split={{_base_.split}}, protocol='multisports')
test_evaluator = val_evaluator
