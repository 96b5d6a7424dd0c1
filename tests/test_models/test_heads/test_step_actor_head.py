"""StepActorHead: heatmap / size / offset targets by hand, the snap of tube boxes onto hand-made peaks (search
radius, distance penalty, score threshold, extent), the re-fit onto a moving actor, and CFAD on a long window
with the head in its RoI head."""
import math
import os.path as osp
import sys

import pytest
import torch
from mmaction.registry import MODELS, TASK_UTILS
from mmdet.models.utils.gaussian_target import get_local_maximum
from mmengine.structures import InstanceData
from torch.nn import functional as F

import cfad_mm  # noqa: F401

STRIDE = 8  # input pixels per feature cell
TF, H, W = 5, 12, 16
IMG = (H * STRIDE, W * STRIDE)  # (96, 128)


def head(**kw):
    h = MODELS.build(dict(type='StepActorHead', in_channels=4, feat_channels=8, **kw))
    h.init_weights()
    return h


def cell_box(y, x, side=16.0):
    """A box of ``side`` pixels centred on cell ``(y, x)``."""
    cx, cy = (x + 0.5) * STRIDE, (y + 0.5) * STRIDE
    return torch.tensor([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def maps(peaks, n=1, size=(0.0, 0.0), offset=(0.5, 0.5), motion=None):
    """Head outputs with heat ``p`` at ``peaks[(b, u, y, x)] = p`` (logits: -20 elsewhere), one log size and
    one offset everywhere, and with ``motion`` (4 values: x, y to the step before and after) one learned
    displacement everywhere."""
    heat = torch.full((n, TF, H, W), -20.0)
    for (b, u, y, x), p in peaks.items():
        heat[b, u, y, x] = math.log(p / (1 - p))
    sz = torch.tensor(size)[None, None, :, None, None].expand(n, TF, 2, H, W).clone()
    off = torch.tensor(offset)[None, None, :, None, None].expand(n, TF, 2, H, W).clone()
    if motion is None:
        return heat, sz, off
    return heat, sz, off, torch.tensor(motion)[None, None, :, None, None].expand(n, TF, 4, H, W).clone()


def test_forward_shapes():
    h = head()
    outs = h(torch.randn(2, 4, TF, H, W))
    assert [tuple(o.shape) for o in outs] == [(2, TF, H, W), (2, TF, 2, H, W), (2, TF, 2, H, W)]


def test_motion_output_and_targets_by_hand():
    """With motion: a 4th map, and at each GT centre the displacement (cells) to the centre at the steps
    before / after, weighted 1 only where the tube is annotated there."""
    h = head(follow=True, motion=True)
    outs = h(torch.randn(2, 4, TF, H, W))
    assert [tuple(o.shape) for o in outs][3] == (2, TF, 4, H, W)
    tubes = torch.zeros(1, 20, 4)
    masks = torch.zeros(1, 20, dtype=torch.bool)
    # step frames 3, 7, 11: centres (x, y) in cells (3.0, 2.0), (5.5, 3.75); frame 11 not annotated
    tubes[0, 3] = torch.tensor([16.0, 8.0, 32.0, 24.0])
    tubes[0, 7] = torch.tensor([12.0, 6.0, 76.0, 54.0])
    masks[0, [3, 7]] = True
    gt = InstanceData(tubes=tubes, tube_masks=masks, labels=torch.tensor([1]))
    _, tgt = h.get_targets([gt], torch.tensor([3, 7, 11]), (H, W), IMG)
    assert tgt['inds'].tolist() == [[0, 0, 2, 3], [0, 1, 3, 5]]
    assert torch.allclose(tgt['motion'], torch.tensor([[0.0, 0.0, 2.5, 1.75], [-2.5, -1.75, 0.0, 0.0]]))
    assert tgt['motion_weight'].tolist() == [[0, 0, 1, 1], [1, 1, 0, 0]]
    # a zero motion map: the loss is the mean absolute target over the weighted entries
    torch.nn.init.zeros_(h.motion.weight)
    torch.nn.init.zeros_(h.motion.bias)
    losses = h.loss(h(torch.randn(1, 4, 3, H, W)), [gt], torch.tensor([3, 7, 11]), IMG)
    assert float(losses['loss_actor_motion']) == pytest.approx((2.5 + 1.75 + 2.5 + 1.75) / 4)
    losses['loss_actor_motion'].backward()
    assert h.motion.weight.grad.abs().sum() > 0
    # a tube annotated at one step only: no displacement to learn, a zero loss that still has a graph
    masks[0, 7] = False
    gt = InstanceData(tubes=tubes, tube_masks=masks, labels=torch.tensor([1]))
    losses = h.loss(h(torch.randn(1, 4, 3, H, W)), [gt], torch.tensor([3, 7, 11]), IMG)
    assert float(losses['loss_actor_motion']) == 0 and losses['loss_actor_motion'].requires_grad


def test_targets_at_the_step_frames_by_hand():
    h = head(prior_size=0.25)
    tubes = torch.zeros(1, 20, 4)
    masks = torch.zeros(1, 20, dtype=torch.bool)
    # frame 7: a 64 x 48 box centred at (44, 30) px = cell (x 5.5, y 3.75); frame 3 not annotated
    tubes[0, 7] = torch.tensor([12.0, 6.0, 76.0, 54.0])
    masks[0, 7] = True
    gt = InstanceData(tubes=tubes, tube_masks=masks, labels=torch.tensor([1]))
    heat, tgt = h.get_targets([gt], torch.tensor([3, 7]), (H, W), IMG)
    assert heat.shape == (1, 2, H, W)
    assert heat[0, 0].max() == 0  # no box at frame 3
    assert heat[0, 1, 3, 5] == 1 and heat[0, 1].sum() > 1  # a Gaussian around the centre cell
    assert tgt['inds'].tolist() == [[0, 1, 3, 5]]
    assert torch.allclose(tgt['offset'], torch.tensor([[0.5, 0.75]]))
    # log of the size over prior_size x the clip size (0.25 x 128 = 32, 0.25 x 96 = 24)
    assert torch.allclose(tgt['size'], torch.tensor([[math.log(64 / 32), math.log(48 / 24)]]))


def test_loss_is_finite_and_empty_gt_gives_zero_box_losses_with_a_graph():
    h = head()
    feats = torch.randn(1, 4, TF, H, W)
    empty = InstanceData(tubes=torch.zeros(0, 20, 4), tube_masks=torch.zeros(0, 20, dtype=torch.bool),
                         labels=torch.zeros(0, dtype=torch.long))
    losses = h.loss(h(feats), [empty], torch.arange(TF) * 4, IMG)
    assert float(losses['loss_actor_size']) == 0 and losses['loss_actor_size'].requires_grad
    assert float(losses['loss_actor_heatmap']) > 0  # every cell is a negative
    tubes = cell_box(4, 6).expand(1, 20, 4).clone()
    gt = InstanceData(tubes=tubes, tube_masks=torch.ones(1, 20, dtype=torch.bool), labels=torch.tensor([0]))
    losses = h.loss(h(feats), [gt], torch.arange(TF) * 4, IMG)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert h.size.weight.grad.abs().sum() > 0 and h.offset.weight.grad.abs().sum() > 0


def test_snap_moves_the_box_onto_the_peak_within_the_radius():
    h = head(search_radius=2, min_score=0.1)
    # step 0: a peak 2 cells right and 1 up of the tube's cell (6, 6); sizes exp(log 0.5) x prior 0.25
    outs = maps({(0, 0, 5, 8): 0.8}, size=(math.log(0.5), math.log(0.5)), offset=(0.25, 0.75))
    boxes = cell_box(6, 6)[None, None].expand(1, TF, 4).clone()
    step_in = torch.ones(1, TF, dtype=torch.bool)
    snapped, weights = h.snap(outs, torch.tensor([0]), boxes, step_in, IMG)
    cx, cy = (8 + 0.25) * STRIDE, (5 + 0.75) * STRIDE
    bw, bh = 0.5 * 0.25 * IMG[1], 0.5 * 0.25 * IMG[0]
    assert torch.allclose(snapped[0, 0], torch.tensor([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]))
    assert weights[0, 0] == pytest.approx(0.8, abs=1e-5)
    # the other steps have no peak: the tube's own boxes, weight 0
    assert torch.equal(snapped[0, 1:], boxes[0, 1:]) and weights[0, 1:].abs().sum() == 0


def test_snap_ignores_far_weak_and_outside_extent_peaks():
    h = head(search_radius=2, min_score=0.3)
    outs = maps({(0, 0, 6, 9): 0.9,    # 3 cells away: outside the search window
                 (0, 1, 6, 7): 0.2,    # below min_score
                 (0, 2, 6, 7): 0.9})   # the step is outside the tube's extent
    boxes = cell_box(6, 6)[None, None].expand(1, TF, 4).clone()
    step_in = torch.tensor([[True, True, False, True, True]])
    snapped, weights = h.snap(outs, torch.tensor([0]), boxes, step_in, IMG)
    assert torch.equal(snapped, boxes) and float(weights.abs().sum()) == 0
    # min_score 0: a step whose window has zero heat everywhere (no peak) still keeps its own box
    empty = maps({})
    empty[0].fill_(float('-inf'))
    snapped, weights = head(search_radius=2, min_score=0.0).snap(empty, torch.tensor([0]), boxes, step_in,
                                                                 IMG)
    assert torch.equal(snapped, boxes) and float(weights.abs().sum()) == 0


def test_snap_prefers_the_nearer_of_two_peaks_and_reads_its_own_clip():
    h = head(search_radius=2, distance_sigma=1.0)
    # clip 0: a 0.9 peak 2 cells away and a 0.6 peak next to the tube: 0.9 e^-2 = 0.12 < 0.6 e^-0.5 = 0.36
    # clip 1: only a peak 2 cells away
    outs = maps({(0, 0, 6, 8): 0.9, (0, 0, 6, 5): 0.6, (1, 0, 6, 8): 0.9}, n=2)
    boxes = cell_box(6, 6)[None, None].expand(2, TF, 4).clone()
    snapped, weights = h.snap(outs, torch.tensor([0, 1]), boxes, torch.ones(2, TF, dtype=torch.bool), IMG)
    centre_x = (snapped[:, 0, 0] + snapped[:, 0, 2]) / 2
    assert centre_x.tolist() == pytest.approx([5.5 * STRIDE, 8.5 * STRIDE])
    assert weights[:, 0].tolist() == pytest.approx([0.6, 0.9], abs=1e-5)


def test_snapped_refit_follows_a_moving_actor():
    """A static coarse tube over 33 frames and an actor moving 1 cell right per step (8 px per 8 frames):
    the re-fitted trajectory passes through the actor's centre at every step frame."""
    h = head(search_radius=2, prior_strength=1e-4)
    coder = TASK_UTILS.build(dict(type='SplineTubeCoder', max_frames=33, knot_interval=16))
    step_frames = torch.tensor([3, 10, 16, 23, 29])
    actor = [(6, 4 + u) for u in range(TF)]
    outs = maps({(0, u, y, x): 0.9 for u, (y, x) in enumerate(actor)}, size=(math.log(0.5), math.log(2 / 3)))
    still = cell_box(6, 6)[None].expand(33, 4)  # 16 x 16 box at the middle cell in every frame
    coeffs, extents = coder.encode(still[None], torch.ones(1, 33, dtype=torch.bool), IMG)
    step_boxes, step_in = coder.decode(coeffs, extents, IMG, times=step_frames.float())
    boxes, weights = h.snap(outs, torch.tensor([0]), step_boxes, step_in, IMG)
    new = h.refit(coder, coeffs, extents, step_frames, boxes, weights, IMG)
    dec, _ = coder.decode(new, extents, IMG, times=step_frames.float())
    centres = (dec[0, :, 0] + dec[0, :, 2]) / 2
    assert centres.tolist() == pytest.approx([(x + 0.5) * STRIDE for _, x in actor], abs=0.3)
    sides = dec[0, :, 2] - dec[0, :, 0]
    assert sides.tolist() == pytest.approx([0.5 * 0.25 * IMG[1]] * TF, rel=1e-3)  # 16 px, from the size map


def centres_x(boxes):
    return ((boxes[..., 0] + boxes[..., 2]) / 2 / STRIDE - 0.5).tolist()


def test_follow_keeps_an_actor_the_tube_lags_behind():
    """A static tube at cell x = 6 and an actor moving 1 cell right per step from x = 6: searched around the
    tube's own box (radius 1) it is lost from step 2 on; followed from the anchor step it is kept."""
    actor = {(0, u, 6, 6 + u): 0.9 for u in range(TF)}
    boxes = cell_box(6, 6)[None, None].expand(1, TF, 4).clone()
    step_in = torch.ones(1, TF, dtype=torch.bool)
    own, _ = head(search_radius=1).snap(maps(actor), torch.tensor([0]), boxes, step_in, IMG)
    assert centres_x(own[0]) == pytest.approx([6, 7, 6, 6, 6])
    followed, weights = head(search_radius=1, follow=True).snap(maps(actor), torch.tensor([0]), boxes,
                                                                step_in, IMG)
    assert centres_x(followed[0]) == pytest.approx([6, 7, 8, 9, 10])
    assert weights[0].tolist() == pytest.approx([0.9] * TF, abs=1e-5)


def test_follow_starts_at_the_best_peak_and_coasts_over_a_gap():
    """The anchor is the step with the best score (step 3: the strongest peak on the tube); backwards from it
    the actor moves 1 cell left per step, with no peak at step 1 (an occlusion): the box there coasts on the
    followed velocity with weight coast_weight, and step 0 is found again."""
    peaks = {(0, 0, 6, 3): 0.5, (0, 2, 6, 5): 0.5, (0, 3, 6, 6): 0.9, (0, 4, 6, 7): 0.5}
    boxes = cell_box(6, 6)[None, None].expand(1, TF, 4).clone()
    step_in = torch.ones(1, TF, dtype=torch.bool)
    h = head(search_radius=1, follow=True, coast_weight=0.02)
    followed, weights = h.snap(maps(peaks), torch.tensor([0]), boxes, step_in, IMG)
    assert centres_x(followed[0]) == pytest.approx([3, 4, 5, 6, 7])
    assert weights[0].tolist() == pytest.approx([0.5, 0.02, 0.5, 0.9, 0.5], abs=1e-5)
    # steps outside the extent are left alone, and a tube without any peak keeps its boxes
    step_in = torch.tensor([[False, True, True, True, True]])
    followed, weights = h.snap(maps(peaks), torch.tensor([0]), boxes, step_in, IMG)
    assert torch.equal(followed[0, 0], boxes[0, 0]) and float(weights[0, 0]) == 0
    followed, weights = h.snap(maps({}), torch.tensor([0]), boxes, step_in, IMG)
    assert torch.equal(followed, boxes) and float(weights.abs().sum()) == 0


def test_follow_with_learned_motion_keeps_the_actor_past_a_static_look_alike():
    """Clip 0: an actor moving 2 cells right per step (x = 2, 4, 6, 8, 10) passes a static look-alike at
    x = 6 (one peak where they meet, step 2, the anchor). Followed on the static tube's velocity (0) the tube
    takes the look-alike at every step; with the displacement learned at the actor's cells it keeps the actor
    both ways. Clip 1 (a second tube): the mirror image, an actor moving 2 cells left on row 3, whose
    displacements are written only in clip 1: each tube reads its own clip, step and cell."""
    moving = {0: [(6, x) for x in (2, 4, 6, 8, 10)], 1: [(3, x) for x in (10, 8, 6, 4, 2)]}
    peaks = {}
    motion = torch.zeros(2, TF, 4, H, W)
    for b, cells in moving.items():
        for u, (y, x) in enumerate(cells):
            peaks[(b, u, y, x)] = peaks[(b, u, y, 6)] = 0.9 if u == 2 else 0.5
            step = 2.0 if b == 0 else -2.0
            motion[b, u, :, y, x] = torch.tensor([-step, 0.0, step, 0.0])  # to the step before, after
    heat, size, offset = maps(peaks, n=2)
    outs = (heat, size, offset, motion)
    boxes = torch.stack([cell_box(6, 6)[None].expand(TF, 4), cell_box(3, 6)[None].expand(TF, 4)])
    batch, step_in = torch.tensor([0, 1]), torch.ones(2, TF, dtype=torch.bool)
    by_velocity, _ = head(search_radius=2, follow=True).snap(outs[:3], batch, boxes, step_in, IMG)
    assert centres_x(by_velocity[0]) == centres_x(by_velocity[1]) == pytest.approx([6] * TF)
    h = head(search_radius=2, follow=True, motion=True)
    learned, weights = h.snap(outs, batch, boxes, step_in, IMG)
    assert centres_x(learned[0]) == pytest.approx([2, 4, 6, 8, 10])
    assert centres_x(learned[1]) == pytest.approx([10, 8, 6, 4, 2])
    assert weights.flatten().tolist() == pytest.approx([0.5, 0.5, 0.9, 0.5, 0.5] * 2, abs=1e-5)
    for r in range(2):  # many tubes at once give what each gives alone
        alone, w_alone = h.snap(outs, batch[r:r + 1], boxes[r:r + 1], step_in[r:r + 1], IMG)
        assert torch.equal(alone[0], learned[r]) and torch.equal(w_alone[0], weights[r])
    # clip 0, no peak at step 3 (the actor hidden): the box coasts on the last learned move (+2, to x = 8)
    # and step 4 goes on with it (x = 10); a move of -4 written at the coasted cell is NOT read
    for x in (8, 6):
        del peaks[(0, 3, 6, x)]
    motion[0, 3, :, 6, 8] = torch.tensor([4.0, 0.0, -4.0, 0.0])
    outs = maps(peaks, n=2)[:3] + (motion,)
    learned, weights = h.snap(outs, batch, boxes, step_in, IMG)
    assert centres_x(learned[0]) == pytest.approx([2, 4, 6, 8, 10])
    assert weights[0].tolist() == pytest.approx([0.5, 0.5, 0.9, 0.05, 0.5], abs=1e-5)


def test_follow_of_many_tubes_equals_each_tube_alone():
    """Rows with different anchors, clips, own velocities and gaps: the batched follow gives each row what it
    gives that row alone; a moving own tube sets the first predicted step (its velocity, backwards too), an
    accelerating actor is kept, coasting also forwards; float64 tube boxes with float32 maps."""
    peaks = {(0, 0, 3, 2): 0.6, (0, 1, 3, 5): 0.7, (0, 2, 3, 7): 0.9, (0, 4, 3, 9): 0.6,  # gap at step 3
             (1, 0, 8, 12): 0.5, (1, 1, 8, 10): 0.8, (1, 2, 8, 8): 0.5, (1, 3, 8, 6): 0.5, (1, 4, 8, 4): 0.5}
    outs = maps(peaks, n=2)
    own = torch.stack([
        torch.stack([cell_box(3, 7)] * TF),  # clip 0, static at the anchor
        torch.stack([cell_box(8, 11.0 - 2 * u) for u in range(TF)]),  # clip 1, moving with the actor
        torch.stack([cell_box(0, 0)] * TF)]).double()  # clip 1, far from any peak
    batch, step_in = torch.tensor([0, 1, 1]), torch.ones(3, TF, dtype=torch.bool)
    h = head(search_radius=2, follow=True)
    together, w_together = h.snap(outs, batch, own, step_in, IMG)
    assert together.dtype == torch.float64
    for r in range(3):
        alone, w_alone = h.snap(outs, batch[r:r + 1], own[r:r + 1], step_in[r:r + 1], IMG)
        assert torch.allclose(together[r], alone[0]) and torch.allclose(w_together[r], w_alone[0])
    # clip 0: anchor at step 2 (0.9); backwards the own velocity 0 predicts 7 and finds 5, the followed
    # velocity -2 predicts 3 and finds 2 (the actor speeds up); forwards (own velocity 0 again) step 3 has no
    # peak and coasts at 7, step 4 finds 9 around 7
    assert centres_x(together[0]) == pytest.approx([2, 5, 7, 7, 9])
    # clip 1: anchor at step 1 (0.8), the own velocity -2 per step predicts the actor both ways
    assert w_together[0].tolist() == pytest.approx([0.6, 0.7, 0.9, 0.05, 0.6], abs=1e-5)
    assert centres_x(together[1]) == pytest.approx([12, 10, 8, 6, 4])
    assert torch.equal(together[2], own[2]) and float(w_together[2].abs().sum()) == 0


def test_tracker_gives_each_tube_one_whole_track():
    """Actor A moves 1 cell right per step on row 6 (x = 4 .. 8; hidden at step 2), actor B stands at cell
    (2, 10) from step 1 on. Two static tubes both next to A (cells (6, 5) and (5, 6)): followed step by step,
    both take A. With the tracker the peaks are linked first (A's track bridges step 2) and the tubes are
    matched one to one with whole tracks (affinities by hand: 0.649 / 0.133 for tube 0 with A / B, 0.646 /
    0.220 for tube 1 by their own boxes, assign_from='coarse', so tube 0 gets A and tube 1 gets B): tube 0
    takes A with the box interpolated at step 2 (weight coast_weight), tube 1 takes B from step 1 on and
    keeps its own box, weight 0, at step 0 where B's track has not started. By the followed boxes (both on
    A) one of the two gets B."""
    peaks = {(0, u, 6, 4 + u): 0.9 for u in (0, 1, 3, 4)}
    peaks.update({(0, u, 2, 10): 0.6 for u in (1, 2, 3, 4)})
    boxes = torch.stack([cell_box(6, 5)[None].expand(TF, 4), cell_box(5, 6)[None].expand(TF, 4)])
    batch, step_in = torch.tensor([0, 0]), torch.ones(2, TF, dtype=torch.bool)
    followed, _ = head(search_radius=2, follow=True).snap(maps(peaks), batch, boxes, step_in, IMG)
    assert centres_x(followed[1])[1:] != pytest.approx([10] * 4)  # step by step, tube 1 stays on A
    tracker = dict(type='PeakTracker', gate=1.5, max_gap=2, assign_sigma=4.0)
    h = head(search_radius=2, follow=True, coast_weight=0.02, tracker=tracker, assign_from='coarse')
    heat, size, offset = maps(peaks)
    tracks = h.link_peaks(get_local_maximum(heat.sigmoid()), size, offset, None, IMG)
    assert len(tracks) == 1 and tracks[0]['heat'].flatten().tolist() == pytest.approx(
        [0.9, 0.9, 0.0, 0.9, 0.9] + [0.0, 0.6, 0.6, 0.6, 0.6], abs=1e-5)  # A bridges step 2, B from step 1
    assert tracks[0]['centres'][1, 1:].flatten().tolist() == pytest.approx([10.5, 2.5] * 4)
    assert torch.equal(tracks[0]['boxes'][1, 0], torch.zeros(4))
    tracked, weights = h.snap(maps(peaks), batch, boxes, step_in, IMG)
    assert centres_x(tracked[0]) == pytest.approx([4, 5, 6, 7, 8])
    assert weights[0].tolist() == pytest.approx([0.9, 0.9, 0.02, 0.9, 0.9], abs=1e-5)
    assert torch.equal(tracked[1, 0], boxes[1, 0]) and float(weights[1, 0]) == 0
    assert centres_x(tracked[1])[1:] == pytest.approx([10] * 4)
    assert weights[1, 1:].tolist() == pytest.approx([0.6] * 4, abs=1e-5)
    by_followed, _ = head(search_radius=2, follow=True, tracker=tracker).snap(maps(peaks), batch, boxes,
                                                                             step_in, IMG)
    on_b = [centres_x(by_followed[r])[1:] == pytest.approx([10] * 4) for r in range(2)]
    assert sorted(on_b) == [False, True]
    # steps outside a tube's extent keep its own box with weight 0; a tube of another clip is untouched
    step_in = torch.tensor([[True, True, True, False, False], [True] * TF])
    tracked, weights = h.snap(maps(peaks), batch, boxes, step_in, IMG)
    assert torch.equal(tracked[0, 3:], boxes[0, 3:]) and weights[0, 3:].abs().sum() == 0
    alone, w_alone = h.snap(maps(peaks, n=2), torch.tensor([1]), boxes[:1], step_in[:1], IMG)
    assert torch.equal(alone, boxes[:1]) and float(w_alone.abs().sum()) == 0


def test_frame_branch_reads_the_input_frame_of_each_step():
    """With frame_widths the maps are at stride 4 of the input, and step u reads the sampled input frame
    nearest its span frame."""
    h = head(frame_widths=(4, 6))
    t, span = 9, 33  # 9 frames sampled every 4 of a 33-frame span; 5 feature steps
    frames = torch.arange(t, dtype=torch.float32)[None, None, :, None, None].expand(1, 3, t, *IMG).clone()
    seen = []
    h.frame_branch.register_forward_pre_hook(lambda _, args: seen.append(args[0][:, 0, 0, 0].tolist()))
    outs = h(torch.randn(1, 4, TF, H, W), frames, span)
    assert [tuple(o.shape) for o in outs] == [(1, TF, 2 * H, 2 * W), (1, TF, 2, 2 * H, 2 * W),
                                              (1, TF, 2, 2 * H, 2 * W)]
    # step frames floor((u + 0.5) * 33 / 5) = 3, 9, 16, 23, 29 -> nearest of 0, 4, ..., 32: 4, 8, 16, 24, 28
    assert seen == [[1.0, 2.0, 4.0, 6.0, 7.0]]
    with pytest.raises(ValueError, match='needs the input frames'):
        h(torch.randn(1, 4, TF, H, W))


def test_maps_at_every_input_frame_read_that_frame_and_the_nearest_step():
    """With at_input_frames there is one map per sampled input frame: input j reads frame j through the 2-D
    branch and the features of the feature step nearest its span frame."""
    torch.manual_seed(0)
    h = head(frame_widths=(4, 6), at_input_frames=True).eval()
    t, span = 9, 33  # 9 frames sampled every 4 of a 33-frame span; 5 feature steps at 3, 9, 16, 23, 29
    assert h.map_frames(t, span).tolist() == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert head(frame_widths=(4, 6)).map_frames(TF, span).tolist() == [3, 9, 16, 23, 29]
    frames = torch.randn(2, 3, t, *IMG)
    feats = torch.randn(2, 4, TF, H, W)
    seen = []
    h.frame_branch.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    with torch.no_grad():
        outs = h(feats, frames, span)
    assert seen == [2 * t]  # every input frame of both clips once
    assert [tuple(o.shape) for o in outs] == [(2, t, 2 * H, 2 * W), (2, t, 2, 2 * H, 2 * W),
                                              (2, t, 2, 2 * H, 2 * W)]
    # the steps cover span frames [6.6 u, 6.6 (u + 1)): input frame 12 (j = 3) is in step 1, 20 (j = 5) in
    # step 3, 0 in step 0, 32 in step 4: the same maps as the step maps give with those frames in their place
    steps = head(frame_widths=(4, 6))
    steps.load_state_dict(h.state_dict())
    steps.eval()
    for j, u in [(3, 1), (5, 3), (0, 0), (8, 4)]:
        # a window whose step u reads input j: put frame j where step u looks (inputs 1, 2, 4, 6, 7)
        swapped = frames.clone()
        swapped[:, :, [1, 2, 4, 6, 7][u]] = frames[:, :, j]
        with torch.no_grad():
            ref = steps(feats, swapped, span)
        for b in range(2):
            for k in range(3):
                assert torch.allclose(outs[k][b, j], ref[k][b, u], atol=1e-5), (b, j, u, k)


def test_add_fusion_projects_the_step_at_its_resolution_and_adds_it_to_the_branch():
    """fusion='add': a 1x1 conv takes the step's features to the branch's width at the backbone's resolution,
    they are upsampled and added to the branch, and the 3x3 fusion conv and the outputs work at that width;
    its multiply-adds per map are those of a 6 -> 6 conv instead of a 14 -> 8 conv at the fine resolution."""
    from cfad_mm.analysis.head_cost import count_multiply_adds
    torch.manual_seed(0)
    h = head(frame_widths=(4, 6), fusion='add').eval()
    assert (h.lateral.in_channels, h.lateral.out_channels, h.lateral.kernel_size) == (8, 6, (1, 1))
    assert (h.fuse[0].in_channels, h.fuse[0].out_channels, h.heatmap.in_channels) == (6, 6, 6)
    t, span = 9, 33
    frames, feats = torch.randn(1, 3, t, *IMG), torch.randn(1, 4, TF, H, W)
    with torch.no_grad():
        outs = h(feats, frames, span)
        # by hand: steps read inputs 1, 2, 4, 6, 7 (test_frame_branch_reads_the_input_frame_of_each_step)
        x = h.lateral(h.shared(feats.transpose(1, 2).reshape(TF, 4, H, W)))
        fine = h.frame_branch(frames[0, :, [1, 2, 4, 6, 7]].transpose(0, 1))
        x = h.fuse(F.interpolate(x, size=(2 * H, 2 * W), mode='bilinear', align_corners=False) + fine)
    assert torch.allclose(outs[0][0], h.heatmap(x)[:, 0], atol=1e-6)
    assert torch.allclose(outs[2][0], h.offset(x), atol=1e-6)
    cells = TF * 2 * H * 2 * W  # output cells of the fusion conv over the 5 maps
    add = count_multiply_adds(h, lambda: h(feats, frames, span))
    concat_head = head(frame_widths=(4, 6))
    concat = count_multiply_adds(concat_head, lambda: concat_head(feats, frames, span))
    assert add['fuse.0'] == cells * 6 * 6 * 9 and concat['fuse.0'] == cells * 8 * 14 * 9
    assert add['lateral'] == TF * H * W * 6 * 8 and 'lateral' not in concat
    assert add['heatmap'] == cells * 6 and concat['heatmap'] == cells * 8
    # the first stage of the branch runs at stride 2 of the input: 4x the cells of the stride-8 map per side
    assert add['frame_branch.0'] == concat['frame_branch.0'] == TF * (4 * H) * (4 * W) * 4 * 3 * 9


@pytest.mark.parametrize('pool', [1, 2])
def test_correlated_motion_reads_the_shift_between_neighbouring_maps(pool):
    """Three maps of one window, each the one before moved by 2 cells in x (random unit features, constant
    over pool x pool blocks so that the pooling is exact); identity projection, no residual, a sharp softmax:
    the motion is the shift itself, -2 to the map before and +2 to the map after (0 towards the missing
    neighbours of the first and the last map), in cells of the maps whatever the pooling."""
    torch.manual_seed(0)
    h = head(follow=True, motion=True, corr_radius=2 if pool == 1 else 1, corr_channels=8, corr_pool=pool)
    with torch.no_grad():
        h.corr_proj.weight.copy_(torch.eye(8)[:, :, None, None])
        h.corr_proj.bias.zero_()
        h.motion.weight.zero_()
        h.motion.bias.zero_()
        h.corr_scale.fill_(1000.0)
    base = F.normalize(torch.randn(8, H // pool, W // pool), dim=0)
    base = base.repeat_interleave(pool, 1).repeat_interleave(pool, 2)
    x = torch.stack([torch.roll(base, 2 * u, dims=2) for u in range(3)])  # (3, 8, H, W)
    motion = h._correlated_motion(x, 1, 3)
    assert motion.shape == (3, 4, H, W)
    inner = motion[:, :, 4:-4, 4:-4]  # cells whose shifted partner is inside the map
    want = torch.tensor([[0.0, 0.0, 2.0, 0.0], [-2.0, 0.0, 2.0, 0.0], [-2.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(inner, want[:, :, None, None].expand_as(inner), atol=1e-3)


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match='search_radius must be >= 0'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, search_radius=-1))
    with pytest.raises(ValueError, match='min_score must be in'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, min_score=1.0))
    with pytest.raises(ValueError, match='min_overlap in'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, min_overlap=0))
    with pytest.raises(ValueError, match='coast_weight must be >= 0'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, coast_weight=-0.1))
    with pytest.raises(ValueError, match='motion=True is used only when following'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, motion=True))
    with pytest.raises(ValueError, match='prior_strength must be > 0'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, prior_strength=0))
    with pytest.raises(ValueError, match='at_input_frames=True needs frame_widths'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, at_input_frames=True))
    with pytest.raises(ValueError, match="fusion must be 'concat' or 'add', got 'sum'"):
        MODELS.build(dict(type='StepActorHead', in_channels=4, frame_widths=(4,), fusion='sum'))
    with pytest.raises(ValueError, match="fusion='add' joins the 2-D branch; it needs frame_widths"):
        MODELS.build(dict(type='StepActorHead', in_channels=4, fusion='add'))
    with pytest.raises(ValueError, match='link_peaks needs a tracker'):
        head().link_peaks(*maps({}), None, IMG)
    with pytest.raises(ValueError, match="assign_from must be 'snapped' or 'coarse', got 'own'"):
        MODELS.build(dict(type='StepActorHead', in_channels=4, assign_from='own'))
    with pytest.raises(ValueError, match='corr_radius must be >= 0, corr_channels and corr_pool >= 1'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, follow=True, motion=True, corr_pool=0))
    with pytest.raises(ValueError, match='corr_radius > 0 reads the learned motion from cost volumes'):
        MODELS.build(dict(type='StepActorHead', in_channels=4, corr_radius=2))


@pytest.mark.parametrize('options', [{}, dict(follow=True, frame_widths=(8, 16)),
                                     dict(follow=True, motion=True),
                                     dict(follow=True, motion=True, frame_widths=(8, 16),
                                          at_input_frames=True),
                                     dict(follow=True, motion=True, frame_widths=(8, 16),
                                          at_input_frames=True, fusion='add'),
                                     dict(follow=True, motion=True, frame_widths=(8, 16),
                                          at_input_frames=True, tracker=dict(type='PeakTracker')),
                                     dict(follow=True, motion=True, frame_widths=(8, 16),
                                          at_input_frames=True, fusion='add', corr_radius=2)])
def test_long_window_cfad_with_an_actor_head_trains_and_predicts(options):
    sys.path.insert(0, osp.dirname(osp.dirname(__file__)))
    from test_long_span import S, long_span_cfg, long_span_sample
    torch.manual_seed(0)
    cfg = long_span_cfg(dict(type='SplineTubeCoder', max_frames=S, knot_interval=25))
    cfg['roi_head']['actor_head'] = dict(type='StepActorHead', feat_channels=16, **options)
    model = MODELS.build(cfg)
    model.init_weights()
    clip, ds = long_span_sample()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert {'loss_actor_heatmap', 'loss_actor_size', 'loss_actor_offset'} <= set(losses)
    sum(losses.values()).backward()
    assert model.roi_head.actor_head.heatmap.weight.grad.abs().sum() > 0
    if 'frame_widths' in options:
        assert model.roi_head.actor_head.frame_branch[0].weight.grad.abs().sum() > 0
    if options.get('fusion') == 'add':
        assert model.roi_head.actor_head.lateral.weight.grad.abs().sum() > 0
    if options.get('motion'):
        assert float(losses['loss_actor_motion']) > 0
        assert model.roi_head.actor_head.motion.weight.grad.abs().sum() > 0
    if options.get('corr_radius'):  # the cost volumes learn through the expected shift and the residual
        assert model.roi_head.actor_head.corr_proj.weight.grad.abs().sum() > 0
        assert float(model.roi_head.actor_head.corr_scale.grad) != 0
    model.eval()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), False)
    with torch.no_grad():
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
        outs = model(data['inputs'], mode='tensor')
    assert pred.tubes.shape[1:] == (S, 4) and len(outs) == 10
