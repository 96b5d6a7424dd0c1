"""TemporalProposalHead: actionness shape, segments from a hand-made actionness (runs, whole-clip fallback,
min_length, max_proposals, GT proposals), temporal RoI pooling of constant / ramp features and the BCE
loss."""
import math

import pytest
import torch
from mmaction.registry import MODELS

import cfad_mm  # noqa: F401
from cfad_mm.models.heads.temporal_proposal_head import TemporalProposalHead


def head(**kw):
    return MODELS.build(dict(type='TemporalProposalHead', in_channels=4, feat_channels=8, **kw))


def logits_of(probs):
    return torch.logit(torch.tensor(probs, dtype=torch.float32))


ACT = [0.1, 0.9, 0.9, 0.1, 0.8]  # runs above 0.5: frames 1..2 and frame 4


def test_build_from_registry():
    h = head(num_bins=3, max_proposals=2)
    assert isinstance(h, TemporalProposalHead)
    assert (h.num_bins, h.max_proposals, h.score_thr, h.min_length) == (3, 2, 0.5, 3)


@pytest.mark.parametrize('n, t', [(1, 4), (3, 7), (2, 1)])
def test_actionness_shape(n, t):
    assert head()(torch.randn(n, 4, t, 5, 6)).shape == (n, t)


def test_actionness_batch_equals_single():
    torch.manual_seed(0)
    h = head()
    feats = torch.randn(3, 4, 5, 2, 2)
    out = h(feats)
    for i in range(3):
        assert torch.allclose(out[i:i + 1], h(feats[i:i + 1]), atol=1e-6)


def test_frame_actionness_interpolates_feature_steps():
    h = head()
    logits = logits_of([[0.2, 0.6, 1.0 - 1e-6]])
    # stride 1: identity
    assert torch.allclose(h.frame_actionness(logits, 3, 1.0), logits.sigmoid(), atol=1e-6)
    # stride 2: frame t sits at feature coordinate t / 2 - 0.25, clamped to [0, 2]
    expected = torch.tensor([[0.2, 0.75 * 0.2 + 0.25 * 0.6, 0.25 * 0.2 + 0.75 * 0.6, 0.75 * 0.6 + 0.25 * 1.0,
                              0.25 * 0.6 + 0.75 * 1.0, 1.0]])
    assert torch.allclose(h.frame_actionness(logits, 6, 2.0), expected, atol=1e-5)


def test_runs_longest_first():
    runs = TemporalProposalHead._runs(torch.tensor([True, False, True, True, False, True, True, True]))
    assert runs == [(5.0, 7.0), (2.0, 3.0), (0.0, 0.0)]
    assert TemporalProposalHead._runs(torch.zeros(4, dtype=torch.bool)) == []
    assert TemporalProposalHead._runs(torch.ones(3, dtype=torch.bool)) == [(0.0, 2.0)]


def test_segments_from_hand_made_actionness():
    h = head(min_length=1)
    inds, segs = h.get_proposals(logits_of([ACT]), num_frames=5, stride_t=1.0)
    # the whole clip first, then the runs, longest first
    assert inds.tolist() == [0, 0, 0]
    assert segs.tolist() == [[0., 4.], [1., 2.], [4., 4.]]
    assert inds.dtype == torch.long and segs.dtype == torch.float32


def test_min_length_drops_short_runs():
    inds, segs = head(min_length=2).get_proposals(logits_of([ACT]), 5, 1.0)
    assert segs.tolist() == [[0., 4.], [1., 2.]]
    # default min_length=3 keeps only the whole clip
    inds, segs = head().get_proposals(logits_of([ACT]), 5, 1.0)
    assert inds.tolist() == [0] and segs.tolist() == [[0., 4.]]


def test_max_proposals_cap():
    _, segs = head(min_length=1, max_proposals=2).get_proposals(logits_of([ACT]), 5, 1.0)
    assert segs.tolist() == [[0., 4.], [1., 2.]]
    _, segs = head(min_length=1, max_proposals=1).get_proposals(logits_of([ACT]), 5, 1.0)
    assert segs.tolist() == [[0., 4.]]


def test_whole_clip_fallback_when_nothing_is_active():
    inds, segs = head(min_length=1).get_proposals(logits_of([[0.1, 0.2, 0.3, 0.4, 0.5]]), 5, 1.0)
    assert inds.tolist() == [0] and segs.tolist() == [[0., 4.]]
    # a run covering the whole clip is a duplicate of the fallback
    inds, segs = head(min_length=1).get_proposals(logits_of([[0.9] * 5]), 5, 1.0)
    assert segs.tolist() == [[0., 4.]]


def test_batch_of_clips():
    h = head(min_length=1)
    logits = logits_of([ACT, [0.1, 0.1, 0.1, 0.7, 0.7]])
    inds, segs = h.get_proposals(logits, 5, 1.0)
    assert inds.tolist() == [0, 0, 0, 1, 1]
    assert segs.tolist() == [[0., 4.], [1., 2.], [4., 4.], [0., 4.], [3., 4.]]
    # each clip alone gives its own rows
    _, segs1 = h.get_proposals(logits[1:], 5, 1.0)
    assert segs1.tolist() == segs[3:].tolist()


def test_empty_batch():
    inds, segs = head().get_proposals(torch.zeros(0, 5), 5, 1.0)
    assert inds.shape == (0, ) and segs.shape == (0, 2)


def test_segments_with_temporal_stride():
    # stride 2: actionness [0.1, 0.9, 0.1] interpolated at 6 frames -> 0.1, 0.3, 0.7, 0.7, 0.3, 0.1
    _, segs = head(min_length=1).get_proposals(logits_of([[0.1, 0.9, 0.1]]), 6, 2.0)
    assert segs.tolist() == [[0., 5.], [2., 3.]]


def test_gt_proposals_are_added_in_training():
    gt_masks = [torch.tensor([[False, True, True, True, False], [False, True, True, False, False]])]
    h = head(min_length=1, max_proposals=2)
    _, segs = h.get_proposals(logits_of([ACT]), 5, 1.0, gt_masks=gt_masks)
    # whole clip, GT extents (1..3) and (1..2); the run (1, 2) is a duplicate; the cap is 2 + 2 GTs
    assert segs.tolist() == [[0., 4.], [1., 3.], [1., 2.], [4., 4.]]
    _, segs = head(min_length=1, use_gt_proposals=False).get_proposals(logits_of([ACT]), 5, 1.0,
                                                                        gt_masks=gt_masks)
    assert segs.tolist() == [[0., 4.], [1., 2.], [4., 4.]]


def test_gt_masks_do_not_raise_the_cap_without_gt_proposals():
    gt_masks = [torch.tensor([[False, True, True, True, False], [False, True, True, False, False]])]
    h = head(min_length=1, max_proposals=1, use_gt_proposals=False)
    _, segs = h.get_proposals(logits_of([ACT]), 5, 1.0, gt_masks=gt_masks)
    assert segs.tolist() == [[0., 4.]]  # as without gt_masks; got [[0, 4], [1, 2], [4, 4]]


def test_pool_constant_feature():
    h = head(num_bins=3)
    feats = torch.full((2, 4, 6, 2, 3), 2.5)
    out = h.pool(feats, torch.tensor([0, 1, 1]), torch.tensor([[0., 5.], [2., 3.], [4., 4.]]), stride_t=1.0)
    assert out.shape == (3, 4 * 3, 2, 3)
    assert torch.allclose(out, torch.full_like(out, 2.5))


def test_pool_ramp_feature():
    h = head(num_bins=4)
    ramp = torch.arange(8, dtype=torch.float32)  # feature step u has value u (channel 0) and 10 u (channel 1)
    feats = torch.stack([ramp, 10 * ramp]).view(1, 2, 8, 1, 1).expand(1, 2, 8, 2, 2).contiguous()
    feats = torch.cat([feats, torch.zeros(1, 2, 8, 2, 2)], dim=1)  # 4 channels
    # segment 0..7 at stride 1: bin centres at frames 0.5, 2.5, 4.5, 6.5
    out = h.pool(feats, torch.tensor([0]), torch.tensor([[0., 7.]]), stride_t=1.0)
    assert out.shape == (1, 16, 2, 2)
    assert torch.allclose(out[0, :4, 0, 0], torch.tensor([0.5, 2.5, 4.5, 6.5]))
    assert torch.allclose(out[0, 4:8, 1, 1], torch.tensor([5., 25., 45., 65.]))  # channel c at rows c*bins+b
    assert torch.allclose(out[0, 8:], torch.zeros(8, 2, 2))
    # segment 2..5: bin centres at frames 2, 3, 4, 5
    out = h.pool(feats, torch.tensor([0]), torch.tensor([[2., 5.]]), stride_t=1.0)
    assert torch.allclose(out[0, :4, 0, 1], torch.tensor([2., 3., 4., 5.]))
    # stride 2 (8 clip frames over 4 feature steps): frames 0.5, 2.5, 4.5, 6.5 sit at the feature coordinates
    # (t + 0.5) / 2 - 0.5 = 0, 1, 2, 3, the step centres
    out = h.pool(feats[:, :, :4], torch.tensor([0]), torch.tensor([[0., 7.]]), stride_t=2.0)
    assert torch.allclose(out[0, :4, 0, 0], torch.tensor([0., 1., 2., 3.]))
    # stride 2, segment 1..4: bin centres at frames 1, 2, 3, 4 -> coordinates 0.25, 0.75, 1.25, 1.75
    out = h.pool(feats[:, :, :4], torch.tensor([0]), torch.tensor([[1., 4.]]), stride_t=2.0)
    assert torch.allclose(out[0, :4, 0, 0], torch.tensor([0.25, 0.75, 1.25, 1.75]))
    # clamped at the clip border: segment 6..7 at stride 2, frames 5.75, 6.25, 6.75, 7.25 -> coordinates
    # 2.625, 2.875, 3.125, 3.375 -> the last two clamped to 3
    out = h.pool(feats[:, :, :4], torch.tensor([0]), torch.tensor([[6., 7.]]), stride_t=2.0)
    assert torch.allclose(out[0, :4, 0, 0], torch.tensor([2.625, 2.875, 3., 3.]))


def test_pool_no_proposal():
    out = head(num_bins=2).pool(torch.randn(1, 4, 3, 2, 2), torch.zeros(0, dtype=torch.long),
                                torch.zeros(0, 2), stride_t=1.0)
    assert out.shape == (0, 8, 2, 2)


def test_actionness_targets():
    # stride 3, T = 9: feature steps centred at frames 1, 4, 7
    masks = [torch.tensor([[False, True, True, False, False, False, False, False, False],
                           [False, False, False, False, False, False, True, True, False]]),
             torch.zeros(0, 9, dtype=torch.bool)]
    targets = TemporalProposalHead.actionness_targets(masks, 3, 3.0)
    assert targets.tolist() == [[1., 0., 1.], [0., 0., 0.]]
    assert targets.dtype == torch.float32


def test_bce_loss_hand_computed():
    h = head()
    masks = [torch.tensor([[False, True, True, False, False, False, False, False, False]]),
             torch.zeros(0, 9, dtype=torch.bool)]
    logits = torch.tensor([[math.log(3), math.log(3), 0.], [0., math.log(3), -20.]], requires_grad=True)
    loss = h.loss(logits, masks, stride_t=3.0)['loss_actionness']
    # targets [[1, 0, 0], [0, 0, 0]]; sigmoid(log 3) = 3/4
    expected = (math.log(4 / 3) + math.log(4) + math.log(2) + math.log(2) + math.log(4)
                + math.log1p(math.exp(-20))) / 6
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_bad_max_proposals():
    with pytest.raises(ValueError, match='max_proposals'):
        head(max_proposals=0)


def test_temporal_anchors_tile_the_span_with_half_overlap():
    h = head(anchor_scales=(0.5, 0.25))
    # T=61: L=30 (round(30.5) = 30), room 31, 4 starts spread evenly; L=15, room 46, 8 starts
    assert h.anchors(61) == [(0., 29.), (10., 39.), (21., 50.), (31., 60.),
                             (0., 14.), (7., 21.), (13., 27.), (20., 34.), (26., 40.), (33., 47.), (39., 53.),
                             (46., 60.)]
    for t in (16, 61, 121, 125):
        for scale in (0.5, 0.25):
            segs = head(anchor_scales=(scale, )).anchors(t)
            assert segs[0][0] == 0 and segs[-1][1] == t - 1
            length = segs[0][1] - segs[0][0] + 1
            assert all(e - s + 1 == length for s, e in segs)
            # consecutive anchors overlap by at least half of their length
            assert all(b[0] - a[0] <= length // 2 for a, b in zip(segs, segs[1:]))
    assert head().anchors(61) == []  # none by default
    assert head(anchor_scales=(0.1, ), min_length=3).anchors(10)[0] == (0., 2.)  # min_length holds


def test_temporal_anchors_match_every_tube_of_a_quarter_span():
    """Every GT extent of at least a quarter of the span has a proposal at temporal IoU >= 0.5 (what makes it
    a positive of the coarse head, pos_tiou=0.5), even when the actionness covers the whole window."""
    t = 61
    h = head(anchor_scales=(0.5, 0.25), max_proposals=1)
    _, segs = h.get_proposals(logits_of([[0.9] * 8]), t, 8.0)
    frames = torch.arange(t)
    masks = (frames[None] >= segs[:, :1]) & (frames[None] <= segs[:, 1:])
    for length in range(16, t + 1):
        for start in range(0, t - length + 1):
            gt = (frames >= start) & (frames < start + length)
            tiou = (masks & gt).sum(1) / (masks | gt).sum(1)
            assert tiou.max() >= 0.5, (start, length)
    # without anchors a 20-frame tube only overlaps the whole window (20 / 61 < 0.5)
    _, segs = head(max_proposals=1).get_proposals(logits_of([[0.9] * 8]), t, 8.0)
    assert segs.tolist() == [[0., 60.]]


def test_temporal_anchors_come_on_top_of_the_cap_in_training_and_test():
    h = head(min_length=1, max_proposals=2, anchor_scales=(0.5, ))
    gt_masks = [torch.tensor([[False, True, True, True, False, False, False, False]])]
    logits = logits_of([[0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.8]])
    _, test_segs = h.get_proposals(logits, 8, 1.0)
    # whole clip, anchors (0..3), (2..5), (4..7), then the longest actionness run (1..2); cap 2 + 3 anchors
    assert test_segs.tolist() == [[0., 7.], [0., 3.], [2., 5.], [4., 7.], [1., 2.]]
    _, train_segs = h.get_proposals(logits, 8, 1.0, gt_masks=gt_masks)
    assert train_segs.tolist() == [[0., 7.], [0., 3.], [2., 5.], [4., 7.], [1., 3.], [1., 2.]]


def test_duplicate_anchors_count_once_against_the_cap():
    # T=6, min_length 3: scales 0.5 and 0.25 both give 3-frame anchors (0..2), (1..3), (2..4), (3..5)
    h = head(min_length=3, max_proposals=1, anchor_scales=(0.5, 0.25))
    assert len(h.anchors(6)) == 8 and len(set(h.anchors(6))) == 4
    _, segs = h.get_proposals(logits_of([[0.1, 0.9, 0.9, 0.9, 0.9, 0.1]]), 6, 1.0)
    # the whole clip and the 4 distinct anchors; the cap (1 + 4 anchors) leaves no room for the run (1..4)
    assert segs.tolist() == [[0., 5.], [0., 2.], [1., 3.], [2., 4.], [3., 5.]]


def test_temporal_anchors_on_tiny_spans():
    h = head(anchor_scales=(0.5, 0.25))
    assert h.anchors(1) == [(0., 0.), (0., 0.)]  # the whole clip, dropped by get_proposals
    _, segs = h.get_proposals(logits_of([[0.1]]), 1, 1.0)
    assert segs.tolist() == [[0., 0.]]


@pytest.mark.parametrize('scales', [(1.0, ), (0.0, ), (0.5, -0.2)])
def test_temporal_anchor_scales_out_of_range(scales):
    with pytest.raises(ValueError, match='anchor_scales must lie in'):
        head(anchor_scales=scales)


@pytest.mark.parametrize('scales', [0.5, '0.5'])
def test_temporal_anchor_scales_must_be_a_sequence(scales):
    with pytest.raises(ValueError, match='anchor_scales must be a sequence'):
        head(anchor_scales=scales)
    assert head(anchor_scales=[0.5]).anchor_scales == (0.5, )  # a list from a config
