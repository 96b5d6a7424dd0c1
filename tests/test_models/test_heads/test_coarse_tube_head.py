"""CoarseTubeHead: output shapes, top-k decoding of a hand-made heatmap, heatmap targets and losses on a
hand-made ground truth (values, gradients), empty ground truth, registry build."""
import math

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.structures import InstanceData

import cfad_mm  # noqa: F401
from cfad_mm.models.heads.coarse_tube_head import CoarseTubeHead

NUM_CLASSES = 3
NC = 4  # degree 3 -> 4 coefficients per box parameter


def head(**kw):
    cfg = dict(type='CoarseTubeHead', in_channels=4, num_classes=NUM_CLASSES, feat_channels=8, num_convs=1)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_build_from_registry_and_init():
    h = head()
    assert isinstance(h, CoarseTubeHead)
    assert h.num_coeffs == NC and h.coder.degree == 3
    h.init_weights()
    assert torch.allclose(h.heatmap.bias.sigmoid(), torch.full((NUM_CLASSES, ), 0.1))
    assert torch.equal(h.coeffs.bias, torch.zeros(4 * NC)) and torch.equal(h.extent.bias, torch.zeros(2))
    h1 = head(tube_coder=dict(type='PolyTubeCoder', degree=1), num_convs=0)
    assert h1.num_coeffs == 2 and len(h1.shared) == 0


@pytest.mark.parametrize('p', [0, 1, 3])
def test_forward_shapes(p):
    heat, coeffs, extent = head()(torch.randn(p, 4, 5, 6))
    assert heat.shape == (p, NUM_CLASSES, 5, 6)
    assert coeffs.shape == (p, 4 * NC, 5, 6)
    assert extent.shape == (p, 2, 5, 6)
    heat, coeffs, extent = head(tube_coder=dict(type='PolyTubeCoder', degree=1))(torch.randn(2, 4, 3, 3))
    assert coeffs.shape == (2, 8, 3, 3)


def test_forward_batch_equals_single():
    torch.manual_seed(0)
    h = head()
    x = torch.randn(3, 4, 5, 6)
    outs = h(x)
    for i in range(3):
        for a, b in zip(outs, h(x[i:i + 1])):
            assert torch.allclose(a[i:i + 1], b, atol=1e-6)


# ------------------------------------------------------------------------------------------ decoding
H, W = 4, 5  # feature map
IMG = (80, 100)  # (H, W) of the clip
T = 12


def hand_made_outs():
    """3 proposals (clips 0, 0, 1); a peak of class 2 at cell (y=1, x=3) of proposal 1 and one of class 0 at
    cell (0, 0) of proposal 2, everything else far below."""
    heat = torch.full((3, NUM_CLASSES, H, W), -10.0)
    heat[1, 2, 1, 3] = 2.0
    heat[2, 0, 0, 0] = 1.0
    coeff_map = torch.zeros(3, 4 * NC, H, W)
    # (cx, cy, log w, log h) coefficients relative to the cell priors at proposal 1, cell (1, 3)
    coeff_map[1, :, 1, 3] = torch.tensor([0.05, 0.1, 0., 0.,  # cx: constant +0.05, linear 0.1
                                          0., 0., 0., 0.,  # cy
                                          math.log(2), 0., 0., 0.,  # log w: twice the prior
                                          0., 0., 0., 0.])  # log h
    extent_map = torch.zeros(3, 2, H, W)
    extent_map[1, :, 1, 3] = torch.tensor([-0.25, 0.5])
    segments = torch.tensor([[0., 11.], [2., 9.], [4., 7.]])
    return (heat, coeff_map, extent_map), torch.tensor([0, 0, 1]), segments


def per_clip(res):
    """``predict_by_feat`` output as one dict per clip with its valid tubes only."""
    n, k = res['scores'].shape
    out = []
    for i in range(n):
        v = res['valid'][i]
        out.append(dict(scores=res['scores'][i][v], labels=res['labels'][i][v],
                        coeffs=res['coeffs'].reshape(n, k, 4, -1)[i][v],
                        extents=res['extents'].reshape(n, k, 2)[i][v]))
    return out


def test_predict_by_feat_layouts_and_padding():
    """The fixed layout (proposal i = clip i) equals the general one; a clip with fewer candidates than k gets
    invalid slots with score -1, and every tube knows its clip."""
    h = head()
    outs, batch_inds, segments = hand_made_outs()
    one_each = tuple(o[1:] for o in outs)  # proposals 1 and 2: one per clip
    torch.manual_seed(0)
    one_each = (torch.randn_like(one_each[0]), ) + one_each[1:]  # distinct scores: no ties among the top 3
    general = h.predict_by_feat(one_each, torch.tensor([0, 1]), segments[1:], 2, T, topk=3)
    fixed = h.predict_by_feat(one_each, None, segments[1:], 2, T, topk=3)
    assert (fixed['scores'] > 0).all()
    for key in ('scores', 'labels', 'coeffs', 'extents', 'tube_batch', 'valid'):
        assert torch.equal(general[key], fixed[key]), key
    assert fixed['tube_batch'].tolist() == [0] * 3 + [1] * 3
    big = h.predict_by_feat(outs, batch_inds, segments, 2, T, topk=NUM_CLASSES * H * W + 3)
    assert big['valid'][0].all()  # clip 0 has two proposals
    assert big['valid'][1].sum() == NUM_CLASSES * H * W  # clip 1 has one: 3 padded slots
    assert (big['scores'][1][~big['valid'][1]] == -1).all()


def test_predict_tubes_single_peak():
    h = head()
    outs, batch_inds, segments = hand_made_outs()
    res = per_clip(h.predict_by_feat(outs, batch_inds, segments, num_clips=2, num_frames=T, topk=1))
    assert len(res) == 2
    r = res[0]
    assert r['labels'].tolist() == [2]
    assert torch.allclose(r['scores'], torch.sigmoid(torch.tensor([2.0])))
    # priors: cx = (3 + 0.5) / 5 = 0.7, cy = (1 + 0.5) / 4 = 0.375, log sizes log(0.25)
    expected = torch.zeros(1, 4, NC)
    expected[0, 0, :2] = torch.tensor([0.75, 0.1])
    expected[0, 1, 0] = 0.375
    expected[0, 2, 0] = math.log(0.5)
    expected[0, 3, 0] = math.log(0.25)
    assert r['coeffs'].shape == (1, 4, NC)
    assert torch.allclose(r['coeffs'], expected, atol=1e-6)
    # extent: segment (2, 9), length 8 -> (2 - 0.25 * 8, 9 + 0.5 * 8) = (0, 13) clamped to (0, 11)
    assert torch.allclose(r['extents'], torch.tensor([[0., 11.]]))
    # decoded by the coder: w = 0.5 * 100, h = 0.25 * 80, cy = 0.375 * 80, cx from 65 (tau=-1) to 85 (tau=1)
    boxes, masks = h.coder.decode(r['coeffs'], r['extents'], IMG, num_frames=T)
    assert masks.all()
    assert torch.allclose(boxes[0, 0], torch.tensor([40., 20., 90., 40.]), atol=1e-4)
    assert torch.allclose(boxes[0, -1], torch.tensor([60., 20., 110., 40.]), atol=1e-4)
    # clip 1: its own proposal (2) only
    r1 = res[1]
    assert r1['labels'].tolist() == [0]
    assert torch.allclose(r1['scores'], torch.sigmoid(torch.tensor([1.0])))
    assert torch.allclose(r1['coeffs'][0, :, 0], torch.tensor([0.1, 0.125, math.log(0.25), math.log(0.25)]))
    assert torch.allclose(r1['extents'], torch.tensor([[4., 7.]]))


def test_predict_tubes_topk_order_and_local_maximum():
    outs, batch_inds, segments = hand_made_outs()
    heat = outs[0]
    heat[1, 2, 1, 4] = 1.5  # a same-class neighbour of the peak (suppressed by the 3x3 local maximum)
    heat[1, 0, 1, 4] = -1.0  # a peak of another class at the same cell (kept: the maximum is per class)
    heat[0, 1, 3, 0] = 0.5  # a lower, isolated peak in proposal 0
    res = per_clip(head().predict_by_feat(outs, batch_inds, segments, num_clips=2, num_frames=T, topk=3))
    r = res[0]
    assert r['scores'].shape == (3, ) and r['labels'].shape == (3, ) and r['coeffs'].shape == (3, 4, NC)
    assert r['labels'].tolist() == [2, 1, 0]
    assert torch.allclose(r['scores'], torch.sigmoid(torch.tensor([2.0, 0.5, -1.0])))
    assert (r['scores'][:-1] >= r['scores'][1:]).all()
    # the second tube sits at proposal 0 (segment 0..11), cell (3, 0)
    assert torch.allclose(r['coeffs'][1, :2, 0], torch.tensor([0.5 / W, 3.5 / H]))
    assert torch.allclose(r['extents'][1], torch.tensor([0., 11.]))


def test_predict_tubes_topk_larger_than_candidates_and_empty_clip():
    outs, batch_inds, segments = hand_made_outs()
    res = per_clip(head().predict_by_feat(outs, batch_inds, segments, num_clips=3, num_frames=T, topk=1000))
    assert res[1]['scores'].shape == (NUM_CLASSES * H * W, )  # one proposal in clip 1
    assert res[0]['scores'].shape == (2 * NUM_CLASSES * H * W, )
    # clip 2 has no proposal
    assert res[2]['scores'].shape == (0, ) and res[2]['labels'].shape == (0, )
    assert res[2]['coeffs'].shape == (0, 4, NC) and res[2]['extents'].shape == (0, 2)


def test_predict_tubes_batch_equals_single():
    h = head()
    outs, batch_inds, segments = hand_made_outs()
    both = per_clip(h.predict_by_feat(outs, batch_inds, segments, num_clips=2, num_frames=T, topk=4))
    single = per_clip(h.predict_by_feat(tuple(o[2:] for o in outs), batch_inds[2:] - 1, segments[2:],
                                        num_clips=1, num_frames=T, topk=4))
    for key in ('coeffs', 'extents', 'scores', 'labels'):
        assert torch.allclose(both[1][key].float(), single[0][key].float())


# ------------------------------------------------------------------------------------------ targets / losses
T_GT = 8
IMG_GT = (64, 64)


def gt_clip(label=1):
    """One 32x32 tube on frames 2..5 moving right by 8 px per frame, centred at (24, 32) on frame 3 (the
    middle frame of the extent: the lower of the two middle frames)."""
    tubes = torch.zeros(1, T_GT, 4)
    masks = torch.zeros(1, T_GT, dtype=torch.bool)
    for t in range(2, 6):
        x1 = 8. + 8 * (t - 3)
        tubes[0, t] = torch.tensor([x1, 16., x1 + 32, 48.])
        masks[0, t] = True
    return InstanceData(tubes=tubes, tube_masks=masks, labels=torch.tensor([label]))


def empty_clip():
    return InstanceData(tubes=torch.zeros(0, T_GT, 4), tube_masks=torch.zeros(0, T_GT, dtype=torch.bool),
                        labels=torch.zeros(0, dtype=torch.long))


# temporal IoU with the GT extent (2, 5): 4/8 = 0.5 (positive), 1 (positive), 0 (not a target)
SEGMENTS = torch.tensor([[0., 7.], [2., 5.], [6., 7.]])


def test_targets_gaussian_peak_at_gt_centre():
    h = head()
    heat, pos = h.get_targets(torch.tensor([0, 0, 0]), SEGMENTS, [gt_clip()], T_GT, (32, 32), IMG_GT)
    assert heat.shape == (3, NUM_CLASSES, 32, 32)
    # centre (24, 32) px -> (12, 16) cells; 16x16-cell box -> radius int(gaussian_radius) = 1, sigma 0.5
    assert pos['prop_inds'].tolist() == [0, 1]
    assert pos['ys'].tolist() == [16, 16] and pos['xs'].tolist() == [12, 12]
    assert pos['batch_inds'].tolist() == [0, 0] and pos['gt_inds'].tolist() == [0, 0]
    for key in pos:
        assert pos[key].dtype == torch.long
    for p in (0, 1):
        assert heat[p, 1, 16, 12] == 1.0
        assert torch.allclose(heat[p, 1, 15:18, 11:14],
                              torch.tensor([[math.exp(-4), math.exp(-2), math.exp(-4)],
                                            [math.exp(-2), 1.0, math.exp(-2)],
                                            [math.exp(-4), math.exp(-2), math.exp(-4)]]), atol=1e-6)
        assert heat[p, 1].sum().item() == pytest.approx(1 + 4 * math.exp(-2) + 4 * math.exp(-4), abs=1e-5)
    assert heat.eq(1).sum() == 2
    assert heat[:, [0, 2]].abs().sum() == 0 and heat[2].abs().sum() == 0


def test_targets_small_box_gives_a_single_cell():
    heat, pos = head().get_targets(torch.tensor([0, 0, 0]), SEGMENTS, [gt_clip(label=2)], T_GT, (8, 8),
                                   IMG_GT)
    # 4x4-cell box -> radius 0; centre (24, 32) px -> cell (x=3, y=4)
    assert pos['xs'].tolist() == [3, 3] and pos['ys'].tolist() == [4, 4]
    expected = torch.zeros(3, NUM_CLASSES, 8, 8)
    expected[0, 2, 4, 3] = expected[1, 2, 4, 3] = 1.0
    assert torch.equal(heat, expected)


def test_targets_centre_at_the_proposal_middle():
    """centre_time='proposal': the heatmap peak of a GT on a proposal is its box centre at the annotated frame
    nearest the proposal's middle (frames 2..5 annotated; the box moves 8 px = 1 cell of an 8x8 map per
    frame)."""
    segments = torch.tensor([[0., 7.], [3., 7.], [0., 4.]])  # middles 3.5, 5, 2; tIoU 0.5, 0.5, 0.5
    heat, pos = head(centre_time='proposal').get_targets(torch.tensor([0, 0, 0]), segments,
                                                         [gt_clip(label=2)], T_GT, (8, 8), IMG_GT)
    # frame 3 (nearest 3.5, the lower on a tie): centre x 24 px -> cell 3; frame 5: 40 px -> 5; frame 2: 2
    assert pos['prop_inds'].tolist() == [0, 1, 2]
    assert pos['xs'].tolist() == [3, 5, 2] and pos['ys'].tolist() == [4, 4, 4]
    assert [heat[i, 2, 4, x].item() for i, x in enumerate([3, 5, 2])] == [1.0, 1.0, 1.0]
    # the default: the middle of the tube's extent (frame 3) on every proposal
    _, pos = head().get_targets(torch.tensor([0, 0, 0]), segments, [gt_clip(label=2)], T_GT, (8, 8), IMG_GT)
    assert pos['xs'].tolist() == [3, 3, 3]
    with pytest.raises(ValueError, match="centre_time must be 'tube' or 'proposal'"):
        head(centre_time='middle')


def test_targets_respect_pos_tiou_and_clips():
    gts = [gt_clip(), empty_clip()]
    # pos_tiou 0.6: the whole-clip proposal (tIoU 0.5) is no longer a target
    heat, pos = head(pos_tiou=0.6).get_targets(torch.tensor([0, 0, 0]), SEGMENTS, gts, T_GT, (8, 8), IMG_GT)
    assert pos['prop_inds'].tolist() == [1]
    # the same proposals in clip 1 (no GT) give no target; the GT of clip 0 is covered by no proposal
    heat, pos = head().get_targets(torch.tensor([1, 1, 1]), SEGMENTS, gts, T_GT, (8, 8), IMG_GT)
    assert pos['prop_inds'].numel() == 0 and heat.abs().sum() == 0


def giou(a, b):
    ix = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclose = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (enclose - union) / enclose


def test_loss_hand_computed_values_and_gradients():
    h = head()
    p = 3
    heat = torch.zeros(p, NUM_CLASSES, 8, 8, requires_grad=True)  # every score 0.5
    coeff_map = torch.zeros(p, 4 * NC, 8, 8, requires_grad=True)  # the priors: a 16x16 box at the cell
    extent_map = torch.zeros(p, 2, 8, 8, requires_grad=True)  # the proposal bounds
    gts = [gt_clip()]
    losses, pos = h.loss_and_predict((heat, coeff_map, extent_map), torch.tensor([0, 0, 0]), SEGMENTS, gts,
                                     T_GT, IMG_GT)
    coeffs, extents = pos['coeffs'], pos['extents']
    assert set(losses) == {'loss_heatmap', 'loss_coarse_box', 'loss_coarse_giou', 'loss_extent'}
    assert pos['prop_inds'].tolist() == [0, 1]
    assert coeffs.shape == (2, 4, NC) and torch.allclose(extents, torch.tensor([[0., 7.], [2., 5.]]))
    # heatmap: Gaussian focal loss at p = 0.5, radius 0 -> 2 cells of target 1, the rest 0, averaged over 2
    n_cells = heat.numel()
    expected_heat = 0.25 * math.log(2) * (2 + (n_cells - 2)) / 2
    assert losses['loss_heatmap'].item() == pytest.approx(expected_heat, rel=1e-4)
    # extents (0, 7) and (2, 5) vs GT (2, 5): L1 of /8-normalised bounds (2+2)/8, averaged over 2*2, weight 5
    assert losses['loss_extent'].item() == pytest.approx(5 * (4 / 8) / 4, rel=1e-5)
    # boxes: both positives decode to the prior [20, 28, 36, 44] (cell (3, 4): centre (28, 36), 16x16) on
    # frames 2..5; GT x1 = 0, 8, 16, 24 (y 16..48). L1 on /64 boxes averaged over 8 frames * 4, weight 2
    pred = [20., 28., 36., 44.]
    gt_boxes = [[x1, 16., x1 + 32, 48.] for x1 in (0., 8., 16., 24.)]
    l1 = sum(abs(a - b) for g in gt_boxes for a, b in zip(pred, g)) / 64
    assert losses['loss_coarse_box'].item() == pytest.approx(2 * (2 * l1) / 32, rel=1e-5)
    expected_giou = sum(1 - giou(pred, g) for g in gt_boxes) / 4
    assert losses['loss_coarse_giou'].item() == pytest.approx(expected_giou, rel=1e-4)
    sum(losses.values()).backward()
    for g in (heat.grad, coeff_map.grad, extent_map.grad):
        assert torch.isfinite(g).all()
    # box and extent gradients only at the positive cells
    mask = torch.zeros(p, 1, 8, 8, dtype=torch.bool)
    mask[0, 0, 4, 3] = mask[1, 0, 4, 3] = True
    assert coeff_map.grad.masked_fill(mask, 0).abs().sum() == 0
    assert extent_map.grad.masked_fill(mask, 0).abs().sum() == 0
    assert coeff_map.grad[0, :, 4, 3].abs().sum() > 0 and coeff_map.grad[1, :, 4, 3].abs().sum() > 0
    # proposal 0's extent is off by 2 frames at both ends; proposal 1's is exact (L1's subgradient at 0 is 0)
    assert extent_map.grad[0, :, 4, 3].abs().sum() > 0
    assert extent_map.grad[1, :, 4, 3].abs().sum() == 0
    # the heatmap loss pushes every negative cell down and the two GT cells up
    assert (heat.grad[0, 1, 4, 3] < 0) and (heat.grad[1, 1, 4, 3] < 0)
    gt_cells = mask.expand_as(heat) & (torch.arange(3) == 1).view(1, 3, 1, 1)
    assert (heat.grad.masked_fill(gt_cells, 1) > 0).all()


def test_loss_through_the_forward_is_finite_with_gradients():
    torch.manual_seed(0)
    h = head()
    h.init_weights()
    outs = h(torch.randn(3, 4, 8, 8))
    losses, _ = h.loss_and_predict(outs, torch.tensor([0, 0, 0]), SEGMENTS, [gt_clip()], T_GT, IMG_GT)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name, prm in h.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name


@pytest.mark.parametrize('case', ['no_gt', 'gt_not_covered', 'empty_mask'])
def test_loss_without_positive_is_finite(case):
    torch.manual_seed(0)
    h = head()
    h.init_weights()
    pooled = torch.randn(3, 4, 8, 8, requires_grad=True)
    if case == 'no_gt':
        gts, segs = [empty_clip()], SEGMENTS
    elif case == 'gt_not_covered':
        gts, segs = [gt_clip()], torch.tensor([[6., 7.], [0., 1.], [7., 7.]])
    else:
        gt = gt_clip()
        gt.tube_masks[:] = False
        gts, segs = [gt], SEGMENTS
    losses, pos = h.loss_and_predict(h(pooled), torch.tensor([0, 0, 0]), segs, gts, T_GT, IMG_GT)
    coeffs, extents = pos['coeffs'], pos['extents']
    assert pos['prop_inds'].numel() == 0 and coeffs.shape == (0, 4, NC) and extents.shape == (0, 2)
    for key in ('loss_coarse_box', 'loss_coarse_giou', 'loss_extent'):
        assert losses[key].item() == 0.0
    assert torch.isfinite(losses['loss_heatmap']) and losses['loss_heatmap'].item() > 0
    sum(losses.values()).backward()
    assert torch.isfinite(pooled.grad).all()


def test_loss_batch_of_clips_with_an_empty_one():
    torch.manual_seed(0)
    h = head()
    outs = h(torch.randn(4, 4, 8, 8))
    batch_inds = torch.tensor([0, 0, 1, 1])
    segs = torch.tensor([[0., 7.], [2., 5.], [0., 7.], [2., 5.]])
    losses, pos = h.loss_and_predict(outs, batch_inds, segs, [empty_clip(), gt_clip()], T_GT, IMG_GT)
    assert pos['prop_inds'].tolist() == [2, 3] and pos['tube_batch'].tolist() == [1, 1]
    assert all(torch.isfinite(v) for v in losses.values())
