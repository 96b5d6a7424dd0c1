# CFAD with our I3D-style setting (the paper cites I3D; its exact backbone, input and schedule are not known):
# an I3D-style inflated ResNet-50 (mmaction ResNet3d, inflate 3x1x1) on 16-frame clips.
# Pretrained weights come from a LOCAL path (no model hub): set `model.backbone.init_cfg.checkpoint`,
# e.g. with
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/i3d_r50_kinetics400.pth
# (an mmaction2 I3D/ResNet3d checkpoint; keys are read from the `backbone.` prefix).
# The res4 output (1024 channels, stride 16) is mapped to 256 channels (ChannelMapper3d) before the heads, and
# the backbone runs channels-last; the refine head samples 5x5 RoIs (as the tiny config). With 1024 channels
# and 7x7 RoIs the heads cost more than the backbone on CPU; with these settings (and the gather RoIAlign)
# CFAD spends about 11% of its time outside the backbone at T=16, 112x112 (7x7 RoIs: 14%; docs/benchmarks.md).
model = dict(
    type='CFAD',
    num_classes=24,
    feat_channels=256,
    refine=True,
    channels_last=True,
    backbone=dict(
        type='ResNet3d',
        depth=50,
        pretrained=None,
        pretrained2d=False,
        num_stages=3,
        out_indices=(2, ),
        spatial_strides=(1, 2, 2),
        temporal_strides=(1, 1, 1),
        dilations=(1, 1, 1),
        conv1_kernel=(5, 7, 7),
        conv1_stride_t=1,
        pool1_stride_t=1,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0)),
        zero_init_residual=False,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(type='ChannelMapper3d', in_channels=1024, out_channels=256),
    proposal_head=dict(type='TemporalProposalHead', feat_channels=256, num_bins=4, score_thr=0.5,
                       max_proposals=3),
    coarse_head=dict(type='CoarseTubeHead', feat_channels=256, num_convs=2,
                     tube_coder=dict(type='PolyTubeCoder', degree=3)),
    roi_head=dict(
        type='TubeRefineRoIHead',
        key_selector=dict(type='KeyTimestampSelector', num_keys=3, mode='learned', roi_size=3,
                          hidden_channels=256),
        refine_head=dict(type='RefineTubeHead', roi_size=5, hidden_channels=512, enlarge=1.3,
                         prior_strength=0.1),
        assigner=dict(type='TubeAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4)),
    train_cfg=dict(topk=16),
    # refine_iters=2: the refine stage is applied twice at test time (iterative refinement; docs/model.md)
    test_cfg=dict(topk=20, score_thr=0.01, nms_iou=0.5, max_per_clip=20, refine_iters=2),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
