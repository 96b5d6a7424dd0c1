"""Vectorized building blocks of the metrics: per-group greedy NMS and greedy detection-to-GT matching.

Both operate on MANY independent groups at once (a group is a (video, frame, class) for frame-mAP, a
(video, class) for video-mAP). The greedy loop that the protocols prescribe is inherent, but it only runs over
the rank of a detection inside its group (a handful of steps); each step is a numpy operation over all
groups. The IoUs come from :mod:`cfad_mm.structures.tube_ops`.
"""
from typing import Tuple

import numpy as np

from cfad_mm.structures.tube_ops import box_iou_aligned

__all__ = [
    'descending_score_order', 'numpy_per_class_order', 'ranking_order', 'group_ranks', 'grouped_box_nms',
    'greedy_match'
]

# Upper bound of the number of IoU entries computed at once by grouped_box_nms (memory ~ 8 bytes each).
_NMS_CHUNK_ELEMENTS = 4_000_000


def descending_score_order(scores: np.ndarray, *tie_keys: np.ndarray) -> np.ndarray:
    """Indices sorting by descending score; ties by the ``tie_keys`` (ascending, in order), then by index.

    The sort is stable, so equal scores keep their input order: with inputs built in a deterministic order
    (videos in annotation order, frames ascending) the result never depends on how predictions arrived. (ACT
    uses numpy's unstable quicksort here; only exactly tied scores can be ordered differently.)

    Args:
        scores (np.ndarray): ``(N,)`` scores.
        *tie_keys (np.ndarray): ``(N,)`` secondary keys.

    Returns:
        np.ndarray: ``(N,)`` int64 permutation.
    """
    scores = np.asarray(scores, dtype=np.float64)
    keys = [np.arange(len(scores))] + [np.asarray(k) for k in reversed(tie_keys)] + [-scores]
    return np.lexsort(keys).astype(np.int64)


def numpy_per_class_order(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """mmaction2's ranking: per class, ``np.argsort(-scores)`` of that class's detections in input order.

    mmaction2's ``frameAP`` / ``videoAP`` sort each class with numpy's default (unstable) sort, whose order
    of exactly tied scores is deterministic for a given array but not the input order. Reproducing the call
    on the same sub-array reproduces that order. The classes are concatenated (ascending); only the order
    inside a class matters to the matching and the PR curves.

    Args:
        scores (np.ndarray): ``(N,)`` scores (float64, as mmaction2's arrays).
        labels (np.ndarray): ``(N,)`` int classes.

    Returns:
        np.ndarray: ``(N,)`` int64 permutation.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    parts = []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        parts.append(idx[np.argsort(-scores[idx])])
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def ranking_order(scores: np.ndarray, labels: np.ndarray, tie_order: str = 'stable') -> np.ndarray:
    """Visiting order of the detections: :func:`descending_score_order` (``'stable'``) or
    :func:`numpy_per_class_order` (``'numpy'``, protocol ``'multisports'``)."""
    if tie_order == 'stable':
        return descending_score_order(scores)
    if tie_order == 'numpy':
        return numpy_per_class_order(scores, labels)
    raise ValueError(f"tie_order must be 'stable' or 'numpy', got {tie_order!r}")


def group_ranks(groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of every element inside its group when the elements are visited in ``order``.

    Args:
        groups (np.ndarray): ``(N,)`` int64 group ids (any values).
        order (np.ndarray): ``(N,)`` permutation giving the visiting order.

    Returns:
        np.ndarray: ``(N,)`` int64, 0 for the first visited element of each group, 1 for the second, ...
    """
    n = len(groups)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    by_group = np.lexsort((position, groups))
    sorted_groups = groups[by_group]
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    ranks = np.empty(n, dtype=np.int64)
    ranks[by_group] = np.arange(n) - first
    return ranks


def _group_spans(groups_sorted: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Start offset and size of every group of elements already sorted by group."""
    n = len(groups_sorted)
    starts_flag = np.ones(n, dtype=bool)
    starts_flag[1:] = groups_sorted[1:] != groups_sorted[:-1]
    starts = np.nonzero(starts_flag)[0]
    return starts, np.diff(np.append(starts, n))


def grouped_box_nms(boxes: np.ndarray,
                    scores: np.ndarray,
                    groups: np.ndarray,
                    iou_thr: float,
                    plus_one: bool = False) -> np.ndarray:
    """Greedy (hard) NMS run independently inside every group, vectorized over the groups.

    Same semantics as :func:`cfad_mm.structures.tube_ops.box_nms` applied to each group on its own: boxes are
    visited by descending score (ties: lower index first) and a box is suppressed when its IoU with a kept box
    of the same group is strictly greater than ``iou_thr``. Groups are bucketed by size and padded, and the
    suppression loop runs over the position inside a group (a few steps) with numpy operations over all groups
    of the bucket; the IoUs come from :func:`~cfad_mm.structures.tube_ops.box_iou_aligned`.

    Args:
        boxes (np.ndarray): ``(N, 4)`` xyxy boxes.
        scores (np.ndarray): ``(N,)`` scores.
        groups (np.ndarray): ``(N,)`` int group ids; boxes of different groups never suppress each other.
        iou_thr (float): Suppression threshold.
        plus_one (bool): ACT inclusive-pixel convention. Defaults to False.

    Returns:
        np.ndarray: ``(N,)`` bool, True for the kept boxes.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    n = len(scores)
    if len(boxes) != n or len(groups) != n:
        raise ValueError(f'grouped_box_nms: boxes {boxes.shape}, scores {scores.shape} and groups '
                         f'{groups.shape} must have the same length')
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort((np.arange(n), -scores, groups))
    starts, sizes = _group_spans(groups[order])
    # Bucket groups by size (powers of two) so that padding wastes at most half of the work.
    bucket_of_group = np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64)
    for bucket in np.unique(bucket_of_group):
        width = int(sizes[bucket_of_group == bucket].max())
        if width < 2:
            continue  # single boxes are always kept
        group_ids = np.nonzero(bucket_of_group == bucket)[0]
        chunk = max(1, _NMS_CHUNK_ELEMENTS // (width * width))
        for c0 in range(0, len(group_ids), chunk):
            gids = group_ids[c0:c0 + chunk]
            g_starts, g_sizes = starts[gids], sizes[gids]
            slot = np.arange(width)
            valid = slot[None, :] < g_sizes[:, None]  # (G, W)
            flat = np.where(valid, g_starts[:, None] + slot[None, :], 0)
            members = order[flat]  # (G, W) original indices, visiting order along W
            pad_boxes = boxes[members]
            ious = box_iou_aligned(pad_boxes[:, :, None, :], pad_boxes[:, None, :, :], plus_one)  # (G, W, W)
            suppressed = ~valid
            later = slot[None, :] > slot[:, None]  # (W, W): j visited after i
            for i in range(width):
                active = ~suppressed[:, i]
                if not active.any():
                    continue
                suppressed |= active[:, None] & (ious[:, i, :] > iou_thr) & later[i][None, :]
            keep[members[valid]] = ~suppressed[valid]
    return keep


def greedy_match(order: np.ndarray,
                 det_groups: np.ndarray,
                 det_ious: np.ndarray,
                 gt_valid: np.ndarray,
                 iou_thr: float,
                 matching: str = 'remaining') -> np.ndarray:
    """Greedy matching of detections to ground truth, detections visited in ``order``.

    ``matching='remaining'`` (ACT): a detection takes the GT of its group with the highest IoU among those not
    matched yet (first one on ties, as ``np.argmax``); it is a true positive when that IoU is >= ``iou_thr``,
    and the GT is then removed. ``matching='voc'``: the best GT among ALL of its group; true positive when the
    IoU is >= ``iou_thr`` and that GT is not matched yet (then it becomes matched), false positive otherwise.

    Only the order of the detections inside a group matters (groups do not share GT), so the loop runs over
    the rank inside the group with vectorized steps over all groups.

    Args:
        order (np.ndarray): ``(N,)`` visiting order (descending score).
        det_groups (np.ndarray): ``(N,)`` int, the GT group of each detection, -1 when its group has no GT
            (always a false positive).
        det_ious (np.ndarray): ``(N, G)`` IoU of each detection with the GT slots of its group.
        gt_valid (np.ndarray): ``(num_groups, G)`` bool, which GT slots exist.
        iou_thr (float): Minimum IoU of a true positive.
        matching (str): ``'remaining'`` or ``'voc'``. Defaults to ``'remaining'``.

    Returns:
        np.ndarray: ``(N,)`` bool true-positive flags (indexed like the detections, not like ``order``).
    """
    if matching not in ('remaining', 'voc'):
        raise ValueError(f"greedy_match: matching must be 'remaining' or 'voc', got {matching!r}")
    det_groups = np.asarray(det_groups, dtype=np.int64).reshape(-1)
    n = len(det_groups)
    tp = np.zeros(n, dtype=bool)
    with_gt = np.nonzero(det_groups >= 0)[0]
    if len(with_gt) == 0:
        return tp
    det_ious = np.asarray(det_ious, dtype=np.float64)
    gt_valid = np.asarray(gt_valid, dtype=bool)
    if det_ious.shape != (n, gt_valid.shape[1]):
        raise ValueError(f'greedy_match: det_ious must have shape ({n}, {gt_valid.shape[1]}), '
                         f'got {det_ious.shape}')
    ranks = group_ranks(det_groups, order)[with_gt]
    unmatched = gt_valid.copy()
    by_rank = with_gt[np.argsort(ranks, kind='stable')]
    rank_sorted = np.sort(ranks, kind='stable')
    bounds = np.searchsorted(rank_sorted, np.arange(rank_sorted[-1] + 2))
    for r in range(rank_sorted[-1] + 1):
        dets = by_rank[bounds[r]:bounds[r + 1]]
        g = det_groups[dets]
        ious = det_ious[dets]
        if matching == 'remaining':
            cand = np.where(unmatched[g], ious, -np.inf)
            best = np.argmax(cand, axis=1)
            best_iou = cand[np.arange(len(dets)), best]
            ok = best_iou >= iou_thr
        else:
            cand = np.where(gt_valid[g], ious, -np.inf)
            best = np.argmax(cand, axis=1)
            best_iou = cand[np.arange(len(dets)), best]
            ok = (best_iou >= iou_thr) & unmatched[g, best]
        unmatched[g[ok], best[ok]] = False
        tp[dets[ok]] = True
    return tp
