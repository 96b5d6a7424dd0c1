"""Identity of linked video tubes: MOT-style identity switches and fragmentations, adapted to action tubes.

video-mAP scores a predicted tube by its st-IoU with ONE ground-truth (GT) tube; it does not say whether a
video tube jumps from one actor to another where two actors meet, or whether an actor's tube is cut into
pieces where clip tubes were not joined. These metrics do, in the spirit of CLEAR MOT (Bernardin and
Stiefelhagen, 2008) and its ``IDSW`` / ``Frag`` counts, with GT tubes as the trajectories and the predicted
video tubes as the tracks.

**Class-agnostic.** Identity is about who is followed, not about the action: labels are ignored (a tube that
follows the right actor with the wrong class keeps its identity; classification is video-mAP's business).

**Per-frame correspondence.** On every frame ``f`` (in increasing order), each GT tube annotated on ``f`` is
covered by at most one predicted tube present on ``f`` and vice versa, with IoU >= ``iou_thr`` (0.5):

1. a correspondence (GT ``g``, prediction ``p``) of frame ``f - 1`` is kept when both are on ``f`` and their
   IoU on ``f`` is still >= ``iou_thr`` (CLEAR MOT: a track keeps its object while it still matches, even when
   another track overlaps it more at the crossing);
2. the other GT tubes and predictions of ``f`` are matched by a global assignment maximising the number of
   pairs with IoU >= ``iou_thr``, then their total IoU (``scipy.optimize.linear_sum_assignment``).

``cover[g, f]`` is the prediction covering ``g`` on ``f`` (-1: none).

**Per GT tube** ``g``, over its annotated frames in order (consecutive = consecutive in that list):

* ``coverage``: fraction of its annotated frames that are covered.
* ``idsw`` (identity switches, MOT ``IDSW``): number of covered frames whose covering prediction differs
  from that of the previous covered frame (uncovered frames in between are skipped: a switch across a gap
  counts).
* ``frag`` (MOT ``Frag``): number of times the coverage resumes after one or more uncovered frames (covered,
  then uncovered, then covered again).
* ``fragments``: number of maximal runs of consecutive annotated frames covered by one and the same
  prediction; 0 when never covered, 1 when one prediction follows it without interruption. A run ends where
  the covering prediction changes or the coverage is interrupted, so for a covered GT tube
  ``fragments - 1 = frag + (identity changes between consecutive covered frames)``.
* ``num_pred``: number of distinct predictions that cover it on at least one frame.

**Per predicted tube** ``p``, over the frames where it covers a GT tube:

* ``jumps``: number of times the GT tube it covers changes (from actor A to actor B); frames where it covers
  nothing are skipped, so A - nothing - B is one jump.
* ``num_gt``: number of distinct GT tubes it covers.

At a crossing where two video tubes swap actors, each of the two GT tubes has ``idsw = 1`` and
``fragments = 2``, and each of the two predictions has ``jumps = 1``.

**Best tube per GT tube** (:func:`best_tube_overlap`, also class-agnostic): the prediction of highest st-IoU
with it (the st-IoU of video-mAP's protocol), and the two factors of that st-IoU: ``best_t_iou``, the
temporal IoU of the two extents, and ``best_s_iou``, the mean per-frame IoU over their temporal intersection
(``st = t x s``). A GT tube whose best st-IoU is under 0.5 cannot be a true positive of video-mAP@0.5; the
two factors tell whether its best tube is too short or too long (time) or off in the boxes (space).
"""
from typing import Dict, Optional, Sequence, Union

import numpy as np

from cfad_mm.evaluation.functional.ground_truth import dense_gt_tubes, resolve_annotations, split_videos
from cfad_mm.evaluation.functional.video_map import (
    check_video_tubes,
    st_iou_exclusive_time,
    temporal_iou_exclusive_time,
)
from cfad_mm.structures.tube_ops import tube_frame_iou, tube_st_iou, tube_temporal_iou

__all__ = [
    'IDENTITY_KEYS', 'frame_correspondences', 'tube_identity', 'best_tube_overlap', 'video_identity',
    'summarize_identity', 'format_identity_table'
]

#: Summary keys of :func:`summarize_identity`, in table order.
IDENTITY_KEYS = ('num_gt_tubes', 'num_gt_covered', 'coverage', 'idsw', 'frag', 'fragments_per_gt',
                 'num_pred_tubes', 'jumps', 'pred_with_jumps', 'best_st_iou', 'best_st_iou>=0.5',
                 'best_t_iou', 'best_s_iou')


def _match_frame(iou: np.ndarray, gts: np.ndarray, preds: np.ndarray, iou_thr: float) -> list:
    """Max-cardinality, then max-IoU, one-to-one pairs with IoU >= ``iou_thr`` among ``gts`` x ``preds``."""
    if len(gts) == 0 or len(preds) == 0:
        return []
    sub = iou[np.ix_(gts, preds)]
    ok = sub >= iou_thr
    if not ok.any():
        return []
    if (ok.sum(0) <= 1).all() and (ok.sum(1) <= 1).all():  # no conflict
        r, c = np.nonzero(ok)
        return list(zip(gts[r].tolist(), preds[c].tolist()))
    from scipy.optimize import linear_sum_assignment
    big = 1.0 + min(ok.shape)  # more than any sum of admissible costs (each <= 1): cardinality first
    r, c = linear_sum_assignment(np.where(ok, 1.0 - sub, big))
    keep = ok[r, c]
    return list(zip(gts[r[keep]].tolist(), preds[c[keep]].tolist()))


def frame_correspondences(gt_boxes: np.ndarray,
                          gt_masks: np.ndarray,
                          pred_boxes: np.ndarray,
                          pred_masks: np.ndarray,
                          iou_thr: float = 0.5,
                          plus_one: bool = False) -> np.ndarray:
    """The prediction covering each GT tube on each frame (rules in the module docstring).

    Args:
        gt_boxes (np.ndarray): ``(G, F, 4)`` xyxy GT boxes on the video's ``F`` frames. gt_masks: ``(G, F)``
            bool, True on annotated frames.
        pred_boxes (np.ndarray): ``(K, F, 4)`` predicted video tubes. pred_masks: ``(K, F)`` bool.
        iou_thr (float): Per-frame IoU threshold. Defaults to 0.5.
        plus_one (bool): Inclusive-pixel IoUs (ACT). Defaults to False.

    Returns:
        np.ndarray: ``cover (G, F)`` int64, the index of the covering prediction, -1 where none (and on
        frames where the GT tube is not annotated).
    """
    gt_masks, pred_masks = np.asarray(gt_masks, bool), np.asarray(pred_masks, bool)
    g_num, nframes = gt_masks.shape
    cover = np.full((g_num, nframes), -1, dtype=np.int64)
    if g_num == 0 or len(pred_masks) == 0:
        return cover
    iou = tube_frame_iou(
        np.asarray(gt_boxes, np.float64), gt_masks, np.asarray(pred_boxes, np.float64), pred_masks,
        plus_one)  # (G, K, F), 0 where either is absent
    hit = iou >= iou_thr
    prev = np.full(g_num, -1, dtype=np.int64)
    for f in np.nonzero(hit.any(axis=(0, 1)))[0]:
        prev = cover[:, f - 1] if f > 0 else prev  # -1 for GT tubes uncovered on f - 1
        gts = np.nonzero(hit[:, :, f].any(axis=1))[0]
        taken_g = np.zeros(g_num, dtype=bool)
        taken_p = np.zeros(len(pred_masks), dtype=bool)
        for g in gts:  # 1. correspondences of the previous frame that still hold
            p = prev[g]
            if p >= 0 and hit[g, p, f]:
                cover[g, f] = p
                taken_g[g] = taken_p[p] = True
        rest_g = gts[~taken_g[gts]]
        rest_p = np.nonzero(hit[:, :, f].any(axis=0) & ~taken_p)[0]
        for g, p in _match_frame(iou[:, :, f], rest_g, rest_p, iou_thr):  # 2. the others
            cover[g, f] = p
    return cover


def _changes(seq: np.ndarray) -> int:
    """Number of positions where a sequence of ids differs from the previous one."""
    return int((seq[1:] != seq[:-1]).sum()) if len(seq) > 1 else 0


def tube_identity(gt_boxes: np.ndarray,
                  gt_masks: np.ndarray,
                  pred_boxes: np.ndarray,
                  pred_masks: np.ndarray,
                  iou_thr: float = 0.5,
                  plus_one: bool = False) -> dict:
    """Identity metrics of the predicted tubes of one video (definitions in the module docstring).

    Args:
        gt_boxes (np.ndarray): ``(G, F, 4)`` xyxy GT boxes. gt_masks: ``(G, F)`` bool annotated frames.
        pred_boxes (np.ndarray): ``(K, F, 4)`` predicted video tubes. pred_masks: ``(K, F)`` bool.
        iou_thr (float): Per-frame IoU threshold. Defaults to 0.5.
        plus_one (bool): Inclusive-pixel IoUs (ACT). Defaults to False.

    Returns:
        dict: Per GT tube ``(G,)`` arrays ``num_frames``, ``covered`` (covered frames), ``coverage``,
        ``idsw``, ``frag``, ``fragments``, ``num_pred``; per prediction ``(K,)`` arrays ``jumps``, ``num_gt``;
        ``cover (G, F)`` (:func:`frame_correspondences`).
    """
    gt_masks, pred_masks = np.asarray(gt_masks, bool), np.asarray(pred_masks, bool)
    if gt_masks.ndim != 2 or pred_masks.ndim != 2 or gt_masks.shape[1] != pred_masks.shape[1] or \
            np.shape(gt_boxes) != gt_masks.shape + (4, ) or np.shape(pred_boxes) != pred_masks.shape + (4, ):
        raise ValueError(
            f'tube_identity: expected gt_boxes (G, F, 4), gt_masks (G, F), pred_boxes (K, F, 4), pred_masks '
            f'(K, F); got {np.shape(gt_boxes)}, {gt_masks.shape}, {np.shape(pred_boxes)}, {pred_masks.shape}')
    cover = frame_correspondences(gt_boxes, gt_masks, pred_boxes, pred_masks, iou_thr, plus_one)
    g_num, k_num = len(gt_masks), len(pred_masks)
    out = {
        k: np.zeros(g_num, dtype=np.int64)
        for k in ('num_frames', 'covered', 'idsw', 'frag', 'fragments', 'num_pred')
    }
    for g in range(g_num):
        ids = cover[g, gt_masks[g]]
        on = ids >= 0
        out['num_frames'][g] = len(ids)
        out['covered'][g] = int(on.sum())
        out['idsw'][g] = _changes(ids[on])
        starts = on & np.concatenate([[True], ~on[:-1]])  # covered after an uncovered frame (or first)
        out['frag'][g] = max(int(starts.sum()) - 1, 0)
        out['fragments'][g] = int((on & np.concatenate([[True], ids[1:] != ids[:-1]])).sum())
        out['num_pred'][g] = len(np.unique(ids[on]))
    out['coverage'] = out['covered'] / np.maximum(out['num_frames'], 1)
    jumps, num_gt = np.zeros(k_num, dtype=np.int64), np.zeros(k_num, dtype=np.int64)
    gs, fs = np.nonzero(cover >= 0)
    order = np.argsort(fs, kind='stable')
    gs, ps = gs[order], cover[gs[order], fs[order]]
    for p in np.unique(ps):
        seq = gs[ps == p]  # the GT it covers, frame by frame
        jumps[p] = _changes(seq)
        num_gt[p] = len(np.unique(seq))
    out.update(jumps=jumps, num_gt=num_gt, cover=cover)
    return out


def best_tube_overlap(gt_boxes: np.ndarray, gt_masks: np.ndarray, pred_boxes: np.ndarray,
                      pred_masks: np.ndarray, plus_one: bool = False, temporal_plus_one: bool = True) -> dict:
    """Per GT tube, its best prediction by st-IoU (class-agnostic) and that st-IoU's two factors.

    Args:
        gt_boxes (np.ndarray): ``(G, F, 4)``. gt_masks: ``(G, F)`` bool.
        pred_boxes (np.ndarray): ``(K, F, 4)``. pred_masks: ``(K, F)`` bool.
        plus_one (bool): Inclusive-pixel IoUs (ACT). Defaults to False.
        temporal_plus_one (bool): The temporal IoU with ``+ 1`` (ACT's ``iou3dt``,
            :func:`~cfad_mm.structures.tube_ops.tube_st_iou`) or without (mmaction2's ``iou3dt_voc``,
            :func:`~cfad_mm.evaluation.functional.video_map.st_iou_exclusive_time`), as the protocol of
            video-mAP. Defaults to True.

    Returns:
        dict: ``(G,)`` float64 arrays ``st_iou`` (0 without predictions), ``t_iou`` and ``s_iou`` (the
        temporal IoU of the extents and the mean per-frame IoU over their intersection; ``st_iou = t_iou x
        s_iou``; 0 where the best tube does not overlap the GT tube in time) and ``index`` ``(G,)`` int64 (the
        best prediction, -1 without predictions).
    """
    g = len(gt_masks)
    out = dict(st_iou=np.zeros(g), t_iou=np.zeros(g), s_iou=np.zeros(g), index=np.full(g, -1, np.int64))
    if g == 0 or len(pred_masks) == 0:
        return out
    st_fn = tube_st_iou if temporal_plus_one else st_iou_exclusive_time
    st = np.nan_to_num(np.asarray(st_fn(gt_boxes, gt_masks, pred_boxes, pred_masks, plus_one), np.float64))
    t_fn = tube_temporal_iou if temporal_plus_one else temporal_iou_exclusive_time
    t = np.nan_to_num(np.asarray(t_fn(np.asarray(gt_masks, bool), np.asarray(pred_masks, bool)), np.float64))
    rows = np.arange(g)
    best = st.argmax(1)
    out['index'] = best
    out['st_iou'] = st[rows, best]
    out['t_iou'] = t[rows, best]
    out['s_iou'] = np.where(out['t_iou'] > 0, out['st_iou'] / np.maximum(out['t_iou'], 1e-12), 0.0)
    return out


def summarize_identity(per_video: Dict[str, dict]) -> dict:
    """Totals over videos of :func:`tube_identity` results.

    Args:
        per_video (dict[str, dict]): :func:`tube_identity` result per video.

    Returns:
        dict: ``num_gt_tubes``; ``num_gt_covered`` (GT tubes covered on >= 1 frame); ``coverage`` (covered GT
        frames / GT frames, NaN without GT); ``idsw`` and ``frag`` (sums); ``fragments_per_gt`` (mean
        ``fragments`` of the covered GT tubes, NaN when none); ``num_pred_tubes``; ``jumps`` (sum);
        ``pred_with_jumps`` (predictions with >= 1 jump); over the GT tubes, from their ``best`` entry
        (:func:`best_tube_overlap`) when present: ``best_st_iou`` (mean), ``best_st_iou>=0.5`` (share),
        ``best_t_iou`` and ``best_s_iou`` (means), NaN without GT tubes.
    """
    res = list(per_video.values())
    best = [r['best'] for r in res if 'best' in r]

    def total(key):
        return int(sum(int(np.sum(r[key])) for r in res))

    frames, covered = total('num_frames'), total('covered')
    num_covered = int(sum(int((r['covered'] > 0).sum()) for r in res))
    return dict(
        num_gt_tubes=int(sum(len(r['num_frames']) for r in res)),
        num_gt_covered=num_covered,
        coverage=covered / frames if frames else float('nan'),
        idsw=total('idsw'),
        frag=total('frag'),
        fragments_per_gt=total('fragments') / num_covered if num_covered else float('nan'),
        num_pred_tubes=int(sum(len(r['jumps']) for r in res)),
        jumps=total('jumps'),
        pred_with_jumps=int(sum(int((r['jumps'] > 0).sum()) for r in res)),
        **_best_summary(best))


def _best_summary(best: Sequence[dict]) -> dict:
    """Means (and the share at st-IoU >= 0.5) over the GT tubes of :func:`best_tube_overlap` results."""
    cat = {k: np.concatenate([b[k] for b in best] + [np.zeros(0)]) for k in ('st_iou', 't_iou', 's_iou')}
    if not len(cat['st_iou']):
        return dict.fromkeys(('best_st_iou', 'best_st_iou>=0.5', 'best_t_iou', 'best_s_iou'), float('nan'))
    return {'best_st_iou': float(cat['st_iou'].mean()),
            'best_st_iou>=0.5': float((cat['st_iou'] >= 0.5).mean()),
            'best_t_iou': float(cat['t_iou'].mean()),
            'best_s_iou': float(cat['s_iou'].mean())}


def video_identity(video_tubes: Dict[str, dict],
                   annotations: Union[str, dict],
                   videos: Optional[Sequence[str]] = None,
                   split: int = 0,
                   subset: str = 'test',
                   iou_thr: float = 0.5,
                   score_thr: Optional[float] = None,
                   plus_one: bool = False,
                   progress: bool = False,
                   temporal_plus_one: bool = True) -> dict:
    """Identity metrics of linked video tubes against the GT tubes of the evaluated videos.

    Args:
        video_tubes (dict[str, dict]): Per video, ``tubes (K, nframes, 4)``, ``tube_masks (K, nframes)``,
            ``scores (K,)``, ``labels (K,)`` (e.g. :func:`cfad_mm.evaluation.link_video_tubes`). Evaluated
            videos without an entry have no prediction (their GT tubes are uncovered).
        annotations (str | dict): Annotation pickle path or dict (ACT format).
        videos (Sequence[str], optional): The evaluated videos. Defaults to ``{subset}_videos[split]``.
        split (int): 0-based split index (when ``videos`` is None). Defaults to 0.
        subset (str): ``'test'`` or ``'train'`` (when ``videos`` is None). Defaults to ``'test'``.
        iou_thr (float): Per-frame IoU threshold. Defaults to 0.5.
        score_thr (float, optional): Only predicted tubes with a score >= this count. Defaults to None (all).
        plus_one (bool): Inclusive-pixel IoUs (ACT). Defaults to False.
        progress (bool): A progress bar over the videos (tqdm, stderr). Defaults to False.
        temporal_plus_one (bool): The st-IoU of :func:`best_tube_overlap` (the protocol's). Defaults to True.

    Returns:
        dict: ``summary`` (:func:`summarize_identity`), ``settings`` and ``videos`` {video: ``gt_labels``,
        the per-GT lists ``num_frames``, ``covered``, ``idsw``, ``frag``, ``fragments``, ``num_pred``,
        ``best_st_iou``, ``best_t_iou``, ``best_s_iou``, ``best_index`` (:func:`best_tube_overlap`), the
        per-prediction lists ``pred_index`` (indices into the video's input tubes), ``jumps``, ``num_gt``};
        GT tubes in the order of :func:`dense_gt_tubes` (by label, then annotation order). JSON-serialisable
        except ``summary`` NaNs.

    Raises:
        ValueError: Tubes of videos that are not evaluated, malformed tubes, or ``iou_thr`` outside (0, 1].
    """
    if not 0 < iou_thr <= 1:
        raise ValueError(f'video_identity: iou_thr must be in (0, 1], got {iou_thr}')
    ann = resolve_annotations(annotations)
    videos = split_videos(ann, split, subset) if videos is None else list(videos)
    unknown = sorted(set(video_tubes) - set(videos))
    if unknown:
        raise ValueError(f'video_identity: tubes for {len(unknown)} video(s) that are not evaluated, e.g. '
                         f'{unknown[:3]}')
    items = videos
    if progress:
        from tqdm import tqdm
        items = tqdm(videos, desc='identity', unit='video')
    results, details = {}, {}
    num_classes = len(ann['labels'])
    for video in items:
        nframes = ann['nframes'][video]
        gt_boxes, gt_masks, gt_labels = dense_gt_tubes(ann, video)
        if video in video_tubes:
            det = check_video_tubes(video_tubes[video], video, nframes, num_classes)
        else:
            det = dict(
                tubes=np.zeros((0, nframes, 4)),
                tube_masks=np.zeros((0, nframes), bool),
                scores=np.zeros(0),
                labels=np.zeros(0, np.int64))
        keep = np.arange(len(det['scores']))
        if score_thr is not None:
            keep = keep[det['scores'] >= score_thr]
        res = tube_identity(gt_boxes, gt_masks, det['tubes'][keep], det['tube_masks'][keep], iou_thr,
                            plus_one)
        res['best'] = best_tube_overlap(gt_boxes, gt_masks, det['tubes'][keep], det['tube_masks'][keep],
                                        plus_one, temporal_plus_one)
        results[video] = res
        details[video] = dict(
            gt_labels=gt_labels.tolist(),
            **{
                k: res[k].tolist()
                for k in ('num_frames', 'covered', 'idsw', 'frag', 'fragments', 'num_pred')
            },
            **{f'best_{k}': res['best'][k].tolist() for k in ('st_iou', 't_iou', 's_iou')},
            best_index=keep[res['best']['index']].tolist() if len(keep) else [-1] * len(gt_labels),
            pred_index=keep.tolist(),
            jumps=res['jumps'].tolist(),
            num_gt=res['num_gt'].tolist())
    return dict(
        summary=summarize_identity(results),
        settings=dict(iou_thr=iou_thr, score_thr=score_thr, plus_one=plus_one,
                      temporal_plus_one=temporal_plus_one, num_videos=len(videos)),
        videos=details)


def _cell(key: str, value) -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return '-'
        return f'{100 * value:.2f}' if key in ('coverage', 'best_st_iou>=0.5') else f'{value:.3f}'
    return str(value)


def format_identity_table(summaries: Dict[str, dict],
                          extra_keys: Sequence[str] = (),
                          markdown: bool = False) -> str:
    """One row per method of :func:`summarize_identity` summaries (``coverage`` in %).

    Args:
        summaries (dict[str, dict]): Summary per method name (e.g. ``{'greedy': ..., 'hungarian': ...}``).
        extra_keys (Sequence[str]): More keys of the summaries to print after the identity ones (floats in
            [0, 1] such as mAPs are printed in %). Defaults to ().
        markdown (bool): A markdown table. Defaults to False.

    Returns:
        str: The table.
    """
    keys = list(IDENTITY_KEYS) + list(extra_keys)
    rows = [['method'] + keys]
    for name, summary in summaries.items():
        cells = [name]
        for k in keys:
            v = summary.get(k, float('nan'))
            cells.append(f'{100 * v:.2f}'
                         if k in extra_keys and isinstance(v, float) and not np.isnan(v) else _cell(k, v))
        rows.append(cells)
    if markdown:
        lines = ['| ' + ' | '.join(rows[0]) + ' |', '|' + '---|' * len(rows[0])]
        return '\n'.join(lines + ['| ' + ' | '.join(r) + ' |' for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join(' '.join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows)
