"""frame-mAP: per-frame box detection AP over every frame of every evaluated video (ACT protocol).

ACT's ``frameAP`` (``ACT.py``), vectorized:

1. Per (video, frame, class), the detections go through hard NMS (``nms_thr``, 0.3; suppress IoU > thr).
2. Per class, all detections of all videos are sorted by descending score. A detection is a true positive
   when its best IoU against the ground-truth boxes of that class in that (video, frame) is >= ``iou_thr``
   (0.5) -- against the REMAINING boxes with ``protocol='act'`` (the matched box is then removed), against all
   boxes with ``protocol='voc'`` (a duplicate of a matched box is a false positive).
3. AP from the PR curve (ACT: starts at (0, 1), trapezoid, no envelope); classes without any ground-truth box
   in the evaluated videos are skipped (their AP is undefined); frame-mAP = mean over the other classes.

Every frame counts, annotated or not: a detection on a frame without ground truth of its class is a false
positive (this differs from YOWO's evaluation, which only looks at annotated frames).

``protocol='multisports'`` reproduces mmaction2's ``frameAP`` exactly (see :mod:`.protocol`): no NMS, VOC
matching and AP, six classes skipped by name, mmaction2's per-class ``np.argsort`` ranking.
"""
from typing import List, Optional, Union

import numpy as np

from cfad_mm.structures.tube_ops import box_iou_aligned
from .ap import per_class_ap
from .ground_truth import gt_frame_boxes
from .matching import greedy_match, grouped_box_nms, ranking_order
from .protocol import EvalProtocol, get_protocol, skipped_class_mask

__all__ = ['frame_map', 'frame_detections_to_dict']

FRAME_DET_KEYS = ('video_idx', 'frame', 'label', 'score', 'boxes')


def frame_detections_to_dict(detections: Union[np.ndarray, dict]) -> dict:
    """Normalise frame detections to a dict of flat arrays.

    Args:
        detections (np.ndarray | dict): Either ACT's ``alldets`` layout, an ``(N, 8)`` array of rows
            ``[video_idx, frame (1-based), label (0-based), score, x1, y1, x2, y2]``, or a dict with
            ``video_idx``, ``frame``, ``label``, ``score`` ``(N,)`` and ``boxes`` ``(N, 4)``.

    Returns:
        dict: ``video_idx``, ``frame``, ``label`` (int64), ``score`` (float64), ``boxes``
        (float64 ``(N, 4)``).
    """
    if isinstance(detections, dict):
        missing = [k for k in FRAME_DET_KEYS if k not in detections]
        if missing:
            raise KeyError(f'frame detections: missing keys {missing} (need {list(FRAME_DET_KEYS)})')
        out = dict(
            video_idx=np.asarray(detections['video_idx']).astype(np.int64).reshape(-1),
            frame=np.asarray(detections['frame']).astype(np.int64).reshape(-1),
            label=np.asarray(detections['label']).astype(np.int64).reshape(-1),
            score=np.asarray(detections['score'], dtype=np.float64).reshape(-1),
            boxes=np.asarray(detections['boxes'], dtype=np.float64).reshape(-1, 4))
    else:
        arr = np.asarray(detections, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 8)
        if arr.ndim != 2 or arr.shape[1] != 8:
            raise ValueError(
                'frame detections must be an (N, 8) array of rows [video_idx, frame, label, score, '
                f'x1, y1, x2, y2], got shape {arr.shape}')
        out = dict(
            video_idx=np.round(arr[:, 0]).astype(np.int64),
            frame=np.round(arr[:, 1]).astype(np.int64),
            label=np.round(arr[:, 2]).astype(np.int64),
            score=arr[:, 3].copy(),
            boxes=arr[:, 4:8].copy())
    n = len(out['score'])
    for key in FRAME_DET_KEYS:
        if len(out[key]) != n:
            raise ValueError(f'frame detections: {key} has {len(out[key])} entries, score has {n}')
    return out


def _check_detections(dets: dict, ann: dict, videos: List[str], num_classes: int) -> None:
    vi, frame, label = dets['video_idx'], dets['frame'], dets['label']
    if len(vi) == 0:
        return
    if vi.min() < 0 or vi.max() >= len(videos):
        raise ValueError(
            f'frame detections: video_idx must index the {len(videos)} evaluated videos, got values '
            f'in [{vi.min()}, {vi.max()}]')
    if label.min() < 0 or label.max() >= num_classes:
        raise ValueError(f'frame detections: labels must be in 0..{num_classes - 1}, got values in '
                         f'[{label.min()}, {label.max()}]')
    nframes = np.array([ann['nframes'][v] for v in videos], dtype=np.int64)
    bad = (frame < 1) | (frame > nframes[vi])
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(f'frame detections: frame {frame[i]} of video {videos[vi[i]]!r} is outside '
                         f'1..{nframes[vi[i]]} (nframes)')
    if not np.all(np.isfinite(dets['boxes'])) or not np.all(np.isfinite(dets['score'])):
        raise ValueError('frame detections: boxes and scores must be finite')


def frame_map(detections: Union[np.ndarray, dict],
              ann: dict,
              videos: List[str],
              iou_thr: float = 0.5,
              nms_thr: Optional[float] = 0.3,
              protocol: Union[str, EvalProtocol] = 'act') -> dict:
    """frame-mAP of frame-level detections (see the module docstring for the protocol).

    Args:
        detections (np.ndarray | dict): Frame detections (:func:`frame_detections_to_dict`); ``video_idx``
            indexes ``videos``.
        ann (dict): Normalised annotation dict (:func:`~.ground_truth.resolve_annotations`).
        videos (list[str]): The evaluated videos (all of their annotated boxes are ground truth).
        iou_thr (float): IoU of a true positive. Defaults to 0.5.
        nms_thr (float, optional): Per (video, frame, class) hard-NMS threshold; None disables it. Ignored
            by ``protocol='multisports'`` (mmaction2's ``frameAP`` has no NMS). Defaults to 0.3 (ACT).
        protocol (str | EvalProtocol): ``'act'``, ``'voc'`` or ``'multisports'``. Defaults to ``'act'``.

    Returns:
        dict: ``ap`` (C,) float64 (NaN for skipped classes), ``evaluated`` (C,) bool (class has ground truth),
        ``num_gt`` (C,), ``num_dets`` (C,) (after NMS), ``precision`` / ``recall`` (lists of C arrays, empty
        for skipped classes), ``mAP`` (float, mean AP over the evaluated classes; NaN if none).
    """
    protocol = get_protocol(protocol)
    num_classes = len(ann['labels'])
    dets = frame_detections_to_dict(detections)
    _check_detections(dets, ann, videos, num_classes)
    fmax = max([ann['nframes'][v] for v in videos] + [1]) + 1

    def keys_of(video_idx, frame, label):
        return (video_idx * fmax + frame) * num_classes + label

    det_keys = keys_of(dets['video_idx'], dets['frame'], dets['label'])
    if protocol.eval_nms and nms_thr is not None and len(det_keys):
        keep = grouped_box_nms(dets['boxes'], dets['score'], det_keys, nms_thr, protocol.plus_one)
        dets = {k: v[keep] for k, v in dets.items()}
        det_keys = det_keys[keep]

    # Ground truth grouped by (video, frame, class), padded to the largest group.
    gt = gt_frame_boxes(ann, videos)
    gt_keys = keys_of(gt['video_idx'], gt['frame'], gt['label'])
    group_keys, gt_group, group_sizes = np.unique(gt_keys, return_inverse=True, return_counts=True)
    width = int(group_sizes.max()) if len(group_sizes) else 1
    order_gt = np.argsort(gt_group, kind='stable')
    slot = np.empty(len(gt_keys), dtype=np.int64)
    slot[order_gt] = np.arange(len(gt_keys)) - np.repeat(np.cumsum(group_sizes) - group_sizes, group_sizes)
    gt_boxes = np.zeros((len(group_keys), width, 4), dtype=np.float64)
    gt_valid = np.zeros((len(group_keys), width), dtype=bool)
    gt_boxes[gt_group, slot] = gt['boxes']
    gt_valid[gt_group, slot] = True

    det_group = np.searchsorted(group_keys, det_keys)
    found = det_group < len(group_keys)
    found[found] = group_keys[det_group[found]] == det_keys[found]
    det_group = np.where(found, det_group, -1)
    det_ious = np.zeros((len(det_keys), width), dtype=np.float64)
    if found.any():
        det_ious[found] = box_iou_aligned(dets['boxes'][found][:, None, :], gt_boxes[det_group[found]],
                                          protocol.plus_one)

    order = ranking_order(dets['score'], dets['label'], protocol.tie_order)
    tp = greedy_match(order, det_group, det_ious, gt_valid, iou_thr, protocol.matching)

    num_gt = np.bincount(gt['label'], minlength=num_classes)
    skip = skipped_class_mask(protocol, ann['labels'])
    return per_class_ap(order, dets['label'], tp, num_gt, protocol, skip)
