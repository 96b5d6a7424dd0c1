"""Precision/recall curves and average precision (ACT trapezoid or VOC all-point)."""
from typing import Optional, Tuple, Union

import numpy as np

from .protocol import EvalProtocol, get_protocol

__all__ = ['pr_curve', 'average_precision', 'act_pr_to_ap', 'voc_pr_to_ap', 'per_class_ap', 'subsample_pr']


def pr_curve(tp_sorted: np.ndarray,
             num_gt: int,
             protocol: Union[str, EvalProtocol] = 'act') -> Tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, the detections visited by descending score.

    Args:
        tp_sorted (np.ndarray): ``(N,)`` bool, whether the i-th best-scored detection is a true positive.
        num_gt (int): Number of ground-truth instances (positives). Must be > 0.
        protocol (str | EvalProtocol): With ``pr_start_point`` (ACT) the curve starts with (recall 0,
            precision 1), as ACT's ``pr[0] = (1.0, 0.0)``. Defaults to ``'act'``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``precision`` and ``recall``, float64 ``(N + 1,)`` (ACT) or ``(N,)``.
    """
    protocol = get_protocol(protocol)
    if num_gt <= 0:
        raise ValueError(
            f'pr_curve: num_gt must be > 0 (classes without ground truth are skipped), got {num_gt}')
    tp_sorted = np.asarray(tp_sorted, dtype=bool).reshape(-1)
    tp = np.cumsum(tp_sorted, dtype=np.float64)
    fp = np.cumsum(~tp_sorted, dtype=np.float64)
    precision = tp / np.maximum(tp + fp, 1.0)
    recall = tp / float(num_gt)
    if protocol.pr_start_point:
        precision = np.concatenate([[1.0], precision])
        recall = np.concatenate([[0.0], recall])
    return precision, recall


def _pr_arrays(precision, recall, caller: str) -> Tuple[np.ndarray, np.ndarray]:
    """``precision`` and ``recall`` as float64 arrays, checked to be 1-D of the same length."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if precision.shape != recall.shape or precision.ndim != 1:
        raise ValueError(
            f'{caller}: precision {precision.shape} and recall {recall.shape} must be 1-D of the same length')
    return precision, recall


def act_pr_to_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """ACT's ``pr_to_ap``: trapezoidal area under the raw PR curve (no precision envelope).

    ``sum((r[1:] - r[:-1]) * (p[1:] + p[:-1]) / 2)``.

    Args:
        precision (np.ndarray): ``(N,)`` precisions.
        recall (np.ndarray): ``(N,)`` recalls (non-decreasing).

    Returns:
        float: The AP in [0, 1].
    """
    precision, recall = _pr_arrays(precision, recall, 'act_pr_to_ap')
    if precision.size < 2:
        return 0.0
    return float(np.sum((recall[1:] - recall[:-1]) * (precision[1:] + precision[:-1]) * 0.5))


def voc_pr_to_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """PASCAL-VOC all-point interpolated AP (as mmaction2's ``pr_to_ap_voc``).

    Sentinels recall 0 / 1 with precision 0 are added, the precision is replaced by its running maximum from
    the right (the envelope), and the envelope is summed over the recall steps.

    Args:
        precision (np.ndarray): ``(N,)`` precisions.
        recall (np.ndarray): ``(N,)`` recalls (non-decreasing).

    Returns:
        float: The AP in [0, 1].
    """
    precision, recall = _pr_arrays(precision, recall, 'voc_pr_to_ap')
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def average_precision(precision: np.ndarray,
                      recall: np.ndarray,
                      protocol: Union[str, EvalProtocol] = 'act') -> float:
    """AP of a PR curve with the rule of ``protocol`` (:func:`act_pr_to_ap` or :func:`voc_pr_to_ap`).

    Args:
        precision (np.ndarray): ``(N,)`` precisions.
        recall (np.ndarray): ``(N,)`` recalls.
        protocol (str | EvalProtocol): ``'act'`` or ``'voc'``. Defaults to ``'act'``.

    Returns:
        float: The AP in [0, 1].
    """
    protocol = get_protocol(protocol)
    if protocol.ap_mode == 'trapezoid':
        return act_pr_to_ap(precision, recall)
    return voc_pr_to_ap(precision, recall)


def subsample_pr(precision: np.ndarray, recall: np.ndarray, max_points: int = 1000) -> Tuple[list, list]:
    """At most ``max_points`` points of a PR curve (for JSON dumps and plots), first and last always kept.

    The AP is always computed on the full curve; this only bounds the size of the dump (frame-level curves of
    UCF101-24 have millions of points).

    Args:
        precision (np.ndarray): ``(N,)`` precisions.
        recall (np.ndarray): ``(N,)`` recalls.
        max_points (int): Maximum number of points kept (>= 2). Defaults to 1000.

    Returns:
        tuple[list, list]: precision and recall as lists of Python floats (rounded to 6 decimals).
    """
    if max_points < 2:
        raise ValueError(f'subsample_pr: max_points must be >= 2, got {max_points}')
    n = len(precision)
    if n > max_points:
        idx = np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))
        precision, recall = np.asarray(precision)[idx], np.asarray(recall)[idx]
    return ([round(float(p), 6) for p in precision], [round(float(r), 6) for r in recall])


def per_class_ap(order: np.ndarray,
                 labels: np.ndarray,
                 tp: np.ndarray,
                 num_gt: np.ndarray,
                 protocol: Union[str, EvalProtocol] = 'act',
                 skip: Optional[np.ndarray] = None) -> dict:
    """Per-class PR curves and APs of scored detections whose true-positive flags are known.

    Args:
        order (np.ndarray): ``(N,)`` visiting order of the detections (descending score).
        labels (np.ndarray): ``(N,)`` int class of each detection.
        tp (np.ndarray): ``(N,)`` bool true-positive flags (indexed like the detections).
        num_gt (np.ndarray): ``(C,)`` number of ground-truth instances per class; classes with 0 are skipped.
        protocol (str | EvalProtocol): ``'act'``, ``'voc'`` or ``'multisports'``. Defaults to ``'act'``.
        skip (np.ndarray, optional): ``(C,)`` bool, classes not evaluated whatever their ground truth (the
            protocol's ``skip_classes``). Defaults to None.

    Returns:
        dict: ``ap`` (C,) float64 (NaN for skipped classes), ``evaluated`` (C,) bool, ``num_gt`` (C,),
        ``num_dets`` (C,), ``precision`` / ``recall`` (lists of C arrays, empty for skipped classes) and
        ``mAP`` (mean AP of the evaluated classes; NaN when no class has ground truth).
    """
    protocol = get_protocol(protocol)
    num_gt = np.asarray(num_gt, dtype=np.int64)
    num_classes = len(num_gt)
    labels = np.asarray(labels, dtype=np.int64)
    sorted_labels = labels[order]
    by_class = order[np.argsort(sorted_labels, kind='stable')]
    bounds = np.searchsorted(np.sort(sorted_labels, kind='stable'), np.arange(num_classes + 1))
    ap = np.full(num_classes, np.nan)
    skip = np.zeros(num_classes, dtype=bool) if skip is None else np.asarray(skip, dtype=bool).reshape(-1)
    if len(skip) != num_classes:
        raise ValueError(f'per_class_ap: skip has {len(skip)} entries for {num_classes} classes')
    precision, recall = [], []
    for c in range(num_classes):
        if num_gt[c] == 0 or skip[c]:
            precision.append(np.zeros(0))
            recall.append(np.zeros(0))
            continue
        p, r = pr_curve(tp[by_class[bounds[c]:bounds[c + 1]]], int(num_gt[c]), protocol)
        ap[c] = average_precision(p, r, protocol)
        precision.append(p)
        recall.append(r)
    evaluated = (num_gt > 0) & ~skip
    return dict(
        ap=ap,
        evaluated=evaluated,
        num_gt=num_gt,
        num_dets=np.diff(bounds).astype(np.int64),
        precision=precision,
        recall=recall,
        mAP=float(np.mean(ap[evaluated])) if evaluated.any() else float('nan'))
