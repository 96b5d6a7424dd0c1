"""SplineTubeCoder: a tube as a temporal extent plus uniform cubic B-spline box trajectories.

The capacity of a :class:`~cfad_mm.models.task_modules.tube_coder.PolyTubeCoder` is the same for a 3-frame
and for a 60-frame tube (the polynomial is stretched over the extent). Here the knots are fixed in clip time,
one at least every ``knot_interval`` frames, so a tube gets as many spline segments as its extent crosses: the
capacity grows with the extent, and a long tube is no harder per frame than a short one. The number of
coefficients is still fixed for a window (tensors need fixed shapes): the knots split the window, clip frames
``0 .. L`` with ``L = max_frames - 1``, into

    ``S = max(1, ceil(L / knot_interval))`` equal segments of ``k = L / S <= knot_interval`` frames
    (``k = knot_interval`` when it divides ``L``), and ``D = S + 3`` control points per box parameter.

(Spreading the knots over exactly the window, rather than letting the last segment stick out of it, keeps the
last control points well determined by the window's frames.)

Each normalized box parameter ``p = (cx / W, cy / H, log(w / W), log(h / H))`` (as in ``PolyTubeCoder``) is

    ``p_c(t) = sum_j coeffs[c, j] * N3(u(t) - (j - 1))``,  ``u(t) = clip(clip(t, t_start, t_end), 0, L) / k``

with ``N3`` the centred cardinal cubic B-spline

    ``N3(x) = (4 - 6 x^2 + 3 |x|^3) / 6`` for ``|x| < 1``,  ``(2 - |x|)^3 / 6`` for ``1 <= |x| < 2``, else 0.

Control point ``j`` sits at clip time ``(j - 1) k``; at any time at most 4 basis functions are non-zero and
they sum to 1, so the coefficients are in the units of positions / log-sizes and a constant tube has all
control points equal. The trajectory is C2 (continuous velocity and acceleration) and can be evaluated at any
(fractional) time. As in ``PolyTubeCoder``, outside its extent a tube is held at its end value (``t`` is
clamped to the extent) and decoded log-sizes are clamped before ``exp``.

Encoding (least squares with a small penalty on the second differences of the control points)::

    (B^T M B + D2^T diag(r) D2 + s D1^T D1) theta = B^T M p,    r = s + [row touches a free point]

``B`` is the basis at the clip frames, ``M`` the mask, ``D1`` / ``D2`` the first / second difference
matrices and ``s = smoothness``. A *free* control point has no data weight (its basis vanishes on every valid
frame, typically the points outside a short extent): the rows of ``D2`` that touch it get weight 1, which
extends the trajectory linearly into them and never biases the fit inside the extent. The ``s`` terms make the
system definite when the extent has fewer frames than control points (a 1-frame tube is a constant box; the
limit ``s -> 0`` is the least-squares fit with the least curvature) and damp the control points that only
touch an end frame of the extent (which would fit its noise). They bias the fit by ``O(s / m^2)``, ``m``
the data weight (sum of its basis over the valid frames) of the least supported control point: negligible
for a tube covering the window, largest on the end frame of an extent that ends just past a knot. The small
system is solved in float64.

:meth:`fit_update` and :meth:`decode` are the shared ones of
:class:`~cfad_mm.models.task_modules.tube_coder.BaseTubeCoder` with this basis.
"""
import math
from typing import Tuple

import numpy as np
import torch
from mmaction.registry import TASK_UTILS
from torch import Tensor

from .tube_coder import BaseTubeCoder

__all__ = ['SplineTubeCoder', 'cubic_bspline']

# a control point whose total data weight (sum of its basis over the valid frames) is below this is "free"
_FREE_MASS = 1e-6
# weight of the second-difference rows touching a free control point (linear extension of the trajectory)
_FREE_WEIGHT = 1.0


def cubic_bspline(x: Tensor) -> Tensor:
    """Centred cardinal cubic B-spline ``N3(x)`` (support ``(-2, 2)``, C2, integer shifts sum to 1).

    Args:
        x (Tensor): ``(...)`` points.

    Returns:
        Tensor: ``(...)`` values.
    """
    a = x.abs()
    inner = (4 - 6 * a * a + 3 * a * a * a) / 6
    outer = (2 - a).clamp(min=0).pow(3) / 6
    return torch.where(a < 1, inner, outer)


def _difference_matrix(n: int, order: int, dtype: torch.dtype, device) -> Tensor:
    """``(n - order, n)`` finite-difference matrix of the given order."""
    diff = torch.eye(n, dtype=dtype, device=device)
    for _ in range(order):
        diff = diff[1:] - diff[:-1]
    return diff


@TASK_UTILS.register_module()
class SplineTubeCoder(BaseTubeCoder):
    """Encode dense box tubes as uniform cubic B-spline trajectories with knots fixed in clip time, and back.

    See the module docstring for the parameterization and
    :class:`~cfad_mm.models.task_modules.tube_coder.BaseTubeCoder` for the interface, which is the one of
    ``PolyTubeCoder`` (same methods, arguments and shapes, with ``D = num_coeffs`` coefficients per box
    parameter), so a config can swap ``dict(type='PolyTubeCoder', degree=3)`` for
    ``dict(type='SplineTubeCoder', max_frames=16, knot_interval=4)``.

    Args:
        max_frames (int): Longest window (clip length) represented: the knots cover the clip frames
            ``0 .. max_frames - 1`` (:meth:`encode` refuses valid frames beyond). Defaults to 16.
        knot_interval (float): Largest number of frames between two knots, ``> 0`` (fractional allowed); the
            knots split the window into equal segments (:attr:`knot_spacing`). Defaults to 4.0, i.e.
            ``D = 7`` control points for 16 frames (knots every 3.75 frames).
        smoothness (float): Weight ``s >= 0`` of the second-difference penalty of :meth:`encode` (see the
            module docstring). ``0`` gives the plain least-squares fit, which is singular for extents with
            fewer frames than control points. Defaults to 1e-6.
        extent_margin (float): A time ``t`` is inside a tube when
            ``t_start - extent_margin <= t <= t_end + extent_margin``. Defaults to 0.5.
        log_size_range (tuple[float, float]): Clamp of decoded ``log(w / W)``, ``log(h / H)``.
            Defaults to (-10.0, 4.0).
        min_key_size (float): Minimum width / height (pixels) of the key boxes of :meth:`fit_update`.
            Defaults to 1e-2.
    """

    def __init__(self,
                 max_frames: int = 16,
                 knot_interval: float = 4.0,
                 smoothness: float = 1e-6,
                 extent_margin: float = 0.5,
                 log_size_range: Tuple[float, float] = (-10.0, 4.0),
                 min_key_size: float = 1e-2):
        if not isinstance(max_frames, (int, np.integer)) or isinstance(max_frames, bool) or max_frames < 1:
            raise ValueError(f'SplineTubeCoder: max_frames must be an int >= 1, got {max_frames!r}')
        if not (isinstance(knot_interval, (int, float, np.number)) and np.isfinite(knot_interval)
                and knot_interval > 0) or isinstance(knot_interval, bool):
            raise ValueError(f'SplineTubeCoder: knot_interval must be a number > 0, got {knot_interval!r}')
        if not (np.isfinite(smoothness) and smoothness >= 0):
            raise ValueError(f'SplineTubeCoder: smoothness must be >= 0, got {smoothness!r}')
        super().__init__(
            extent_margin=extent_margin, log_size_range=log_size_range, min_key_size=min_key_size)
        self.max_frames = int(max_frames)
        self.knot_interval = float(knot_interval)
        self.smoothness = float(smoothness)
        # (the tolerance keeps e.g. knot_interval = 15 / 4 at exactly 4 segments for 16 frames)
        self.num_segments = max(1, math.ceil((self.max_frames - 1) / self.knot_interval - 1e-6))
        # frames between two knots; a 1-frame window keeps one segment of knot_interval frames
        self.knot_spacing = ((self.max_frames - 1) / self.num_segments if self.max_frames > 1 else
                             self.knot_interval)

    @property
    def num_coeffs(self) -> int:
        """Number of control points per box parameter, ``num_segments + 3``."""
        return self.num_segments + 3

    @property
    def span(self) -> float:
        """Last clip time covered by the knots, ``num_segments * knot_spacing`` (``max_frames - 1`` unless
        ``max_frames == 1``)."""
        return self.num_segments * self.knot_spacing

    @property
    def knot_times(self) -> Tensor:
        """``(num_segments + 1,)`` clip times of the knots, ``0, k, 2k, .., span`` (``k = knot_spacing``)."""
        return torch.arange(self.num_segments + 1, dtype=torch.float64) * self.knot_spacing

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_frames={self.max_frames}, '
                f'knot_interval={self.knot_interval}, smoothness={self.smoothness}, '
                f'extent_margin={self.extent_margin}, log_size_range={self.log_size_range}, '
                f'min_key_size={self.min_key_size})')

    def _coeffs_hint(self) -> str:
        return f' for max_frames {self.max_frames} and knot_interval {self.knot_interval:g}'

    # ------------------------------------------------------------------ basis
    def basis(self, times: Tensor, extents: Tensor) -> Tensor:
        """B-spline basis of the tubes at clip-frame times, held at the extent's ends.

        Args:
            times (Tensor): ``(N, S)`` clip-frame times (any real values).
            extents (Tensor): ``(N, 2)`` ``(t_start, t_end)``, ``t_end >= t_start``.

        Returns:
            Tensor: ``(N, S, D)`` basis values, each row sums to 1.
        """
        held = torch.minimum(torch.maximum(times, extents[:, :1]), extents[:, 1:])
        u = held.clamp(0, self.span) / self.knot_spacing
        centres = torch.arange(self.num_coeffs, dtype=times.dtype, device=times.device) - 1
        return cubic_bspline(u[..., None] - centres)

    def constant_coeffs(self, params: Tensor) -> Tensor:
        """Coefficients ``(N, 4, D)`` of constant trajectories ``params (N, 4)``: every control point is
        ``params`` (the basis sums to 1)."""
        return params[..., None].expand(params.shape + (self.num_coeffs, )).clone()

    # ------------------------------------------------------------------ encode
    def _encode(self, tubes: Tensor, masks: Tensor, img_shape) -> Tuple[Tensor, Tensor]:
        if masks.dim() == 2 and masks.shape[1] > self.max_frames:
            late = masks.bool()[:, self.max_frames:]
            if bool(late.any()):
                n, t = torch.nonzero(late)[0].tolist()
                raise ValueError(f'SplineTubeCoder.encode: tube {n} has a box on frame '
                                 f'{t + self.max_frames}, beyond the window of the coder '
                                 f'(frames 0 .. {self.max_frames - 1})')
        return super()._encode(tubes, masks, img_shape)

    def _solve_encode(self, gram: Tensor, rhs: Tensor, masks: Tensor, extents: Tensor) -> Tensor:
        """``(B^T M B + D2^T diag(r) D2 + s D1^T D1) theta = B^T M p`` (see the module docstring), solved
        in float64; ``gram (N, D, D)``, ``rhs (N, D, 4)`` -> ``(N, D, 4)``."""
        dtype = gram.dtype
        work = torch.float64 if gram.device.type != 'mps' else dtype
        gram, rhs = gram.to(work), rhs.to(work)
        n = self.num_coeffs
        mass = gram.sum(dim=2)  # (N, D): the basis sums to 1, so row sums are the data weight of each point
        free = (mass < _FREE_MASS).to(work)
        diff2 = _difference_matrix(n, 2, work, gram.device)  # (D-2, D)
        diff1 = _difference_matrix(n, 1, work, gram.device)  # (D-1, D)
        touches_free = (free @ diff2.abs().T > 0).to(work)  # (N, D-2)
        rows = self.smoothness + _FREE_WEIGHT * touches_free
        penalty = torch.einsum('rk,nr,rl->nkl', diff2, rows, diff2) + \
            self.smoothness * (diff1.T @ diff1)
        return torch.linalg.solve(gram + penalty, rhs).to(dtype)
