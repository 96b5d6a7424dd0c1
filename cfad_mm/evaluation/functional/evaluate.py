"""End-to-end evaluation of clip predictions: frame-mAP from the clip tubes, video-mAP from the linked tubes.

Usable offline, without mmengine::

    from cfad_mm.evaluation import evaluate_tubes, format_report_table
    report = evaluate_tubes(clips_by_video, 'data/ucf24/UCF101v2-GT.pkl', split=0)
    print(format_report_table(report))
    report['metrics']   # {'frame_mAP@0.5': ..., 'video_mAP@0.2': ..., ..., 'video_mAP@0.5:0.95': ...}
"""
import time
from typing import Dict, Optional, Sequence, Union

import numpy as np

from ..linking import link_prepared_clips, prepare_clips
from .ap import subsample_pr
from .frame_map import frame_map
from .ground_truth import resolve_annotations, split_videos
from .matching import grouped_box_nms
from .protocol import get_protocol
from .video_map import VIDEO_05_095_THRS, video_map

__all__ = ['evaluate_tubes', 'clip_frame_detections', 'format_report_table', 'report_to_json', 'metric_keys']


def _progress(items: list, enabled: bool, desc: str):
    """``items``, with a progress bar (tqdm, on stderr) when ``enabled``."""
    if not enabled:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit='video', leave=True)


def clip_frame_detections(prepared_by_video: Dict[str, list], videos: Sequence[str]) -> dict:
    """Frame detections (one row per clip tube and covered frame) from prepared clips.

    As ACT's ``load_frame_detections``: every clip tube contributes its box on each of its valid frames with
    the clip tube's score; a frame covered by overlapping clips gets a box from each (the per-frame NMS of
    frame-mAP removes the duplicates).

    Args:
        prepared_by_video (dict[str, list]): Output of :func:`cfad_mm.evaluation.prepare_clips` per video.
        videos (Sequence[str]): The evaluated videos; ``video_idx`` indexes this list.

    Returns:
        dict: ``video_idx``, ``frame`` (1-based), ``label``, ``score`` ``(N,)`` and ``boxes`` ``(N, 4)``.
    """
    parts = {k: [] for k in ('video_idx', 'frame', 'label', 'score', 'boxes')}
    for vi, video in enumerate(videos):
        for clip in prepared_by_video.get(video, ()):
            tube_idx, col = np.nonzero(clip['masks'])
            parts['video_idx'].append(np.full(len(tube_idx), vi, dtype=np.int64))
            parts['frame'].append(clip['positions'][col] + 1)
            parts['label'].append(clip['labels'][tube_idx])
            parts['score'].append(clip['scores'][tube_idx])
            parts['boxes'].append(clip['tubes'][tube_idx, col])
    if not parts['score']:
        empty = np.zeros(0, dtype=np.int64)
        return dict(
            video_idx=empty,
            frame=empty.copy(),
            label=empty.copy(),
            score=np.zeros(0),
            boxes=np.zeros((0, 4)))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _frame_detection_nms(dets: dict, nms_thr: float, plus_one: bool) -> dict:
    """Per (video, frame, class) hard NMS of frame detections.

    Detector post-processing for the protocols whose frame-mAP has no NMS of its own: a frame covered by two
    overlapping clips would otherwise count twice."""
    if len(dets['score']) == 0:
        return dets
    _, groups = np.unique(np.stack([dets['video_idx'], dets['frame'], dets['label']], axis=1), axis=0,
                          return_inverse=True)
    keep = grouped_box_nms(dets['boxes'], dets['score'], groups.reshape(-1), nms_thr, plus_one)
    return {k: v[keep] for k, v in dets.items()}


def metric_keys(frame_iou_thr: float, video_iou_thrs: Sequence[float]) -> list:
    """Names of the summary metrics, in order."""
    return [f'frame_mAP@{frame_iou_thr:g}'] + [f'video_mAP@{t:g}'
                                               for t in video_iou_thrs] + ['video_mAP@0.5:0.95']


def evaluate_tubes(video_detections: Dict[str, Sequence[dict]],
                   annotations: Union[str, dict],
                   split: int = 0,
                   subset: str = 'test',
                   protocol: str = 'act',
                   frame_iou_thr: float = 0.5,
                   video_iou_thrs: Sequence[float] = (0.2, 0.5, 0.75),
                   nms_thr: Optional[float] = 0.3,
                   link_iou: float = 0.5,
                   trim_thr: Optional[float] = 0.5,
                   max_gap: int = 0,
                   return_tubes: bool = False,
                   progress: bool = False,
                   link_method: str = 'greedy',
                   vel_weight: float = 2.0) -> dict:
    """frame-mAP and video-mAP of clip predictions (ACT protocol by default).

    frame-mAP uses the clip tubes directly (each box of each clip tube on each of its frames, the clip tube's
    score), as ACT builds frame detections from its tubelets; it does not depend on the linking. video-mAP
    uses the video tubes of :func:`cfad_mm.evaluation.link_video_tubes` (same ``nms_thr`` and pixel
    convention as the evaluation, so its final NMS and the evaluation's are the same operation). Evaluated
    videos without any prediction still count: their ground truth are misses. The result does not depend on
    the order of the videos or clips.

    Args:
        video_detections (dict[str, Sequence[dict]]): Per video name, its clip predictions (layout in
            :func:`cfad_mm.evaluation.prepare_clips`: ``frame_numbers``, ``frame_valid``, ``tubes``,
            ``tube_masks``, ``scores``, ``labels``, optional ``frame_scores``), boxes in original video
            pixels.
        annotations (str | dict): Annotation pickle path or dict (ACT format).
        split (int): 0-based split index. Defaults to 0.
        subset (str): ``'test'`` or ``'train'`` videos of the split. Defaults to ``'test'``.
        protocol (str): ``'act'``, ``'voc'`` or ``'multisports'`` (:mod:`.protocol`). Defaults to ``'act'``.
            With ``'multisports'`` (whose frame-mAP / video-mAP have no NMS, as mmaction2's), ``nms_thr`` is
            applied to the frame detections before frame-mAP and by the linking to the video tubes.
        frame_iou_thr (float): IoU threshold of frame-mAP. Defaults to 0.5.
        video_iou_thrs (Sequence[float]): Reported video-mAP thresholds; video-mAP@0.5:0.95 (mean over
            0.5, 0.55, ..., 0.95) is always added. Defaults to (0.2, 0.5, 0.75).
        nms_thr (float, optional): Hard-NMS threshold of frame detections, linked tubes and evaluated tubes.
            Defaults to 0.3 (ACT).
        link_iou (float): Linking threshold. Defaults to 0.5.
        trim_thr (float, optional): Temporal trimming threshold of the linking. Defaults to 0.5.
        max_gap (int): Largest gap (frames) bridged by the linking. Defaults to 0.
        return_tubes (bool): Also return the linked video tubes. Defaults to False.
        progress (bool): Progress bars over the videos (preparing, linking) on stderr, for the offline tools.
            Defaults to False (quiet, as inside ``TubeMetric``).
        link_method (str): ``'greedy'`` or ``'hungarian'`` joining of the windows
            (:func:`cfad_mm.evaluation.link_video_tubes`). Defaults to ``'greedy'``.
        vel_weight (float): Velocity weight of ``'hungarian'``. Defaults to 2.0.

    Returns:
        dict: ``metrics`` (summary dict, values in [0, 1]), ``classes``, ``evaluated_classes``,
        ``skipped_classes`` (no ground truth in the evaluated videos), ``frame`` (result of
        :func:`~.frame_map.frame_map` + ``iou_thr``), ``video`` ({threshold: per-class result}),
        ``video_iou_thrs``, ``settings``, ``num_videos``, ``num_videos_with_predictions``,
        ``num_clip_predictions``, ``num_linked_tubes``, ``num_trimmed_away``, ``timing`` (seconds) and, with
        ``return_tubes``, ``video_tubes``.

    Raises:
        ValueError: For predictions of videos outside the evaluated split, malformed predictions, or an
            evaluated split without any ground-truth tube.
    """
    prot = get_protocol(protocol)
    ann = resolve_annotations(annotations)
    videos = split_videos(ann, split, subset)
    video_set = set(videos)
    unknown = sorted(v for v in video_detections if v not in video_set)
    if unknown:
        raise ValueError(
            f'evaluate_tubes: predictions for {len(unknown)} video(s) that are not in '
            f'{subset}_videos[{split}] of the annotation, e.g. {unknown[:3]}; wrong annotation file '
            'or split?')
    if not any(
            len(t) for per_label in (ann['gttubes'].get(v, {}) for v in videos) for t in per_label.values()):
        raise ValueError(
            f'evaluate_tubes: {subset}_videos[{split}] ({len(videos)} videos) has no ground-truth '
            'tube; the mAPs are undefined')
    video_iou_thrs = tuple(float(t) for t in video_iou_thrs)
    timing = {}

    tic = time.perf_counter()
    prepared = {
        v: prepare_clips(video_detections[v], ann['nframes'][v], v)
        for v in _progress([v for v in videos if v in video_detections], progress, 'prepare clips')
    }
    frame_dets = clip_frame_detections(prepared, videos)
    if not prot.eval_nms and nms_thr is not None:
        frame_dets = _frame_detection_nms(frame_dets, nms_thr, prot.plus_one)
    frame_result = frame_map(frame_dets, ann, videos, frame_iou_thr, nms_thr, prot)
    frame_result['iou_thr'] = frame_iou_thr
    timing['frame_map'] = time.perf_counter() - tic

    tic = time.perf_counter()
    video_tubes = {
        v:
        link_prepared_clips(
            clips,
            ann['nframes'][v],
            link_iou=link_iou,
            trim_thr=trim_thr,
            nms_thr=nms_thr,
            max_gap=max_gap,
            plus_one=prot.plus_one,
            link_method=link_method,
            vel_weight=vel_weight)
        for v, clips in _progress(list(prepared.items()), progress, 'link tubes')
    }
    timing['linking'] = time.perf_counter() - tic

    tic = time.perf_counter()
    video_result = video_map(video_tubes, ann, videos, video_iou_thrs + VIDEO_05_095_THRS, nms_thr, prot)
    timing['video_map'] = time.perf_counter() - tic

    keys = metric_keys(frame_iou_thr, video_iou_thrs)
    metrics = {keys[0]: frame_result['mAP']}
    for key, thr in zip(keys[1:-1], video_iou_thrs):
        metrics[key] = video_result[round(thr, 4)]['mAP']
    metrics[keys[-1]] = float(np.mean([video_result[round(t, 4)]['mAP'] for t in VIDEO_05_095_THRS]))

    labels = list(ann['labels'])
    evaluated = frame_result['evaluated']
    report = dict(
        metrics=metrics,
        classes=labels,
        evaluated_classes=[c for c, e in zip(labels, evaluated) if e],
        skipped_classes=[c for c, e in zip(labels, evaluated) if not e],
        frame=frame_result,
        video=video_result,
        video_iou_thrs=video_iou_thrs,
        settings=dict(
            protocol=prot.name,
            split=split,
            subset=subset,
            frame_iou_thr=frame_iou_thr,
            video_iou_thrs=list(video_iou_thrs),
            nms_thr=nms_thr,
            link_iou=link_iou,
            trim_thr=trim_thr,
            max_gap=max_gap,
            link_method=link_method,
            vel_weight=vel_weight),
        num_videos=len(videos),
        num_videos_with_predictions=len(prepared),
        num_clip_predictions=int(sum(len(c) for c in video_detections.values())),
        num_linked_tubes=int(sum(len(t['scores']) for t in video_tubes.values())),
        num_trimmed_away=int(sum(t['num_trimmed_away'] for t in video_tubes.values())),
        timing=timing)
    if return_tubes:
        report['video_tubes'] = video_tubes
    return report


def _fmt(value: float) -> str:
    return '    -' if np.isnan(value) else f'{100 * value:6.2f}'


def format_report_table(report: dict) -> str:
    """A per-class table (AP in %) of an :func:`evaluate_tubes` report."""
    thrs = report['video_iou_thrs']
    head = ['class', f"frame@{report['frame']['iou_thr']:g}"] + [f'video@{t:g}' for t in thrs] + \
        ['video@.5:.95', 'GT tubes']
    n_eval = len(report['evaluated_classes'])
    mean_name = f'mAP ({n_eval} classes)'
    name_w = max([len(c) for c in report['classes']] + [len(mean_name), 12])
    lines = [' '.join([head[0].ljust(name_w)] + [h.rjust(12) for h in head[1:]])]
    video = report['video']
    mean_05_095 = np.mean([video[round(t, 4)]['ap'] for t in VIDEO_05_095_THRS], axis=0)
    num_gt_tubes = video[round(thrs[0], 4)]['num_gt'] if thrs else video[0.5]['num_gt']
    for c, name in enumerate(report['classes']):
        cells = [_fmt(report['frame']['ap'][c])] + [_fmt(video[round(t, 4)]['ap'][c]) for t in thrs] + \
            [_fmt(mean_05_095[c]), str(int(num_gt_tubes[c]))]
        lines.append(' '.join([name.ljust(name_w)] + [x.rjust(12) for x in cells]))
    metrics = list(report['metrics'].values())
    lines.append(' '.join([mean_name.ljust(name_w)] + [_fmt(m).rjust(12) for m in metrics]))
    settings = report['settings']
    lines.append(f"protocol={settings['protocol']} split={settings['split']} subset={settings['subset']} "
                 f"videos={report['num_videos']} (with predictions: {report['num_videos_with_predictions']}) "
                 f"linked tubes={report['num_linked_tubes']} trimmed away={report['num_trimmed_away']}")
    if report['skipped_classes']:
        why = 'no ground truth in the evaluated videos'
        if get_protocol(settings['protocol']).skip_classes:
            why += ', or not evaluated by the protocol'
        lines.append(f"skipped ({why}): {', '.join(report['skipped_classes'])}")
    return '\n'.join(lines)


def report_to_json(report: dict, pr_points: int = 1000) -> dict:
    """A JSON-serialisable summary of an :func:`evaluate_tubes` report (read by ``plot_ap.py``).

    PR curves are kept for frame-mAP and the reported video thresholds, subsampled to ``pr_points`` points
    (the APs are computed on the full curves); per-class APs are kept for every threshold.

    Args:
        report (dict): Output of :func:`evaluate_tubes`.
        pr_points (int): Maximum points per PR curve. Defaults to 1000.

    Returns:
        dict: ``metrics``, ``settings``, ``classes``, ``evaluated_classes``, ``skipped_classes``, ``frame``
        ({iou_thr, ap {class: AP or null}, num_gt, num_dets, pr_curves {class: {precision, recall}}}),
        ``video`` ({"<thr>": same layout; pr_curves only for the reported thresholds}), counts and timing.
    """
    classes = report['classes']

    def block(result: dict, with_pr: bool) -> dict:
        out = dict(
            ap={
                c: (None if np.isnan(a) else round(float(a), 6))
                for c, a in zip(classes, result['ap'])
            },
            mAP=None if np.isnan(result['mAP']) else round(float(result['mAP']), 6),
            num_gt={
                c: int(n)
                for c, n in zip(classes, result['num_gt'])
            },
            num_dets={
                c: int(n)
                for c, n in zip(classes, result['num_dets'])
            })
        if with_pr:
            out['pr_curves'] = {}
            for c, name in enumerate(classes):
                if result['evaluated'][c]:
                    p, r = subsample_pr(result['precision'][c], result['recall'][c], pr_points)
                    out['pr_curves'][name] = dict(precision=p, recall=r)
        return out

    frame = block(report['frame'], True)
    frame['iou_thr'] = report['frame']['iou_thr']
    reported = {round(t, 4) for t in report['video_iou_thrs']}
    video = {f'{thr:g}': block(res, thr in reported) for thr, res in sorted(report['video'].items())}
    return dict(
        metrics={
            k: (None if np.isnan(v) else round(float(v), 6))
            for k, v in report['metrics'].items()
        },
        settings=report['settings'],
        classes=classes,
        evaluated_classes=report['evaluated_classes'],
        skipped_classes=report['skipped_classes'],
        frame=frame,
        video=video,
        video_iou_thrs=list(report['video_iou_thrs']),
        num_videos=report['num_videos'],
        num_videos_with_predictions=report['num_videos_with_predictions'],
        num_clip_predictions=report['num_clip_predictions'],
        num_linked_tubes=report['num_linked_tubes'],
        num_trimmed_away=report['num_trimmed_away'],
        timing={
            k: round(v, 3)
            for k, v in report['timing'].items()
        })
