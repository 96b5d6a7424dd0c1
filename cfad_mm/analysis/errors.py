"""A TIDE-style error breakdown of video-mAP (Bolya et al., "TIDE: A General Toolbox for Identifying Object
Detection Errors", ECCV 2020), for action tubes.

The detections are the evaluated video tubes after the per-(video, class) tube NMS of
:func:`~cfad_mm.evaluation.functional.video_map`; they are matched to the ground-truth tubes exactly as
video-mAP does it at the threshold ``t`` (ACT: by descending score, each detection takes the remaining
same-class GT tube of highest st-IoU, true positive when it is >= ``t``). Every false positive (FP) then gets
ONE error type, the first that applies in this order (st-IoU, temporal IoU and the mean per-frame IoU over the
temporal intersection -- "spatial IoU" -- all from :mod:`cfad_mm.structures.tube_ops`; GT tubes of the same
video only):

``dup``          st-IoU >= t with a GT tube of its class (that GT was necessarily taken by a higher-scored
                 detection: a duplicate).
``cls``          st-IoU >= t with a GT tube of ANOTHER class (target: the other-class GT of highest st-IoU).
``loc_spatial``  its class, best same-class st-IoU in [bkg_thr, t) (target: that GT) and temporal IoU >= t:
                 the extent is right, the boxes are off.
``loc_temporal`` as ``loc_spatial`` but temporal IoU < t while the spatial IoU >= t: the boxes are right on
                 the overlap, the extent is off (truncated / too long).
``loc_both``     as ``loc_spatial`` but temporal IoU < t AND spatial IoU < t.
``both``         st-IoU in [bkg_thr, t) with a GT of another class only: wrong class and mislocalised.
``bkg``          st-IoU < bkg_thr (0.1) with every GT tube of the video.

A ground-truth tube that no detection matches is ``miss`` when it is not the target of any ``cls`` /
``loc_*`` false positive (those GT are counted in the error of the FP that "almost" found them).

The temporal IoU of the types is the inclusive one of :func:`~cfad_mm.structures.tube_ops.tube_temporal_iou`
whatever the protocol; the st-IoU (matching, ``dup`` / ``cls`` / ``bkg``) is the protocol's, and the NMS is
applied only when the protocol's video-mAP applies it. Within a (video, class) the matching visits detections
by descending score, ties in the metric's input order.

Oracles (the dAP of a type is the mAP after fixing all errors of that type minus the base mAP; every fixed
set is scored with the project's :func:`video_map` (matching and AP), NMS not re-applied):

* ``cls`` / ``loc_*``: the FPs of the type are visited by descending score; an FP whose target GT is unmatched
  (in the base matching, and not yet given to a higher-scored fixed FP) is replaced by a perfect detection of
  it (the GT tube and label, the FP's score): it becomes a true positive; otherwise it is removed.
* ``both``, ``dup``, ``bkg``: the FPs of the type are removed.
* ``miss``: every ``miss`` GT tube is added as a perfect detection with a score below every detection
  (all the same score, in annotation order).
* ``all``: every fix above at once. All remaining detections are then true positives and every GT tube is
  found, so the fixed mAP is exactly 1 and ``dAP['all'] = 1 - mAP`` (``'act'`` and ``'voc'``; with a
  protocol whose temporal IoU of two one-frame tubes is undefined, one-frame GT tubes stay unmatched).

The dAPs of the types do not add up to ``dAP['all']`` in general (AP is not additive); they do when, for every
class, the errors that change its AP (its own FPs, the ``cls`` FPs targeting its GT tubes, its misses) are all
of one type (then, per class, the oracle of that type is the ``all`` oracle: ``dAP_type = 1 - AP``).
Counts are per predicted class for FPs and per GT class for misses; a ``cls`` FP of a class without ground
truth in the split changes no AP of its own class, its fix improves the class of its target.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from cfad_mm.evaluation.functional.ground_truth import dense_gt_tubes, resolve_annotations, split_videos
from cfad_mm.evaluation.functional.matching import descending_score_order
from cfad_mm.evaluation.functional.protocol import EvalProtocol, get_protocol
from cfad_mm.evaluation.functional.video_map import check_video_tubes, video_map
from cfad_mm.structures.tube_ops import tube_nms, tube_st_iou, tube_temporal_iou

__all__ = [
    'ERROR_TYPES', 'FP_TYPES', 'video_error_breakdown', 'format_breakdown_table', 'dense_tubes_to_dicts'
]

#: False-positive error types, in the order they are tested.
FP_TYPES = ('dup', 'cls', 'loc_spatial', 'loc_temporal', 'loc_both', 'both', 'bkg')
#: All error types (the FP types and missed ground truth).
ERROR_TYPES = FP_TYPES + ('miss', )
_RELOCALISED = ('cls', 'loc_spatial', 'loc_temporal', 'loc_both')


def dense_tubes_to_dicts(tubes: dict,
                         classes: Optional[Sequence[str]] = None,
                         indices: Optional[Sequence[int]] = None) -> List[dict]:
    """Dense video tubes (``tubes``, ``tube_masks``, ``scores``, ``labels``) as ``tubes.json``-style dicts."""
    out = []
    idx = range(len(tubes['scores'])) if indices is None else indices
    for k in idx:
        frames = np.nonzero(np.asarray(tubes['tube_masks'][k]))[0]
        label = int(tubes['labels'][k])
        out.append(
            dict(
                label=label,
                label_name=classes[label] if classes is not None and label < len(classes) else str(label),
                score=float(tubes['scores'][k]),
                boxes=[[int(f) + 1] + [float(v) for v in np.asarray(tubes['tubes'][k])[f]] for f in frames]))
    return out


def _protocol_st_iou(prot: EvalProtocol):
    """The st-IoU function ``video_map`` uses with ``prot`` (inclusive temporal IoU unless the protocol says
    otherwise)."""
    if getattr(prot, 'temporal_plus_one', True):
        return tube_st_iou
    import importlib
    return importlib.import_module('cfad_mm.evaluation.functional.video_map').st_iou_exclusive_time


def _apply_nms(det: dict, nms_thr: Optional[float], plus_one: bool) -> np.ndarray:
    """Indices kept by video_map's per-class NMS, in the order video_map concatenates them."""
    kept = []
    for c in np.unique(det['labels']):
        idx = np.nonzero(det['labels'] == c)[0]
        if nms_thr is not None and len(idx) > 1:
            idx = idx[tube_nms(det['tubes'][idx], det['tube_masks'][idx], det['scores'][idx], nms_thr,
                               plus_one)]
        kept.append(idx)
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, dtype=np.int64)


def _match_video(st: np.ndarray, det_labels: np.ndarray, det_scores: np.ndarray, gt_labels: np.ndarray,
                 thr: float, matching: str) -> np.ndarray:
    """GT index matched by each detection of one video (-1: false positive), as ``greedy_match`` decides.

    Within a (video, class) group the detections are visited by descending score, ties in list order (the
    order ``video_map`` concatenates them, so the visiting order is the metric's)."""
    matched = np.full(len(det_labels), -1, dtype=np.int64)
    for c in np.unique(det_labels):
        gts = np.nonzero(gt_labels == c)[0]
        if len(gts) == 0:
            continue
        dets = np.nonzero(det_labels == c)[0]
        free = np.ones(len(gts), dtype=bool)
        for d in dets[descending_score_order(det_scores[dets])]:
            if matching == 'remaining':
                cand = np.where(free, st[d, gts], -np.inf)
                best = int(np.argmax(cand))
                ok = cand[best] >= thr
            else:
                best = int(np.argmax(st[d, gts]))
                ok = st[d, gts[best]] >= thr and free[best]
            if ok:
                free[best] = False
                matched[d] = gts[best]
    return matched


def _classify(d: int, st: np.ndarray, tiou: np.ndarray, spatial: np.ndarray, det_label: int,
              gt_labels: np.ndarray, thr: float, bkg_thr: float):
    """Error type and target GT index (-1 when none) of the false positive ``d`` of one video."""
    same = gt_labels == det_label
    s_same = np.where(same, st[d], -1.0)
    s_other = np.where(~same, st[d], -1.0)
    g_same = int(np.argmax(s_same)) if len(gt_labels) else -1
    g_other = int(np.argmax(s_other)) if len(gt_labels) else -1
    best_same = s_same[g_same] if g_same >= 0 else -1.0
    best_other = s_other[g_other] if g_other >= 0 else -1.0
    if best_same >= thr:
        return 'dup', g_same
    if best_other >= thr:
        return 'cls', g_other
    if best_same >= bkg_thr:
        if tiou[d, g_same] >= thr:
            return 'loc_spatial', g_same
        if spatial[d, g_same] >= thr:
            return 'loc_temporal', g_same
        return 'loc_both', g_same
    if best_other >= bkg_thr:
        return 'both', g_other
    return 'bkg', -1


def video_error_breakdown(video_tubes: Dict[str, dict],
                          annotations: Union[str, dict],
                          videos: Optional[Sequence[str]] = None,
                          split: int = 0,
                          subset: str = 'test',
                          iou_thr: float = 0.5,
                          nms_thr: Optional[float] = 0.3,
                          protocol: Union[str, EvalProtocol] = 'act',
                          bkg_thr: float = 0.1) -> dict:
    """TIDE-style breakdown of the video-mAP at ``iou_thr`` (definitions and oracles in the module docstring).

    Args:
        video_tubes (dict[str, dict]): Per video, ``tubes (K, nframes, 4)``, ``tube_masks (K, nframes)``,
            ``scores (K,)``, ``labels (K,)`` (as for :func:`video_map`, e.g. ``evaluate_tubes(...,
            return_tubes=True)['video_tubes']``).
        annotations (str | dict): Annotation pickle path or dict (ACT format).
        videos (Sequence[str], optional): The evaluated videos. Defaults to ``{subset}_videos[split]``.
        split (int): 0-based split index (when ``videos`` is None). Defaults to 0.
        subset (str): ``'test'`` or ``'train'`` (when ``videos`` is None). Defaults to ``'test'``.
        iou_thr (float): The st-IoU threshold ``t``. Defaults to 0.5.
        nms_thr (float, optional): The tube-NMS threshold of the evaluation. Defaults to 0.3.
        protocol (str | EvalProtocol): ``'act'`` or ``'voc'``. Defaults to ``'act'``.
        bkg_thr (float): st-IoU below which an FP is background. Defaults to 0.1.

    Returns:
        dict: ``mAP`` (base video-mAP at ``iou_thr``, equal to :func:`video_map`'s), ``ap`` {class: AP or
        None}, ``dAP`` {type or 'all': overall mAP gain}, ``dAP_per_class`` {type or 'all': {class: AP gain or
        None}}, ``counts`` {type: n}, ``counts_per_class`` {type: {class: n}}, ``num_tp``, ``num_fp``,
        ``num_gt``, ``classes``, ``evaluated_classes``, ``settings`` and ``videos`` {video: ``det_index``
        (indices into the input tubes of the evaluated detections, after NMS), ``det_type`` ('tp' or the
        error type of each), ``det_target`` (target GT index or -1), ``matches`` [(gt index, det position)],
        ``miss`` (GT indices)}; GT indices follow :func:`dense_gt_tubes` (by label, then annotation order).
    """
    prot = get_protocol(protocol)
    ann = resolve_annotations(annotations)
    videos = split_videos(ann, split, subset) if videos is None else list(videos)
    thr = round(float(iou_thr), 4)
    if not 0 < thr <= 1 or not 0 <= bkg_thr <= thr:
        raise ValueError(
            f'video_error_breakdown: need 0 <= bkg_thr <= iou_thr <= 1, got {bkg_thr}, {iou_thr}')
    classes = list(ann['labels'])
    num_classes = len(classes)
    unknown = sorted(v for v in video_tubes if v not in set(videos))
    if unknown:
        raise ValueError(
            f'video_error_breakdown: detections for videos that are not evaluated, e.g. {unknown[:3]}')

    st_iou_fn = _protocol_st_iou(prot)
    per_video = {}
    for video in videos:
        gt_boxes, gt_masks, gt_labels = dense_gt_tubes(ann, video)
        nframes = ann['nframes'][video]
        if video in video_tubes:
            det = check_video_tubes(video_tubes[video], video, nframes, num_classes)
            keep = _apply_nms(det, nms_thr if getattr(prot, 'eval_nms', True) else None, prot.plus_one)
            det = {k: v[keep] for k, v in det.items()}
        else:
            keep = np.zeros(0, dtype=np.int64)
            det = dict(
                tubes=np.zeros((0, nframes, 4)),
                tube_masks=np.zeros((0, nframes), bool),
                scores=np.zeros(0),
                labels=np.zeros(0, dtype=np.int64))
        if len(keep) and len(gt_labels):
            st = st_iou_fn(det['tubes'], det['tube_masks'], gt_boxes, gt_masks, prot.plus_one)
            st = np.nan_to_num(st, nan=0.0)  # (0 / 0 temporal IoU of the exclusive-time protocol: never a TP)
            tiou = tube_temporal_iou(det['tube_masks'], gt_masks)
            # mean per-frame IoU over the temporal intersection (the "spatial IoU")
            incl = tube_st_iou(det['tubes'], det['tube_masks'], gt_boxes, gt_masks, prot.plus_one)
            spatial = np.divide(incl, tiou, out=np.zeros_like(incl), where=tiou > 0)
        else:
            st = tiou = spatial = np.zeros((len(keep), len(gt_labels)))
        matched = _match_video(st, det['labels'], det['scores'], gt_labels, thr, prot.matching)
        types, targets = [], []
        for d in range(len(keep)):
            if matched[d] >= 0:
                types.append('tp')
                targets.append(int(matched[d]))
            else:
                t, g = _classify(d, st, tiou, spatial, int(det['labels'][d]), gt_labels, thr, bkg_thr)
                types.append(t)
                targets.append(g)
        per_video[video] = dict(
            det=det,
            keep=keep,
            gt=(gt_boxes, gt_masks, gt_labels),
            matched=matched,
            types=types,
            targets=targets)

    # miss: unmatched GT that no cls / loc FP targets
    for video, pv in per_video.items():
        n_gt = len(pv['gt'][2])
        found = set(int(g) for g in pv['matched'] if g >= 0)
        targeted = {g for t, g in zip(pv['types'], pv['targets']) if t in _RELOCALISED}
        pv['miss'] = [g for g in range(n_gt) if g not in found and g not in targeted]

    all_scores = np.concatenate([pv['det']['scores'] for pv in per_video.values()] + [np.zeros(0)])
    miss_score = float(all_scores.min()) - 1.0 if len(all_scores) else 0.0
    # global visiting order of the FP fixes (descending score, ties in video / list order)
    flat = [(video, d) for video, pv in per_video.items() for d in range(len(pv['keep']))]
    flat_scores = np.array([per_video[v]['det']['scores'][d] for v, d in flat], dtype=np.float64)
    fix_order = [flat[i] for i in descending_score_order(flat_scores)]

    def evaluate(fixed_types) -> dict:
        fixed_types = set(fixed_types)
        action = {}  # (video, d) -> 'drop' | gt index (relocalise)
        taken = set()
        for video, d in fix_order:
            pv = per_video[video]
            t = pv['types'][d]
            if t == 'tp' or t not in fixed_types:
                continue
            g = pv['targets'][d]
            if t in _RELOCALISED and (video, g) not in taken and g not in set(pv['matched'].tolist()):
                taken.add((video, g))
                action[(video, d)] = g
            else:
                action[(video, d)] = 'drop'
        fixed = {}
        for video, pv in per_video.items():
            det, (gt_boxes, gt_masks, gt_labels) = pv['det'], pv['gt']
            boxes, masks, scores, labels = [], [], [], []
            for d in range(len(pv['keep'])):
                a = action.get((video, d))
                if a == 'drop':
                    continue
                if a is None:
                    boxes.append(det['tubes'][d])
                    masks.append(det['tube_masks'][d])
                    labels.append(det['labels'][d])
                else:
                    boxes.append(gt_boxes[a])
                    masks.append(gt_masks[a])
                    labels.append(gt_labels[a])
                scores.append(det['scores'][d])
            if 'miss' in fixed_types:
                for g in pv['miss']:
                    boxes.append(gt_boxes[g])
                    masks.append(gt_masks[g])
                    labels.append(gt_labels[g])
                    scores.append(miss_score)
            if scores:
                fixed[video] = dict(
                    tubes=np.stack(boxes),
                    tube_masks=np.stack(masks),
                    scores=np.array(scores),
                    labels=np.array(labels, dtype=np.int64))
        return video_map(fixed, ann, videos, (thr, ), nms_thr=None, protocol=prot)[thr]

    base = evaluate(())
    evaluated = base['evaluated']

    def ap_dict(values):
        return {c: (None if not e else round(float(v), 6)) for c, v, e in zip(classes, values, evaluated)}

    d_ap, d_ap_class = {}, {}
    for name, types in [(t, (t, )) for t in ERROR_TYPES] + [('all', ERROR_TYPES)]:
        res = evaluate(types)
        d_ap[name] = round(float(res['mAP'] - base['mAP']), 6)
        d_ap_class[name] = ap_dict(res['ap'] - base['ap'])
    counts_class = {t: {c: 0 for c in classes} for t in ERROR_TYPES}
    num_tp = num_fp = 0
    for pv in per_video.values():
        for d, t in enumerate(pv['types']):
            if t == 'tp':
                num_tp += 1
                continue
            num_fp += 1
            counts_class[t][classes[int(pv['det']['labels'][d])]] += 1
        for g in pv['miss']:
            counts_class['miss'][classes[int(pv['gt'][2][g])]] += 1
    return dict(
        mAP=round(float(base['mAP']), 6),
        ap=ap_dict(base['ap']),
        dAP=d_ap,
        dAP_per_class=d_ap_class,
        counts={
            t: int(sum(v.values()))
            for t, v in counts_class.items()
        },
        counts_per_class=counts_class,
        num_tp=num_tp,
        num_fp=num_fp,
        num_gt=int(base['num_gt'].sum()),
        classes=classes,
        evaluated_classes=[c for c, e in zip(classes, evaluated) if e],
        settings=dict(
            iou_thr=thr, bkg_thr=bkg_thr, nms_thr=nms_thr, protocol=prot.name, num_videos=len(videos)),
        videos={
            video:
            dict(
                det_index=[int(i) for i in pv['keep']],
                det_type=list(pv['types']),
                det_target=[int(g) for g in pv['targets']],
                matches=[(int(g), d) for d, g in enumerate(pv['matched']) if g >= 0],
                miss=[int(g) for g in pv['miss']])
            for video, pv in per_video.items()
        })


def format_breakdown_table(result: dict, markdown: bool = False) -> str:
    """A table (values in AP points, %) of :func:`video_error_breakdown`: the AP and the dAP of each error
    type (overall, then per evaluated class), and the error counts."""
    head = ['class', f"AP@{result['settings']['iou_thr']:g}"] + [f'd{t}' for t in ERROR_TYPES] + ['dall']
    rows = [['mAP'] + [f"{100 * result['mAP']:.2f}"] +
            [f"{100 * result['dAP'][t]:.2f}" for t in ERROR_TYPES + ('all', )]]
    for c in result['evaluated_classes']:
        rows.append([c, f"{100 * result['ap'][c]:.2f}"] +
                    [f"{100 * result['dAP_per_class'][t][c]:.2f}" for t in ERROR_TYPES + ('all', )])
    rows.append(['count', ''] + [str(result['counts'][t]) for t in ERROR_TYPES] + [''])
    if markdown:
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
        return '\n'.join(lines)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = [
        ' '.join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(r))
        for r in [head] + rows
    ]
    s = result['settings']
    lines.append(
        f"protocol={s['protocol']} st-IoU>={s['iou_thr']:g} bkg<{s['bkg_thr']:g} nms={s['nms_thr']} "
        f"videos={s['num_videos']} TP={result['num_tp']} FP={result['num_fp']} GT={result['num_gt']}")
    return '\n'.join(lines)
