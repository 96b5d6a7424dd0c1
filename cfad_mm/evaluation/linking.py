"""Linking clip tubes into video tubes.

Untrimmed videos are covered by clips of ``T`` frames with stride ``S <= T``. The detector predicts tubes per
clip; :func:`link_video_tubes` joins them into tubes on the whole video::

    clips of one video (any order)
      -> normalise: positions = frame_numbers - 1, masks &= frame_valid (padding past the video end and
         repeated frames are ignored), tubes without any valid frame are ignored (they cover no frame)
      -> sort the clips deterministically (first frame, last frame, then content)   => order independence
      -> sweep the clips in time order; inside a clip, its tubes by descending score (greedy):
           candidates = video tubes of the same class that
               (a) share at least one frame with the clip tube      -> affinity = mean IoU on those frames
               (b) or end at most ``max_gap`` frames before it starts -> affinity = IoU(last box, first box)
             and were not yet extended by a tube of this clip (one clip tube per clip per video tube)
           best affinity >= link_iou -> extend that video tube: boxes of frames seen by several clip tubes
                                         are averaged with the clip-tube scores as weights
           otherwise                 -> start a new video tube
      -> holes (frames inside a video tube's extent that no clip tube covered; only possible with
         ``max_gap > 0`` or clip tubes with holes) are filled by linear interpolation of the box coordinates
      -> temporal trimming (when the clips carry ``frame_scores``): leading and trailing frames whose averaged
         actionness is < ``trim_thr`` are removed; a tube with no frame >= ``trim_thr`` is removed entirely
         (counted in ``num_trimmed_away``)
      -> video tube score = mean of the scores of its clip tubes
      -> class-wise tube NMS (st-IoU > ``nms_thr`` suppressed)

Time order rather than a global greedy over all clip tubes by score: a global greedy lets a high-scored tube
in a late clip start a tube before the clips that bridge to it are visited, which fragments one action into
several video tubes. Inside each clip the greedy is by score, as in ACT's tubelet linking (``ACT_build.py``).
``max_gap=0`` (default) links adjacent clips (stride == T) by their facing boxes, as ACT does for tubelets
``K`` frames apart, and never creates holes.

``link_method='hungarian'`` replaces the greedy step inside a clip by a global assignment, class by class,
between the clip's tubes and the candidate video tubes (those of the sweep above: the video tubes of the
previous, overlapping windows):

    score(i, k) = affinity(i, k) - vel_weight * dv(i, k)
    dv(i, k)    = |v_i - v_k| / size: difference of the box-centre velocities of the two tubes, in box sizes
                  per frame (least-squares slope of the centre over the frame numbers; size = mean sqrt(w * h)
                  of both tubes on the same frames), measured on the shared frames when there are >= 2 of
                  them; otherwise (facing boxes across a gap, or a single shared frame) the clip tube's
                  velocity over its frames against the video tube's over its last ``P`` frames (``P`` = frames
                  of the clip); 0 when either tube has fewer than 2 such frames
    admissible  : same class and score(i, k) >= link_iou (``vel_weight=0``: the greedy's gate)
    assignment  : the one-to-one set of admissible pairs that maximises the sum of (score - link_iou)
                  (:func:`cfad_mm.structures.matching.max_gain_matching`); unmatched clip tubes start new
                  video tubes.

Maximising the margins over the threshold rather than the number of links: a weak duplicate of an actor's
tube cannot pull a confident tube onto a neighbour just to get linked itself. At a crossing, the greedy lets
the best-scored clip tube take the video tube it overlaps most, even if that is the other actor's; the
assignment picks the pairs that are jointly best, and the velocity term tells apart actors that overlap
during the shared frames but move differently. Why ``vel_weight`` > 1 (default 2): where two boxes of size
``s`` moving at +-``v`` px per frame cross exactly at a window boundary, the facing-box IoU of the right pair
is about ``1 - 2v/s`` and that of the wrong pair about 1, while their velocity difference is ``2v/s``; only a
weight above 1 ranks the right pair first. Box merging, holes, trimming, scores and NMS are the same for both
methods.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from cfad_mm.structures.matching import max_gain_matching
from cfad_mm.structures.tube_ops import box_centres, box_iou, mask_extents, tube_frame_iou, tube_nms
from .functional.matching import descending_score_order

__all__ = [
    'prepare_clips', 'link_video_tubes', 'link_prepared_clips', 'link_tubes', 'drop_nonfinite_tubes',
    'LINK_METHODS', 'rename_legacy_keys'
]

CLIP_KEYS = ('frame_numbers', 'tubes', 'tube_masks', 'scores', 'labels')
#: Joining methods of :func:`link_video_tubes` (``link_method``).
LINK_METHODS = ('greedy', 'hungarian')
# Weight floor of a clip tube in the box average (keeps zero-scored tubes well-defined).
_MIN_WEIGHT = 1e-6


def rename_legacy_keys(record: dict) -> dict:
    """A clip prediction or dumped data sample with the pre-rename key ``frame_inds`` as ``frame_numbers``.

    Clip predictions and ``DumpResults`` pickles written before the rename called the 1-based video frame
    numbers ``frame_inds`` (a name that now only means the pipeline's 0-based decoder indices). This function
    is the one place that reads the old key: :func:`prepare_clips` (hence :func:`link_video_tubes` and
    :func:`~cfad_mm.evaluation.evaluate_tubes`) and :func:`~cfad_mm.evaluation.load_dump` call it.
    ``frame_numbers`` wins when both keys are present.

    Args:
        record (dict): A clip prediction or a data-sample dict.

    Returns:
        dict: ``record`` itself when it has no old key; otherwise a shallow copy with ``frame_inds`` renamed.
    """
    if 'frame_inds' not in record or 'frame_numbers' in record:
        return record
    record = dict(record)
    record['frame_numbers'] = record.pop('frame_inds')
    return record


def _normalise_clip(clip: dict, nframes: int, video: str, index: int) -> Optional[dict]:
    """Validate one clip prediction and bring it to the internal layout (None if it covers no frame)."""
    where = f'clip {index} of video {video!r}'
    if not isinstance(clip, dict):
        raise TypeError(f'{where}: a clip prediction must be a dict, got {type(clip).__name__}')
    clip = rename_legacy_keys(clip)
    missing = [k for k in CLIP_KEYS if k not in clip]
    if missing:
        raise KeyError(f'{where}: missing keys {missing} (need {list(CLIP_KEYS)}, optional frame_valid, '
                       'frame_scores)')
    frame_numbers = np.asarray(clip['frame_numbers']).astype(np.int64).reshape(-1)
    t = len(frame_numbers)
    valid = np.ones(t, dtype=bool) if clip.get('frame_valid') is None else \
        np.asarray(clip['frame_valid']).astype(bool).reshape(-1)
    tubes = np.asarray(clip['tubes'], dtype=np.float64)
    masks = np.asarray(clip['tube_masks']).astype(bool)
    scores = np.asarray(clip['scores'], dtype=np.float64).reshape(-1)
    labels = np.asarray(clip['labels']).astype(np.int64).reshape(-1)
    n = len(scores)
    if tubes.size == 0 and n == 0:
        tubes, masks = tubes.reshape(0, t, 4), masks.reshape(0, t)
    frame_scores = clip.get('frame_scores')
    if frame_scores is not None:
        frame_scores = np.asarray(frame_scores, dtype=np.float64)
        if frame_scores.size == 0 and n == 0:
            frame_scores = frame_scores.reshape(0, t)
    if valid.shape != (t, ) or tubes.shape != (n, t, 4) or masks.shape != (n, t) or labels.shape != (n, ) or \
            (frame_scores is not None and frame_scores.shape != (n, t)):
        fs_shape = None if frame_scores is None else frame_scores.shape
        raise ValueError(
            f'{where}: inconsistent shapes for {t} frames and {n} tubes: frame_valid '
            f'{valid.shape}, tubes {tubes.shape}, tube_masks {masks.shape}, labels {labels.shape}, '
            f'frame_scores {fs_shape}')
    if t and (frame_numbers.min() < 1 or frame_numbers.max() > nframes):
        raise ValueError(f'{where}: frame_numbers must be 1-based frame numbers in 1..{nframes} (nframes), '
                         f'got values in [{frame_numbers.min()}, {frame_numbers.max()}]')
    # A frame listed twice (padding repeats the last frame) counts once: its first valid occurrence.
    first = np.zeros(t, dtype=bool)
    valid_idx = np.nonzero(valid)[0]
    _, first_of_valid = np.unique(frame_numbers[valid_idx], return_index=True)
    first[valid_idx[first_of_valid]] = True
    cols = np.nonzero(first)[0]
    cols = cols[np.argsort(frame_numbers[cols], kind='stable')]
    masks = masks[:, cols]
    if not np.all(np.isfinite(scores)) or not np.all(np.isfinite(tubes[:, cols][masks])):
        raise ValueError(f'{where}: scores and boxes on valid frames must be finite')
    keep = np.nonzero(masks.any(axis=1))[0]
    if not len(keep):
        return None
    tubes, masks, scores, labels = tubes[keep][:, cols], masks[keep], scores[keep], labels[keep]
    frame_scores = None if frame_scores is None else frame_scores[keep][:, cols]
    order = _canonical_tube_order(tubes, masks, scores, labels, frame_scores)
    return dict(
        positions=frame_numbers[cols] - 1,
        tubes=tubes[order],
        masks=masks[order],
        scores=scores[order],
        labels=labels[order],
        frame_scores=None if frame_scores is None else frame_scores[order])


def _canonical_tube_order(tubes: np.ndarray, masks: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                          frame_scores: Optional[np.ndarray]) -> np.ndarray:
    """The order ``(n,)`` of the tubes of one clip by content (descending score, then label, then boxes,
    masks and frame scores), so that the linking, which visits tubes in order and breaks exact ties by it,
    does not depend on the order the tubes of a clip were given in (only identical tubes tie fully)."""
    n = len(scores)
    columns = [-np.asarray(scores, dtype=np.float64).reshape(n, 1), labels.reshape(n, 1).astype(np.float64),
               np.asarray(tubes, dtype=np.float64).reshape(n, -1), masks.reshape(n, -1).astype(np.float64)]
    if frame_scores is not None:
        columns.append(np.asarray(frame_scores, dtype=np.float64).reshape(n, -1))
    priority = np.concatenate(columns, axis=1)  # (n, K), the first column the most significant
    return np.lexsort(priority.T[::-1])  # np.lexsort sorts by its last key first


def drop_nonfinite_tubes(clips: Sequence[dict], video: str = '<video>', warn: bool = True):
    """Leave out the clip tubes whose score or boxes (on frames of their mask) are NaN or infinite.

    :func:`prepare_clips` rejects such values (a clear error for hand-made inputs); model outputs go through
    this function first, so that a numerically broken prediction costs that tube, not the whole evaluation.
    Zero-size and out-of-frame boxes are kept: IoUs with them are simply 0.

    Args:
        clips (Sequence[dict]): Clip predictions (layout in :func:`prepare_clips`).
        video (str): Video name for the warning. Defaults to ``'<video>'``.
        warn (bool): Log a warning (mmengine logger) when tubes are dropped. Defaults to True.

    Returns:
        tuple[list[dict], int]: The clips (a clip is copied only when tubes are dropped) and the number of
        dropped tubes.
    """
    out, dropped = [], 0
    for clip in clips:
        scores = np.asarray(clip['scores'], dtype=np.float64).reshape(-1)
        tubes = np.asarray(clip['tubes'], dtype=np.float64)
        masks = np.asarray(clip['tube_masks']).astype(bool)
        if tubes.shape[:1] != scores.shape or masks.shape[:1] != scores.shape or tubes.ndim != 3:
            out.append(clip)  # malformed: prepare_clips names the problem
            continue
        finite_boxes = np.where(masks[..., None] if masks.shape == tubes.shape[:2] else True,
                                np.isfinite(tubes), True).all(axis=(1, 2))
        ok = np.isfinite(scores) & finite_boxes
        if ok.all():
            out.append(clip)
            continue
        dropped += int((~ok).sum())
        clip = dict(clip)
        for key in ('tubes', 'tube_masks', 'scores', 'labels', 'frame_scores'):
            if clip.get(key) is not None:
                clip[key] = np.asarray(clip[key])[ok]
        out.append(clip)
    if dropped and warn:
        from mmengine.logging import print_log
        print_log(f'video {video!r}: {dropped} predicted clip tube(s) with a NaN/inf score or box were left '
                  'out of the linking and the evaluation (the model output is numerically broken)',
                  logger='current', level=30)
    return out, dropped


def _clip_sort_key(clip: dict) -> tuple:
    pos = clip['positions']
    fs = b'' if clip['frame_scores'] is None else clip['frame_scores'].tobytes()
    return (int(pos[0]), int(pos[-1]), len(pos), pos.tobytes(), len(clip['scores']), clip['scores'].tobytes(),
            clip['labels'].tobytes(), clip['masks'].tobytes(), clip['tubes'].tobytes(), fs)


def prepare_clips(clips: Sequence[dict], nframes: int, video: str = '<video>') -> List[dict]:
    """Validate clip predictions of one video and sort them deterministically.

    Args:
        clips (Sequence[dict]): Clip predictions, each with ``frame_numbers (T,)`` 1-based video frame
            numbers (clips written before the rename may call them ``frame_inds``:
            :func:`rename_legacy_keys`), optional ``frame_valid (T,)`` bool (False on padding; default all
            True), ``tubes (n, T, 4)`` xyxy in original video pixels, ``tube_masks (n, T)`` bool,
            ``scores (n,)``, ``labels (n,)`` 0-based, optional ``frame_scores (n, T)`` per-frame actionness.
            numpy arrays or anything ``np.asarray`` accepts.
        nframes (int): Number of frames of the video.
        video (str): Video name for the messages. Defaults to ``'<video>'``.

    Returns:
        list[dict]: Normalised clips sorted by (first frame, last frame, content): ``positions (T',)`` 0-based
        sorted distinct valid frames, ``tubes (n', T', 4)`` float64, ``masks (n', T')``, ``scores``,
        ``labels``, ``frame_scores (n', T')`` or None; the tubes of each clip by descending score, then by
        content (:func:`_canonical_tube_order`). Tubes (and clips) without any valid frame are left out.
    """
    prepared = [_normalise_clip(c, nframes, video, i) for i, c in enumerate(clips)]
    prepared = [c for c in prepared if c is not None]
    with_fs = {c['frame_scores'] is not None for c in prepared}
    if len(with_fs) > 1:
        raise ValueError(
            f'video {video!r}: some clip predictions have frame_scores and others do not; provide '
            'them for all clips or for none')
    return sorted(prepared, key=_clip_sort_key)


class _VideoTubeStore:
    """Growing arrays of the video tubes of one video (internal)."""

    def __init__(self, nframes: int, with_frame_scores: bool):
        self.nframes = nframes
        self.count = 0
        self.with_fs = with_frame_scores
        self._alloc(16)

    def _alloc(self, cap: int) -> None:
        old = self.__dict__.get('label')
        fields = dict(
            label=((), np.int64, 0),
            start=((), np.int64, self.nframes),
            end=((), np.int64, -1),
            score_sum=((), np.float64, 0),
            num_clips=((), np.int64, 0),
            box_sum=((self.nframes, 4), np.float64, 0),
            w_sum=((self.nframes, ), np.float64, 0),
            fs_sum=((self.nframes, ), np.float64, 0),
            fs_cnt=((self.nframes, ), np.int64, 0))
        for name, (shape, dtype, fill) in fields.items():
            arr = np.full((cap, ) + shape, fill, dtype=dtype)
            if old is not None:
                arr[:self.count] = getattr(self, name)[:self.count]
            setattr(self, name, arr)

    def new(self, label: int) -> int:
        if self.count == len(self.label):
            self._alloc(2 * len(self.label))
        k = self.count
        self.count += 1
        self.label[k] = label
        return k

    def add_clip(self, ks: np.ndarray, positions: np.ndarray, masks: np.ndarray, boxes: np.ndarray,
                 scores: np.ndarray, frame_scores: Optional[np.ndarray]) -> None:
        """Add the tubes of one clip to the video tubes ``ks`` (distinct; one clip tube per video tube).

        Args:
            ks (np.ndarray): ``(n,)`` video tube of each clip tube.
            positions (np.ndarray): ``(P,)`` 0-based video frames of the clip.
            masks (np.ndarray): ``(n, P)`` clip tube masks.
            boxes (np.ndarray): ``(n, P, 4)`` clip tube boxes.
            scores (np.ndarray): ``(n,)`` clip tube scores.
            frame_scores (np.ndarray, optional): ``(n, P)`` actionness.
        """
        rows, cols = np.nonzero(masks)
        k, p = ks[rows], positions[cols]  # (k, p) pairs are distinct: plain fancy-index updates are exact
        w = np.maximum(scores, _MIN_WEIGHT)[rows]
        self.box_sum[k, p] += w[:, None] * boxes[rows, cols]
        self.w_sum[k, p] += w
        if frame_scores is not None:
            self.fs_sum[k, p] += frame_scores[rows, cols]
            self.fs_cnt[k, p] += 1
        self.score_sum[ks] += scores
        self.num_clips[ks] += 1
        first, last, _ = mask_extents(masks)  # every tube of a prepared clip has a frame
        self.start[ks] = np.minimum(self.start[ks], positions[first])
        self.end[ks] = np.maximum(self.end[ks], positions[last])

    def boxes_at(self, ks: np.ndarray, positions: np.ndarray):
        """Current (averaged) boxes ``(K, P, 4)`` and presence ``(K, P)`` of tubes ``ks`` at ``positions``."""
        w = self.w_sum[ks[:, None], positions[None, :]]
        present = w > 0
        boxes = self.box_sum[ks[:, None], positions[None, :]] / np.where(present, w, 1.0)[..., None]
        return boxes, present


def _interpolate_holes(boxes: np.ndarray, masks: np.ndarray, values: Optional[np.ndarray]) -> None:
    """Fill frames between the first and last True of each mask by linear interpolation (in place)."""
    if masks.shape[1] == 0:
        return
    t = np.arange(masks.shape[1])
    first, last, _ = mask_extents(masks)
    inside = (t[None] >= first[:, None]) & (t[None] <= last[:, None])  # empty rows: first > last, none inside
    for k in np.nonzero((inside & ~masks).any(axis=1))[0]:
        known = np.nonzero(masks[k])[0]
        holes = np.nonzero(inside[k] & ~masks[k])[0]
        for j in range(4):
            boxes[k, holes, j] = np.interp(holes, known, boxes[k, known, j])
        if values is not None:
            values[k, holes] = np.interp(holes, known, values[k, known])
        masks[k, holes] = True


def _centres_sizes(boxes: np.ndarray):
    """Box centres ``(..., 2)`` and sizes ``sqrt(w * h)`` ``(...)`` of xyxy boxes ``(..., 4)``."""
    centres = box_centres(boxes)
    wh = np.clip(boxes[..., 2:] - boxes[..., :2], 0, None)
    return centres, np.sqrt(wh[..., 0] * wh[..., 1])


def _slope(t: np.ndarray, values: np.ndarray, weights: np.ndarray):
    """Least-squares slopes of ``values`` against ``t`` over the frames where ``weights`` is True.

    Args:
        t (np.ndarray): ``(..., P)`` frame numbers (broadcast against ``weights``).
        values (np.ndarray): ``(..., P, C)`` values.
        weights (np.ndarray): ``(..., P)`` bool, the frames used.

    Returns:
        tuple[np.ndarray, np.ndarray]: slopes ``(..., C)`` (0 where undefined) and ``(...)`` bool, True where
        at least 2 distinct frames are used.
    """
    w = weights.astype(np.float64)
    n = w.sum(-1)
    t = np.broadcast_to(t, w.shape).astype(np.float64)
    t_mean = (w * t).sum(-1) / np.maximum(n, 1)
    dt = (t - t_mean[..., None]) * w
    var = (dt * dt).sum(-1)
    ok = (n >= 2) & (var > 0)
    cov = (dt[..., None] * values).sum(-2)
    return cov / np.where(ok, var, 1.0)[..., None] * ok[..., None], ok


def _velocity_difference(store: '_VideoTubeStore', cand: np.ndarray, positions: np.ndarray,
                         tubes: np.ndarray, masks: np.ndarray, vt_boxes: np.ndarray,
                         vt_present: np.ndarray) -> np.ndarray:
    """``dv (n, K)``: velocity difference of clip tubes and candidate video tubes (module docstring).

    Args:
        store (_VideoTubeStore): The video tubes.
        cand (np.ndarray): ``(K,)`` candidate video tubes.
        positions (np.ndarray): ``(P,)`` 0-based video frames of the clip.
        tubes (np.ndarray): ``(n, P, 4)`` clip tube boxes. masks: ``(n, P)``.
        vt_boxes (np.ndarray): ``(K, P, 4)`` video tube boxes on the clip's frames. vt_present: ``(K, P)``.

    Returns:
        np.ndarray: ``(n, K)`` float64, in box sizes per frame; 0 where it cannot be measured.
    """
    c_clip, s_clip = _centres_sizes(tubes)  # (n, P, 2), (n, P)
    c_vt, s_vt = _centres_sizes(vt_boxes)  # (K, P, 2), (K, P)
    # on the shared frames: the slope of the centre difference is the difference of the slopes
    both = masks[:, None, :] & vt_present[None, :, :]  # (n, K, P)
    dslope, shared_ok = _slope(positions, c_clip[:, None] - c_vt[None], both)
    size = ((s_clip[:, None] + s_vt[None]) * both).sum(-1) / np.maximum(2 * both.sum(-1), 1)
    dv = np.linalg.norm(dslope, axis=-1) / np.maximum(size, 1e-6)
    if shared_ok.all():
        return np.where(shared_ok, dv, 0.0)
    # otherwise: the clip tube over its frames against the video tube over its last P frames
    v_clip, ok_clip = _slope(positions, c_clip, masks)  # (n, 2)
    size_clip = (s_clip * masks).sum(-1) / np.maximum(masks.sum(-1), 1)
    idx = store.end[cand][:, None] - np.arange(len(positions))[None, ::-1]  # (K, P)
    inside = idx >= 0
    idx = np.maximum(idx, 0)
    w = store.w_sum[cand[:, None], idx]
    last = inside & (w > 0)
    c_last, s_last = _centres_sizes(store.box_sum[cand[:, None], idx] / np.where(last, w, 1.0)[..., None])
    v_last, ok_last = _slope(idx, c_last, last)  # (K, 2)
    size_last = (s_last * last).sum(-1) / np.maximum(last.sum(-1), 1)
    size_far = 0.5 * (size_clip[:, None] + size_last[None])
    dv_far = np.linalg.norm(v_clip[:, None] - v_last[None], axis=-1) / np.maximum(size_far, 1e-6)
    ok_far = ok_clip[:, None] & ok_last[None]
    return np.where(shared_ok, dv, np.where(ok_far, dv_far, 0.0))


def _greedy_assign(affinity: np.ndarray, scores: np.ndarray, link_iou: float) -> np.ndarray:
    """Clip tubes by descending score, each takes the free candidate of best affinity if >= ``link_iou``.

    Args:
        affinity (np.ndarray): ``(n, K)`` affinities (-1: not a candidate).
        scores (np.ndarray): ``(n,)`` clip tube scores.
        link_iou (float): The threshold.

    Returns:
        np.ndarray: ``(n,)`` int64 candidate index of each clip tube, -1 for a new video tube.
    """
    n, num_cand = affinity.shape
    used = np.zeros(num_cand, dtype=bool)
    assigned = np.full(n, -1, dtype=np.int64)
    if num_cand == 0:
        return assigned
    for i in descending_score_order(scores):
        row = np.where(used, -1.0, affinity[i])
        best = int(np.argmax(row))
        if row[best] >= link_iou:
            used[best] = True
            assigned[i] = best
    return assigned


def link_video_tubes(clips: Sequence[dict],
                     nframes: int,
                     link_iou: float = 0.5,
                     trim_thr: Optional[float] = 0.5,
                     nms_thr: Optional[float] = 0.3,
                     max_gap: int = 0,
                     plus_one: bool = False,
                     video: str = '<video>',
                     link_method: str = 'greedy',
                     vel_weight: float = 2.0) -> dict:
    """Link the clip tubes of one video into video tubes (algorithm in the module docstring).

    The result does not depend on the order of ``clips`` (they are sorted by content first).

    Args:
        clips (Sequence[dict]): Clip predictions of the video (layout in :func:`prepare_clips`).
        nframes (int): Number of frames of the video.
        link_iou (float): Minimum affinity (mean IoU on shared frames, or facing-box IoU across a gap) for a
            clip tube to extend a video tube. Defaults to 0.5.
        trim_thr (float, optional): Actionness threshold of the temporal trimming; None disables it. Skipped
            when the clips have no ``frame_scores``. Defaults to 0.5 (the sigmoid's decision boundary).
        nms_thr (float, optional): Class-wise tube-NMS threshold (st-IoU); None disables it. Defaults to 0.3.
        max_gap (int): Largest number of frames between a video tube's last frame and a clip tube's first
            frame that can still be bridged (affinity = IoU of the facing boxes; the gap is interpolated).
            Defaults to 0 (adjacent clips only, as ACT).
        plus_one (bool): Inclusive-pixel IoUs (ACT). Defaults to False.
        video (str): Video name for the messages. Defaults to ``'<video>'``.
        link_method (str): How the tubes of a clip are joined to the video tubes: ``'greedy'`` (by descending
            clip-tube score, each takes its best free candidate) or ``'hungarian'`` (global assignment per
            class on affinity and velocity agreement; module docstring). Defaults to ``'greedy'``.
        vel_weight (float): Weight of the velocity difference (box sizes per frame) subtracted from the
            affinity by ``'hungarian'``; 0 joins on the affinity alone. Unused by ``'greedy'``. Defaults to
            2.0 (> 1: see the module docstring).

    Returns:
        dict: ``tubes (K, nframes, 4)`` float64 (0 outside the masks), ``tube_masks (K, nframes)`` bool,
        ``scores (K,)`` float64 (mean clip score), ``labels (K,)`` int64, ``num_clips (K,)`` int64 (clip tubes
        linked), ``frame_scores (K, nframes)`` float64 averaged actionness (0 outside; zeros when the clips
        have none), ``num_trimmed_away`` (int, tubes removed by the trimming), sorted by descending score.
    """
    if nframes < 1:
        raise ValueError(f'link_video_tubes: nframes of video {video!r} must be >= 1, got {nframes}')
    return link_prepared_clips(
        prepare_clips(clips, nframes, video), nframes, link_iou, trim_thr, nms_thr, max_gap, plus_one,
        link_method, vel_weight)


def link_prepared_clips(prepared: List[dict],
                        nframes: int,
                        link_iou: float = 0.5,
                        trim_thr: Optional[float] = 0.5,
                        nms_thr: Optional[float] = 0.3,
                        max_gap: int = 0,
                        plus_one: bool = False,
                        link_method: str = 'greedy',
                        vel_weight: float = 2.0) -> dict:
    """:func:`link_video_tubes` on clips already returned by :func:`prepare_clips` (same arguments/result)."""
    if max_gap < 0:
        raise ValueError(f'link_video_tubes: max_gap must be >= 0, got {max_gap}')
    if link_method not in LINK_METHODS:
        raise ValueError(f'link_video_tubes: link_method must be one of {list(LINK_METHODS)}, got '
                         f'{link_method!r}')
    if not np.isfinite(vel_weight) or vel_weight < 0:
        raise ValueError(f'link_video_tubes: vel_weight must be a finite number >= 0, got {vel_weight}')
    with_fs = bool(prepared) and prepared[0]['frame_scores'] is not None
    store = _VideoTubeStore(nframes, with_fs)

    for clip in prepared:
        positions, tubes, masks = clip['positions'], clip['tubes'], clip['masks']
        n = len(clip['scores'])
        first_idx, last_idx, _ = mask_extents(masks)  # every tube of a prepared clip has a frame
        starts, ends = positions[first_idx], positions[last_idx]

        k_all = np.arange(store.count)
        cand = k_all[(store.end[:store.count] >= starts.min() - max_gap - 1)
                     & (store.start[:store.count] <= ends.max())
                     & (store.label[:store.count, None] == clip['labels'][None, :]).any(axis=1)]
        affinity = np.full((n, len(cand)), -1.0)
        dv = np.zeros((n, len(cand)))
        if len(cand):
            vt_boxes, vt_present = store.boxes_at(cand, positions)
            frame_iou = tube_frame_iou(tubes, masks, vt_boxes, vt_present, plus_one)  # (n, K, P)
            shared = (masks[:, None, :] & vt_present[None, :, :]).sum(-1)
            overlap_aff = frame_iou.sum(-1) / np.maximum(shared, 1)
            vt_end = store.end[cand]
            gap = starts[:, None] - vt_end[None, :] - 1
            gap_ok = (shared == 0) & (gap >= 0) & (gap <= max_gap)
            gap_aff = np.zeros_like(overlap_aff)
            if gap_ok.any():
                last_boxes = store.box_sum[cand, vt_end] / store.w_sum[cand, vt_end][:, None]
                first_boxes = tubes[np.arange(n), first_idx]
                gap_aff = box_iou(first_boxes, last_boxes, plus_one)
            affinity = np.where(shared > 0, overlap_aff, np.where(gap_ok, gap_aff, -1.0))
            affinity[clip['labels'][:, None] != store.label[cand][None, :]] = -1.0
            if link_method == 'hungarian' and vel_weight > 0:
                dv = _velocity_difference(store, cand, positions, tubes, masks, vt_boxes, vt_present)

        if link_method == 'greedy':
            choice = _greedy_assign(affinity, clip['scores'], link_iou)
        else:
            choice = np.full(n, -1, dtype=np.int64)
            score = affinity - vel_weight * dv
            for label in np.unique(clip['labels'][(affinity >= 0).any(axis=1)]):
                rows = np.nonzero(clip['labels'] == label)[0]
                cols = np.nonzero(store.label[cand] == label)[0]
                sub = max_gain_matching(score[rows][:, cols], affinity[rows][:, cols] >= 0, link_iou)
                choice[rows[sub >= 0]] = cols[sub[sub >= 0]]
        assigned = np.empty(n, dtype=np.int64)
        for i in descending_score_order(clip['scores']):  # new video tubes in descending score order
            assigned[i] = cand[choice[i]] if choice[i] >= 0 else store.new(int(clip['labels'][i]))
        store.add_clip(assigned, positions, masks, tubes, clip['scores'],
                       clip['frame_scores'] if with_fs else None)

    return _finalise(store, trim_thr, nms_thr, plus_one)


def _finalise(store: _VideoTubeStore, trim_thr: Optional[float], nms_thr: Optional[float],
              plus_one: bool) -> dict:
    k = store.count
    w = store.w_sum[:k]
    masks = w > 0
    boxes = store.box_sum[:k] / np.where(masks, w, 1.0)[..., None]
    frame_scores = store.fs_sum[:k] / np.maximum(store.fs_cnt[:k], 1)
    _interpolate_holes(boxes, masks, frame_scores if store.with_fs else None)
    scores = store.score_sum[:k] / np.maximum(store.num_clips[:k], 1)
    labels, num_clips = store.label[:k].copy(), store.num_clips[:k].copy()

    num_trimmed_away = 0
    if trim_thr is not None and store.with_fs and k:
        above = masks & (frame_scores >= trim_thr)
        alive = above.any(axis=1)
        t = np.arange(store.nframes)
        first, last, _ = mask_extents(above)  # the rows that are not alive are removed below
        masks &= (t[None] >= first[:, None]) & (t[None] <= last[:, None])
        num_trimmed_away = int((~alive).sum())
        boxes, masks, scores, labels = boxes[alive], masks[alive], scores[alive], labels[alive]
        num_clips, frame_scores = num_clips[alive], frame_scores[alive]

    keep = np.arange(len(scores))
    if nms_thr is not None and len(keep) > 1:
        kept = [
            idx[tube_nms(boxes[idx], masks[idx], scores[idx], nms_thr, plus_one)]
            for idx in (np.nonzero(labels == c)[0] for c in np.unique(labels))
        ]
        keep = np.concatenate(kept)
    keep = keep[descending_score_order(scores[keep], keep)]
    boxes, masks = boxes[keep], masks[keep]
    boxes[~masks] = 0
    frame_scores = np.where(masks, frame_scores[keep], 0.0) if store.with_fs else np.zeros(masks.shape)
    return dict(
        tubes=boxes,
        tube_masks=masks,
        scores=scores[keep],
        labels=labels[keep],
        num_clips=num_clips[keep],
        frame_scores=frame_scores,
        num_trimmed_away=num_trimmed_away)


def link_tubes(clips_by_video: Dict[str, Sequence[dict]], nframes: Dict[str, int],
               **kwargs) -> Dict[str, dict]:
    """:func:`link_video_tubes` for every video.

    Args:
        clips_by_video (dict[str, Sequence[dict]]): Clip predictions per video.
        nframes (dict[str, int]): Number of frames per video (e.g. ``ann['nframes']``).
        **kwargs: Arguments of :func:`link_video_tubes` (``link_iou``, ``trim_thr``, ``nms_thr``, ``max_gap``,
            ``plus_one``, ``link_method``, ``vel_weight``).

    Returns:
        dict[str, dict]: Linked tubes per video (same keys as ``clips_by_video``).
    """
    missing = [v for v in clips_by_video if v not in nframes]
    if missing:
        raise KeyError(f'link_tubes: no frame count for {len(missing)} video(s), e.g. {missing[:3]}')
    return {v: link_video_tubes(clips, nframes[v], video=v, **kwargs) for v, clips in clips_by_video.items()}
