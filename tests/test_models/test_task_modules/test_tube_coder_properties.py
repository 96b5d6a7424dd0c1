"""Property-based tests of PolyTubeCoder (hypothesis): random tubes with holes, single frames and boxes partly
outside the frame encode to finite coefficients, decode to finite positive-size boxes on exactly the tube's
extent, and polynomial trajectories of degree <= K round-trip."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cfad_mm.models.task_modules.tube_coder import PolyTubeCoder

IMG = (48, 64)  # (H, W)


@st.composite
def valid_tubes(draw):
    n = draw(st.integers(1, 4))
    t = draw(st.integers(1, 12))
    xy = draw(arrays(np.float64, (n, t, 2), elements=st.floats(-20, 70, allow_nan=False)))
    wh = draw(arrays(np.float64, (n, t, 2), elements=st.floats(0.5, 60, allow_nan=False)))
    masks = draw(arrays(np.bool_, (n, t)))
    first = draw(arrays(np.int64, (n, ), elements=st.integers(0, t - 1)))
    masks[np.arange(n), first] = True  # every tube has at least one frame
    return torch.from_numpy(np.concatenate([xy, xy + wh], -1)), torch.from_numpy(masks)


@settings(max_examples=60, deadline=None)
@given(valid_tubes(), st.integers(0, 4))
def test_encode_decode_is_finite_on_the_extent(tubes_masks, degree):
    tubes, masks = tubes_masks
    coder = PolyTubeCoder(degree=degree)
    coeffs, extents = coder.encode(tubes, masks, IMG)
    assert coeffs.shape == (len(tubes), 4, degree + 1) and torch.isfinite(coeffs).all()
    assert torch.isfinite(extents).all()
    boxes, present = coder.decode(coeffs, extents, IMG, num_frames=tubes.shape[1])
    assert torch.isfinite(boxes).all()
    assert bool((boxes[..., 2] > boxes[..., 0]).all()) and bool((boxes[..., 3] > boxes[..., 1]).all())
    frames = torch.arange(tubes.shape[1])
    first = torch.where(masks, frames, tubes.shape[1]).min(1).values
    last = torch.where(masks, frames, -1).max(1).values
    expected = (frames[None] >= first[:, None]) & (frames[None] <= last[:, None])
    assert torch.equal(present, expected)
    # single-frame tubes are reproduced exactly
    single = masks.sum(1) == 1
    if single.any():
        idx = masks[single].float().argmax(1)
        rows = torch.nonzero(single).flatten()
        torch.testing.assert_close(boxes[rows, idx], tubes[rows, idx].to(boxes.dtype), atol=1e-3, rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(6, 16), arrays(np.float64, (4, 4), elements=st.floats(-0.3, 0.3)))
def test_polynomial_trajectories_round_trip(degree, num_frames, raw):
    coder = PolyTubeCoder(degree=degree)
    coeffs = torch.from_numpy(raw[None, :, :degree + 1]).clone()
    coeffs[0, :2, 0] += 0.5  # centre inside the frame
    coeffs[0, 2:, 0] += np.log(0.3)  # log of a box about a third of the frame
    extents = torch.tensor([[0.0, num_frames - 1.0]], dtype=torch.float64)
    boxes, masks = coder.decode(coeffs, extents, IMG, num_frames=num_frames)
    coeffs2, extents2 = coder.encode(boxes, masks, IMG)
    torch.testing.assert_close(coeffs2, coeffs, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(extents2, extents)


@settings(max_examples=30, deadline=None)
@given(valid_tubes(), st.sampled_from(['zero-size', 'nan', 'empty']))
def test_degenerate_gt_boxes_raise_a_clear_error(tubes_masks, defect):
    tubes, masks = tubes_masks
    tubes = tubes.clone()
    n, t = torch.nonzero(masks)[0].tolist()
    if defect == 'zero-size':
        tubes[n, t, 2] = tubes[n, t, 0]
        match = f'tube {n} has an invalid box on valid frame {t}'
    elif defect == 'nan':
        tubes[n, t, 1] = float('nan')
        match = f'tube {n} has an invalid box on valid frame {t}'
    else:
        masks = masks.clone()
        masks[n] = False
        match = f'tube {n} has no valid frame'
    with pytest.raises(ValueError, match=match):
        PolyTubeCoder(degree=2).encode(tubes, masks, IMG)
