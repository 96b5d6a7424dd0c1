# CFAD with a narrow 3-D ResNet-18 (base width 16, 3 stages): small enough to train on 2 CPU cores in minutes.
# The stem works like the usual ResNet stem (conv1 stride 2 in space AND time, then a 3x3 max-pool), so the
# three stages run at 1/4, 1/8, 1/8 of the input in space and 1/2 in time: features (64, T/2, H/8, W/8).
# Keeping the stages at low resolution makes a training step ~6x cheaper than without pool1 / temporal stride,
# for the same feature map size (tools/analysis/speed_compare.py profiles it). Used with the synthetic
# dataset.
model = dict(
    type='CFAD',
    num_classes=5,
    feat_channels=64,
    refine=True,
    backbone=dict(
        type='ResNet3d',
        depth=18,
        pretrained=None,
        pretrained2d=False,
        base_channels=16,
        num_stages=3,
        out_indices=(2, ),
        spatial_strides=(1, 2, 1),
        temporal_strides=(1, 1, 1),
        dilations=(1, 1, 1),
        conv1_kernel=(3, 7, 7),
        conv1_stride_s=2,
        conv1_stride_t=2,
        pool1_stride_t=1,
        with_pool1=True,
        with_pool2=False,
        inflate=(1, 1, 1),
        norm_eval=False,
        zero_init_residual=False),
    proposal_head=dict(type='TemporalProposalHead', feat_channels=64, num_bins=4, score_thr=0.5,
                       max_proposals=3),
    coarse_head=dict(type='CoarseTubeHead', feat_channels=64, num_convs=2,
                     tube_coder=dict(type='PolyTubeCoder', degree=3)),
    roi_head=dict(
        type='TubeRefineRoIHead',
        key_selector=dict(type='KeyTimestampSelector', num_keys=3, mode='learned', roi_size=3),
        refine_head=dict(type='RefineTubeHead', roi_size=5, hidden_channels=256, enlarge=1.3,
                         prior_strength=0.1),
        assigner=dict(type='TubeAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4)),
    train_cfg=dict(topk=8),
    # refine_iters=2: the refine stage is applied twice at test time (iterative refinement; docs/model.md);
    # topk=10 coarse tubes per clip: same accuracy as 20 on the synthetic sets, half the refine work
    test_cfg=dict(topk=10, score_thr=0.05, nms_iou=0.5, max_per_clip=10, refine_iters=2),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
