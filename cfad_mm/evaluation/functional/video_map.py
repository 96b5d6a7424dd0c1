"""video-mAP: AP of whole video tubes by spatio-temporal IoU (ACT protocol).

ACT's ``videoAP`` (``ACT.py``), vectorized over videos:

1. Per video and class, the detected tubes pass hard 3-D NMS (``nms_thr``, 0.3; suppress st-IoU > thr;
   ACT's ``nms3dt``).
2. Per class, the remaining tubes of ALL videos are sorted by descending score; each is matched greedily with
   the ground-truth tubes of that class in its video: best st-IoU among the REMAINING ones >= threshold ->
   true positive and that GT is removed (``protocol='act'``), or VOC matching (``protocol='voc'``).
3. AP as in frame-mAP; classes without ground-truth tubes are skipped; video-mAP = mean over the others.

Spatio-temporal IoU (:func:`cfad_mm.structures.tube_ops.tube_st_iou`, ACT's ``iou3dt``): temporal IoU of the
extents, ``(min end - max start + 1) / (max end - min start + 1)``, times the mean per-frame IoU over the
frames of the temporal intersection. All thresholds are evaluated from one st-IoU computation.

``protocol='multisports'`` reproduces mmaction2's ``videoAP`` exactly on the same tubes (see
:mod:`.protocol`): no NMS, temporal IoU without ``+ 1`` (``iou3dt_voc``), VOC matching and AP, six classes
skipped by name, mmaction2's per-class ``np.argsort`` ranking (the tubes of a class visited in ``videos``
order, then the order of the video's own arrays).
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from cfad_mm.structures.tube_ops import mask_extents, tube_frame_iou, tube_nms, tube_st_iou
from .ap import per_class_ap
from .ground_truth import dense_gt_tubes
from .matching import greedy_match, ranking_order
from .protocol import EvalProtocol, get_protocol, skipped_class_mask

__all__ = ['video_map', 'check_video_tubes', 'st_iou_exclusive_time', 'temporal_iou_exclusive_time',
           'VIDEO_05_095_THRS']

#: The ten thresholds of video-mAP@0.5:0.95.
VIDEO_05_095_THRS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

TUBE_KEYS = ('tubes', 'tube_masks', 'scores', 'labels')


def check_video_tubes(tubes: dict, video: str, nframes: int, num_classes: int) -> dict:
    """Validate and normalise the detected tubes of one video.

    Args:
        tubes (dict): ``tubes (K, nframes, 4)``, ``tube_masks (K, nframes)`` bool, ``scores (K,)``,
            ``labels (K,)`` 0-based.
        video (str): Video name (for the messages).
        nframes (int): Number of frames of the video.
        num_classes (int): Number of classes.

    Returns:
        dict: The same keys as float64 / bool / float64 / int64 numpy arrays.
    """
    missing = [k for k in TUBE_KEYS if k not in tubes]
    if missing:
        raise KeyError(f'video tubes of {video!r}: missing keys {missing} (need {list(TUBE_KEYS)})')
    boxes = np.asarray(tubes['tubes'], dtype=np.float64)
    masks = np.asarray(tubes['tube_masks']).astype(bool)
    scores = np.asarray(tubes['scores'], dtype=np.float64).reshape(-1)
    labels = np.asarray(tubes['labels']).astype(np.int64).reshape(-1)
    k = len(scores)
    if boxes.size == 0 and k == 0:
        boxes, masks = boxes.reshape(0, nframes, 4), masks.reshape(0, nframes)
    if boxes.shape != (k, nframes, 4) or masks.shape != (k, nframes) or labels.shape != (k, ):
        raise ValueError(
            f'video tubes of {video!r} ({nframes} frames): expected tubes ({k}, {nframes}, 4), '
            f'tube_masks ({k}, {nframes}), labels ({k},) for {k} scores, got tubes {boxes.shape}, '
            f'tube_masks {masks.shape}, labels {labels.shape}')
    if k and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'video tubes of {video!r}: labels must be in 0..{num_classes - 1}, got '
                         f'{sorted(set(labels.tolist()))}')
    if not np.all(np.isfinite(scores)) or not np.all(np.isfinite(boxes[masks])):
        raise ValueError(f'video tubes of {video!r}: scores and boxes must be finite')
    return dict(tubes=boxes, tube_masks=masks, scores=scores, labels=labels)


def st_iou_exclusive_time(tubes1: np.ndarray, masks1: np.ndarray, tubes2: np.ndarray, masks2: np.ndarray,
                          plus_one: bool = False) -> np.ndarray:
    """st-IoU with mmaction2's temporal IoU (``iou3dt_voc``): no ``+ 1``.

    Temporal IoU ``(min end - max start) / (max end - min start)`` of the extents (frame indices).

    The spatial part is that of :func:`cfad_mm.structures.tube_ops.tube_st_iou` (mean per-frame IoU over the
    frames of the temporal intersection; for hole-free tubes exactly mmaction2's ``iou3d_voc``). 0 for
    disjoint or empty tubes and for tubes sharing one frame; NaN (as in mmaction2: 0 / 0) for two one-frame
    tubes on the same frame.

    Args:
        tubes1 (np.ndarray): ``(N, T, 4)``. masks1: ``(N, T)`` bool.
        tubes2 (np.ndarray): ``(M, T, 4)``. masks2: ``(M, T)`` bool.
        plus_one (bool): Inclusive-pixel box convention. Defaults to False.

    Returns:
        np.ndarray: ``(N, M)`` float64.
    """
    masks1, masks2 = np.asarray(masks1, dtype=bool), np.asarray(masks2, dtype=bool)
    n, m, t = masks1.shape[0], masks2.shape[0], masks1.shape[1]
    out = np.zeros((n, m), dtype=np.float64)
    if n == 0 or m == 0 or t == 0:
        return out
    idx = np.arange(t)
    tiou, inter_s, inter_e, overlap = _exclusive_temporal_overlap(masks1, masks2)
    if not overlap.any():
        return out
    frame_iou = tube_frame_iou(tubes1, masks1, tubes2, masks2, plus_one)  # (N, M, T)
    in_inter = (idx >= inter_s[..., None]) & (idx <= inter_e[..., None]) & (masks1[:, None] | masks2[None])
    count = in_inter.sum(-1)
    mean_iou = np.where(in_inter, frame_iou, 0).sum(-1) / np.maximum(count, 1)
    out[overlap] = (mean_iou * tiou)[overlap]
    return out


def temporal_iou_exclusive_time(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """The temporal part ``(N, M)`` of :func:`st_iou_exclusive_time`: ``(min end - max start) / (max end -
    min start)`` of the extents of masks ``(N, T)`` and ``(M, T)``; 0 for disjoint or empty tubes, NaN (0 / 0)
    for two one-frame tubes on the same frame."""
    masks1, masks2 = np.asarray(masks1, dtype=bool), np.asarray(masks2, dtype=bool)
    tiou, _, _, overlap = _exclusive_temporal_overlap(masks1, masks2)
    return np.where(overlap, tiou, 0.0)


def _exclusive_temporal_overlap(masks1: np.ndarray, masks2: np.ndarray):
    """Temporal IoU without ``+ 1`` ``(N, M)`` (NaN for 0 / 0), the intersection bounds ``(N, M)`` x 2 and
    whether the extents overlap ``(N, M)``."""
    s1, e1, nonempty1 = mask_extents(masks1)
    s2, e2, nonempty2 = mask_extents(masks2)
    inter_s, inter_e = np.maximum(s1[:, None], s2[None, :]), np.minimum(e1[:, None], e2[None, :])
    union = (np.maximum(e1[:, None], e2[None, :]) - np.minimum(s1[:, None], s2[None, :])).astype(np.float64)
    overlap = (inter_e >= inter_s) & nonempty1[:, None] & nonempty2[None, :]
    with np.errstate(invalid='ignore', divide='ignore'):
        tiou = (inter_e - inter_s).astype(np.float64) / union
    return tiou, inter_s, inter_e, overlap


def video_map(video_tubes: Dict[str, dict],
              ann: dict,
              videos: List[str],
              iou_thrs: Sequence[float] = (0.2, 0.5, 0.75) + VIDEO_05_095_THRS,
              nms_thr: Optional[float] = 0.3,
              protocol: Union[str, EvalProtocol] = 'act') -> Dict[float, dict]:
    """video-mAP of detected video tubes at several st-IoU thresholds.

    Args:
        video_tubes (dict[str, dict]): Per video, ``tubes (K, nframes, 4)``, ``tube_masks (K, nframes)``,
            ``scores (K,)``, ``labels (K,)``, dense on the video's time axis (e.g. the output of
            :func:`cfad_mm.evaluation.link_video_tubes`). Evaluated videos without an entry have no detection
            (their ground truth are misses).
        ann (dict): Normalised annotation dict.
        videos (list[str]): The evaluated videos.
        iou_thrs (Sequence[float]): st-IoU thresholds. Defaults to 0.2, 0.5, 0.75 and 0.5:0.05:0.95.
        nms_thr (float, optional): Per (video, class) tube-NMS threshold; None disables it. Ignored by
            ``protocol='multisports'`` (mmaction2's ``videoAP`` has no NMS). Defaults to 0.3.
        protocol (str | EvalProtocol): ``'act'``, ``'voc'`` or ``'multisports'``. Defaults to ``'act'``.

    Returns:
        dict[float, dict]: For every distinct threshold (rounded to 4 decimals), the per-class result of
        :func:`~.ap.per_class_ap` (``ap``, ``evaluated``, ``num_gt``, ``num_dets``, ``precision``, ``recall``,
        ``mAP``).
    """
    protocol = get_protocol(protocol)
    num_classes = len(ann['labels'])
    video_set = set(videos)
    unknown = sorted(v for v in video_tubes if v not in video_set)
    if unknown:
        raise ValueError(
            f'video_map: detections for {len(unknown)} video(s) that are not evaluated (not in the '
            f'evaluated split), e.g. {unknown[:3]}')
    thrs = sorted({round(float(t), 4) for t in iou_thrs})
    if not thrs or thrs[0] <= 0 or thrs[-1] > 1:
        raise ValueError(f'video_map: iou_thrs must be in (0, 1], got {list(iou_thrs)}')

    scores, labels, groups, ious = [], [], [], []
    gt_counts = []  # number of GT tubes of each (video, class) group, in group-id order
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for video in videos:
        gt_boxes, gt_masks, gt_labels = dense_gt_tubes(ann, video)
        np.add.at(num_gt, gt_labels, 1)
        gt_group_of_class = {}
        for c in np.unique(gt_labels):
            gt_group_of_class[int(c)] = len(gt_counts)
            gt_counts.append(int((gt_labels == c).sum()))
        if video not in video_tubes:
            continue
        det = check_video_tubes(video_tubes[video], video, ann['nframes'][video], num_classes)
        for c in np.unique(det['labels']):
            idx = np.nonzero(det['labels'] == c)[0]
            if protocol.eval_nms and nms_thr is not None and len(idx) > 1:
                idx = idx[tube_nms(det['tubes'][idx], det['tube_masks'][idx], det['scores'][idx], nms_thr,
                                   protocol.plus_one)]
            scores.append(det['scores'][idx])
            labels.append(np.full(len(idx), c, dtype=np.int64))
            group = gt_group_of_class.get(int(c), -1)
            groups.append(np.full(len(idx), group, dtype=np.int64))
            if group >= 0:
                g = gt_labels == c
                st_iou = tube_st_iou if protocol.temporal_plus_one else st_iou_exclusive_time
                ious.append(
                    st_iou(det['tubes'][idx], det['tube_masks'][idx], gt_boxes[g], gt_masks[g],
                           protocol.plus_one))
            else:
                ious.append(np.zeros((len(idx), 0)))

    width = max(gt_counts + [1])
    gt_valid = np.arange(width)[None, :] < np.asarray(gt_counts, dtype=np.int64).reshape(-1, 1)
    scores = np.concatenate(scores) if scores else np.zeros(0)
    labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    groups = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
    det_ious = np.zeros((len(scores), width), dtype=np.float64)
    row = 0
    for block in ious:
        det_ious[row:row + len(block), :block.shape[1]] = block
        row += len(block)

    order = ranking_order(scores, labels, protocol.tie_order)
    skip = skipped_class_mask(protocol, ann['labels'])
    results = {}
    for thr in thrs:
        tp = greedy_match(order, groups, det_ious, gt_valid, thr, protocol.matching)
        results[thr] = per_class_ap(order, labels, tp, num_gt, protocol, skip)
    return results
