"""PolyTubeCoder: a tube as a temporal extent plus Legendre-polynomial box trajectories.

A tube with temporal extent ``(t_start, t_end)`` (clip-frame units, 0-based) is described by ``4 x (K + 1)``
coefficients: each of the normalized box parameters

    ``p = (cx / W, cy / H, log(w / W), log(h / H))``    (``W, H`` = clip width / height in pixels)

is a polynomial of degree ``K`` in the normalized tube time

    ``tau(t) = 2 (t - t_start) / (t_end - t_start) - 1``  in ``[-1, 1]``,

written in the Legendre basis ``P_0 .. P_K``: ``p_c(t) = sum_k coeffs[c, k] * P_k(tau(t))``. The Legendre
basis is orthogonal on ``[-1, 1]``, so the normal equations of the least-squares fit are well conditioned and
the coefficients of different orders are nearly independent regression targets.

Choices (documented in ``docs/tube_parameterization.md``):

- **Outside the extent** ``tau`` is clamped to ``[-1, 1]``: the box is held at its end value instead of
  extrapolating the polynomial (which explodes, and ``exp`` of it overflows).
- **Zero-length extent** (``t_start == t_end``): ``tau = 0`` at every time, the tube is a constant box.
- **Few valid frames**: a tube with ``n < K + 1`` valid frames is fitted with the first ``n`` basis functions
  only (degree ``n - 1``; the higher coefficients are exactly 0): 1 frame -> a constant box, 2 frames -> a
  linear trajectory through both boxes. No NaN, no ridge bias on well-determined tubes.
- **Holes** in the mask are simply frames without a residual; the extent is still first..last valid frame.
- **Empty tubes** (all-False mask) and boxes with ``w <= 0`` or ``h <= 0`` (or non-finite values) on valid
  frames raise ``ValueError`` naming the tube (and frame): a tube without a box has no trajectory.
- **Decoded sizes**: ``log(w / W)`` and ``log(h / H)`` are clamped to ``log_size_range`` before ``exp`` so
  that untrained coefficients cannot overflow.
- **Mask of a decoded tube**: time ``t`` is inside when
  ``t_start - extent_margin <= t <= t_end + extent_margin``. With the default ``extent_margin=0.5`` the
  integer frames of a fractional (predicted) extent are the frames within half a frame of it, i.e.
  ``round(t_start) .. round(t_end)``; integer extents give exactly ``t_start .. t_end``.

:class:`BaseTubeCoder` states the interface every tube coder keeps (``encode`` / ``decode`` / ``fit_update`` /
``num_coeffs``, same argument meanings and shapes) and implements it for any coder whose trajectories are
linear in a temporal basis; :class:`PolyTubeCoder` and
:class:`~cfad_mm.models.task_modules.spline_tube_coder.SplineTubeCoder` derive from it.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmaction.registry import TASK_UTILS
from torch import Tensor

from cfad_mm.structures.tube_ops import mask_extents

ShapeLike = Union[Sequence[int], Tensor]

__all__ = [
    'BaseTubeCoder', 'PolyTubeCoder', 'legendre_basis', 'xyxy_to_cxcy_logwh', 'cxcy_logwh_to_xyxy',
    'solve_spd', 'solve_spd_unrolled'
]


def _img_wh(img_shape: ShapeLike, func: str) -> Tuple[float, float]:
    """``(W, H)`` from an ``(H, W)`` image shape, validated."""
    try:
        shape = [float(s) for s in (img_shape.tolist() if isinstance(img_shape, Tensor) else img_shape)]
    except TypeError:
        raise ValueError(f'{func}: img_shape must be (height, width), got {img_shape!r}') from None
    if len(shape) < 2 or not all(np.isfinite(s) and s > 0 for s in shape[:2]):
        raise ValueError(f'{func}: img_shape must be (height, width) with positive sizes, got {img_shape!r}')
    return shape[1], shape[0]


def legendre_basis(tau: Tensor, degree: int) -> Tensor:
    """Legendre polynomials ``P_0 .. P_degree`` evaluated at ``tau``.

    Uses Bonnet's recursion ``(n + 1) P_{n+1} = (2n + 1) tau P_n - n P_{n-1}``.

    Args:
        tau (Tensor): ``(...)`` points, normally in ``[-1, 1]``.
        degree (int): Highest degree ``K >= 0``.

    Returns:
        Tensor: ``(..., degree + 1)`` basis values.
    """
    polys = [torch.ones_like(tau)]
    if degree >= 1:
        polys.append(tau)
    for n in range(1, degree):
        polys.append(((2 * n + 1) * tau * polys[n] - n * polys[n - 1]) / (n + 1))
    return torch.stack(polys, dim=-1)


def xyxy_to_cxcy_logwh(boxes: Tensor, img_shape: ShapeLike) -> Tensor:
    """Pixel xyxy boxes -> normalized ``(cx / W, cy / H, log(w / W), log(h / H))``.

    Args:
        boxes (Tensor): ``(..., 4)`` xyxy pixel boxes with positive width and height.
        img_shape (tuple[int, int]): ``(H, W)`` of the clip.

    Returns:
        Tensor: ``(..., 4)`` normalized parameters.
    """
    img_w, img_h = _img_wh(img_shape, 'xyxy_to_cxcy_logwh')
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / (2 * img_w), (y1 + y2) / (2 * img_h),
                        torch.log((x2 - x1) / img_w),
                        torch.log((y2 - y1) / img_h)],
                       dim=-1)


def cxcy_logwh_to_xyxy(params: Tensor,
                       img_shape: ShapeLike,
                       log_size_range: Tuple[float, float] = (-10.0, 4.0)) -> Tensor:
    """Normalized ``(cx / W, cy / H, log(w / W), log(h / H))`` -> pixel xyxy boxes.

    Args:
        params (Tensor): ``(..., 4)`` normalized parameters.
        img_shape (tuple[int, int]): ``(H, W)`` of the clip.
        log_size_range (tuple[float, float]): Clamp of the log sizes before ``exp``. Defaults to (-10.0, 4.0).

    Returns:
        Tensor: ``(..., 4)`` xyxy pixel boxes.
    """
    img_w, img_h = _img_wh(img_shape, 'cxcy_logwh_to_xyxy')
    cx, cy, log_w, log_h = params.unbind(-1)
    half_w = torch.exp(log_w.clamp(*log_size_range)) * (img_w / 2)
    half_h = torch.exp(log_h.clamp(*log_size_range)) * (img_h / 2)
    cx, cy = cx * img_w, cy * img_h
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)


def solve_spd_unrolled(gram: Tensor, rhs: Tensor) -> Tensor:
    """Solve ``gram @ x = rhs`` for small symmetric positive-definite matrices by an unrolled Cholesky
    factorisation and two triangular substitutions (elementwise torch ops only).

    ``torch.linalg.solve`` has no ONNX equivalent; this function does, and it is what
    :meth:`BaseTubeCoder.fit_update` (via :func:`solve_spd`) uses while ``torch.onnx.is_in_onnx_export()``.
    The loops run over the (static, small) matrix size, so the exported graph has ``O(n^3)`` tiny nodes; use
    it for ``n <= ~8`` only.

    Args:
        gram (Tensor): ``(B, n, n)`` SPD matrices.
        rhs (Tensor): ``(B, n, c)`` right-hand sides.

    Returns:
        Tensor: ``(B, n, c)`` solutions.
    """
    n = gram.shape[-1]
    lower = [[None] * n for _ in range(n)]  # lower[i][j]: (B,) entries of the Cholesky factor L
    for j in range(n):
        diag = gram[:, j, j]
        for k in range(j):
            diag = diag - lower[j][k] * lower[j][k]
        lower[j][j] = diag.clamp(min=torch.finfo(gram.dtype).tiny).sqrt()
        for i in range(j + 1, n):
            off = gram[:, i, j]
            for k in range(j):
                off = off - lower[i][k] * lower[j][k]
            lower[i][j] = off / lower[j][j]
    y = [None] * n  # L y = rhs
    for i in range(n):
        acc = rhs[:, i]
        for k in range(i):
            acc = acc - lower[i][k][:, None] * y[k]
        y[i] = acc / lower[i][i][:, None]
    x = [None] * n  # L^T x = y
    for i in reversed(range(n)):
        acc = y[i]
        for k in range(i + 1, n):
            acc = acc - lower[k][i][:, None] * x[k]
        x[i] = acc / lower[i][i][:, None]
    return torch.stack(x, dim=1)


def solve_spd(gram: Tensor, rhs: Tensor) -> Tensor:
    """Solve ``gram @ x = rhs`` for small SPD matrices: ``torch.linalg.solve``, or
    :func:`solve_spd_unrolled` while ``torch.onnx.is_in_onnx_export()`` (ONNX has no linear solver).

    The one switch used by every tube coder's :meth:`BaseTubeCoder.fit_update`.

    Args:
        gram (Tensor): ``(B, n, n)`` SPD matrices.
        rhs (Tensor): ``(B, n, c)`` right-hand sides.

    Returns:
        Tensor: ``(B, n, c)`` solutions.
    """
    if torch.onnx.is_in_onnx_export():
        return solve_spd_unrolled(gram, rhs)
    return torch.linalg.solve(gram, rhs)


def _to_tensor(x, name: str, func: str, like: Optional[Tensor] = None) -> Tensor:
    if isinstance(x, Tensor):
        return x if like is None else x.to(like.device)
    if isinstance(x, (np.ndarray, list, tuple, float, int)):
        t = torch.as_tensor(np.asarray(x))
        return t if like is None else t.to(like.device)
    raise TypeError(f'{func}: {name} must be a torch.Tensor or numpy array, got {type(x).__name__}')


def _float(x: Tensor) -> Tensor:
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


class BaseTubeCoder(metaclass=ABCMeta):
    """Base class of the tube coders: a tube is a temporal extent plus ``4 x D`` coefficients, linear in a
    temporal basis.

    The contract every tube coder keeps (so that configs can swap coders, e.g.
    ``tube_coder=dict(type='PolyTubeCoder', degree=3)`` for ``dict(type='SplineTubeCoder', max_frames=16)``):

    - A tube is ``coeffs (N, 4, D)`` (``D`` = :attr:`num_coeffs`) and ``extents (N, 2)`` ``(t_start, t_end)``
      in 0-based clip frames (fractional for predictions). Each normalized box parameter
      ``p = (cx / W, cy / H, log(w / W), log(h / H))`` is ``p_c(t) = sum_d coeffs[c, d] * b_d(t)`` with the
      coder's basis ``b(t) = basis(times, extents)`` (:meth:`basis`). The basis holds the box at its end value
      outside the extent.
    - :meth:`encode` ``(tubes (N, T, 4), masks (N, T), img_shape) -> (coeffs (N, 4, D), extents (N, 2))``:
      (regularized) least-squares fit of dense pixel xyxy tubes; the extent is the first..last valid frame.
    - :meth:`decode` ``(coeffs, extents, img_shape, times=(S,) | (N, S) or num_frames=S)
      -> (boxes (N, S, 4), inside (N, S) bool)``.
    - :meth:`fit_update` ``(coeffs, extents, key_times (N, M) | (M,), key_boxes (N, M, 4), weights (N, M),
      prior_strength, img_shape) -> coeffs (N, 4, D)``: the closed-form, differentiable ridge re-fit
      ``argmin sum_k w_k ||B(t_k) theta - p(b_k)||^2 + lambda ||theta - theta_coarse||^2``.
    - :meth:`constant_coeffs` ``(params (N, 4)) -> coeffs (N, 4, D)``: the coefficients of a constant box
      (e.g. to add a prior box to regressed coefficients whatever the basis).

    Every method is batched over tubes, differentiable w.r.t. its floating-point inputs and accepts numpy
    arrays too (returning numpy). Coders hold no parameters or buffers (no state in checkpoints).

    A subclass implements :attr:`num_coeffs`, :meth:`basis`, :meth:`constant_coeffs` and
    :meth:`_solve_encode` (the regularization of the encoding fit); :meth:`encode`, :meth:`decode` and
    :meth:`fit_update` are shared.

    Args:
        extent_margin (float): A time ``t`` is inside a tube when
            ``t_start - extent_margin <= t <= t_end + extent_margin``. Defaults to 0.5 (the integer frames
            nearest to the extent).
        log_size_range (tuple[float, float]): Clamp of decoded ``log(w / W)``, ``log(h / H)``.
            Defaults to (-10.0, 4.0).
        min_key_size (float): Key boxes given to :meth:`fit_update` have their width and height clamped to at
            least this many pixels (they are model outputs, possibly degenerate after clipping to the image).
            Defaults to 1e-2.
    """

    def __init__(self,
                 extent_margin: float = 0.5,
                 log_size_range: Tuple[float, float] = (-10.0, 4.0),
                 min_key_size: float = 1e-2):
        name = self._name
        if extent_margin < 0:
            raise ValueError(f'{name}: extent_margin must be >= 0, got {extent_margin}')
        if not log_size_range[0] < log_size_range[1]:
            raise ValueError(f'{name}: log_size_range must be (low, high) with low < high, '
                             f'got {log_size_range}')
        if min_key_size <= 0:
            raise ValueError(f'{name}: min_key_size must be > 0, got {min_key_size}')
        self.extent_margin = float(extent_margin)
        self.log_size_range = (float(log_size_range[0]), float(log_size_range[1]))
        self.min_key_size = float(min_key_size)

    @property
    def _name(self) -> str:
        return type(self).__name__

    @property
    @abstractmethod
    def num_coeffs(self) -> int:
        """Number ``D`` of coefficients per box parameter."""

    @property
    def encode_size(self) -> int:
        """Number of coefficients of a tube, ``4 * num_coeffs``."""
        return 4 * self.num_coeffs

    @abstractmethod
    def basis(self, times: Tensor, extents: Tensor) -> Tensor:
        """Basis ``(N, S, D)`` of the tubes at clip-frame ``times (N, S)``, given ``extents (N, 2)``."""

    @abstractmethod
    def constant_coeffs(self, params: Tensor) -> Tensor:
        """Coefficients ``(N, 4, D)`` of the constant trajectories ``p(t) = params (N, 4)`` (normalized box
        parameters), for any extent."""

    @abstractmethod
    def _solve_encode(self, gram: Tensor, rhs: Tensor, masks: Tensor, extents: Tensor) -> Tensor:
        """Solve the normal equations of :meth:`encode`, regularized as the coder needs.

        Args:
            gram (Tensor): ``(N, D, D)`` ``B^T M B`` (``B`` the basis at the clip frames, ``M`` the mask).
            rhs (Tensor): ``(N, D, 4)`` ``B^T M p``.
            masks (Tensor): ``(N, T)`` bool valid frames. extents (Tensor): ``(N, 2)``.

        Returns:
            Tensor: ``(N, D, 4)`` coefficients.
        """

    def _coeffs_hint(self) -> str:
        """What fixes ``D`` (appended to shape errors)."""
        return ''

    # ------------------------------------------------------------------ time axis
    @staticmethod
    def extents_from_masks(masks: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
        """First and last True frame of each tube.

        Args:
            masks (Tensor): ``(N, T)`` bool; every row must have a True entry.
            dtype (torch.dtype, optional): Output dtype. Defaults to torch's default dtype.

        Returns:
            Tensor: ``(N, 2)`` ``(t_start, t_end)``.
        """
        start, end, _ = mask_extents(masks.bool())
        return torch.stack([start, end], dim=1).to(dtype or torch.get_default_dtype())

    # ------------------------------------------------------------------ validation
    def _check_coeffs_extents(self, coeffs: Tensor, extents: Tensor, func: str) -> None:
        name = self._name
        if coeffs.dim() != 3 or coeffs.shape[1:] != (4, self.num_coeffs):
            raise ValueError(f'{name}.{func}: coeffs must have shape (N, 4, {self.num_coeffs})'
                             f'{self._coeffs_hint()}, got {tuple(coeffs.shape)}')
        if extents.shape != (coeffs.shape[0], 2):
            raise ValueError(f'{name}.{func}: extents must have shape ({coeffs.shape[0]}, 2) '
                             f'(t_start, t_end), got {tuple(extents.shape)}')
        if extents.numel():
            if not bool(torch.isfinite(extents).all()):
                bad = torch.nonzero(~torch.isfinite(extents).all(1)).flatten()[0].item()
                raise ValueError(f'{name}.{func}: extents of tube {bad} are not finite: '
                                 f'{extents[bad].tolist()}')
            if bool((extents[:, 1] < extents[:, 0]).any()):
                bad = torch.nonzero(extents[:, 1] < extents[:, 0]).flatten()[0].item()
                raise ValueError(f'{name}.{func}: extents of tube {bad} have t_end < t_start: '
                                 f'{extents[bad].tolist()}')

    def _check_valid_boxes(self, tubes: Tensor, masks: Tensor) -> None:
        x1, y1, x2, y2 = tubes.detach().unbind(-1)
        bad = masks & ~(torch.isfinite(tubes.detach()).all(-1) & (x2 > x1) & (y2 > y1))
        if bool(bad.any()):
            n, t = torch.nonzero(bad)[0].tolist()
            raise ValueError(f'{self._name}.encode: tube {n} has an invalid box on valid frame {t}: '
                             f'{tubes[n, t].tolist()} (needs finite values with x2 > x1 and y2 > y1)')

    # ------------------------------------------------------------------ encode / decode
    def encode(self, tubes, masks, img_shape: ShapeLike):
        """Fit the coefficients of dense tubes by masked least squares (batched, differentiable).

        Args:
            tubes (Tensor | np.ndarray): ``(N, T, 4)`` xyxy pixel boxes; values on masked-out frames are
                ignored.
            masks (Tensor | np.ndarray): ``(N, T)`` bool, True where the tube has a box. Holes are allowed.
            img_shape (tuple[int, int]): ``(H, W)`` of the clip.

        Returns:
            tuple: ``coeffs`` ``(N, 4, D)`` and ``extents`` ``(N, 2)`` (first and last valid frame,
            0-based clip frames), both in the floating dtype of ``tubes``.

        Raises:
            ValueError: wrong shapes, an empty tube (all-False mask), or a valid box with ``w <= 0``,
                ``h <= 0`` or non-finite coordinates.
        """
        func = f'{self._name}.encode'
        is_np = isinstance(tubes, np.ndarray)
        tubes = _float(_to_tensor(tubes, 'tubes', func))
        masks = _to_tensor(masks, 'masks', func, like=tubes)
        coeffs, extents = self._encode(tubes, masks, img_shape)
        if is_np:
            return coeffs.detach().cpu().numpy(), extents.detach().cpu().numpy()
        return coeffs, extents

    def _encode(self, tubes: Tensor, masks: Tensor, img_shape: ShapeLike) -> Tuple[Tensor, Tensor]:
        func = f'{self._name}.encode'
        if tubes.dim() != 3 or tubes.shape[-1] != 4:
            raise ValueError(f'{func}: tubes must have shape (N, T, 4), got {tuple(tubes.shape)}')
        if tuple(masks.shape) != tuple(tubes.shape[:2]):
            raise ValueError(f'{func}: masks must have shape {tuple(tubes.shape[:2])} to match '
                             f'tubes {tuple(tubes.shape)}, got {tuple(masks.shape)}')
        _img_wh(img_shape, func)
        masks = masks.bool()
        num_tubes, num_frames = masks.shape
        dtype, device = tubes.dtype, tubes.device
        if num_tubes == 0:
            return tubes.new_zeros((0, 4, self.num_coeffs)), tubes.new_zeros((0, 2))
        empty = ~masks.any(dim=1)
        if bool(empty.any()):
            raise ValueError(f'{func}: tube {torch.nonzero(empty).flatten()[0].item()} has no valid '
                             'frame (all-False mask); an empty tube has no trajectory to encode')
        self._check_valid_boxes(tubes, masks)

        extents = self.extents_from_masks(masks, dtype)
        times = torch.arange(num_frames, device=device, dtype=dtype).expand(num_tubes, num_frames)
        basis = self.basis(times, extents)  # (N, T, D)
        safe = torch.where(masks[..., None], tubes, tubes.new_tensor([0.0, 0.0, 1.0, 1.0]))
        targets = xyxy_to_cxcy_logwh(safe, img_shape)  # (N, T, 4)
        weights = masks.to(dtype)
        gram = torch.einsum('ntk,nt,ntl->nkl', basis, weights, basis)
        rhs = torch.einsum('ntk,nt,ntc->nkc', basis, weights, targets)
        coeffs = self._solve_encode(gram, rhs, masks, extents)  # (N, D, 4)
        return coeffs.transpose(1, 2), extents

    def decode(self, coeffs, extents, img_shape: ShapeLike, times=None, num_frames: Optional[int] = None):
        """Boxes of the tubes at the clip frames ``0 .. num_frames - 1`` or at given (fractional) times.

        Give exactly one of ``times`` and ``num_frames``.

        Args:
            coeffs (Tensor | np.ndarray): ``(N, 4, D)`` coefficients.
            extents (Tensor | np.ndarray): ``(N, 2)`` ``(t_start, t_end)`` in clip frames,
                ``t_end >= t_start``.
            img_shape (tuple[int, int]): ``(H, W)`` of the clip.
            times (Tensor | np.ndarray, optional): ``(S,)`` times shared by all tubes or ``(N, S)`` per
                tube, in clip frames. Defaults to None.
            num_frames (int, optional): Decode at frames ``0 .. num_frames - 1``. Defaults to None.

        Returns:
            tuple: ``tubes`` ``(N, S, 4)`` xyxy pixel boxes (held at the end boxes outside the extent) and
            ``masks`` ``(N, S)`` bool, True inside the extent (see ``extent_margin``).
        """
        func = f'{self._name}.decode'
        is_np = isinstance(coeffs, np.ndarray)
        coeffs = _float(_to_tensor(coeffs, 'coeffs', func))
        extents = _to_tensor(extents, 'extents', func, like=coeffs).to(coeffs.dtype)
        self._check_coeffs_extents(coeffs, extents, 'decode')
        _img_wh(img_shape, func)
        num_tubes = coeffs.shape[0]
        if (times is None) == (num_frames is None):
            raise ValueError(f'{func}: give exactly one of times and num_frames')
        if num_frames is not None:
            if int(num_frames) != num_frames or num_frames < 0:
                raise ValueError(f'{func}: num_frames must be an int >= 0, got {num_frames!r}')
            times = torch.arange(int(num_frames), device=coeffs.device, dtype=coeffs.dtype)
        else:
            times = _to_tensor(times, 'times', func, like=coeffs).to(coeffs.dtype)
        if times.dim() == 1:
            times = times.expand(num_tubes, times.shape[0])
        elif times.dim() != 2 or times.shape[0] != num_tubes:
            raise ValueError(f'{func}: times must have shape (S,) or ({num_tubes}, S), got '
                             f'{tuple(times.shape)}')
        basis = self.basis(times, extents)  # (N, S, D)
        params = torch.einsum('nsk,nck->nsc', basis, coeffs)
        boxes = cxcy_logwh_to_xyxy(params, img_shape, self.log_size_range)
        inside = (times >= extents[:, :1] - self.extent_margin) & (
            times <= extents[:, 1:] + self.extent_margin)
        if is_np:
            return boxes.detach().cpu().numpy(), inside.cpu().numpy()
        return boxes, inside

    # ------------------------------------------------------------------ refinement
    def fit_update(self, coeffs, extents, key_times, key_boxes, weights, prior_strength,
                   img_shape: ShapeLike):
        """Closed-form regularized re-fit of coarse tubes to (refined) key boxes (batched, differentiable).

        ``theta' = argmin_theta sum_k w_k ||B(t_k) theta - p(b_k)||^2 + lambda ||theta - theta_coarse||^2``,
        with ``p`` the normalized ``(cx, cy, log w, log h)`` of a key box and ``B(t)`` the basis of the coarse
        tube's extent (kept unchanged) at time ``t`` (held at the extent's ends like :meth:`decode`).
        Solved per tube and coordinate from ``(B^T W B + lambda I) theta' = B^T W p + lambda theta_coarse``
        (:func:`solve_spd`: an unrolled Cholesky solve during ONNX export).
        ``weights = 0`` returns ``theta_coarse``; ``lambda -> 0`` with enough distinct key times (``>= D``
        that determine the basis) interpolates the key boxes.

        Args:
            coeffs (Tensor | np.ndarray): ``(N, 4, D)`` coarse coefficients ``theta_coarse``.
            extents (Tensor | np.ndarray): ``(N, 2)`` ``(t_start, t_end)`` clip frames.
            key_times (Tensor | np.ndarray): ``(N, M)`` (or ``(M,)`` shared) key times in clip frames.
            key_boxes (Tensor | np.ndarray): ``(N, M, 4)`` xyxy pixel key boxes (width / height clamped to at
                least ``min_key_size`` pixels).
            weights (Tensor | np.ndarray): ``(N, M)`` non-negative weights (0 = ignore the key box).
            prior_strength (float | Tensor): ``lambda > 0``, a number or an ``(N,)`` tensor.
            img_shape (tuple[int, int]): ``(H, W)`` of the clip.

        Returns:
            Tensor | np.ndarray: ``(N, 4, D)`` updated coefficients.
        """
        func = f'{self._name}.fit_update'
        is_np = isinstance(coeffs, np.ndarray)
        coeffs = _float(_to_tensor(coeffs, 'coeffs', func))
        dtype = coeffs.dtype
        extents = _to_tensor(extents, 'extents', func, like=coeffs).to(dtype)
        key_times = _to_tensor(key_times, 'key_times', func, like=coeffs).to(dtype)
        key_boxes = _to_tensor(key_boxes, 'key_boxes', func, like=coeffs).to(dtype)
        weights = _to_tensor(weights, 'weights', func, like=coeffs).to(dtype)
        self._check_coeffs_extents(coeffs, extents, 'fit_update')
        _img_wh(img_shape, func)
        num_tubes = coeffs.shape[0]
        if key_times.dim() == 1:
            key_times = key_times.expand(num_tubes, key_times.shape[0])
        if key_times.dim() != 2 or key_times.shape[0] != num_tubes:
            raise ValueError(f'{func}: key_times must have shape ({num_tubes}, M) or (M,), got '
                             f'{tuple(key_times.shape)}')
        num_keys = key_times.shape[1]
        if tuple(key_boxes.shape) != (num_tubes, num_keys, 4):
            raise ValueError(f'{func}: key_boxes must have shape ({num_tubes}, {num_keys}, 4), got '
                             f'{tuple(key_boxes.shape)}')
        if tuple(weights.shape) != (num_tubes, num_keys):
            raise ValueError(f'{func}: weights must have shape ({num_tubes}, {num_keys}), got '
                             f'{tuple(weights.shape)}')
        if weights.numel() and not bool((weights.detach() >= 0).all()):
            raise ValueError(f'{func}: weights must be >= 0 (and not NaN)')
        lam = _to_tensor(prior_strength, 'prior_strength', func, like=coeffs).to(dtype)
        if lam.dim() == 0:
            lam = lam.expand(num_tubes)
        if lam.shape != (num_tubes, ):
            raise ValueError(f'{func}: prior_strength must be a number or have shape ({num_tubes},), got '
                             f'{tuple(lam.shape)}')
        if lam.numel() and not bool((lam.detach() > 0).all()):
            raise ValueError(f'{func}: prior_strength (lambda) must be > 0, got {lam.detach().min().item()}')
        if num_tubes == 0:
            return coeffs.detach().cpu().numpy() if is_np else coeffs.clone()
        used = weights > 0
        if bool((used & ~torch.isfinite(key_boxes.detach()).all(-1)).any()) or \
                bool((used & ~torch.isfinite(key_times.detach())).any()):
            raise ValueError(f'{func}: key boxes / key times with weight > 0 must be finite')

        # Degenerate key boxes (e.g. clipped to the image border) keep a minimal size.
        ctr = (key_boxes[..., :2] + key_boxes[..., 2:]) / 2
        half = ((key_boxes[..., 2:] - key_boxes[..., :2]).clamp(min=self.min_key_size)) / 2
        key_boxes = torch.cat([ctr - half, ctr + half], dim=-1)
        safe = torch.where(used[..., None], key_boxes, key_boxes.new_tensor([0.0, 0.0, 1.0, 1.0]))
        targets = xyxy_to_cxcy_logwh(safe, img_shape)  # (N, M, 4)
        safe_times = torch.where(used, key_times, torch.zeros_like(key_times))
        basis = self.basis(safe_times, extents)  # (N, M, D)
        eye = torch.eye(self.num_coeffs, dtype=dtype, device=coeffs.device)
        gram = torch.einsum('nmk,nm,nml->nkl', basis, weights, basis) + lam[:, None, None] * eye
        rhs = torch.einsum('nmk,nm,nmc->nkc', basis, weights,
                           targets) + lam[:, None, None] * coeffs.transpose(1, 2)
        # gram is SPD (lambda > 0); ONNX has no linear solver, so the export uses an unrolled Cholesky solve.
        new_coeffs = solve_spd(gram, rhs).transpose(1, 2)
        return new_coeffs.detach().cpu().numpy() if is_np else new_coeffs


@TASK_UTILS.register_module()
class PolyTubeCoder(BaseTubeCoder):
    """Encode dense box tubes as Legendre-polynomial trajectories over their temporal extent, and back.

    See the module docstring for the parameterization and :class:`BaseTubeCoder` for the interface
    (:meth:`encode`, :meth:`decode`, :meth:`fit_update`). ``D = degree + 1`` coefficients per box parameter,
    ``coeffs[c, 0]`` is the mean of ``p_c`` over the extent.

    Args:
        degree (int): Polynomial degree ``K`` per box parameter (``K + 1`` coefficients). Defaults to 3.
        extent_margin (float): See :class:`BaseTubeCoder`. Defaults to 0.5.
        log_size_range (tuple[float, float]): See :class:`BaseTubeCoder`. Defaults to (-10.0, 4.0).
        min_key_size (float): See :class:`BaseTubeCoder`. Defaults to 1e-2.
    """

    def __init__(self,
                 degree: int = 3,
                 extent_margin: float = 0.5,
                 log_size_range: Tuple[float, float] = (-10.0, 4.0),
                 min_key_size: float = 1e-2):
        if not isinstance(degree, (int, np.integer)) or isinstance(degree, bool) or degree < 0:
            raise ValueError(f'PolyTubeCoder: degree must be an int >= 0, got {degree!r}')
        super().__init__(
            extent_margin=extent_margin, log_size_range=log_size_range, min_key_size=min_key_size)
        self.degree = int(degree)

    @property
    def num_coeffs(self) -> int:
        """Number of coefficients per box parameter, ``degree + 1``."""
        return self.degree + 1

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(degree={self.degree}, extent_margin={self.extent_margin}, '
                f'log_size_range={self.log_size_range}, min_key_size={self.min_key_size})')

    def _coeffs_hint(self) -> str:
        return f' for degree {self.degree}'

    # ------------------------------------------------------------------ time axis
    @staticmethod
    def normalized_time(times: Tensor, extents: Tensor) -> Tensor:
        """``tau(t) = 2 (t - t_start) / (t_end - t_start) - 1``, clamped to ``[-1, 1]``; 0 for zero-length.

        Args:
            times (Tensor): ``(N, S)`` clip-frame times.
            extents (Tensor): ``(N, 2)`` ``(t_start, t_end)``.

        Returns:
            Tensor: ``(N, S)`` normalized times.
        """
        start, end = extents[:, :1], extents[:, 1:]
        length = end - start
        positive = length > 0
        safe_length = torch.where(positive, length, torch.ones_like(length))
        tau = 2 * (times - start) / safe_length - 1
        return torch.where(positive, tau.clamp(-1, 1), torch.zeros_like(tau))

    def basis(self, times: Tensor, extents: Tensor) -> Tensor:
        """Legendre basis ``(N, S, K + 1)`` of the tubes at clip-frame ``times (N, S)``."""
        return legendre_basis(self.normalized_time(times, extents), self.degree)

    def constant_coeffs(self, params: Tensor) -> Tensor:
        """Coefficients ``(N, 4, K + 1)`` of constant trajectories ``params (N, 4)``: ``[p, 0, .., 0]``."""
        return torch.cat([params[..., None], params.new_zeros(params.shape + (self.degree, ))], dim=-1)

    # ------------------------------------------------------------------ encode
    def _solve_encode(self, gram: Tensor, rhs: Tensor, masks: Tensor, extents: Tensor) -> Tensor:
        """Exact least squares; tubes with ``n < K + 1`` valid frames keep only the first ``n`` basis
        functions (an exact lower-degree fit, the higher coefficients are 0)."""
        keep = torch.arange(self.num_coeffs, device=gram.device)[None] < masks.sum(dim=1, keepdim=True)
        keep_f = keep.to(gram.dtype)  # (N, K+1)
        gram = gram * keep_f[:, :, None] * keep_f[:, None, :] + torch.diag_embed(1 - keep_f)
        rhs = rhs * keep_f[..., None]
        return torch.linalg.solve(gram, rhs)  # (N, K+1, 4)
