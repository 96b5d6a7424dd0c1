"""SplineTubeCoder: registry and shared interface, basis hand values, exact round trips of spline
trajectories, short extents, decode at frames vs times, gradients and the regularized re-fit (recovery, ONNX
solve path)."""
import inspect

import numpy as np
import pytest
import torch
from mmaction.registry import TASK_UTILS

import cfad_mm  # noqa: F401
from cfad_mm.models.task_modules import (
    BaseTubeCoder,
    PolyTubeCoder,
    SplineTubeCoder,
    cubic_bspline,
    xyxy_to_cxcy_logwh,
)

IMG = (96, 128)  # (H, W)
F64 = torch.float64


def spline_tubes(rng, coder, extents, num_frames):
    """Dense tubes whose normalized (cx, cy, log w, log h) are splines of the coder (smooth random control
    points); returns ``coeffs (N, 4, D)``, ``extents (N, 2)``, ``tubes (N, T, 4)``, ``masks (N, T)``."""
    n, d = len(extents), coder.num_coeffs
    coeffs = np.empty((n, 4, d))
    coeffs[:, :2] = rng.uniform(0.3, 0.7, (n, 2, 1)) + np.cumsum(rng.normal(0, 0.03, (n, 2, d)), axis=2)
    coeffs[:, 2:] = rng.uniform(-2.0, -1.2, (n, 2, 1)) + np.cumsum(rng.normal(0, 0.03, (n, 2, d)), axis=2)
    coeffs, extents = torch.tensor(coeffs, dtype=F64), torch.tensor(extents, dtype=F64)
    tubes, masks = coder.decode(coeffs, extents, IMG, num_frames=num_frames)
    return coeffs, extents, tubes, masks


def params(boxes):
    return xyxy_to_cxcy_logwh(boxes, IMG)


# ----------------------------------------------------------------------------- construction / interface
def test_build_from_registry_and_sizes():
    coder = TASK_UTILS.build(dict(type='SplineTubeCoder', max_frames=16, knot_interval=4))
    assert isinstance(coder, SplineTubeCoder) and isinstance(coder, BaseTubeCoder)
    assert isinstance(TASK_UTILS.build(dict(type='PolyTubeCoder', degree=3)), BaseTubeCoder)
    assert coder.num_segments == 4 and coder.num_coeffs == 7 and coder.encode_size == 28
    # the knots split the window 0 .. 15 into equal segments of at most knot_interval frames
    assert coder.knot_spacing == 3.75 and coder.span == 15
    torch.testing.assert_close(coder.knot_times, torch.tensor([0., 3.75, 7.5, 11.25, 15.], dtype=F64))
    assert SplineTubeCoder(max_frames=17, knot_interval=4).knot_spacing == 4
    # D = max(1, ceil((max_frames - 1) / knot_interval)) + 3
    sizes = [(16, 8, 5), (16, 15 / 4, 7), (17, 4, 7), (18, 4, 8), (1, 4, 4), (250, 249 / 13, 16)]
    for max_frames, knot_interval, num_coeffs in sizes:
        assert SplineTubeCoder(max_frames, knot_interval).num_coeffs == num_coeffs
    with pytest.raises(ValueError, match='max_frames must be an int >= 1'):
        SplineTubeCoder(max_frames=0)
    with pytest.raises(ValueError, match='knot_interval must be a number > 0'):
        SplineTubeCoder(knot_interval=0)
    with pytest.raises(ValueError, match='smoothness must be >= 0'):
        SplineTubeCoder(smoothness=-1.0)
    with pytest.raises(ValueError, match='extent_margin must be >= 0'):
        SplineTubeCoder(extent_margin=-1.0)
    with pytest.raises(TypeError):
        BaseTubeCoder()  # abstract


def test_same_public_interface_as_poly_tube_coder():
    for name in ('encode', 'decode', 'fit_update', 'constant_coeffs', 'basis', 'extents_from_masks'):
        assert inspect.signature(getattr(SplineTubeCoder, name)) == inspect.signature(
            getattr(PolyTubeCoder, name)), name


def test_basis_hand_values_and_partition_of_unity():
    coder = SplineTubeCoder(max_frames=17, knot_interval=4)  # knots at 0, 4, .., 16
    extents = torch.tensor([[0., 16.]], dtype=F64)
    basis = coder.basis(torch.tensor([[0., 2., 4., 15.]], dtype=F64), extents)[0]
    expected = torch.zeros(4, 7, dtype=F64)
    expected[0, :3] = torch.tensor([1, 4, 1]) / 6  # on a knot
    expected[1, :4] = torch.tensor([1, 23, 23, 1]) / 48  # half way between two knots
    expected[2, 1:4] = torch.tensor([1, 4, 1]) / 6
    expected[3, 3:] = torch.tensor([1, 121, 235, 27]) / 384  # u = 3.75
    torch.testing.assert_close(basis, expected)
    times = torch.linspace(-3, 20, 101, dtype=F64)[None]
    torch.testing.assert_close(coder.basis(times, extents).sum(-1), torch.ones(1, 101, dtype=F64))
    assert cubic_bspline(torch.tensor([-2.5, 2.0, 0.0], dtype=F64)).tolist() == [0.0, 0.0, 4 / 6]


def test_constant_coeffs_decode_to_the_constant_box():
    box = torch.tensor([[30., 20., 50., 60.], [1., 2., 3., 4.]], dtype=F64)
    for coder in (SplineTubeCoder(max_frames=16, knot_interval=4), PolyTubeCoder(degree=3)):
        coeffs = coder.constant_coeffs(params(box))
        assert coeffs.shape == (2, 4, coder.num_coeffs)
        boxes, _ = coder.decode(coeffs, torch.tensor([[2., 9.], [0., 15.]], dtype=F64), IMG,
                                times=torch.linspace(-1, 17, 37, dtype=F64))
        torch.testing.assert_close(boxes, box[:, None].expand(2, 37, 4))


# ----------------------------------------------------------------------------- encode / decode
@pytest.mark.parametrize('max_frames,knot_interval', [(16, 4), (16, 8), (32, 5), (250, 20)])
def test_round_trip_is_exact_for_spline_trajectories(max_frames, knot_interval):
    """A tube drawn from the spline basis over the coder's span is recovered by encode then decode."""
    rng = np.random.default_rng(max_frames + knot_interval)
    coder = SplineTubeCoder(max_frames=max_frames, knot_interval=knot_interval)
    coeffs, extents, tubes, masks = spline_tubes(rng, coder, [[0, max_frames - 1]] * 3, max_frames)
    enc_coeffs, enc_extents = coder.encode(tubes, masks, IMG)
    assert enc_coeffs.shape == (3, 4, coder.num_coeffs) and enc_extents.shape == (3, 2)
    torch.testing.assert_close(enc_extents, extents, atol=0, rtol=0)
    dec_tubes, dec_masks = coder.decode(enc_coeffs, enc_extents, IMG, num_frames=max_frames)
    assert torch.equal(dec_masks, masks)
    assert (params(dec_tubes) - params(tubes)).abs().max() < 1e-5  # normalized units
    assert (dec_tubes - tubes).abs().max() < 1e-3  # pixels
    # also between the frames (continuous time)
    times = torch.tensor(rng.uniform(0, max_frames - 1, 50), dtype=F64)
    fine_true, _ = coder.decode(coeffs, extents, IMG, times=times)
    fine_enc, _ = coder.decode(enc_coeffs, enc_extents, IMG, times=times)
    assert (params(fine_enc) - params(fine_true)).abs().max() < 1e-5
    # without the penalty, the very control points come back
    exact, _ = SplineTubeCoder(max_frames, knot_interval, smoothness=0.0).encode(tubes, masks, IMG)
    torch.testing.assert_close(exact, coeffs, atol=1e-9, rtol=0)


def test_extents_shorter_than_the_window_holes_and_single_frames():
    rng = np.random.default_rng(3)
    coder = SplineTubeCoder(max_frames=24, knot_interval=4)
    extents = [[0, 23], [4, 19], [6, 13], [10, 11], [7, 7], [16, 23]]
    _, extents_t, tubes, masks = spline_tubes(rng, coder, extents, 24)
    fit_masks = masks.clone()
    fit_masks[1, [7, 8, 12]] = False  # holes
    garbage = tubes.clone()
    garbage[~fit_masks] = torch.tensor([5., 5., -3., float('nan')], dtype=F64)  # never read
    coeffs, enc_extents = coder.encode(garbage, fit_masks, IMG)
    torch.testing.assert_close(enc_extents, extents_t, atol=0, rtol=0)
    dec, dec_masks = coder.decode(coeffs, enc_extents, IMG, num_frames=24)
    assert torch.equal(dec_masks, masks)
    err = (params(dec) - params(tubes)).abs().amax(-1)  # (N, T)
    # dense extents starting / ending on knots are exact; the others up to the small penalty
    assert err[0][masks[0]].max() < 1e-5 and err[2][masks[2]].max() < 1e-4
    assert err[1][masks[1]].max() < 1e-4  # also on the holes
    assert err[3][masks[3]].max() < 1e-5  # 2 frames: a curve through both boxes
    assert err[4, 7] < 1e-12 and err[5][masks[5]].max() < 1e-4
    # outside its extent a tube is held at its end boxes; a 1-frame tube is one constant box
    torch.testing.assert_close(dec[1, :4], dec[1, 4:5].expand(4, 4))
    torch.testing.assert_close(dec[1, 20:], dec[1, 19:20].expand(4, 4))
    torch.testing.assert_close(dec[4], tubes[4, 7:8].expand(24, 4))
    torch.testing.assert_close(coeffs[4], params(tubes[4, 7])[:, None].expand(4, coder.num_coeffs), atol=1e-7,
                               rtol=0)
    # free control points (no data) continue the trajectory linearly: (nearly) zero second differences there
    second = coeffs[5, :, :-2] - 2 * coeffs[5, :, 1:-1] + coeffs[5, :, 2:]  # extent 16..23 leaves points 0..3
    assert second[:, :4].abs().max() < 1e-5
    assert torch.isfinite(coeffs).all()


def test_float32_short_tubes_are_finite_and_accurate():
    rng = np.random.default_rng(4)
    coder = SplineTubeCoder(max_frames=16, knot_interval=4)
    _, _, tubes, masks = spline_tubes(rng, coder, [[0, 15], [3, 9], [5, 5], [5, 6], [2, 5]], 16)
    coeffs, extents = coder.encode(tubes.float(), masks, IMG)
    assert coeffs.dtype == torch.float32 and torch.isfinite(coeffs).all()
    dec, _ = coder.decode(coeffs, extents, IMG, num_frames=16)
    assert (dec[masks] - tubes[masks].float()).abs().max() < 2e-2  # pixels


def test_decode_at_all_frames_and_at_given_times_agree():
    rng = np.random.default_rng(5)
    coder = SplineTubeCoder(max_frames=16, knot_interval=4)
    coeffs, extents, _, _ = spline_tubes(rng, coder, [[0, 15], [2.4, 9.6], [5, 5]], 16)
    frames, frame_masks = coder.decode(coeffs, extents, IMG, num_frames=16)
    shared, shared_masks = coder.decode(coeffs, extents, IMG, times=torch.arange(16, dtype=F64))
    per_tube, per_masks = coder.decode(coeffs, extents, IMG, times=torch.arange(16, dtype=F64).expand(3, 16))
    torch.testing.assert_close(frames, shared, atol=1e-12, rtol=0)
    torch.testing.assert_close(frames, per_tube, atol=1e-12, rtol=0)
    assert torch.equal(frame_masks, shared_masks) and torch.equal(frame_masks, per_masks)
    assert frame_masks[1].nonzero().flatten().tolist() == list(range(2, 11))  # frames within half a frame
    # per-tube fractional times = the matching entries of a shared dense grid
    grid = torch.linspace(0, 15, 61, dtype=F64)
    dense, _ = coder.decode(coeffs, extents, IMG, times=grid)
    pick = torch.tensor([[0, 7, 33, 60], [1, 2, 3, 4], [10, 20, 30, 40]])
    picked, _ = coder.decode(coeffs, extents, IMG, times=grid[pick])
    torch.testing.assert_close(picked, dense.gather(1, pick[..., None].expand(3, 4, 4)), atol=1e-12, rtol=0)
    # numpy in, numpy out
    np_tubes, np_masks = coder.decode(coeffs.numpy(), extents.numpy(), IMG, num_frames=16)
    assert isinstance(np_tubes, np.ndarray) and np_masks.dtype == bool
    np.testing.assert_allclose(np_tubes, frames.numpy())


def test_encode_and_decode_errors():
    coder = SplineTubeCoder(max_frames=16, knot_interval=4)
    tubes = torch.tensor([[10., 10., 20., 30.]], dtype=F64).expand(1, 20, 4)
    masks = torch.zeros(1, 20, dtype=torch.bool)
    masks[0, 10:18] = True
    with pytest.raises(ValueError, match=r'tube 0 has a box on frame 16, beyond the window of the coder '
                       r'\(frames 0 .. 15\)'):
        coder.encode(tubes, masks, IMG)
    masks[0, 16:] = False  # longer inputs are fine while their boxes are in the window
    assert coder.encode(tubes, masks, IMG)[0].shape == (1, 4, 7)
    with pytest.raises(ValueError, match=r'tube 0 has no valid frame \(all-False mask\)'):
        coder.encode(tubes, torch.zeros(1, 20, dtype=torch.bool), IMG)
    with pytest.raises(ValueError, match=r'SplineTubeCoder.decode: coeffs must have shape \(N, 4, 7\) for '
                       'max_frames 16 and knot_interval 4'):
        coder.decode(torch.zeros(1, 4, 4), torch.zeros(1, 2), IMG, num_frames=4)
    with pytest.raises(ValueError, match='exactly one of times and num_frames'):
        coder.decode(torch.zeros(1, 4, 7), torch.zeros(1, 2), IMG)


# ----------------------------------------------------------------------------- fit_update
def test_fit_update_with_exact_key_boxes_recovers_the_tube():
    rng = np.random.default_rng(6)
    coder = SplineTubeCoder(max_frames=16, knot_interval=4)
    coeffs, extents, tubes, masks = spline_tubes(rng, coder, [[0, 15], [3, 12]], 16)
    coarse = coeffs + torch.tensor(rng.normal(0, 0.05, coeffs.shape))
    # key boxes on every frame of the extent (the key times are per tube)
    key_times = torch.stack([torch.linspace(0, 15, 10, dtype=F64), torch.linspace(3, 12, 10, dtype=F64)])
    key_boxes, _ = coder.decode(coeffs, extents, IMG, times=key_times)
    new = coder.fit_update(coarse, extents, key_times, key_boxes, torch.ones(2, 10, dtype=F64), 1e-10, IMG)
    assert new.shape == coeffs.shape
    dec, _ = coder.decode(new, extents, IMG, num_frames=16)
    assert (dec[masks] - tubes[masks]).abs().max() < 1e-4
    times = torch.linspace(0, 15, 77, dtype=F64)
    fine_new, _ = coder.decode(new, extents, IMG, times=times)
    fine_true, _ = coder.decode(coeffs, extents, IMG, times=times)
    assert (fine_new - fine_true).abs().max() < 1e-4
    # weights 0 return the coarse coefficients; a huge prior barely moves them
    same = coder.fit_update(coarse, extents, key_times, key_boxes, torch.zeros(2, 10, dtype=F64), 0.1, IMG)
    torch.testing.assert_close(same, coarse, atol=1e-14, rtol=0)
    stiff = coder.fit_update(coarse, extents, key_times, key_boxes, torch.ones(2, 10, dtype=F64), 1e9, IMG)
    assert (stiff - coarse).abs().max() < 1e-7


def test_fit_update_uses_the_onnx_solve_during_export(monkeypatch):
    rng = np.random.default_rng(7)
    coder = SplineTubeCoder(max_frames=16, knot_interval=4)
    coeffs, extents, _, _ = spline_tubes(rng, coder, [[0, 15], [2, 9]], 16)
    key_times = torch.tensor([1., 4.5, 8., 13.], dtype=F64)
    key_boxes, _ = coder.decode(coeffs + 0.02, extents, IMG, times=key_times)
    args = (coeffs, extents, key_times, key_boxes, torch.ones(2, 4, dtype=F64), 0.3, IMG)
    expected = coder.fit_update(*args)
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    torch.testing.assert_close(coder.fit_update(*args), expected, atol=1e-10, rtol=0)


# ----------------------------------------------------------------------------- gradients
def test_gradcheck_fit_update():
    rng = np.random.default_rng(8)
    coder = SplineTubeCoder(max_frames=8, knot_interval=3)  # 6 control points
    coeffs, extents, _, _ = spline_tubes(rng, coder, [[0, 7], [1.3, 5.6]], 8)
    key_times = torch.tensor([[0.4, 2.2, 3.7, 6.1], [0.8, 2.5, 4.1, 6.3]], dtype=F64)  # some outside tube 1
    key_boxes, _ = coder.decode(coeffs + torch.tensor(rng.normal(0, 0.05, coeffs.shape)), extents, IMG,
                                times=key_times)
    weights = torch.tensor(rng.uniform(0.2, 1.0, (2, 4)), dtype=F64)
    lam = torch.tensor([0.3, 0.7], dtype=F64)
    inputs = [x.clone().requires_grad_(True) for x in (coeffs, extents, key_times, key_boxes, weights, lam)]
    assert torch.autograd.gradcheck(lambda c, e, t, b, w, s: coder.fit_update(c, e, t, b, w, s, IMG), inputs)


def test_gradcheck_encode_and_decode():
    rng = np.random.default_rng(9)
    coder = SplineTubeCoder(max_frames=8, knot_interval=4)
    coeffs, extents, tubes, masks = spline_tubes(rng, coder, [[0, 7], [2, 5], [3, 3]], 8)
    masks[0, 3] = False
    tubes = (tubes + torch.tensor(rng.normal(0, 0.5, tubes.shape))).requires_grad_(True)
    # The encoding system of the 1-frame tube is held definite only by the smoothness penalty (s = 1e-6), so
    # its float64 solve carries rounding of about 1e-11 that differs between LAPACK builds and CPUs; central
    # differences with gradcheck's default step 1e-6 turn it into Jacobian errors of about 2e-5 (over the
    # 1e-5 tolerance on an AMD EPYC). A step of 1e-4 keeps that below 1e-7 while a wrong gradient still
    # differs by its own size.
    assert torch.autograd.gradcheck(lambda x: coder.encode(x, masks, IMG)[0], (tubes, ), eps=1e-4)
    times = torch.tensor([[0.3, 2.5, 6.9], [2.2, 3.1, 4.7], [1.0, 3.5, 6.0]], dtype=F64, requires_grad=True)
    coeffs = coeffs.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c, t: coder.decode(c, extents, IMG, times=t)[0], (coeffs, times))
