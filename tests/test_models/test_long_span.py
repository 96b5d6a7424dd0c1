"""CFAD on sparse long windows: T sampled frames every k frames, targets and predictions at EVERY frame of
the span S = (T - 1) * k + 1 (here T=32, k=4: S=125), with the polynomial and the spline tube coders."""
import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import cfad_mm  # noqa: F401

DefaultScope.get_instance('test_long_span', scope_name='mmaction')
T, K, H, W = 32, 4, 64, 64
S = (T - 1) * K + 1
NUM_CLASSES = 3


def long_span_cfg(coder):
    return dict(
        type='CFAD', num_classes=NUM_CLASSES, feat_channels=32, frame_interval=K,
        backbone=dict(type='ResNet3d', depth=18, pretrained=None, pretrained2d=False, base_channels=8,
                      num_stages=3, out_indices=(2, ), spatial_strides=(1, 2, 2), temporal_strides=(1, 1, 2),
                      dilations=(1, 1, 1), conv1_kernel=(3, 7, 7), conv1_stride_s=2, with_pool1=False,
                      with_pool2=False, inflate=(1, 1, 1), zero_init_residual=False),
        proposal_head=dict(type='TemporalProposalHead', feat_channels=32, num_bins=2),
        coarse_head=dict(type='CoarseTubeHead', feat_channels=32, tube_coder=coder),
        roi_head=dict(type='TubeRefineRoIHead',
                      key_selector=dict(type='KeyTimestampSelector', num_keys=3, hidden_channels=32),
                      refine_head=dict(type='RefineTubeHead', roi_size=3, hidden_channels=64)),
        test_cfg=dict(topk=10, score_thr=0.0, nms_iou=0.5, max_per_clip=5, refine_iters=2),
        data_preprocessor=dict(type='ActionDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3,
                               format_shape='NCTHW'))


def long_span_sample(frame_interval=K, gt_frames=S):
    """A clip of T sampled frames with one GT tube over span frames 10..110 (every frame annotated)."""
    rng = np.random.default_rng(0)
    clip = torch.from_numpy(rng.integers(0, 255, size=(3, T, H, W), dtype=np.uint8))
    tubes = torch.zeros(1, gt_frames, 4)
    masks = torch.zeros(1, gt_frames, dtype=torch.bool)
    for f in range(10, min(111, gt_frames)):
        x = 5 + 30 * f / S
        tubes[0, f] = torch.tensor([x, 20., x + 20, 44.])
        masks[0, f] = True
    ds = ActionDataSample()
    ds.gt_instances = InstanceData(tubes=tubes, tube_masks=masks, labels=torch.tensor([1]))
    ds.set_metainfo(dict(video_id='v', frame_numbers=np.arange(1, S + 1), frame_valid=np.ones(S, bool),
                         frame_interval=frame_interval, img_shape=(H, W), ori_shape=(H, W)))
    return clip, ds


@pytest.mark.parametrize('coder', [dict(type='PolyTubeCoder', degree=3),
                                   dict(type='SplineTubeCoder', max_frames=S, knot_interval=25)])
def test_training_step_and_predict_cover_every_frame_of_the_span(coder):
    torch.manual_seed(0)
    model = MODELS.build(long_span_cfg(coder))
    model.init_weights()
    clip, ds = long_span_sample()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), True)
    assert data['inputs'].shape == (1, 3, T, H, W)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total) and 'loss_refine_tube_giou' in losses
    total.backward()
    model.eval()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), False)
    with torch.no_grad():
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
        outs = model(data['inputs'], mode='tensor')
    assert len(pred) > 0
    assert pred.tubes.shape == (len(pred), S, 4) and pred.tube_masks.shape == (len(pred), S)
    assert pred.frame_scores.shape == (len(pred), S)
    # extents (and so the key timestamps) live in span frames
    extents = outs[7]
    assert float(extents.max()) <= S - 1 and float(extents.max()) > T


def test_span_mismatches_are_refused_with_the_reason():
    torch.manual_seed(0)
    model = MODELS.build(long_span_cfg(dict(type='PolyTubeCoder', degree=3)))
    clip, ds = long_span_sample(frame_interval=2)
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), True)
    with pytest.raises(ValueError, match='samples every 2 frames, the model has frame_interval=4'):
        model(data['inputs'], data['data_samples'], mode='loss')
    clip, ds = long_span_sample(gt_frames=T)
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), True)
    with pytest.raises(ValueError, match='ground-truth tubes of 32 frames for a span of 125 frames'):
        model(data['inputs'], data['data_samples'], mode='loss')
    with pytest.raises(ValueError, match='frame_interval must be >= 1'):
        MODELS.build(dict(long_span_cfg(dict(type='PolyTubeCoder', degree=3)), frame_interval=0))
