"""PolyTubeCoder: hand-computed fits, exact round trips on polynomial trajectories (property tests), batch
invariance, few-frame tubes, holes, error cases, gradients and the regularized re-fit."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmaction.registry import TASK_UTILS

import cfad_mm  # noqa: F401
from cfad_mm.models.task_modules.tube_coder import (
    BaseTubeCoder,
    PolyTubeCoder,
    cxcy_logwh_to_xyxy,
    legendre_basis,
    xyxy_to_cxcy_logwh,
)

IMG = (240, 320)  # (H, W)
F64 = torch.float64


def poly_tubes(rng, coder, extents, num_frames, true_degree=None):
    """Dense tubes whose normalized (cx, cy, log w, log h) are polynomials of degree <= true_degree in tau."""
    n = len(extents)
    k = coder.degree if true_degree is None else true_degree
    coeffs = np.zeros((n, 4, coder.num_coeffs))
    coeffs[:, 0, 0] = rng.uniform(0.3, 0.7, n)
    coeffs[:, 1, 0] = rng.uniform(0.3, 0.7, n)
    coeffs[:, 2:, 0] = rng.uniform(-2.5, -1.0, (n, 2))
    if k >= 1:
        coeffs[:, :, 1:k + 1] = rng.uniform(-0.1, 0.1, (n, 4, k))
    coeffs = torch.tensor(coeffs, dtype=F64)
    extents = torch.tensor(extents, dtype=F64)
    tubes, masks = coder.decode(coeffs, extents, IMG, num_frames=num_frames)
    return coeffs, extents, tubes, masks


def test_build_from_registry():
    coder = TASK_UTILS.build(dict(type='PolyTubeCoder', degree=3))
    assert isinstance(coder, PolyTubeCoder) and isinstance(coder, BaseTubeCoder)
    assert coder.degree == 3 and coder.num_coeffs == 4 and coder.encode_size == 16
    assert TASK_UTILS.build(dict(type='PolyTubeCoder', degree=1)).encode_size == 8
    with pytest.raises(ValueError, match='degree must be an int >= 0'):
        PolyTubeCoder(degree=-1)


def test_legendre_basis_hand_values():
    basis = legendre_basis(torch.tensor([0.5, 1.0, -1.0], dtype=F64), 3)
    expected = [[1, 0.5, -0.125, -0.4375], [1, 1, 1, 1], [1, -1, 1, -1]]
    torch.testing.assert_close(basis, torch.tensor(expected, dtype=F64))
    assert legendre_basis(torch.zeros(2, 5), 0).shape == (2, 5, 1)


def test_box_parameter_conversion_hand_values():
    boxes = torch.tensor([[10., 20., 30., 60.]], dtype=F64)
    params = xyxy_to_cxcy_logwh(boxes, (100, 200))
    expected = torch.tensor([[0.1, 0.4, np.log(0.1), np.log(0.4)]], dtype=F64)
    torch.testing.assert_close(params, expected)
    torch.testing.assert_close(cxcy_logwh_to_xyxy(params, (100, 200)), boxes)
    with pytest.raises(ValueError, match=r'img_shape must be \(height, width\) with positive sizes'):
        xyxy_to_cxcy_logwh(boxes, (0, 200))


def test_encode_linear_trajectory_hand_values():
    """Frames 2..6 of 8, a 20x40 box moving right by 2 px / frame in a 100x100 clip."""
    coder = PolyTubeCoder(degree=3)
    tubes = torch.zeros(1, 8, 4, dtype=F64)
    masks = torch.zeros(1, 8, dtype=torch.bool)
    for t in range(2, 7):
        x1 = 10 + 2 * (t - 2)
        tubes[0, t] = torch.tensor([x1, 30, x1 + 20, 70])
        masks[0, t] = True
    coeffs, extents = coder.encode(tubes, masks, (100, 100))
    torch.testing.assert_close(extents, torch.tensor([[2., 6.]], dtype=F64))
    # cx = 0.2 + 0.02 (t - 2) = 0.24 + 0.04 tau with tau = (t - 4) / 2; cy = 0.5; w = 0.2, h = 0.4.
    expected = torch.tensor(
        [[[0.24, 0.04, 0, 0], [0.5, 0, 0, 0], [np.log(0.2), 0, 0, 0], [np.log(0.4), 0, 0, 0]]], dtype=F64)
    torch.testing.assert_close(coeffs, expected, atol=1e-12, rtol=0)


@settings(max_examples=40, deadline=None, database=None)
@given(
    degree=st.integers(0, 5), seed=st.integers(0, 2**31 - 1), num_frames=st.integers(1, 24), data=st.data())
def test_round_trip_is_exact_for_polynomial_trajectories(degree, seed, num_frames, data):
    rng = np.random.default_rng(seed)
    coder = PolyTubeCoder(degree=degree)
    n = data.draw(st.integers(1, 4))
    extents = []
    for _ in range(n):
        start = data.draw(st.integers(0, num_frames - 1))
        extents.append([start, data.draw(st.integers(start, num_frames - 1))])
    true_degree = data.draw(st.integers(0, degree))
    coeffs, extents, tubes, masks = poly_tubes(rng, coder, extents, num_frames, true_degree)
    # Holes: drop inner frames while keeping >= true_degree + 1 valid frames and the extent's end frames.
    fit_masks = masks.clone()
    for i in range(n):
        s, e = int(extents[i, 0]), int(extents[i, 1])
        for t in range(s + 1, e):
            if fit_masks[i].sum() > true_degree + 1 and rng.random() < 0.3:
                fit_masks[i, t] = False
    garbage = tubes.clone()
    garbage[~fit_masks] = torch.tensor([5., 5., -3., float('nan')], dtype=F64)  # ignored: masked out
    enc_coeffs, enc_extents = coder.encode(garbage, fit_masks, IMG)
    torch.testing.assert_close(enc_extents, extents, atol=0, rtol=0)
    dec_tubes, dec_masks = coder.decode(enc_coeffs, enc_extents, IMG, num_frames=num_frames)
    assert torch.equal(dec_masks, masks)  # the holes are inside the extent
    assert (dec_tubes[masks] - tubes[masks]).abs().max() < 1e-4  # pixels, also on the hole frames
    # Tubes with enough valid frames recover the very coefficients (shorter ones are interpolated above).
    determined = fit_masks.sum(1) >= true_degree + 1
    torch.testing.assert_close(enc_coeffs[determined], coeffs[determined], atol=1e-8, rtol=0)


def test_batch_permutation_and_single_tube_invariance():
    rng = np.random.default_rng(1)
    coder = PolyTubeCoder(degree=3)
    _, _, tubes, masks = poly_tubes(rng, coder, [[0, 15], [4, 9], [7, 7], [2, 3], [1, 12]], 16)
    tubes = tubes + torch.tensor(rng.normal(0, 1.0, tubes.shape))  # not exactly polynomial
    coeffs, extents = coder.encode(tubes, masks, IMG)
    perm = torch.tensor([3, 0, 4, 2, 1])
    coeffs_p, extents_p = coder.encode(tubes[perm], masks[perm], IMG)
    torch.testing.assert_close(coeffs_p, coeffs[perm], atol=1e-12, rtol=0)
    torch.testing.assert_close(extents_p, extents[perm])
    coeffs_1, _ = coder.encode(tubes[4:5], masks[4:5], IMG)
    torch.testing.assert_close(coeffs_1, coeffs[4:5], atol=1e-12, rtol=0)


def test_noisy_fit_is_least_squares():
    """Least-squares residuals are orthogonal to the basis on the valid frames (normal equations)."""
    rng = np.random.default_rng(2)
    coder = PolyTubeCoder(degree=2)
    _, _, tubes, masks = poly_tubes(rng, coder, [[0, 11]], 12)
    masks[0, 5] = False
    tubes = tubes + torch.tensor(rng.normal(0, 2.0, tubes.shape))
    coeffs, extents = coder.encode(tubes, masks, IMG)
    times = torch.arange(12, dtype=F64)[None]
    basis = coder.basis(times, extents)[0][masks[0]]  # (11, 3)
    target = xyxy_to_cxcy_logwh(tubes[0][masks[0]], IMG)
    residual = target - basis @ coeffs[0].T
    assert (basis.T @ residual).abs().max() < 1e-10
    assert residual.abs().max() > 1e-3  # the noise is really there


def test_single_and_two_frame_tubes_are_finite_and_exact():
    coder = PolyTubeCoder(degree=3)
    tubes = torch.zeros(2, 10, 4, dtype=F64)
    masks = torch.zeros(2, 10, dtype=torch.bool)
    tubes[0, 4] = torch.tensor([10., 20., 50., 100.])
    masks[0, 4] = True
    tubes[1, 2] = torch.tensor([10., 10., 30., 50.])  # 20 x 40
    tubes[1, 6] = torch.tensor([50., 10., 130., 170.])  # 80 x 160, frames 3..5 are a hole
    masks[1, [2, 6]] = True
    coeffs, extents = coder.encode(tubes, masks, IMG)
    assert torch.isfinite(coeffs).all()
    torch.testing.assert_close(extents, torch.tensor([[4., 4.], [2., 6.]], dtype=F64))
    assert coeffs[0, :, 1:].abs().max() == 0  # constant box
    assert coeffs[1, :, 2:].abs().max() == 0  # linear in (cx, cy, log w, log h)
    dec, dec_masks = coder.decode(coeffs, extents, IMG, num_frames=10)
    torch.testing.assert_close(dec[0], tubes[0, 4].expand(10, 4))  # held outside its one-frame extent
    assert dec_masks[0].tolist() == [t == 4 for t in range(10)]
    torch.testing.assert_close(dec[1, [2, 6]], tubes[1, [2, 6]])
    # Midway (frame 4): centre (55, 60), geometric-mean size sqrt(20 * 80) x sqrt(40 * 160) = 40 x 80.
    torch.testing.assert_close(dec[1, 4], torch.tensor([35., 20., 75., 100.], dtype=F64))


def test_encode_errors():
    coder = PolyTubeCoder(degree=2)
    tubes = torch.tensor([[[0., 0., 10., 10.]] * 5] * 2)
    masks = torch.ones(2, 5, dtype=torch.bool)
    bad = tubes.clone()
    bad[1, 3, 2] = 0.0  # x2 == x1
    with pytest.raises(ValueError, match='tube 1 has an invalid box on valid frame 3'):
        coder.encode(bad, masks, IMG)
    bad = tubes.clone()
    bad[0, 2, 3] = float('inf')
    with pytest.raises(ValueError, match='tube 0 has an invalid box on valid frame 2'):
        coder.encode(bad, masks, IMG)
    empty = masks.clone()
    empty[1] = False
    with pytest.raises(ValueError, match=r'tube 1 has no valid frame \(all-False mask\)'):
        coder.encode(tubes, empty, IMG)
    with pytest.raises(ValueError, match=r'masks must have shape \(2, 5\)'):
        coder.encode(tubes, masks[:, :4], IMG)
    with pytest.raises(ValueError, match=r'tubes must have shape \(N, T, 4\)'):
        coder.encode(tubes[..., :3], masks, IMG)
    with pytest.raises(ValueError, match='img_shape'):
        coder.encode(tubes, masks, (10, -1))


def test_decode_times_extents_and_margin():
    coder = PolyTubeCoder(degree=1)
    coeffs = torch.tensor([[[0.5, 0.1], [0.5, 0.0], [np.log(0.25), 0.0], [np.log(0.25), 0.0]]], dtype=F64)
    extents = torch.tensor([[2.0, 6.0]], dtype=F64)
    by_frames, masks = coder.decode(coeffs, extents, IMG, num_frames=9)
    shared, _ = coder.decode(coeffs, extents, IMG, times=torch.arange(9, dtype=F64))
    per_tube, _ = coder.decode(coeffs, extents, IMG, times=torch.arange(9, dtype=F64)[None])
    torch.testing.assert_close(shared, by_frames)
    torch.testing.assert_close(per_tube, by_frames)
    assert masks[0].tolist() == [False, False, True, True, True, True, True, False, False]
    # cx = (0.5 + 0.1 tau) * 320 with tau = (t - 4) / 2; held at the end values outside 2..6.
    cx = (by_frames[0, :, 0] + by_frames[0, :, 2]) / 2
    torch.testing.assert_close(
        cx, torch.tensor([128., 128., 128., 144., 160., 176., 192., 192., 192.], dtype=F64))
    half, _ = coder.decode(coeffs, extents, IMG, times=torch.tensor([4.5], dtype=F64))
    torch.testing.assert_close((half[0, 0, 0] + half[0, 0, 2]) / 2, torch.tensor(168.,
                                                                                 dtype=F64))  # tau = 0.25
    # Fractional extent 2.4 .. 5.6: the frames within half a frame, 2..6 (default extent_margin=0.5).
    _, frac = coder.decode(coeffs, torch.tensor([[2.4, 5.6]], dtype=F64), IMG, num_frames=9)
    assert torch.nonzero(frac[0]).flatten().tolist() == [2, 3, 4, 5, 6]
    _, strict = PolyTubeCoder(
        degree=1, extent_margin=0.0).decode(
            coeffs, torch.tensor([[2.4, 5.6]]), IMG, num_frames=9)
    assert torch.nonzero(strict[0]).flatten().tolist() == [3, 4, 5]


def test_decode_zero_length_extent_and_huge_sizes():
    coder = PolyTubeCoder(degree=2)
    coeffs = torch.tensor([[[0.5, 0.2, 0.1], [0.5, 0.0, 0.0], [-1.0, 0.0, 0.0], [50.0, 0.0, 0.0]]], dtype=F64)
    boxes, masks = coder.decode(coeffs, torch.tensor([[3.0, 3.0]], dtype=F64), IMG, num_frames=6)
    assert masks[0].tolist() == [False, False, False, True, False, False]
    assert torch.isfinite(boxes).all()
    assert (boxes - boxes[:, :1]).abs().max() == 0  # constant box: the polynomial at tau = 0
    # P_2(0) = -0.5: cx = (0.5 - 0.05) * 320; log(h / H) = 50 is clamped to 4 before exp.
    torch.testing.assert_close((boxes[0, 0, 0] + boxes[0, 0, 2]) / 2, torch.tensor(0.45 * 320, dtype=F64))
    torch.testing.assert_close(boxes[0, 0, 3] - boxes[0, 0, 1], torch.tensor(np.exp(4.0) * 240, dtype=F64))


def test_decode_errors():
    coder = PolyTubeCoder(degree=2)
    coeffs, extents = torch.zeros(2, 4, 3), torch.tensor([[0., 4.], [1., 2.]])
    with pytest.raises(ValueError, match='exactly one of times and num_frames'):
        coder.decode(coeffs, extents, IMG)
    with pytest.raises(ValueError, match='exactly one of times and num_frames'):
        coder.decode(coeffs, extents, IMG, times=torch.zeros(3), num_frames=3)
    with pytest.raises(ValueError, match=r'coeffs must have shape \(N, 4, 3\) for degree 2'):
        coder.decode(torch.zeros(2, 4, 4), extents, IMG, num_frames=5)
    with pytest.raises(ValueError, match='extents of tube 1 have t_end < t_start'):
        coder.decode(coeffs, torch.tensor([[0., 4.], [3., 2.]]), IMG, num_frames=5)
    with pytest.raises(ValueError, match=r'times must have shape \(S,\) or \(2, S\)'):
        coder.decode(coeffs, extents, IMG, times=torch.zeros(3, 4))


def test_empty_batches():
    coder = PolyTubeCoder(degree=3)
    coeffs, extents = coder.encode(torch.zeros(0, 8, 4), torch.zeros(0, 8, dtype=torch.bool), IMG)
    assert coeffs.shape == (0, 4, 4) and extents.shape == (0, 2)
    tubes, masks = coder.decode(coeffs, extents, IMG, num_frames=8)
    assert tubes.shape == (0, 8, 4) and masks.shape == (0, 8) and masks.dtype == torch.bool
    tubes, masks = coder.decode(coeffs, extents, IMG, times=torch.tensor([0.5, 1.5]))
    assert tubes.shape == (0, 2, 4)
    new = coder.fit_update(coeffs, extents, torch.zeros(0, 3), torch.zeros(0, 3, 4), torch.zeros(0, 3), 0.1,
                           IMG)
    assert new.shape == (0, 4, 4)


def test_numpy_and_float32_inputs():
    rng = np.random.default_rng(5)
    coder = PolyTubeCoder(degree=2)
    _, _, tubes, masks = poly_tubes(rng, coder, [[1, 9], [0, 4]], 10)
    coeffs_np, extents_np = coder.encode(tubes.numpy(), masks.numpy(), IMG)
    assert isinstance(coeffs_np, np.ndarray) and coeffs_np.dtype == np.float64
    tubes_np, masks_np = coder.decode(coeffs_np, extents_np, IMG, num_frames=10)
    np.testing.assert_allclose(tubes_np[masks_np], tubes.numpy()[masks.numpy()], atol=1e-6)
    coeffs32, extents32 = coder.encode(tubes.float(), masks, IMG)
    assert coeffs32.dtype == torch.float32 and extents32.dtype == torch.float32
    dec32, _ = coder.decode(coeffs32, extents32, IMG, num_frames=10)
    assert (dec32[masks] - tubes[masks].float()).abs().max() < 1e-2


# ----------------------------------------------------------------------------- fit_update
def test_fit_update_hand_value_degree0():
    """Degree 0, one key box of weight w: the parameters become (w p_key + lambda p_coarse) / (w + lambda)."""
    coder = PolyTubeCoder(degree=0)
    coarse = xyxy_to_cxcy_logwh(torch.tensor([[0., 0., 40., 40.]], dtype=F64), IMG)[:, :, None]
    key = torch.tensor([[[80., 40., 240., 200.]]], dtype=F64)
    new = coder.fit_update(coarse, torch.tensor([[0., 9.]], dtype=F64), torch.tensor([[4.]], dtype=F64), key,
                           torch.tensor([[3.0]], dtype=F64), 1.0, IMG)
    expected = (3 * xyxy_to_cxcy_logwh(key[0], IMG) + coarse[:, :, 0]) / 4
    torch.testing.assert_close(new[:, :, 0], expected)


def test_fit_update_limits():
    rng = np.random.default_rng(7)
    coder = PolyTubeCoder(degree=3)
    coeffs, extents, _, _ = poly_tubes(rng, coder, [[0, 15], [3, 12]], 16)
    key_times = torch.tensor([[0., 5., 10.5, 15.], [3., 4., 8., 12.]], dtype=F64)
    key_boxes = torch.tensor(rng.uniform(0, 100, (2, 4, 2)), dtype=F64)
    key_boxes = torch.cat([key_boxes, key_boxes + torch.tensor(rng.uniform(10, 60, (2, 4, 2)))], dim=-1)
    # weights 0 -> the coarse coefficients, whatever the key boxes (even garbage ones)
    garbage = key_boxes.clone()
    garbage[0, 1] = float('nan')
    same = coder.fit_update(coeffs, extents, key_times, garbage, torch.zeros(2, 4, dtype=F64), 0.1, IMG)
    torch.testing.assert_close(same, coeffs, atol=1e-14, rtol=0)
    # lambda -> 0 with K + 1 distinct key times -> the tube passes through the key boxes
    ones = torch.ones(2, 4, dtype=F64)
    fitted = coder.fit_update(coeffs, extents, key_times, key_boxes, ones, 1e-10, IMG)
    through, _ = coder.decode(fitted, extents, IMG, times=key_times)
    assert (through - key_boxes).abs().max() < 1e-4
    # huge lambda -> barely moves; lambda is a per-tube tensor too
    stiff = coder.fit_update(coeffs, extents, key_times, key_boxes, ones, torch.tensor([1e9, 1e9], dtype=F64),
                             IMG)
    assert (stiff - coeffs).abs().max() < 1e-7
    # one key box with weight 0 is ignored: same result as leaving it out
    w = ones.clone()
    w[1, 2] = 0
    part = coder.fit_update(coeffs, extents, key_times, key_boxes, w, 0.1, IMG)
    left_out = coder.fit_update(coeffs[1:], extents[1:], key_times[1:, [0, 1, 3]], key_boxes[1:, [0, 1, 3]],
                                ones[1:, :3], 0.1, IMG)
    torch.testing.assert_close(part[1:], left_out, atol=1e-12, rtol=0)
    # shared (M,) key times and numpy inputs
    shared = coder.fit_update(coeffs, extents, key_times[0], key_boxes, ones, 0.1, IMG)
    expanded = coder.fit_update(coeffs, extents, key_times[0].expand(2, 4), key_boxes, ones, 0.1, IMG)
    torch.testing.assert_close(shared, expanded)
    as_np = coder.fit_update(coeffs.numpy(), extents.numpy(), key_times.numpy(), key_boxes.numpy(),
                             ones.numpy(), 0.1, IMG)
    np.testing.assert_allclose(
        as_np, coder.fit_update(coeffs, extents, key_times, key_boxes, ones, 0.1, IMG).numpy(), atol=1e-12)


def test_fit_update_degenerate_key_boxes_are_clamped():
    coder = PolyTubeCoder(degree=1, min_key_size=1.0)
    coeffs = torch.zeros(1, 4, 2, dtype=F64)
    coeffs[0, :, 0] = torch.tensor([0.5, 0.5, -1.0, -1.0])
    key = torch.tensor([[[320., 100., 320., 140.], [10., 10., 20., 20.]]],
                       dtype=F64)  # zero width at the border
    new = coder.fit_update(coeffs, torch.tensor([[0., 4.]], dtype=F64), torch.tensor([[0., 4.]], dtype=F64),
                           key, torch.ones(1, 2, dtype=F64), 1e-10, IMG)
    boxes, _ = coder.decode(
        new, torch.tensor([[0., 4.]], dtype=F64), IMG, times=torch.tensor([0.], dtype=F64))
    torch.testing.assert_close(boxes[0, 0], torch.tensor([319.5, 100., 320.5, 140.], dtype=F64))


def test_fit_update_errors():
    coder = PolyTubeCoder(degree=1)
    coeffs, extents = torch.zeros(2, 4, 2), torch.tensor([[0., 4.], [1., 3.]])
    times, boxes, w = torch.zeros(2, 3), torch.ones(2, 3, 4), torch.ones(2, 3)
    boxes[..., 2:] = 5
    with pytest.raises(ValueError, match='prior_strength \\(lambda\\) must be > 0'):
        coder.fit_update(coeffs, extents, times, boxes, w, 0.0, IMG)
    with pytest.raises(ValueError, match='weights must be >= 0'):
        coder.fit_update(coeffs, extents, times, boxes, -w, 0.1, IMG)
    with pytest.raises(ValueError, match=r'key_boxes must have shape \(2, 3, 4\)'):
        coder.fit_update(coeffs, extents, times, boxes[:, :2], w, 0.1, IMG)
    with pytest.raises(ValueError, match=r'weights must have shape \(2, 3\)'):
        coder.fit_update(coeffs, extents, times, boxes, w[:, :2], 0.1, IMG)
    nan_boxes = boxes.clone()
    nan_boxes[0, 0, 0] = float('nan')
    with pytest.raises(ValueError, match='key boxes / key times with weight > 0 must be finite'):
        coder.fit_update(coeffs, extents, times, nan_boxes, w, 0.1, IMG)


# ----------------------------------------------------------------------------- gradients
def test_gradcheck_encode():
    rng = np.random.default_rng(11)
    coder = PolyTubeCoder(degree=2)
    _, _, tubes, masks = poly_tubes(rng, coder, [[0, 5], [1, 4], [2, 2]], 6)
    masks[0, 2] = False
    tubes = (tubes + torch.tensor(rng.normal(0, 0.5, tubes.shape))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: coder.encode(x, masks, IMG)[0], (tubes, ))


def test_gradcheck_decode():
    rng = np.random.default_rng(12)
    coder = PolyTubeCoder(degree=2)
    coeffs, extents, _, _ = poly_tubes(rng, coder, [[0, 5], [1, 4]], 6)
    extents = (extents + torch.tensor([[0.2, -0.3], [0.1, 0.4]], dtype=F64)).requires_grad_(True)
    coeffs.requires_grad_(True)
    times = torch.tensor([[0.5, 2.0, 3.7], [1.5, 2.5, 4.1]], dtype=F64)  # strictly inside the extents
    assert torch.autograd.gradcheck(lambda c, e: coder.decode(c, e, IMG, times=times)[0], (coeffs, extents))


def test_gradcheck_fit_update():
    rng = np.random.default_rng(13)
    coder = PolyTubeCoder(degree=2)
    coeffs, extents, _, _ = poly_tubes(rng, coder, [[0, 7], [2, 6]], 8)
    key_times = torch.tensor([[1., 3.5, 6.], [2.5, 4., 5.]], dtype=F64)
    key_boxes = torch.tensor([[[10., 20., 60., 90.], [30., 25., 70., 100.], [50., 40., 90., 120.]],
                              [[100., 100., 140., 160.], [110., 90., 150., 150.], [90., 95., 160., 170.]]],
                             dtype=F64,
                             requires_grad=True)
    weights = torch.tensor([[1.0, 0.5, 2.0], [0.7, 1.0, 0.3]], dtype=F64, requires_grad=True)
    lam = torch.tensor(0.3, dtype=F64, requires_grad=True)
    coeffs.requires_grad_(True)

    def fit(c, b, w, lam_):
        return coder.fit_update(c, extents, key_times, b, w, lam_, IMG)

    assert torch.autograd.gradcheck(fit, (coeffs, key_boxes, weights, lam))
