"""LocalCorrelation: cost volumes by hand (a shifted map peaks at its shift, zeros outside the map), the
expected shift of their softmax, the multiply-add count, and its refusals."""
import pytest
import torch
from torch.nn import functional as F

from cfad_mm.models.utils.local_correlation import LocalCorrelation


def test_a_shifted_map_correlates_fully_at_its_shift_and_zero_outside():
    """b is a moved by dx = +2, dy = -1 (b[y - 1, x + 2] = a[y, x]); unit vectors, so the volume is a cosine:
    1 at shift (2, -1) at every cell whose moved cell is inside b, and 0 at shifts that leave the map."""
    torch.manual_seed(0)
    corr = LocalCorrelation(2)
    a = F.normalize(torch.randn(1, 6, 7, 9), dim=1)
    b = torch.zeros_like(a)
    b[:, :, 0:6, 2:9] = a[:, :, 1:7, 0:7]
    out = corr(a, b)
    assert out.shape == (1, 25, 7, 9)
    k = corr.shifts.tolist().index([2, -1])
    assert torch.allclose(out[0, k, 1:, :7], torch.ones(6, 7))
    # elsewhere (another shift) the cosines of independent random vectors are below 1
    assert float(out[0, :, 1:, :7].max(0).values.min()) == pytest.approx(1.0)
    assert int((out[0, :, 1:, :7].argmax(0) == k).sum()) == 42
    # cell (y=0, x=0): shift (-1, -1) reads outside b -> 0
    assert float(out[0, corr.shifts.tolist().index([-1, -1]), 0, 0]) == 0.0
    # the expected shift of a sharp softmax is the shift itself; the K x C multiply-adds per cell
    shift = corr.expected_shift(out, 100.0)[0, :, 1:, :7]
    assert torch.allclose(shift, torch.tensor([2.0, -1.0])[:, None, None].expand(2, 6, 7), atol=1e-3)
    assert corr.multiply_adds(out) == 25 * 7 * 9 * 6


def test_equals_the_direct_sum_and_a_uniform_softmax_expects_no_shift():
    torch.manual_seed(1)
    corr = LocalCorrelation(1)
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    out = corr(a, b)
    for (dx, dy), plane in zip(corr.shifts.tolist(), out.unbind(1)):
        for y in range(4):
            for x in range(5):
                inside = 0 <= y + dy < 4 and 0 <= x + dx < 5
                want = (a[:, :, y, x] * b[:, :, y + dy, x + dx]).sum(1) if inside else torch.zeros(2)
                assert torch.allclose(plane[:, y, x], want, atol=1e-6)
    uniform = corr.expected_shift(torch.zeros(1, 9, 2, 2), 5.0)
    assert torch.allclose(uniform, torch.zeros(1, 2, 2, 2), atol=1e-6)


def test_refusals():
    with pytest.raises(ValueError, match='radius must be >= 1, got 0'):
        LocalCorrelation(0)
    with pytest.raises(ValueError, match=r'differ in shape: \(1, 2, 3, 3\) and \(1, 2, 3, 4\)'):
        LocalCorrelation(1)(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
