"""Local correlation of two feature maps and the expected shift of its softmax (FlowNet-C / PWC-Net style cost
volume, used to learn how far each actor moves between two maps)."""
import torch
from torch import Tensor, nn
from torch.nn import functional as F


class LocalCorrelation(nn.Module):
    """The dot products of each cell of ``a`` with the cells of ``b`` within ``radius`` cells of it::

        out[:, k, y, x] = sum_c a[:, c, y, x] * b[:, c, y + dy_k, x + dx_k]    (0 where outside b)

    for the ``K = (2 radius + 1)^2`` shifts ``(dx_k, dy_k)`` of :attr:`shifts`, ``dy`` the slower index. With
    unit-length feature vectors (``F.normalize(., dim=1)``) every entry is a cosine similarity in [-1, 1].
    Its work is ``K x C`` multiply-adds per cell (:meth:`multiply_adds`), done shift by shift so that the
    memory stays ``(B, K, H, W)``.

    Args:
        radius (int): Largest shift in cells, in each direction (>= 1).
    """

    def __init__(self, radius: int):
        super().__init__()
        if int(radius) < 1:
            raise ValueError(f'LocalCorrelation: radius must be >= 1, got {radius}')
        self.radius = int(radius)
        d = torch.arange(-self.radius, self.radius + 1)
        dy, dx = torch.meshgrid(d, d, indexing='ij')
        self.register_buffer('shifts', torch.stack([dx.flatten(), dy.flatten()], 1), persistent=False)
        self._channels = 0

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``a``, ``b`` ``(B, C, H, W)`` -> ``(B, K, H, W)``."""
        if a.shape != b.shape:
            raise ValueError(f'LocalCorrelation: the two maps differ in shape: {tuple(a.shape)} and '
                             f'{tuple(b.shape)}')
        r, (h, w) = self.radius, a.shape[-2:]
        self._channels = a.shape[1]
        padded = F.pad(b, (r, r, r, r))
        # shift by shift: on CPU several times faster than one unfold of b (a K-times larger tensor)
        return torch.stack([(a * padded[:, :, r + dy:r + dy + h, r + dx:r + dx + w]).sum(1)
                            for dx, dy in self.shifts.tolist()], 1)

    def multiply_adds(self, output: Tensor) -> int:
        """Multiply-adds of the call that gave ``output`` (for the cost counts of the analysis tools)."""
        return output.numel() * self._channels

    def expected_shift(self, corr: Tensor, scale) -> Tensor:
        """The shift ``(B, 2, H, W)`` (x, y; cells) expected under ``softmax(scale x corr)`` over the ``K``
        shifts of ``corr (B, K, H, W)`` (a differentiable arg-max; ``scale`` a float or a 0-d tensor)."""
        p = torch.softmax(corr * scale, 1)
        return torch.einsum('bkhw,kd->bdhw', p, self.shifts.to(p.dtype))

    def extra_repr(self) -> str:
        return f'radius={self.radius}'
