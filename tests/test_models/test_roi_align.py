"""The gather RoIAlign against mmcv's kernel: same numbers forward and backward, on awkward boxes too."""
import pytest
import torch
from mmcv.ops import roi_align as mmcv_roi_align

from cfad_mm.models.utils.roi_align import roi_align, roi_align_gather


def _rois(num, h, w, stride, seed):
    g = torch.Generator().manual_seed(seed)
    size_h, size_w = h * stride, w * stride
    x1 = torch.rand(num, generator=g) * size_w * 1.2 - 0.2 * size_w  # some start left of / beyond the map
    y1 = torch.rand(num, generator=g) * size_h * 1.2 - 0.2 * size_h
    bw = torch.rand(num, generator=g) * size_w * 0.8
    bh = torch.rand(num, generator=g) * size_h * 0.8
    img = torch.randint(0, 3, (num, ), generator=g).float()
    rois = torch.stack([img, x1, y1, x1 + bw, y1 + bh], dim=1)
    # degenerate and edge cases: a zero-size box, a box exactly on the last row/column, a box far outside
    extra = torch.tensor([[0, 10., 10., 10., 10.], [1, size_w - 1., size_h - 1., size_w + 3., size_h + 3.],
                          [2, -50., -50., -20., -20.], [0, 0., 0., size_w, size_h]])
    return torch.cat([rois, extra])


@pytest.mark.parametrize('out, sr', [((3, 3), 2), ((5, 5), 2), ((7, 4), 1), ((2, 3), 3)])
def test_forward_matches_mmcv(out, sr):
    torch.manual_seed(0)
    feats = torch.randn(3, 6, 9, 13)
    rois = _rois(40, 9, 13, 8, seed=1)
    ref = mmcv_roi_align(feats, rois, out, 1 / 8, sr, 'avg', True)
    got = roi_align_gather(feats.permute(0, 2, 3, 1), rois, out, 1 / 8, sr)
    assert got.shape == (44, 6) + out
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    # the far-outside box is all zeros in both
    assert got[-2].abs().max() == 0
    # the dispatching entry point, both layouts
    torch.testing.assert_close(roi_align(feats, rois, out, 1 / 8, sr), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(roi_align(feats.permute(0, 2, 3, 1).contiguous(), rois, out, 1 / 8, sr,
                                         channels_last=True), ref, atol=1e-5, rtol=1e-5)


def test_backward_matches_mmcv():
    torch.manual_seed(0)
    feats = torch.randn(3, 4, 7, 8, dtype=torch.float32)
    rois = _rois(25, 7, 8, 4, seed=2)
    upstream = torch.randn(29, 4, 3, 3)
    f1 = feats.clone().requires_grad_()
    (mmcv_roi_align(f1, rois, (3, 3), 0.25, 2, 'avg', True) * upstream).sum().backward()
    f2 = feats.clone().requires_grad_()
    r2 = rois.clone().requires_grad_()
    (roi_align(f2, r2, (3, 3), 0.25, 2) * upstream).sum().backward()
    assert f1.grad.abs().sum() > 0
    torch.testing.assert_close(f2.grad, f1.grad, atol=1e-5, rtol=1e-5)
    assert r2.grad is None  # like mmcv: no gradient to the boxes


def test_hand_computed_value():
    # one 2x2 map, a box covering the centre cell region: every sample point of a 1x1 bin with sampling
    # ratio 1 sits at the box centre (feature coords (0.5, 0.5) after the -0.5 shift) -> mean of the four
    # cells
    feats = torch.tensor([[[[1., 2.], [3., 4.]]]])
    rois = torch.tensor([[0., 0., 0., 2., 2.]])
    out = roi_align(feats, rois, (1, 1), 1.0, 1)
    assert out.item() == pytest.approx(2.5)


def test_empty_and_errors():
    feats = torch.randn(2, 5, 4, 4)
    assert roi_align(feats, torch.zeros((0, 5)), (3, 3), 1.0).shape == (0, 5, 3, 3)
    with pytest.raises(ValueError, match='sampling_ratio'):
        roi_align_gather(feats.permute(0, 2, 3, 1), torch.tensor([[0., 0., 0., 2., 2.]]), (2, 2), 1.0, 0)
