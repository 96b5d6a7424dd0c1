"""``TubeMetric``: frame-mAP and video-mAP (ACT protocol) inside mmengine's ``ValLoop`` / ``TestLoop``."""
import json
import os
import os.path as osp
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from ..functional import format_report_table, metric_keys, report_to_json, resolve_annotations
from ..functional.ground_truth import split_videos
from ..functional.protocol import get_protocol
from ..predictions import evaluate_clip_predictions

__all__ = ['TubeMetric', 'data_samples_to_clip_predictions']

PRED_KEYS = ('tubes', 'tube_masks', 'scores', 'labels')


def _numpy(value: Any, dtype) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value).astype(dtype, copy=False)


def data_samples_to_clip_predictions(data_samples: Sequence[Any]) -> List[dict]:
    """Compact, picklable numpy clip predictions from data samples (dicts or ``ActionDataSample``).

    A data sample (as mmengine's Evaluator passes it, ``ActionDataSample.to_dict()``, or as ``DumpResults``
    writes it) has ``pred_instances`` (``tubes (n, T, 4)`` original video pixels, ``tube_masks (n, T)``,
    ``scores (n,)``, ``labels (n,)``, optional ``frame_scores (n, T)``) and the metainfo keys ``video_id``,
    ``frame_numbers (T,)`` (1-based video frame numbers) and optionally ``frame_valid (T,)`` at the top level.
    (Dumps that still call the frame numbers ``frame_inds`` are read by
    :func:`~cfad_mm.evaluation.load_dump`.)

    Args:
        data_samples (Sequence[dict | BaseDataElement]): The data samples.

    Returns:
        list[dict]: One dict per data sample: ``video_id`` (str), ``frame_numbers`` int32 ``(T,)``,
        ``frame_valid`` bool ``(T,)``, ``tubes`` float32, ``tube_masks`` bool, ``scores`` float32, ``labels``
        int64 and ``frame_scores`` float32 or None.
    """
    clips = []
    for i, sample in enumerate(data_samples):
        if hasattr(sample, 'to_dict'):
            sample = sample.to_dict()
        if not isinstance(sample, dict):
            raise TypeError(
                f'data sample {i}: expected a dict or a data element, got {type(sample).__name__}')
        pred = sample.get('pred_instances')
        if pred is None:
            raise KeyError(f'data sample {i}: no pred_instances (the model must predict tubes)')
        if hasattr(pred, 'to_dict'):
            pred = pred.to_dict()
        missing = [k for k in PRED_KEYS if k not in pred]
        if missing:
            raise KeyError(f'data sample {i}: pred_instances lacks {missing} (need {list(PRED_KEYS)})')
        for key in ('video_id', 'frame_numbers'):
            if key not in sample:
                raise KeyError(f'data sample {i}: metainfo key {key!r} missing (packed by PackTubeInputs)')
        frame_numbers = _numpy(sample['frame_numbers'], np.int32).reshape(-1)
        frame_valid = sample.get('frame_valid')
        frame_valid = np.ones(len(frame_numbers), dtype=bool) if frame_valid is None else \
            _numpy(frame_valid, bool).reshape(-1)
        frame_scores = pred.get('frame_scores')
        clips.append(
            dict(
                video_id=str(sample['video_id']),
                frame_numbers=frame_numbers,
                frame_valid=frame_valid,
                tubes=_numpy(pred['tubes'], np.float32),
                tube_masks=_numpy(pred['tube_masks'], bool),
                scores=_numpy(pred['scores'], np.float32).reshape(-1),
                labels=_numpy(pred['labels'], np.int64).reshape(-1),
                frame_scores=None if frame_scores is None else _numpy(frame_scores, np.float32)))
    return clips


@METRICS.register_module()
class TubeMetric(BaseMetric):
    """frame-mAP@0.5 and video-mAP@{0.2, 0.5, 0.75, 0.5:0.95} of tube detections (ACT protocol by default).

    ``process`` keeps one compact numpy dict per clip (picklable, so mmengine collects them across ranks in
    distributed tests); ``compute_metrics`` groups the clips by video, links them into video tubes
    (:func:`cfad_mm.evaluation.link_video_tubes`) and evaluates all videos of ``{subset}_videos[split]`` of
    the annotation -- videos without any prediction count with all their ground truth missed -- with
    :func:`cfad_mm.evaluation.evaluate_clip_predictions` (the path of the offline
    ``tools/analysis/eval_results.py`` too): predicted tubes with a NaN/inf score or box are left out with a
    warning, then :func:`cfad_mm.evaluation.evaluate_tubes` evaluates. The numbers do not depend on the order
    of the clips. Protocols and conventions: ``docs/evaluation.md`` and
    :mod:`cfad_mm.evaluation.functional.protocol`.

    Returned keys (mmengine prefixes them with ``prefix``, default ``'tube'``, e.g. ``tube/frame_mAP@0.5``):
    ``frame_mAP@0.5``, ``video_mAP@0.2``, ``video_mAP@0.5``, ``video_mAP@0.75``, ``video_mAP@0.5:0.95``
    (values in [0, 1]). A per-class table (AP in %) is logged, and the per-class APs and PR curves are written
    to JSON (read by ``tools/analysis/plot_ap.py``).

    Args:
        ann_file (str | dict): Annotation pickle (ACT format) or the annotation dict itself.
        split (int): 0-based split index. Defaults to 0.
        subset (str): ``'test'`` or ``'train'``. Defaults to ``'test'``.
        protocol (str): ``'act'`` (inclusive pixels, remaining-GT matching, trapezoidal AP) or ``'voc'``
            (mmaction2/MultiSports-like: no +1, VOC matching, all-point interpolated AP) or ``'multisports'``
            (mmaction2's ``frameAP`` / ``videoAP`` reproduced exactly; see docs/evaluation.md).
            Defaults to ``'act'``.
        link_iou (float): Linking threshold (mean IoU on shared frames). Defaults to 0.5.
        trim_thr (float, optional): Actionness threshold of the temporal trimming of linked tubes (used when
            the predictions carry ``frame_scores``); None disables it. Defaults to 0.5.
        max_gap (int): Largest gap in frames bridged by the linking. Defaults to 0.
        link_method (str): How the tubes of consecutive windows are joined: ``'greedy'`` (by clip-tube score)
            or ``'hungarian'`` (global assignment on overlap IoU and velocity agreement; docs/evaluation.md).
            Defaults to ``'greedy'``.
        vel_weight (float): Velocity weight of ``'hungarian'``. Defaults to 2.0.
        nms_thr (float, optional): Hard-NMS threshold of frame detections and tubes. Defaults to 0.3 (ACT).
        frame_iou_thr (float): IoU threshold of frame-mAP. Defaults to 0.5.
        video_iou_thrs (Sequence[float]): Reported video-mAP thresholds (0.5:0.95 is always added).
            Defaults to (0.2, 0.5, 0.75).
        dump_dir (str, optional): Where the JSON results go. ``'auto'``: the directory of the current run's
            log file (``work_dir/<timestamp>/``; nothing is written without a log file); None: no dump.
            Defaults to ``'auto'``.
        outfile (str, optional): File name inside ``dump_dir`` (an absolute path is used as is). Defaults to
            ``'{prefix}_eval_results.json'``.
        pr_points (int): Maximum points per dumped PR curve. Defaults to 1000.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Metric name prefix. Defaults to ``'tube'``.
        collect_dir (str, optional): Directory used to collect results across ranks. Defaults to None.
    """
    default_prefix: Optional[str] = 'tube'

    def __init__(self,
                 ann_file: Union[str, dict],
                 split: int = 0,
                 subset: str = 'test',
                 protocol: str = 'act',
                 link_iou: float = 0.5,
                 trim_thr: Optional[float] = 0.5,
                 max_gap: int = 0,
                 nms_thr: Optional[float] = 0.3,
                 frame_iou_thr: float = 0.5,
                 video_iou_thrs: Sequence[float] = (0.2, 0.5, 0.75),
                 dump_dir: Optional[str] = 'auto',
                 outfile: Optional[str] = None,
                 pr_points: int = 1000,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 link_method: str = 'greedy',
                 vel_weight: float = 2.0) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.ann_file = ann_file if isinstance(ann_file, str) else '<annotation dict>'
        self.annotations = resolve_annotations(ann_file)
        split_videos(self.annotations, split,
                     subset)  # validates split / subset now rather than after testing
        self.split, self.subset = split, subset
        self.protocol = get_protocol(protocol).name
        if not 0 < link_iou <= 1:
            raise ValueError(f'TubeMetric: link_iou must be in (0, 1], got {link_iou}')
        if not 0 < frame_iou_thr <= 1 or not all(0 < t <= 1 for t in video_iou_thrs):
            raise ValueError(
                f'TubeMetric: IoU thresholds must be in (0, 1], got frame_iou_thr={frame_iou_thr}, '
                f'video_iou_thrs={list(video_iou_thrs)}')
        self.link_iou, self.trim_thr, self.max_gap, self.nms_thr = link_iou, trim_thr, max_gap, nms_thr
        from ..linking import LINK_METHODS
        if link_method not in LINK_METHODS:
            raise ValueError(
                f'TubeMetric: link_method must be one of {list(LINK_METHODS)}, got {link_method!r}')
        if not vel_weight >= 0:
            raise ValueError(f'TubeMetric: vel_weight must be >= 0, got {vel_weight}')
        self.link_method, self.vel_weight = link_method, float(vel_weight)
        self.frame_iou_thr = float(frame_iou_thr)
        self.video_iou_thrs = tuple(float(t) for t in video_iou_thrs)
        self.dump_dir, self.outfile, self.pr_points = dump_dir, outfile, pr_points
        self.last_report: Optional[dict] = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store one compact numpy dict per clip (see :func:`data_samples_to_clip_predictions`).

        Args:
            data_batch (Any): The batch (unused: the ground truth comes from the annotation file).
            data_samples (Sequence[dict]): The model outputs, one data sample per clip.
        """
        self.results.extend(data_samples_to_clip_predictions(data_samples))

    def compute_metrics(self, results: list) -> dict:
        """Link per video, evaluate, log the per-class table and dump the JSON results.

        Args:
            results (list): The clip dicts of all ranks.

        Returns:
            dict: ``frame_mAP@0.5``, ``video_mAP@0.2``, ``video_mAP@0.5``, ``video_mAP@0.75``,
            ``video_mAP@0.5:0.95`` (for the default thresholds).
        """
        # a numerically broken prediction (NaN/inf) costs its tube, not the evaluation (warned per video)
        report = evaluate_clip_predictions(
            results,
            self.annotations,
            split=self.split,
            subset=self.subset,
            protocol=self.protocol,
            frame_iou_thr=self.frame_iou_thr,
            video_iou_thrs=self.video_iou_thrs,
            nms_thr=self.nms_thr,
            link_iou=self.link_iou,
            trim_thr=self.trim_thr,
            max_gap=self.max_gap,
            link_method=self.link_method,
            vel_weight=self.vel_weight)
        self.last_report = report
        print_log(
            f'{type(self).__name__} ({self.ann_file}):\n{format_report_table(report)}', logger='current')
        out_path = self._dump_path()
        if out_path is not None:
            os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
            with open(out_path, 'w') as f:
                json.dump(report_to_json(report, self.pr_points), f)
            print_log(
                f'{type(self).__name__}: per-class APs and PR curves written to {out_path}', logger='current')
        keys = metric_keys(self.frame_iou_thr, self.video_iou_thrs)
        return {k: float(report['metrics'][k]) for k in keys}

    def _dump_path(self) -> Optional[str]:
        outfile = self.outfile or f'{self.prefix or "tube"}_eval_results.json'
        if osp.isabs(outfile):
            return outfile
        if self.dump_dir is None:
            return None
        if self.dump_dir == 'auto':
            log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
            if not log_file:
                return None
            return osp.join(osp.dirname(log_file), outfile)
        return osp.join(self.dump_dir, outfile)
