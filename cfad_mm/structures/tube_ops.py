"""Box and tube geometry: IoUs, temporal / spatio-temporal tube IoU, greedy NMS and mask extents.

This module is the only home of IoU, NMS and mask-extent code in cfad-mm; the assigner, the detector's
post-processing, the metrics and the linking all call it.

Conventions:

- Boxes are ``(x1, y1, x2, y2)`` in pixels.
- ``plus_one=False`` (default) is the continuous convention, ``area = (x2 - x1) * (y2 - y1)``.
  ``plus_one=True`` is ACT's inclusive-pixel convention, ``area = (x2 - x1 + 1) * (y2 - y1 + 1)``, used by the
  ACT evaluation protocol. Negative widths / heights count as 0 in both conventions.
- Tubes are dense on a common time axis: ``tubes (N, T, 4)`` boxes plus ``masks (N, T)`` bool. Box values
  where the mask is False are ignored. A tube's temporal extent is its first..last True frame
  (:func:`mask_extents`; holes inside it are frames where the tube has no box).
- Every function accepts numpy arrays or torch tensors and returns the same kind. If any input is a tensor,
  numpy inputs are moved to that tensor's device. Torch results keep the device and, for the IoUs, the
  autograd graph.
  Integer boxes are converted to floating point (numpy ``float64``, torch's default dtype).
- Greedy NMS (:func:`box_nms`, :func:`tube_nms`) visits candidates by descending score (ties: lower index
  first) and suppresses every remaining candidate whose IoU with a kept one is strictly greater than
  ``iou_thr``.
"""
from typing import Any, Tuple, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = [
    'box_area', 'box_iou', 'box_iou_aligned', 'box_nms', 'tube_temporal_iou', 'tube_frame_iou', 'tube_st_iou',
    'tube_nms', 'clamp_boxes_to_image', 'mask_extents'
]


# ----------------------------------------------------------------------------- input handling
def _to_common(*arrays: Any) -> Tuple[bool, list]:
    """Return ``(is_torch, arrays)`` with every input converted to the common kind (torch wins)."""
    tensors = [a for a in arrays if isinstance(a, torch.Tensor)]
    if not tensors:
        return False, [np.asarray(a) for a in arrays]
    device = tensors[0].device
    out = []
    for a in arrays:
        if isinstance(a, torch.Tensor):
            out.append(a.to(device))
        else:
            out.append(torch.as_tensor(np.asarray(a), device=device))
    return True, out


def _as_float(x: ArrayLike, is_torch: bool) -> ArrayLike:
    if is_torch:
        return x if x.is_floating_point() else x.to(torch.get_default_dtype())
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _as_bool(x: ArrayLike, is_torch: bool) -> ArrayLike:
    if is_torch:
        return x if x.dtype == torch.bool else x != 0
    return x if x.dtype == np.bool_ else x != 0


def _check_last_dim4(boxes: ArrayLike, func: str, name: str) -> None:
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f'{func}: {name} must have shape (..., 4) (x1, y1, x2, y2), got {tuple(boxes.shape)}')


def _check_shape(x: ArrayLike, ndim: int, func: str, name: str, expected: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f'{func}: {name} must have shape {expected}, got {tuple(x.shape)}')


def _maximum(a, b, is_torch):
    return torch.maximum(a, b) if is_torch else np.maximum(a, b)


def _minimum(a, b, is_torch):
    return torch.minimum(a, b) if is_torch else np.minimum(a, b)


def _clip_min0(x, is_torch):
    return x.clamp(min=0) if is_torch else np.clip(x, 0, None)


def _safe_divide(num, den, is_torch):
    """``num / den`` where ``den > 0``, else 0 (no NaN, no infinite gradient)."""
    pos = den > 0
    if is_torch:
        return torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)), torch.zeros_like(num))
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(pos, num / np.where(pos, den, 1), 0).astype(np.result_type(num, den))


# ----------------------------------------------------------------------------- boxes
def box_area(boxes: ArrayLike, plus_one: bool = False) -> ArrayLike:
    """Areas of boxes.

    Args:
        boxes (np.ndarray | torch.Tensor): ``(..., 4)`` xyxy boxes.
        plus_one (bool): ACT inclusive-pixel convention ``(x2 - x1 + 1) * (y2 - y1 + 1)``. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(...)`` areas (negative sides count as 0).
    """
    is_torch, (boxes, ) = _to_common(boxes)
    _check_last_dim4(boxes, 'box_area', 'boxes')
    return _area(_as_float(boxes, is_torch), 1.0 if plus_one else 0.0, is_torch)


def box_centres(boxes: ArrayLike) -> ArrayLike:
    """Centres ``(..., 2)`` (x, y) of ``(..., 4)`` xyxy boxes (np.ndarray or torch.Tensor, kept as given)."""
    _check_last_dim4(boxes, 'box_centres', 'boxes')
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def _area(boxes: ArrayLike, off: float, is_torch: bool) -> ArrayLike:
    w = _clip_min0(boxes[..., 2] - boxes[..., 0] + off, is_torch)
    h = _clip_min0(boxes[..., 3] - boxes[..., 1] + off, is_torch)
    return w * h


def _iou_broadcast(b1: ArrayLike, b2: ArrayLike, plus_one: bool, is_torch: bool) -> ArrayLike:
    """IoU of two broadcastable ``(..., 4)`` float box arrays."""
    off = 1.0 if plus_one else 0.0
    ix1 = _maximum(b1[..., 0], b2[..., 0], is_torch)
    iy1 = _maximum(b1[..., 1], b2[..., 1], is_torch)
    ix2 = _minimum(b1[..., 2], b2[..., 2], is_torch)
    iy2 = _minimum(b1[..., 3], b2[..., 3], is_torch)
    inter = _clip_min0(ix2 - ix1 + off, is_torch) * _clip_min0(iy2 - iy1 + off, is_torch)
    union = _area(b1, off, is_torch) + _area(b2, off, is_torch) - inter
    return _safe_divide(inter, union, is_torch)


def box_iou(boxes1: ArrayLike, boxes2: ArrayLike, plus_one: bool = False) -> ArrayLike:
    """Pairwise IoU of two sets of boxes.

    Args:
        boxes1 (np.ndarray | torch.Tensor): ``(N, 4)`` xyxy boxes.
        boxes2 (np.ndarray | torch.Tensor): ``(M, 4)`` xyxy boxes.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(N, M)`` IoUs; 0 where the union is empty.
    """
    is_torch, (boxes1, boxes2) = _to_common(boxes1, boxes2)
    for name, b in (('boxes1', boxes1), ('boxes2', boxes2)):
        if b.ndim != 2 or b.shape[-1] != 4:
            raise ValueError(f'box_iou: {name} must have shape (N, 4), got {tuple(b.shape)}')
    b1, b2 = _as_float(boxes1, is_torch), _as_float(boxes2, is_torch)
    return _iou_broadcast(b1[:, None, :], b2[None, :, :], plus_one, is_torch)


def box_iou_aligned(boxes1: ArrayLike, boxes2: ArrayLike, plus_one: bool = False) -> ArrayLike:
    """Elementwise IoU of two (broadcastable) arrays of boxes.

    Args:
        boxes1 (np.ndarray | torch.Tensor): ``(..., 4)`` xyxy boxes.
        boxes2 (np.ndarray | torch.Tensor): ``(..., 4)`` xyxy boxes, broadcastable against ``boxes1``.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(...)`` IoUs (the broadcast shape without the last axis).
    """
    is_torch, (boxes1, boxes2) = _to_common(boxes1, boxes2)
    _check_last_dim4(boxes1, 'box_iou_aligned', 'boxes1')
    _check_last_dim4(boxes2, 'box_iou_aligned', 'boxes2')
    try:
        np.broadcast_shapes(tuple(boxes1.shape), tuple(boxes2.shape))
    except ValueError:
        raise ValueError(f'box_iou_aligned: boxes1 {tuple(boxes1.shape)} and boxes2 {tuple(boxes2.shape)} '
                         'are not broadcastable') from None
    return _iou_broadcast(_as_float(boxes1, is_torch), _as_float(boxes2, is_torch), plus_one, is_torch)


def _greedy_suppress(iou_sorted: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS on a precomputed ``(N, N)`` IoU matrix whose rows/cols are in visiting order.

    Returns the kept positions (in visiting order)."""
    n = iou_sorted.shape[0]
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou_sorted[i] > iou_thr
    return np.asarray(keep, dtype=np.int64)


def _nms_from_iou(iou_fn, scores: ArrayLike, iou_thr: float, is_torch: bool, func: str) -> ArrayLike:
    """Sort by descending score, build the IoU matrix with ``iou_fn(order)`` and run the greedy loop."""
    if not np.isscalar(iou_thr) and not (isinstance(iou_thr,
                                                    (np.ndarray, torch.Tensor)) and iou_thr.ndim == 0):
        raise ValueError(f'{func}: iou_thr must be a number, got {iou_thr!r}')
    iou_thr = float(iou_thr)
    if is_torch:
        order = torch.argsort(scores.detach(), descending=True, stable=True)
        if order.numel() == 0:
            return order.to(torch.int64)
        with torch.no_grad():
            ious = iou_fn(order).cpu().numpy()
        keep = _greedy_suppress(ious, iou_thr)
        return order[torch.as_tensor(keep, device=order.device)].to(torch.int64)
    order = np.argsort(-scores, kind='stable')
    if order.size == 0:
        return order.astype(np.int64)
    return order[_greedy_suppress(np.asarray(iou_fn(order)), iou_thr)].astype(np.int64)


def box_nms(boxes: ArrayLike, scores: ArrayLike, iou_thr: float, plus_one: bool = False) -> ArrayLike:
    """Greedy (hard) NMS of boxes.

    Args:
        boxes (np.ndarray | torch.Tensor): ``(N, 4)`` xyxy boxes.
        scores (np.ndarray | torch.Tensor): ``(N,)`` scores.
        iou_thr (float): A box is suppressed when its IoU with a kept box is > ``iou_thr``.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(K,)`` int64 indices of the kept boxes, by descending score.
    """
    is_torch, (boxes, scores) = _to_common(boxes, scores)
    _check_shape(boxes, 2, 'box_nms', 'boxes', '(N, 4)')
    _check_last_dim4(boxes, 'box_nms', 'boxes')
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f'box_nms: scores must have shape ({boxes.shape[0]},) to match boxes '
                         f'{tuple(boxes.shape)}, got {tuple(scores.shape)}')
    boxes = _as_float(boxes, is_torch)
    return _nms_from_iou(lambda order: box_iou(boxes[order], boxes[order], plus_one), scores, iou_thr,
                         is_torch, 'box_nms')


# ----------------------------------------------------------------------------- tubes
def mask_extents(masks: ArrayLike) -> Tuple[ArrayLike, ArrayLike, ArrayLike]:
    """Temporal extent of each row of a mask: its first and last True frame, and whether it has any.

    The one implementation of "first / last frame of a tube" in cfad-mm (temporal IoU, the linking, the tube
    coders, the analysis tools).

    Args:
        masks (np.ndarray | torch.Tensor): ``(N, T)`` masks (bool; other dtypes count as ``!= 0``).

    Returns:
        tuple: ``first (N,)``, ``last (N,)`` (int64 indices in ``0..T-1``) and ``nonempty (N,)`` bool, of the
        kind of ``masks`` (torch results on its device). An empty row gets ``first = T`` and ``last = -1``
        (so that ``first <= t <= last`` holds for no ``t``); use ``nonempty`` to tell such rows apart.

    Raises:
        ValueError: ``masks`` is not 2-D.

    Example:
        >>> first, last, nonempty = mask_extents(np.array([[0, 1, 1, 0], [0, 0, 0, 0]], bool))
        >>> first.tolist(), last.tolist(), nonempty.tolist()
        ([1, 4], [2, -1], [True, False])
    """
    is_torch = isinstance(masks, torch.Tensor)
    if not is_torch:
        masks = np.asarray(masks)
    _check_masks(masks, 'mask_extents', 'masks')
    masks = _as_bool(masks, is_torch)
    t = masks.shape[1]
    if is_torch:
        # amin/amax, not min/max(dim): the latter also compute indices and, for int64 on CPU with >1 thread,
        # cost ~5 ms per call in torch 2.13 (1000x amin), which dominated tube NMS at inference.
        idx = torch.arange(t, device=masks.device)
        start = torch.where(masks, idx, torch.full_like(idx, t)).amin(dim=1) if t else \
            torch.full((masks.shape[0], ), t, dtype=torch.long, device=masks.device)
        end = torch.where(masks, idx, torch.full_like(idx, -1)).amax(dim=1) if t else \
            torch.full((masks.shape[0], ), -1, dtype=torch.long, device=masks.device)
        return start, end, masks.any(dim=1)
    idx = np.arange(t, dtype=np.int64)
    start = np.where(masks, idx, t).min(axis=1, initial=t)
    end = np.where(masks, idx, -1).max(axis=1, initial=-1)
    return start, end, masks.any(axis=1)


def _check_masks(masks: ArrayLike, func: str, name: str) -> None:
    _check_shape(masks, 2, func, name, '(N, T)')


def _check_tubes(tubes: ArrayLike, masks: ArrayLike, func: str, suffix: str) -> None:
    if tubes.ndim != 3 or tubes.shape[-1] != 4:
        raise ValueError(f'{func}: tubes{suffix} must have shape (N, T, 4), got {tuple(tubes.shape)}')
    _check_masks(masks, func, f'masks{suffix}')
    if tuple(masks.shape) != tuple(tubes.shape[:2]):
        raise ValueError(f'{func}: masks{suffix} must have shape {tuple(tubes.shape[:2])} to match '
                         f'tubes{suffix} {tuple(tubes.shape)}, got {tuple(masks.shape)}')


def _temporal_iou(masks1, masks2, is_torch, dtype=None):
    """Temporal IoU (N, M) plus the intersection bounds (N, M) used by the st-IoU."""
    s1, e1, ne1 = mask_extents(masks1)
    s2, e2, ne2 = mask_extents(masks2)
    inter_s = _maximum(s1[:, None], s2[None, :], is_torch)
    inter_e = _minimum(e1[:, None], e2[None, :], is_torch)
    inter = _clip_min0(inter_e - inter_s + 1, is_torch)
    union = _maximum(e1[:, None], e2[None, :], is_torch) - _minimum(s1[:, None], s2[None, :], is_torch) + 1
    valid = ne1[:, None] & ne2[None, :]
    if is_torch:
        dtype = dtype or torch.get_default_dtype()
        inter, union = inter.to(dtype), union.to(dtype)
        tiou = torch.where(valid, inter / union.clamp(min=1), torch.zeros_like(inter))
    else:
        dtype = dtype or np.float64
        tiou = np.where(valid, inter / np.maximum(union, 1), 0).astype(dtype)
    return tiou, inter_s, inter_e, valid


def tube_temporal_iou(masks1: ArrayLike, masks2: ArrayLike) -> ArrayLike:
    """Temporal IoU of tube extents (first..last True frame of each mask).

    ``(min(end) - max(start) + 1) / (max(end) - min(start) + 1)``, clipped at 0; 0 when either tube is empty.

    Args:
        masks1 (np.ndarray | torch.Tensor): ``(N, T)`` bool.
        masks2 (np.ndarray | torch.Tensor): ``(M, T)`` bool.

    Returns:
        np.ndarray | torch.Tensor: ``(N, M)`` float temporal IoUs (numpy float64 / torch default dtype).
    """
    is_torch, (masks1, masks2) = _to_common(masks1, masks2)
    _check_masks(masks1, 'tube_temporal_iou', 'masks1')
    _check_masks(masks2, 'tube_temporal_iou', 'masks2')
    if masks1.shape[1] != masks2.shape[1]:
        raise ValueError(f'tube_temporal_iou: masks1 {tuple(masks1.shape)} and masks2 {tuple(masks2.shape)} '
                         'must share the time axis T')
    return _temporal_iou(_as_bool(masks1, is_torch), _as_bool(masks2, is_torch), is_torch)[0]


def _prepare_tube_pairs(func, tubes1, masks1, tubes2, masks2):
    is_torch, (tubes1, masks1, tubes2, masks2) = _to_common(tubes1, masks1, tubes2, masks2)
    _check_tubes(tubes1, masks1, func, '1')
    _check_tubes(tubes2, masks2, func, '2')
    if tubes1.shape[1] != tubes2.shape[1]:
        raise ValueError(
            f'{func}: tubes1 {tuple(tubes1.shape)} and tubes2 {tuple(tubes2.shape)} must share the '
            'time axis T')
    tubes1, tubes2 = _as_float(tubes1, is_torch), _as_float(tubes2, is_torch)
    if is_torch and tubes1.dtype != tubes2.dtype:
        dtype = torch.promote_types(tubes1.dtype, tubes2.dtype)
        tubes1, tubes2 = tubes1.to(dtype), tubes2.to(dtype)
    return is_torch, tubes1, _as_bool(masks1, is_torch), tubes2, _as_bool(masks2, is_torch)


def _frame_iou(tubes1, masks1, tubes2, masks2, plus_one, is_torch):
    ious = _iou_broadcast(tubes1[:, None], tubes2[None, :], plus_one, is_torch)  # (N, M, T)
    both = masks1[:, None, :] & masks2[None, :, :]
    if is_torch:
        return torch.where(both, ious, torch.zeros_like(ious))
    return np.where(both, ious, 0).astype(ious.dtype)


def tube_frame_iou(tubes1: ArrayLike,
                   masks1: ArrayLike,
                   tubes2: ArrayLike,
                   masks2: ArrayLike,
                   plus_one: bool = False) -> ArrayLike:
    """Per-frame IoU of every pair of tubes.

    Args:
        tubes1 (np.ndarray | torch.Tensor): ``(N, T, 4)`` xyxy boxes. masks1: ``(N, T)`` bool.
        tubes2 (np.ndarray | torch.Tensor): ``(M, T, 4)`` xyxy boxes. masks2: ``(M, T)`` bool.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(N, M, T)`` IoUs, 0 on frames where either tube has no box.
    """
    is_torch, tubes1, masks1, tubes2, masks2 = _prepare_tube_pairs('tube_frame_iou', tubes1, masks1, tubes2,
                                                                   masks2)
    return _frame_iou(tubes1, masks1, tubes2, masks2, plus_one, is_torch)


def tube_st_iou(tubes1: ArrayLike,
                masks1: ArrayLike,
                tubes2: ArrayLike,
                masks2: ArrayLike,
                plus_one: bool = False) -> ArrayLike:
    """Spatio-temporal IoU of every pair of tubes (the ACT video-mAP overlap).

    ``temporal IoU of the extents x mean per-frame IoU over the frames of the temporal intersection``; a frame
    inside the intersection where one of the tubes has no box (a hole) counts as IoU 0, a frame where neither
    tube has a box (a hole in both) is left out of the mean, so that a tube has st-IoU 1 with itself. 0 for
    disjoint or empty tubes.

    Args:
        tubes1 (np.ndarray | torch.Tensor): ``(N, T, 4)`` xyxy boxes. masks1: ``(N, T)`` bool.
        tubes2 (np.ndarray | torch.Tensor): ``(M, T, 4)`` xyxy boxes. masks2: ``(M, T)`` bool.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(N, M)`` spatio-temporal IoUs.
    """
    is_torch, tubes1, masks1, tubes2, masks2 = _prepare_tube_pairs('tube_st_iou', tubes1, masks1, tubes2,
                                                                   masks2)
    return _st_iou(tubes1, masks1, tubes2, masks2, plus_one, is_torch)


_ST_IOU_CHUNK = 1 << 22  # elements of the (rows, M, T) temporaries computed at once


def _st_iou(tubes1, masks1, tubes2, masks2, plus_one, is_torch):
    """st-IoU ``(N, M)``, computed in row chunks to bound the memory of the ``(N, M, T)`` temporaries."""
    rows = max(1, _ST_IOU_CHUNK // max(1, tubes2.shape[0] * tubes2.shape[1]))
    if tubes1.shape[0] <= rows:
        return _st_iou_dense(tubes1, masks1, tubes2, masks2, plus_one, is_torch)
    parts = [
        _st_iou_dense(tubes1[i:i + rows], masks1[i:i + rows], tubes2, masks2, plus_one, is_torch)
        for i in range(0, tubes1.shape[0], rows)
    ]
    return torch.cat(parts) if is_torch else np.concatenate(parts)


def _st_iou_dense(tubes1, masks1, tubes2, masks2, plus_one, is_torch):
    dtype = tubes1.dtype
    tiou, inter_s, inter_e, valid = _temporal_iou(masks1, masks2, is_torch, dtype)
    frame_iou = _frame_iou(tubes1, masks1, tubes2, masks2, plus_one, is_torch)  # (N, M, T)
    t = masks1.shape[1]
    if is_torch:
        idx = torch.arange(t, device=masks1.device)
        in_inter = (idx >= inter_s[..., None]) & (idx <= inter_e[..., None])
        in_inter = in_inter & (masks1[:, None, :] | masks2[None, :, :])
        summed = torch.where(in_inter, frame_iou, torch.zeros_like(frame_iou)).sum(-1)
        count = in_inter.sum(-1).to(dtype)
    else:
        idx = np.arange(t)
        in_inter = (idx >= inter_s[..., None]) & (idx <= inter_e[..., None])
        in_inter = in_inter & (masks1[:, None, :] | masks2[None, :, :])
        summed = np.where(in_inter, frame_iou, 0).sum(-1)
        count = in_inter.sum(-1).astype(dtype)
    mean_iou = _safe_divide(summed, count, is_torch)
    return tiou * mean_iou


def tube_nms(tubes: ArrayLike,
             masks: ArrayLike,
             scores: ArrayLike,
             iou_thr: float,
             plus_one: bool = False) -> ArrayLike:
    """Greedy (hard) NMS of tubes by spatio-temporal IoU (:func:`tube_st_iou`).

    Args:
        tubes (np.ndarray | torch.Tensor): ``(N, T, 4)`` xyxy boxes.
        masks (np.ndarray | torch.Tensor): ``(N, T)`` bool.
        scores (np.ndarray | torch.Tensor): ``(N,)`` scores.
        iou_thr (float): A tube is suppressed when its st-IoU with a kept tube is > ``iou_thr``.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: ``(K,)`` int64 indices of the kept tubes, by descending score.
    """
    is_torch, (tubes, masks, scores) = _to_common(tubes, masks, scores)
    _check_tubes(tubes, masks, 'tube_nms', '')
    if scores.ndim != 1 or scores.shape[0] != tubes.shape[0]:
        raise ValueError(f'tube_nms: scores must have shape ({tubes.shape[0]},) to match tubes '
                         f'{tuple(tubes.shape)}, got {tuple(scores.shape)}')
    tubes, masks = _as_float(tubes, is_torch), _as_bool(masks, is_torch)

    def iou_fn(order):
        t, m = tubes[order], masks[order]
        return _st_iou(t, m, t, m, plus_one, is_torch)

    return _nms_from_iou(iou_fn, scores, iou_thr, is_torch, 'tube_nms')


def clamp_boxes_to_image(boxes: torch.Tensor, img_shape: Tuple[int, int],
                         min_size: float = 1.0) -> torch.Tensor:
    """Boxes ``(..., 4)`` (xyxy, tensor) clamped to an image of ``(H, W)`` and kept at least ``min_size`` wide
    and high: ``x1`` in ``[0, W - min_size]``, ``x2`` in ``[x1 + min_size, max(W, x1 + min_size)]`` (same for
    y).

    The model's boxes at every stage (decoded trajectories, key boxes) go through it, so a degenerate
    trajectory still gives a valid RoI. Differentiable where the box is not clamped.
    (:func:`cfad_mm.datasets.transforms.box_mapping.clip_boxes_to_shape` clips annotation boxes without a
    minimum size, numpy or torch.)
    """
    h, w = img_shape
    x1 = boxes[..., 0].clamp(0, w - min_size)
    y1 = boxes[..., 1].clamp(0, h - min_size)
    x2 = torch.maximum(boxes[..., 2].clamp(0, w), x1 + min_size)
    y2 = torch.maximum(boxes[..., 3].clamp(0, h), y1 + min_size)
    return torch.stack([x1, y1, x2, y2], dim=-1)
