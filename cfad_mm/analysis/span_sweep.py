"""The span sweep: CFAD trained and tested with windows of growing span at the same training budget.

A span is written ``TxK``: windows of ``T`` frames sampled every ``K`` frames, i.e. ``(T - 1) * K + 1`` video
frames (``16x4``: 61 frames); its nominal length ``T * K`` names the row (16, 32, 64, 128). Every run of a
sweep starts from the same base config and changes only what the span needs (:func:`sweep_config`):

* the window (``clip_len``, ``frame_interval``; ``model.frame_interval``), training windows every half span
  and test windows every half span (the whole-video inference stride);
* the tube coder: the base config's for a span of at most ``spline_above`` frames, else a cubic B-spline
  (``SplineTubeCoder``) over the span with a knot at most every ``knot_interval`` frames, whose capacity
  grows with the span;
* the training schedule: the same number of iterations for every span (``IterBasedTrainLoop``, linear
  warm-up then cosine decay, the base config's optimizer and batch size), so that every run sees the same
  number of clips of ``T`` frames: the same backbone work.

:func:`whole_video_speed` measures the inference side on real video files: CFAD's frames/s with decoding
excluded (frames in memory) and included (from the file), and the backbone alone run once over every frame.
The markdown tables and the acceptance check of the long-span model against the 16-frame one are made by
:func:`accuracy_table`, :func:`speed_table` and :func:`acceptance_lines`.
"""
import copy
import re
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from cfad_mm.datasets.sampling import span_length

#: the metrics of a sweep row (``TubeMetric`` keys) and their column names
ACCURACY_KEYS = [('tube/frame_mAP@0.5', 'frame-mAP@0.5'), ('tube/video_mAP@0.2', 'video-mAP@0.2'),
                 ('tube/video_mAP@0.5', 'video-mAP@0.5'), ('tube/video_mAP@0.75', 'video-mAP@0.75'),
                 ('tube/video_mAP@0.5:0.95', 'video-mAP@0.5:0.95')]


@dataclass(frozen=True)
class SpanSpec:
    """Windows of ``clip_len`` frames sampled every ``frame_interval`` frames."""

    clip_len: int
    frame_interval: int

    @classmethod
    def parse(cls, text: str) -> 'SpanSpec':
        """``'16x4'`` -> ``SpanSpec(16, 4)``; a ValueError names the text otherwise."""
        m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', str(text))
        if not m or int(m.group(1)) < 2 or int(m.group(2)) < 1:
            raise ValueError(f'span {text!r}: write it TxK, T >= 2 frames sampled every K >= 1 frames, '
                             'e.g. 16x4')
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def name(self) -> str:
        return f'{self.clip_len}x{self.frame_interval}'

    @property
    def span(self) -> int:
        """Video frames of a window, ``(T - 1) * K + 1``."""
        return span_length(self.clip_len, self.frame_interval)

    @property
    def nominal(self) -> int:
        """``T * K``: the span's name in the tables (the frames between the starts of two windows that tile
        the video)."""
        return self.clip_len * self.frame_interval

    @property
    def stride(self) -> int:
        """Window stride at training and test time: half the span."""
        return max(1, self.span // 2)


def sweep_config(base, spec: SpanSpec, iters: int, seed: int = 0, knot_interval: int = 16,
                 spline_above: int = 16, warmup_iters: int = 50):
    """The config of one run of the sweep: ``base`` (a CFAD config on a tube dataset) with ``spec``'s windows,
    tube coder and an iteration-based schedule of ``iters`` iterations, no validation during training (the
    sweep tests the final checkpoint) and one checkpoint at the end.

    Args:
        base (Config): the base config (not changed).
        spec (SpanSpec): the windows.
        iters (int): training iterations (the budget, the same for every span).
        seed (int): ``randomness.seed``.
        knot_interval (int): most frames between two knots of the spline coder.
        spline_above (int): spans longer than this get the spline coder; shorter ones keep the base's coder.
        warmup_iters (int): linear warm-up iterations (then cosine decay to the end).

    Returns:
        Config: a new config.
    """
    if iters < 1:
        raise ValueError(f'sweep_config: iters must be >= 1, got {iters}')
    cfg = copy.deepcopy(base)
    k, t, span = spec.frame_interval, spec.clip_len, spec.span
    train_ds, test_ds = cfg.train_dataloader.dataset, cfg.test_dataloader.dataset
    jitter = max(int(train_ds.get('temporal_jitter', 0)), span // 8)
    train_ds.update(clip_len=t, frame_interval=k, train_stride=spec.stride, temporal_jitter=jitter)
    test_ds.update(clip_len=t, frame_interval=k, test_stride=spec.stride)
    cfg.model.frame_interval = k
    if span > spline_above:
        cfg.model.coarse_head.tube_coder = dict(type='SplineTubeCoder', max_frames=span,
                                                knot_interval=knot_interval)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=int(iters), val_interval=int(iters) + 1)
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
    warm = min(int(warmup_iters), int(iters))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warm),
        dict(type='CosineAnnealingLR', T_max=int(iters), eta_min=1e-5, by_epoch=False, begin=0,
             end=int(iters))]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=int(iters),
                                        max_keep_ckpts=1)
    cfg.log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
    cfg.randomness = dict(seed=int(seed))
    return cfg


def whole_video_speed(model, videos: Sequence[str], clip_len: int, frame_interval: int, stride: int,
                      repeats: int = 3, warmup: int = 1, batch_size: int = 4) -> dict:
    """Frames/s of boxing every frame of the given video files, three ways, interleaved in each round:

    * ``decode_excluded``: CFAD whole-video inference (sliding windows, coarse + refine, linking) on frames
      decoded into memory beforehand;
    * ``decode_included``: the same from the video file (decoding and resizing timed too);
    * ``backbone_once``: the backbone alone over every frame once (windows of ``clip_len`` consecutive
      frames, ``clip_len`` apart), at the network's input size, the floor of any detector that looks at every
      frame.

    Args:
        model: a CFAD model with ``model.cfg`` (``init_detector``); its ``frame_interval`` must be
            ``frame_interval``.
        videos (Sequence[str]): video files.
        clip_len, frame_interval, stride (int): CFAD's windows.
        repeats, warmup (int): timed rounds and untimed rounds before them.
        batch_size (int): windows per forward pass for all three.

    Returns:
        dict: ``frames`` (total), for each way ``{way}_fps`` (median over the rounds), ``{way}_fps_min`` /
        ``_max``; ``backbone_frames_per_frame`` (CFAD's backbone frames per video frame), ``input_hw`` and
        ``stage_ms_per_frame`` (milliseconds per video frame in each stage of the model, one more run with
        decoding excluded, :func:`~cfad_mm.analysis.speed.stage_breakdown`; stages nest).
    """
    import cv2
    import torch

    from cfad_mm.apis.inference import VideoFrames, inference_video
    from .speed import (
        ArrayFrames,
        backbone_frames_per_output_frame,
        interleaved_runs,
        run_backbone,
        stage_breakdown,
        video_tensor,
    )
    decoded = []
    for path in videos:
        frames = VideoFrames(path)
        decoded.append(np.stack(frames.get(range(frames.num_frames))))
    # the network input size: what the test pipeline makes of these frames
    seen = {}

    def record(_, args):
        seen.setdefault('hw', tuple(args[0].shape[-2:]))  # returns None: the input is not replaced

    handle = model.backbone.register_forward_pre_hook(record)
    try:
        with torch.inference_mode():
            inference_video(model, ArrayFrames(decoded[0][:span_length(clip_len, frame_interval)]),
                            clip_len=clip_len, stride=stride, frame_interval=frame_interval, progress=False)
    finally:
        handle.remove()
    h, w = (int(v) for v in seen['hw'])
    device = next(model.parameters()).device
    resized = [video_tensor(np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in v]),
                            device) for v in decoded]
    in_memory = [ArrayFrames(v, name=p) for v, p in zip(decoded, videos)]

    def cfad(sources):
        def run():
            for src in sources:
                inference_video(model, src, clip_len=clip_len, stride=stride, frame_interval=frame_interval,
                                batch_size=batch_size, progress=False)
        return run

    def backbone():
        for v in resized:
            run_backbone(model, v, clip_len, clip_len, 1, batch_size)

    jobs = {'decode_excluded': cfad(in_memory), 'decode_included': cfad(list(videos)),
            'backbone_once': backbone}
    with torch.inference_mode():
        times, _ = interleaved_runs(jobs, repeats, warmup, device, memory=False)
    total = int(sum(len(v) for v in decoded))
    row = dict(frames=total, input_hw=[h, w])
    for k, ts in times.items():
        row[f'{k}_fps'] = total / statistics.median(ts)
        row[f'{k}_fps_min'] = total / max(ts)
        row[f'{k}_fps_max'] = total / min(ts)
    # where CFAD's time goes (decoding excluded), per stage of the model, on all the videos
    per_stage = {}
    for src in in_memory:
        spent, whole = stage_breakdown(model, src, clip_len, stride, frame_interval, batch_size,
                                       repeats=1, warmup=0)
        for k, v in list(spent.items()) + [('all of CFAD', whole)]:
            per_stage[k] = per_stage.get(k, 0.0) + v
    row['stage_ms_per_frame'] = {k: 1000 * v / total for k, v in per_stage.items() if v > 0}
    row['backbone_frames_per_frame'] = sum(
        backbone_frames_per_output_frame(len(v), clip_len, stride, frame_interval) * len(v)
        for v in decoded) / total
    return row


# ------------------------------------------------------------------------------------------------ reports
def _fmt(v: Optional[float], digits: int = 3) -> str:
    return '-' if v is None else f'{v:.{digits}f}'


def accuracy_table(rows: Sequence[dict]) -> List[str]:
    """Markdown lines: one row per run (``name``, ``span``, ``nominal``, ``coder``, ``train_seconds`` and the
    :data:`ACCURACY_KEYS` metrics)."""
    head = '| span (T x K) | frames per window | tube coder | training | ' + \
        ' | '.join(c for _, c in ACCURACY_KEYS) + ' |'
    lines = [head, '|' + '---|' * (4 + len(ACCURACY_KEYS))]
    for r in rows:
        train = '-' if r.get('train_seconds') is None else f"{r['train_seconds'] / 60:.1f} min"
        lines.append(f"| {r['nominal']} ({r['name']}) | {r['span']} | {r['coder']} | {train} | "
                     + ' | '.join(_fmt(r['metrics'].get(k)) for k, _ in ACCURACY_KEYS) + ' |')
    return lines


def speed_table(rows: Sequence[dict]) -> List[str]:
    """Markdown lines: whole-video frames/s of every run (median and range over the rounds)."""
    lines = ['| span (T x K) | frames per window | CFAD f/s, decoding excluded | CFAD f/s, decoding '
             'included | backbone once over every frame, f/s | CFAD / backbone once | backbone frames per '
             'output frame |',
             '|---|---|---|---|---|---|---|']

    def cell(s, key):
        return f"{s[key + '_fps']:.1f} ({s[key + '_fps_min']:.1f}-{s[key + '_fps_max']:.1f})"
    for r in rows:
        s = r.get('speed')
        if not s:
            continue
        lines.append(f"| {r['nominal']} ({r['name']}) | {r['span']} | {cell(s, 'decode_excluded')} | "
                     f"{cell(s, 'decode_included')} | {cell(s, 'backbone_once')} | "
                     f"{s['decode_excluded_fps'] / s['backbone_once_fps']:.2f} | "
                     f"{s['backbone_frames_per_frame']:.2f} |")
    return lines


def stage_table(rows: Sequence[dict]) -> List[str]:
    """Markdown lines: milliseconds per video frame in each stage of the model, one column per timed run."""
    timed = [r for r in rows if r.get('speed', {}).get('stage_ms_per_frame')]
    if not timed:
        return []
    stages = []
    for r in timed:
        stages += [k for k in r['speed']['stage_ms_per_frame'] if k not in stages]
    lines = ['| stage | ' + ' | '.join(f"{r['nominal']} ({r['name']})" for r in timed) + ' |',
             '|---|' + '---|' * len(timed)]
    for k in stages:
        lines.append(f'| {k} | ' + ' | '.join(_fmt(r['speed']['stage_ms_per_frame'].get(k), 2) for r in timed)
                     + ' |')
    return lines


def error_table(rows: Sequence[dict]) -> List[str]:
    """Markdown lines: the video-mAP@0.5 error breakdown of every run (``row['errors']``, the ``errors.json``
    of ``tools/analysis/analyze_errors.py``): AP points gained if each error type were fixed, and the counts
    of detections of each type."""
    from .errors import ERROR_TYPES
    done = [r for r in rows if r.get('errors')]
    if not done:
        return []
    lines = ['| span (T x K) | video-mAP@0.5 | ' + ' | '.join(f'd{t}' for t in ERROR_TYPES) + ' | dall | '
             'true / false positives |', '|' + '---|' * (len(ERROR_TYPES) + 4)]
    for r in done:
        e = r['errors']
        lines.append(f"| {r['nominal']} ({r['name']}) | {100 * e['mAP']:.1f} | "
                     + ' | '.join(f"{100 * e['dAP'][t]:.1f} ({e['counts'][t]})" for t in ERROR_TYPES)
                     + f" | {100 * e['dAP']['all']:.1f} | {e['num_tp']} / {e['num_fp']} |")
    return lines


#: the targets of the long-span model against the 16-frame baseline
TARGETS = dict(video_gain=0.05, frame_drop=0.02, speedup=2.0, over_floor=1.5)


def acceptance(long: dict, base: dict) -> Dict[str, dict]:
    """The long-span row ``long`` against the baseline row ``base``: ``{target: dict(value, needed, met)}``
    for video-mAP@0.5 gain, frame-mAP@0.5 drop, frames/s ratio and frames/s over the backbone-once floor
    (frames/s with decoding excluded). The frames/s ratio is that of the two runs' CFAD / backbone-once
    ratios: each run's backbone-once pass is timed in the same rounds as the run, so it cancels how fast the
    machine was when each run was timed (runs are timed one after the other, and a ``--baseline-run`` keeps
    the timing of its own sweep); with the same backbone floor it is the plain ratio of frames/s."""
    f, v = 'tube/frame_mAP@0.5', 'tube/video_mAP@0.5'
    out = {
        'video-mAP@0.5 gain': dict(value=long['metrics'][v] - base['metrics'][v],
                                   needed=TARGETS['video_gain'], more=True),
        'frame-mAP@0.5 drop': dict(value=base['metrics'][f] - long['metrics'][f],
                                   needed=TARGETS['frame_drop'], more=False),
    }
    if long.get('speed') and base.get('speed'):
        ls, bs = long['speed'], base['speed']
        relative = (ls['decode_excluded_fps'] / ls['backbone_once_fps']) / (bs['decode_excluded_fps']
                                                                            / bs['backbone_once_fps'])
        out['frames/s vs baseline'] = dict(value=relative, needed=TARGETS['speedup'], more=True)
        out['frames/s vs backbone once'] = dict(value=ls['decode_excluded_fps'] / ls['backbone_once_fps'],
                                                needed=TARGETS['over_floor'], more=True)
    for item in out.values():
        item['met'] = item['value'] >= item['needed'] if item.pop('more') else item['value'] <= item['needed']
    return out


def acceptance_lines(rows: Sequence[dict], baseline: str) -> List[str]:
    """Markdown lines: every other row checked against the row named ``baseline`` (:func:`acceptance`)."""
    base = next((r for r in rows if r['name'] == baseline), None)
    if base is None:
        return []
    t = TARGETS
    lines = [f"| span (T x K) | video-mAP@0.5 gain (>= +{t['video_gain']:g}) | frame-mAP@0.5 drop (<= "
             f"{t['frame_drop']:g}) | frames/s vs {baseline} (>= {t['speedup']:g}x) | frames/s vs backbone "
             f"once (>= {t['over_floor']:g}x) |", '|---|---|---|---|---|']
    for r in rows:
        if r is base:
            continue
        acc = acceptance(r, base)
        cells = []
        for key, fmt in (('video-mAP@0.5 gain', '{:+.3f}'), ('frame-mAP@0.5 drop', '{:+.3f}'),
                         ('frames/s vs baseline', '{:.2f}x'), ('frames/s vs backbone once', '{:.2f}x')):
            item = acc.get(key)
            cells.append('-' if item is None else fmt.format(item['value']) + (' met' if item['met'] else
                                                                                ' missed'))
        lines.append(f"| {r['nominal']} ({r['name']}) | " + ' | '.join(cells) + ' |')
    return lines
