"""TubeTrackHead: one search step on a hand-made feature map, a spike followed through every step in both
directions, teacher forcing, losses, and CFAD on a long window with the head in its RoI head."""
import os.path as osp
import sys

import pytest
import torch
from mmaction.registry import MODELS

import cfad_mm  # noqa: F401

STRIDE = 8  # input pixels per feature cell
C, TF, H, W = 2, 7, 12, 16


def spike_head(**kw):
    """A head whose template attends to channel 0 only: attention logit = 50 x channel 0 of a cell (template
    constant 1, key = 50 x channel 0, no cell bias); sizes are kept (zero-initialised size regression)."""
    head = MODELS.build(dict(type='TubeTrackHead', in_channels=C, embed_channels=1, search_size=7,
                             search_scale=3.5, **kw))
    head.init_weights()
    with torch.no_grad():
        for layer in head.template:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.fill_(1.0)
        head.key.weight.zero_()
        head.key.weight[0, 0] = 50.0
        head.key.bias.zero_()
    return head


def spike_feats(cells):
    """Features ``(1, C, TF, H, W)``: zero but channel 0 = 1 at cell ``cells[u] = (y, x)`` of step ``u``."""
    feats = torch.zeros(1, C, TF, H, W)
    for u, (y, x) in enumerate(cells):
        feats[0, 0, u, y, x] = 1.0
    return feats


def cell_box(y, x, side=16.0):
    """A box of ``side`` pixels centred on cell ``(y, x)``."""
    cx, cy = (x + 0.5) * STRIDE, (y + 0.5) * STRIDE
    return torch.tensor([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def test_one_step_moves_the_centre_to_the_attended_cell_and_keeps_the_size():
    head = spike_head()
    feats = spike_feats([(5, 7)] * TF)
    # region: 3.5 x 16 = 56 px = 7 cells around the guess centred on cell (6, 8): its bins are the cells
    guess = cell_box(6, 8)[None]
    template = torch.ones(1, 1)
    box = head.step(feats, torch.tensor([0]), torch.tensor([3]), guess, template, 1 / STRIDE)
    assert torch.allclose(box[0], cell_box(5, 7), atol=0.05), box


def test_follow_tracks_a_moving_spike_in_both_directions():
    head = spike_head()
    # one cell right per step, and one cell down every other step: 2 cells from step to step at most
    cells = [(3 + u // 2, 2 + 2 * u) for u in range(TF)]
    feats = spike_feats(cells)
    anchor = torch.tensor([3])
    start = cell_box(*cells[3])[None] + torch.tensor([3.0, -2.0, 3.0, -2.0])  # a coarse box a bit off
    out = head.follow(feats, torch.tensor([0]), start, anchor, (H * STRIDE, W * STRIDE), 1 / STRIDE)
    assert out.shape == (1, TF, 4)
    expected = torch.stack([cell_box(*c) for c in cells])
    # the attention resolves a cell (8 px): a region not aligned with the cells blurs the spike over two
    # bins, so the boxes are right to within half a cell, at every step (the coarse box is 3 px off)
    assert (out[0] - expected).abs().max() < STRIDE / 2, out[0] - expected
    assert (start - expected).abs().amax(1).max() > 5 * STRIDE  # a tube that stays would be far off


def test_two_tubes_of_two_clips_follow_their_own_spikes():
    head = spike_head()
    a = spike_feats([(2, 3 + u) for u in range(TF)])
    b = spike_feats([(9, 14 - u) for u in range(TF)])
    feats = torch.cat([a, b])
    anchors = torch.tensor([0, TF - 1])  # one followed forwards only, the other backwards only
    start = torch.stack([cell_box(2, 3), cell_box(9, 14 - (TF - 1))])
    out = head.follow(feats, torch.tensor([0, 1]), start, anchors, (H * STRIDE, W * STRIDE), 1 / STRIDE)
    assert torch.allclose(out[0], torch.stack([cell_box(2, 3 + u) for u in range(TF)]), atol=0.1)
    assert torch.allclose(out[1], torch.stack([cell_box(9, 14 - u) for u in range(TF)]), atol=0.1)


def test_teacher_guide_is_the_gt_for_the_forced_tubes_only():
    head = spike_head(teacher_forcing=1.0, jitter=0.0)
    gt = torch.stack([torch.stack([cell_box(4, 2 + u) for u in range(TF)])] * 2)
    masks = torch.ones(2, TF, dtype=torch.bool)
    masks[0, 5:] = False
    positive = torch.tensor([True, False])
    guide = head.teacher_guide(gt, masks, positive, torch.arange(TF))
    assert torch.equal(guide[0, :5], gt[0, :5])
    assert torch.isnan(guide[0, 5:]).all() and torch.isnan(guide[1]).all()  # not annotated / negative
    none = spike_head(teacher_forcing=0.0).teacher_guide(gt, masks, positive, torch.arange(TF))
    assert torch.isnan(none).all()


def test_a_guided_chain_searches_around_the_guide():
    head = spike_head()
    # the spike jumps 5 cells at step 4: out of reach from the followed boxes, found around the guide
    cells = [(5, 2 + u) for u in range(4)] + [(5, 10 + u) for u in range(TF - 4)]
    feats = spike_feats(cells)
    start = cell_box(*cells[0])[None]
    own = head.follow(feats, torch.tensor([0]), start, torch.tensor([0]), (96, 128), 1 / STRIDE)
    assert not torch.allclose(own[0, 4], cell_box(*cells[4]), atol=1.0)
    guide = torch.full((1, TF, 4), float('nan'))
    guide[0, 2], guide[0, 3] = cell_box(5, 8), cell_box(5, 9)  # step 4 is searched around 9 + (9 - 8)
    guided = head.follow(feats, torch.tensor([0]), start, torch.tensor([0]), (96, 128), 1 / STRIDE, guide)
    assert torch.allclose(guided[0, 4], cell_box(*cells[4]), atol=0.1)


def test_loss_is_zero_on_the_gt_and_counts_only_valid_steps():
    head = spike_head()
    gt = torch.stack([cell_box(4, 2 + u) for u in range(TF)])[None]
    valid = torch.ones(1, TF, dtype=torch.bool)
    zero = head.loss(gt.clone(), gt, valid, (96, 128))
    assert float(zero['loss_track_box']) == 0 and abs(float(zero['loss_track_giou'])) < 1e-6
    off = gt.clone()
    off[0, 0] += 8.0  # one step shifted by 8 px
    only_first = head.loss(off, gt, valid & (torch.arange(TF) == 0), (96, 128))
    # L1 on boxes normalised by (W, H, W, H), weight 2, averaged over the 4 coordinates of 1 box
    assert float(only_first['loss_track_box']) == pytest.approx(2 * (8 / 128 + 8 / 96) / 2, rel=1e-5)
    empty = head.loss(off.requires_grad_(), gt, torch.zeros_like(valid), (96, 128))
    assert empty['loss_track_box'].requires_grad and float(empty['loss_track_box'].detach()) == 0


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match='search_scale must be > 1'):
        MODELS.build(dict(type='TubeTrackHead', in_channels=4, search_scale=1.0))
    with pytest.raises(ValueError, match='search_size must be >= 2'):
        MODELS.build(dict(type='TubeTrackHead', in_channels=4, search_size=1))


def test_long_window_cfad_with_a_track_head_trains_and_predicts():
    sys.path.insert(0, osp.dirname(osp.dirname(__file__)))
    from test_long_span import S, long_span_cfg, long_span_sample
    torch.manual_seed(0)
    cfg = long_span_cfg(dict(type='SplineTubeCoder', max_frames=S, knot_interval=25))
    cfg['roi_head']['track_head'] = dict(type='TubeTrackHead', embed_channels=16)
    model = MODELS.build(cfg)
    model.init_weights()
    clip, ds = long_span_sample()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert {'loss_track_box', 'loss_track_giou'} <= set(losses)
    sum(losses.values()).backward()
    assert model.roi_head.track_head.key.weight.grad.abs().sum() > 0
    model.eval()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), False)
    with torch.no_grad():
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
        outs = model(data['inputs'], mode='tensor')
    assert pred.tubes.shape[1:] == (S, 4) and len(outs) == 10
