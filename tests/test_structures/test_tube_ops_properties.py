"""Property-based tests of the tube geometry (hypothesis): random tubes, including empty, single-frame,
zero-size, overlapping and out-of-frame ones, never raise and give IoUs in [0, 1]."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cfad_mm.structures.tube_ops import box_iou, tube_frame_iou, tube_nms, tube_st_iou, tube_temporal_iou

COORD = st.floats(-60, 160, allow_nan=False, width=32)


@st.composite
def tubes(draw, max_tubes=4, num_frames=None):
    """``(N, T, 4)`` boxes with x2 >= x1, y2 >= y1 (zero-size allowed, anywhere, also outside a 100x100 frame)
    and ``(N, T)`` masks (all-False = an empty tube, one True = a single-frame tube)."""
    n = draw(st.integers(0, max_tubes))
    t = num_frames if num_frames is not None else draw(st.integers(1, 6))
    xy = draw(arrays(np.float32, (n, t, 2), elements=COORD))
    wh = draw(arrays(np.float32, (n, t, 2), elements=st.sampled_from([0.0, 0.5, 3.0, 20.0, 90.0])))
    masks = draw(arrays(np.bool_, (n, t)))
    return np.concatenate([xy, xy + wh], axis=-1), masks


@settings(max_examples=60, deadline=None)
@given(st.data(), st.booleans())
def test_tube_ious_are_in_unit_interval_and_symmetric(data, plus_one):
    t = data.draw(st.integers(1, 6))
    a, ma = data.draw(tubes(num_frames=t))
    b, mb = data.draw(tubes(num_frames=t))
    st_iou = tube_st_iou(a, ma, b, mb, plus_one)
    frame_iou = tube_frame_iou(a, ma, b, mb, plus_one)
    t_iou = tube_temporal_iou(ma, mb)
    for value, shape in ((st_iou, (len(a), len(b))), (frame_iou, (len(a), len(b), t)),
                         (t_iou, (len(a), len(b)))):
        assert value.shape == shape
        assert np.all(np.isfinite(value)) and np.all(value >= 0) and np.all(value <= 1 + 1e-6)
    np.testing.assert_allclose(st_iou, tube_st_iou(b, mb, a, ma, plus_one).T, atol=1e-6)
    # frame IoU is 0 where either tube has no box
    assert np.all(frame_iou[~(ma[:, None, :] & mb[None, :, :])] == 0)
    # torch gives the same numbers
    torch_iou = tube_st_iou(torch.from_numpy(a), torch.from_numpy(ma), torch.from_numpy(b),
                            torch.from_numpy(mb), plus_one)
    np.testing.assert_allclose(torch_iou.numpy(), st_iou, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(tubes(max_tubes=5))
def test_self_iou_is_one_for_tubes_with_a_positive_box(tube_and_mask):
    a, ma = tube_and_mask
    diag = np.diagonal(tube_st_iou(a, ma, a, ma, plus_one=True))
    area = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    assert np.all(area > 0)
    np.testing.assert_allclose(diag[ma.any(1)], 1.0, atol=1e-5)
    assert np.all(diag[~ma.any(1)] == 0)  # an empty tube overlaps nothing


@settings(max_examples=60, deadline=None)
@given(tubes(max_tubes=6), st.floats(0, 1), st.data())
def test_tube_nms_keeps_a_valid_non_overlapping_subset(tube_and_mask, thr, data):
    a, ma = tube_and_mask
    scores = data.draw(arrays(np.float32, (len(a), ), elements=st.floats(0, 1, width=32)))
    keep = np.asarray(tube_nms(a, ma, scores, thr))
    assert len(set(keep.tolist())) == len(keep) and np.all((keep >= 0) & (keep < len(a)))
    if len(a):
        assert len(keep) >= 1
        assert scores[keep[0]] == scores.max()
    kept_iou = tube_st_iou(a[keep], ma[keep], a[keep], ma[keep])
    off_diag = kept_iou[~np.eye(len(keep), dtype=bool)]
    assert np.all(off_diag <= thr + 1e-6)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (3, 2), elements=COORD), arrays(np.float32, (4, 2), elements=COORD),
       st.sampled_from([0.0, 1.0, 30.0]))
def test_box_iou_degenerate_boxes(xy1, xy2, size):
    b1 = np.concatenate([xy1, xy1 + size], 1)
    b2 = np.concatenate([xy2, xy2 + size], 1)
    iou = box_iou(b1, b2)
    assert iou.shape == (3, 4) and np.all(np.isfinite(iou)) and np.all((iou >= 0) & (iou <= 1 + 1e-6))
    if size == 0.0:
        assert np.all(iou == 0)  # zero-size boxes overlap nothing without the +1 convention
