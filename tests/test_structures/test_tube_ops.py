"""Box / tube geometry: hand-computed IoUs, the +1 pixel convention, NMS against a brute-force reference,
numpy vs torch agreement, empty inputs and shape errors."""
import numpy as np
import pytest
import torch

from cfad_mm.structures.tube_ops import (
    box_area,
    box_iou,
    box_iou_aligned,
    box_nms,
    mask_extents,
    tube_frame_iou,
    tube_nms,
    tube_st_iou,
    tube_temporal_iou,
)

A = [0., 0., 10., 10.]
B = [5., 5., 15., 15.]
TOUCHING = [10., 0., 20., 10.]  # shares the column x=10 with A
INSIDE = [2., 2., 4., 4.]


# ----------------------------------------------------------------------------- references (plain Python)
def ref_iou(a, b, plus_one=False):
    off = 1.0 if plus_one else 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + off)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + off)
    inter = iw * ih
    area = lambda r: max(0.0, r[2] - r[0] + off) * max(0.0, r[3] - r[1] + off)  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def ref_st_iou(t1, m1, t2, m2, plus_one=False):
    f1, f2 = np.flatnonzero(m1), np.flatnonzero(m2)
    if len(f1) == 0 or len(f2) == 0:
        return 0.0
    s, e = max(f1[0], f2[0]), min(f1[-1], f2[-1])
    if e < s:
        return 0.0
    tiou = (e - s + 1) / (max(f1[-1], f2[-1]) - min(f1[0], f2[0]) + 1)
    frame_ious = [
        ref_iou(t1[t], t2[t], plus_one) if (m1[t] and m2[t]) else 0.0 for t in range(s, e + 1)
        if m1[t] or m2[t]
    ]
    return tiou * float(np.mean(frame_ious))


def ref_nms(iou_of, scores, thr):
    """Textbook greedy NMS on a pairwise IoU callback."""
    remaining = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [j for j in remaining if iou_of(best, j) <= thr]
    return keep


def random_boxes(rng, n, size=50.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(2, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def random_tubes(rng, n, t, size=50.0):
    """Tubes drifting around a random box, random contiguous extents with occasional holes."""
    base = random_boxes(rng, n, size)
    drift = rng.normal(0, 1.5, (n, t, 2)).cumsum(1)
    tubes = base[:, None, :] + np.concatenate([drift, drift], axis=2)
    masks = np.zeros((n, t), dtype=bool)
    for i in range(n):
        s = rng.integers(0, t)
        e = rng.integers(s, t)
        masks[i, s:e + 1] = True
        masks[i, rng.random(t) < 0.1] = False
    return tubes, masks


# ----------------------------------------------------------------------------- box_area / box_iou
def test_box_area_hand_values_and_plus_one():
    boxes = np.array([[0, 0, 10, 5], [5, 5, 3, 3], [1, 1, 1, 1]], dtype=np.float64)
    np.testing.assert_allclose(box_area(boxes), [50, 0, 0])
    np.testing.assert_allclose(box_area(boxes, plus_one=True), [66, 0, 1])  # (10+1)*(5+1); a 1-pixel box
    assert box_area(torch.tensor(boxes).reshape(3, 1, 4)).shape == (3, 1)


def test_box_iou_hand_values():
    ious = box_iou(np.array([A, B]), np.array([A, TOUCHING, INSIDE]))
    expected = [[1.0, 0.0, 4 / 100], [25 / 175, 25 / 175, 0.0]]
    np.testing.assert_allclose(ious, expected, atol=1e-12)
    assert ious.dtype == np.float64


def test_box_iou_plus_one_changes_the_result():
    ious = box_iou(np.array([A, B]), np.array([A, TOUCHING, INSIDE]), plus_one=True)
    # A vs TOUCHING: one shared pixel column of 11 pixels, union 121 + 121 - 11.
    expected = [[1.0, 11 / 231, 9 / 121], [36 / 206, 36 / 206, 0.0]]
    np.testing.assert_allclose(ious, expected, atol=1e-12)


def test_box_iou_matches_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    b1, b2 = random_boxes(rng, 7), random_boxes(rng, 5)
    for plus_one in (False, True):
        expected = [[ref_iou(x, y, plus_one) for y in b2] for x in b1]
        np.testing.assert_allclose(box_iou(b1, b2, plus_one), expected, atol=1e-12)
        np.testing.assert_allclose(
            box_iou(torch.tensor(b1), torch.tensor(b2), plus_one).numpy(), expected, atol=1e-12)


def test_box_iou_empty_and_integer_inputs():
    assert box_iou(np.zeros((0, 4)), np.array([A])).shape == (0, 1)
    assert box_iou(np.array([A]), np.zeros((0, 4))).shape == (1, 0)
    assert tuple(box_iou(torch.zeros(0, 4), torch.zeros(3, 4)).shape) == (0, 3)
    ious = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 5, 15, 15]]))  # ints -> float64
    assert ious.dtype == np.float64 and ious[0, 0] == pytest.approx(1 / 7)
    # zero-area boxes: union 0 -> IoU 0, not NaN
    assert box_iou(np.array([[3., 3., 3., 3.]]), np.array([[3., 3., 3., 3.]]))[0, 0] == 0.0


def test_box_iou_shape_errors():
    with pytest.raises(ValueError, match=r'box_iou: boxes1 must have shape \(N, 4\)'):
        box_iou(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r'box_iou: boxes2 must have shape \(N, 4\)'):
        box_iou(np.zeros((2, 4)), np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match='not broadcastable'):
        box_iou_aligned(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r'box_area: boxes must have shape \(\.\.\., 4\)'):
        box_area(np.zeros((2, 5)))


def test_box_iou_aligned_broadcasts_and_matches_pairwise():
    b1 = np.array([A, B, INSIDE])
    aligned = box_iou_aligned(b1, np.array([B, B, A]))
    np.testing.assert_allclose(aligned, [1 / 7, 1.0, 0.04], atol=1e-12)
    pairwise = box_iou(b1, b1)
    np.testing.assert_allclose(box_iou_aligned(b1[:, None], b1[None, :]), pairwise, atol=1e-12)


def test_torch_keeps_device_dtype_and_gradient():
    b1 = torch.tensor([A, B], dtype=torch.float32, requires_grad=True)
    ious = box_iou(b1, torch.tensor([B]))
    assert ious.dtype == torch.float32 and ious.device == b1.device
    ious.sum().backward()
    # d IoU(A, B) / d x2(A) = (dI * U - I * dU) / U^2 with dI = 5 (intersection height), dU = 10 - 5.
    assert b1.grad[0, 2].item() == pytest.approx((5 * 175 - 25 * 5) / 175**2, rel=1e-5)
    mixed = box_iou(np.array([A]), torch.tensor([B], dtype=torch.float64))
    assert isinstance(mixed, torch.Tensor) and mixed.item() == pytest.approx(1 / 7)


def test_box_iou_aligned_gradcheck():
    b1 = torch.tensor([[0., 0., 10., 10.], [1., 2., 7., 9.]], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor([[5., 5., 15., 15.], [3., 1., 8., 6.]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: box_iou_aligned(x, y, plus_one=True), (b1, b2))


# ----------------------------------------------------------------------------- box_nms
def test_box_nms_hand_example_and_plus_one():
    boxes = np.array([A, TOUCHING, B, INSIDE])
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # INSIDE first (0.95); A: IoU 0.04 -> kept; TOUCHING: IoU 0 with A; B: IoU 1/7 with A, 1/7 with TOUCHING.
    np.testing.assert_array_equal(box_nms(boxes, scores, 0.1), [3, 0, 1])
    np.testing.assert_array_equal(box_nms(boxes, scores, 0.2), [3, 0, 1, 2])
    # At iou_thr=0.0 A and TOUCHING only conflict with the inclusive-pixel convention.
    np.testing.assert_array_equal(box_nms(boxes[:2], scores[:2], 0.0), [0, 1])
    np.testing.assert_array_equal(box_nms(boxes[:2], scores[:2], 0.0, plus_one=True), [0])


def test_box_nms_ties_keep_lower_index_first():
    boxes = np.array([A, A, B])
    np.testing.assert_array_equal(box_nms(boxes, np.array([0.5, 0.5, 0.5]), 0.5), [0, 2])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_box_nms_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 40, size=30.0)
    scores = rng.random(40)
    for thr in (0.0, 0.3, 0.5, 0.7):
        for plus_one in (False, True):
            expected = ref_nms(lambda i, j: ref_iou(boxes[i], boxes[j], plus_one), scores, thr)
            keep = box_nms(boxes, scores, thr, plus_one)
            assert keep.dtype == np.int64
            np.testing.assert_array_equal(keep, expected)
            keep_t = box_nms(torch.tensor(boxes), torch.tensor(scores), thr, plus_one)
            assert keep_t.dtype == torch.int64
            np.testing.assert_array_equal(keep_t.numpy(), expected)


def test_box_nms_empty_and_errors():
    assert box_nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0, )
    empty = box_nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.shape == (0, ) and empty.dtype == torch.int64
    with pytest.raises(ValueError, match=r'box_nms: scores must have shape \(2,\)'):
        box_nms(np.array([A, B]), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match='box_nms: iou_thr must be a number'):
        box_nms(np.array([A, B]), np.zeros(2), [0.5])


# ----------------------------------------------------------------------------- temporal IoU
def masks_from(spans, t=10):
    """Bool masks from lists of frame indices."""
    m = np.zeros((len(spans), t), dtype=bool)
    for i, frames in enumerate(spans):
        m[i, list(frames)] = True
    return m


def test_tube_temporal_iou_hand_values():
    m1 = masks_from([range(2, 6), range(0, 2), range(0, 3), [1, 5], []])
    m2 = masks_from([range(4, 9), range(3, 4)])
    tiou = tube_temporal_iou(m1, m2)
    expected = [
        [2 / 7, 1 / 4],  # 2..5 vs 4..8: frames 4..5 of 2..8; 2..5 vs 3..3: 1 frame of 2..5
        [0.0, 0.0],  # 0..1 is disjoint from both
        [0.0, 0.0],  # 0..2 vs 3..3: adjacent, (2 - 3 + 1) = 0 common frames
        [2 / 8, 1 / 5],  # extent 1..5 (hole inside): vs 4..8 -> 2 of 1..8; vs 3..3 -> 1 of 1..5
        [0.0, 0.0],  # empty tube
    ]
    np.testing.assert_allclose(tiou, expected, atol=1e-12)
    np.testing.assert_allclose(
        tube_temporal_iou(torch.tensor(m1), torch.tensor(m2)).numpy(), expected, atol=1e-6)


def test_tube_temporal_iou_empty_and_errors():
    assert tube_temporal_iou(np.zeros((0, 5), bool), np.ones((2, 5), bool)).shape == (0, 2)
    got = tube_temporal_iou(torch.ones(2, 5, dtype=torch.bool), torch.zeros(0, 5, dtype=torch.bool))
    assert tuple(got.shape) == (2, 0)
    with pytest.raises(ValueError, match='must share the time axis T'):
        tube_temporal_iou(np.ones((1, 5), bool), np.ones((1, 6), bool))
    with pytest.raises(ValueError, match=r'tube_temporal_iou: masks1 must have shape \(N, T\)'):
        tube_temporal_iou(np.ones(5, bool), np.ones((1, 5), bool))


def test_mask_extents_hand_values_numpy_and_torch():
    """First / last True frame per row; an empty row gets first = T, last = -1 and nonempty False."""
    m = masks_from([range(2, 6), [0], [1, 5], [], range(0, 8), [7]], t=8)  # a hole in row 2, row 3 empty
    first, last, nonempty = mask_extents(m)
    assert first.dtype == np.int64 and last.dtype == np.int64 and nonempty.dtype == np.bool_
    assert first.tolist() == [2, 0, 1, 8, 0, 7]
    assert last.tolist() == [5, 0, 5, -1, 7, 7]
    assert nonempty.tolist() == [True, True, True, False, True, True]
    tf, tl, tn = mask_extents(torch.from_numpy(m))
    assert tf.dtype == torch.int64 and tl.dtype == torch.int64 and tn.dtype == torch.bool
    assert tf.tolist() == first.tolist() and tl.tolist() == last.tolist() and tn.tolist() == nonempty.tolist()
    # non-bool masks count as != 0; lists are accepted as numpy
    assert [a.tolist() for a in mask_extents([[0, 3, 0], [0, 0, 0]])] == [[1, 3], [1, -1], [True, False]]
    assert [a.tolist() for a in mask_extents(torch.tensor([[0., 2., 1.]]))] == [[1], [2], [True]]


@pytest.mark.parametrize('kind', ['numpy', 'torch'])
def test_mask_extents_empty_shapes_and_errors(kind):
    as_kind = (lambda a: a) if kind == 'numpy' else torch.from_numpy
    for shape in ((0, 5), (3, 0), (0, 0)):
        first, last, nonempty = mask_extents(as_kind(np.zeros(shape, bool)))
        n, t = shape
        assert first.tolist() == [t] * n and last.tolist() == [-1] * n and nonempty.tolist() == [False] * n
    with pytest.raises(ValueError, match=r'mask_extents: masks must have shape \(N, T\)'):
        mask_extents(as_kind(np.ones(5, bool)))


def test_mask_extents_matches_a_reference_on_random_masks():
    rng = np.random.default_rng(0)
    m = rng.random((50, 13)) < rng.random((50, 1)) * 0.5  # includes empty and full rows
    m[:3] = False
    first, last, nonempty = mask_extents(m)
    for row, f, la, ne in zip(m, first, last, nonempty):
        idx = np.nonzero(row)[0]
        assert ne == bool(len(idx)) and (f, la) == ((idx[0], idx[-1]) if len(idx) else (13, -1))
    tf, tl, tn = mask_extents(torch.from_numpy(m))
    np.testing.assert_array_equal(tf.numpy(), first)
    np.testing.assert_array_equal(tl.numpy(), last)
    np.testing.assert_array_equal(tn.numpy(), nonempty)


# ----------------------------------------------------------------------------- frame / st IoU
def hand_tubes():
    """Tube A on frames 0..3 (box A); tube B on frames 2..5: box A on frame 2, box B on frame 3 and later."""
    t = 6
    tubes1 = np.zeros((1, t, 4))
    tubes1[0, :4] = A
    masks1 = masks_from([range(0, 4)], t)
    tubes2 = np.zeros((2, t, 4))
    tubes2[:, 2] = A
    tubes2[:, 3:] = B
    masks2 = masks_from([range(2, 6), [2, 4, 5]], t)  # the second one has a hole on frame 3
    return tubes1, masks1, tubes2, masks2


def test_tube_frame_iou_hand_values():
    tubes1, masks1, tubes2, masks2 = hand_tubes()
    fiou = tube_frame_iou(tubes1, masks1, tubes2, masks2)
    assert fiou.shape == (1, 2, 6)
    np.testing.assert_allclose(fiou[0, 0], [0, 0, 1, 1 / 7, 0, 0], atol=1e-12)
    np.testing.assert_allclose(fiou[0, 1], [0, 0, 1, 0, 0, 0], atol=1e-12)


def test_tube_st_iou_hand_values():
    tubes1, masks1, tubes2, masks2 = hand_tubes()
    # temporal IoU = |2..3| / |0..5| = 1/3; mean frame IoU over 2..3 = (1 + 1/7) / 2; the hole counts 0.
    expected = [[(1 / 3) * (1 + 1 / 7) / 2, (1 / 3) * (1 + 0) / 2]]
    np.testing.assert_allclose(tube_st_iou(tubes1, masks1, tubes2, masks2), expected, atol=1e-12)
    expected_plus_one = [[(1 / 3) * (1 + 36 / 206) / 2, 1 / 6]]
    np.testing.assert_allclose(
        tube_st_iou(tubes1, masks1, tubes2, masks2, plus_one=True), expected_plus_one, atol=1e-12)
    # A frame where NEITHER tube has a box is not counted: a tube with a hole has st-IoU 1 with itself.
    self_iou = tube_st_iou(tubes2, masks2, tubes2, masks2)
    np.testing.assert_allclose(self_iou, [[1.0, 3 / 4], [3 / 4, 1.0]], atol=1e-12)


def test_tube_st_iou_matches_reference_and_torch():
    rng = np.random.default_rng(3)
    tubes1, masks1 = random_tubes(rng, 6, 12)
    tubes2, masks2 = random_tubes(rng, 4, 12)
    masks1[0] = False  # an empty tube
    for plus_one in (False, True):
        expected = [[ref_st_iou(tubes1[i], masks1[i], tubes2[j], masks2[j], plus_one) for j in range(4)]
                    for i in range(6)]
        np.testing.assert_allclose(
            tube_st_iou(tubes1, masks1, tubes2, masks2, plus_one), expected, atol=1e-12)
        got = tube_st_iou(
            torch.tensor(tubes1), torch.tensor(masks1), torch.tensor(tubes2), torch.tensor(masks2), plus_one)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
        f32 = tube_st_iou(
            torch.tensor(tubes1, dtype=torch.float32), torch.tensor(masks1),
            torch.tensor(tubes2, dtype=torch.float32), torch.tensor(masks2), plus_one)
        assert f32.dtype == torch.float32
        np.testing.assert_allclose(f32.numpy(), expected, atol=1e-5)


def test_tube_st_iou_has_gradient():
    tubes1, masks1, tubes2, masks2 = hand_tubes()
    t1 = torch.tensor(tubes1, requires_grad=True)
    tube_st_iou(t1, torch.tensor(masks1), torch.tensor(tubes2), torch.tensor(masks2)).sum().backward()
    assert t1.grad[0, 3].abs().sum() > 0  # frame 3 overlaps box B partially
    assert t1.grad[0, 0].abs().sum() == 0  # frame 0 lies outside the temporal intersection


def test_tube_ious_empty_inputs():
    tubes, masks = np.zeros((3, 5, 4)), np.ones((3, 5), bool)
    assert tube_st_iou(np.zeros((0, 5, 4)), np.zeros((0, 5), bool), tubes, masks).shape == (0, 3)
    assert tube_frame_iou(tubes, masks, np.zeros((0, 5, 4)), np.zeros((0, 5), bool)).shape == (3, 0, 5)
    got = tube_st_iou(
        torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool), torch.zeros(1, 0, 4),
        torch.zeros(1, 0, dtype=torch.bool))
    assert tuple(got.shape) == (2, 1) and got.abs().sum() == 0


def test_tube_ious_shape_errors():
    tubes, masks = np.zeros((2, 5, 4)), np.ones((2, 5), bool)
    with pytest.raises(ValueError, match=r'tube_st_iou: tubes1 must have shape \(N, T, 4\)'):
        tube_st_iou(np.zeros((2, 5)), masks, tubes, masks)
    with pytest.raises(ValueError, match=r'tube_st_iou: masks2 must have shape \(2, 5\) to match tubes2'):
        tube_st_iou(tubes, masks, tubes, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match='tube_frame_iou: tubes1 .* must share the time axis T'):
        tube_frame_iou(tubes, masks, np.zeros((2, 6, 4)), np.ones((2, 6), bool))


# ----------------------------------------------------------------------------- tube_nms
def test_tube_nms_hand_example():
    tubes1, masks1, tubes2, masks2 = hand_tubes()
    tubes = np.concatenate([tubes1, tubes2, tubes2[:1]])  # the last one duplicates tube 1
    masks = np.concatenate([masks1, masks2, masks2[:1]])
    scores = np.array([0.9, 0.5, 0.4, 0.8])
    # visiting order 0, 3, 1, 2: st-IoU(0, 3) = 4/21 < 0.3 -> kept; 1 duplicates 3 -> suppressed;
    # 2 vs 0: 1/6; vs 3: same extent 2..5, frame IoUs (1, hole 0, 1, 1) -> 3/4.
    np.testing.assert_array_equal(tube_nms(tubes, masks, scores, 0.3), [0, 3])
    np.testing.assert_array_equal(tube_nms(tubes, masks, scores, 0.8), [0, 3, 2])
    keep = tube_nms(torch.tensor(tubes), torch.tensor(masks), torch.tensor(scores), 0.8)
    assert keep.dtype == torch.int64 and keep.tolist() == [0, 3, 2]


@pytest.mark.parametrize('seed', [0, 1])
def test_tube_nms_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    tubes, masks = random_tubes(rng, 25, 10, size=20.0)
    scores = rng.random(25)
    for thr in (0.1, 0.3, 0.5):
        expected = ref_nms(lambda i, j: ref_st_iou(tubes[i], masks[i], tubes[j], masks[j]), scores, thr)
        np.testing.assert_array_equal(tube_nms(tubes, masks, scores, thr), expected)


def test_tube_nms_empty_and_errors():
    keep = tube_nms(torch.zeros(0, 4, 4), torch.zeros(0, 4, dtype=torch.bool), torch.zeros(0), 0.5)
    assert keep.shape == (0, ) and keep.dtype == torch.int64
    with pytest.raises(ValueError, match=r'tube_nms: scores must have shape \(2,\)'):
        tube_nms(np.zeros((2, 4, 4)), np.ones((2, 4), bool), np.zeros(1), 0.5)


def test_tube_st_iou_chunked_rows_give_the_same_result(monkeypatch):
    import cfad_mm.structures.tube_ops as tube_ops
    rng = np.random.default_rng(4)
    tubes1, masks1 = random_tubes(rng, 9, 8)
    tubes2, masks2 = random_tubes(rng, 3, 8)
    full = tube_st_iou(tubes1, masks1, tubes2, masks2)
    monkeypatch.setattr(tube_ops, '_ST_IOU_CHUNK', 2 * 3 * 8)  # two rows at a time
    np.testing.assert_array_equal(tube_st_iou(tubes1, masks1, tubes2, masks2), full)
    got = tube_st_iou(torch.tensor(tubes1), torch.tensor(masks1), torch.tensor(tubes2), torch.tensor(masks2))
    np.testing.assert_allclose(got.numpy(), full, atol=1e-12)
