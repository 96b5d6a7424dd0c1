"""Speed and memory measurement of CFAD and of the baselines it is compared with.

The pieces shared by ``tools/analysis/speed_compare.py`` and ``tools/analysis/benchmark.py``:

* :class:`PeakMemory`: one peak-memory meter for CPU (resident set size of the process, sampled) and CUDA
  (``torch.cuda.max_memory_allocated``).
* :func:`time_call`, :func:`time_runs`, :func:`interleaved_runs`: wall-clock timing with warm-up runs,
  repeats and CUDA synchronisation; :func:`time_forward` times forward passes on a clip batch.
* clip sources: :func:`synthetic_video`, :class:`ArrayFrames` (an in-memory video read like a decoded file),
  :func:`video_tensor`, :func:`centred_clip` (and ``cfad_mm.apis.export.random_clip`` for random batches).
* what is timed: :func:`run_cfad` (CFAD whole-video inference), :func:`run_ava` (mmaction2's AVA-style
  detector, one centred clip per labelled frame), :func:`run_backbone` (the backbone alone over a window
  grid), :func:`compare_speed` (the three interleaved), :func:`stage_breakdown` (time per stage of the
  model, see :data:`STAGES`), :func:`profile_cfad` and :func:`train_throughput`.

Windows come from the dataset's grid (:func:`cfad_mm.datasets.tube_dataset.window_starts` and
``window_positions``): ``clip_len`` frames ``frame_interval`` frames apart, so that a window spans
``(clip_len - 1) * frame_interval + 1`` frames, starts ``stride`` frames apart and the last window aligned to
the video end. CFAD predicts boxes at every frame of a span (``model.frame_interval`` must equal the
``frame_interval`` of the runs).

Units: seconds for times, frames (or clips) per second for throughputs, bytes for :class:`PeakMemory` and MiB
where a name ends in ``_mib`` or ``_mem``.
"""
import importlib
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from cfad_mm.apis.inference import VideoFrames, inference_video
from cfad_mm.datasets.tube_dataset import span_length, window_positions, window_starts

MIB = 2**20

DeviceLike = Union[str, torch.device, None]

__all__ = [
    'PeakMemory', 'synchronize', 'time_call', 'time_runs', 'interleaved_runs', 'time_forward',
    'synthetic_video', 'ArrayFrames', 'video_tensor', 'centred_clip', 'window_grid',
    'backbone_frames_per_output_frame', 'build_cfad', 'backbone_channels', 'build_ava_detector', 'run_cfad',
    'run_ava', 'run_backbone', 'compare_speed', 'time_calls', 'STAGES', 'stage_breakdown', 'profile_cfad',
    'train_throughput'
]


def _device(device: DeviceLike) -> torch.device:
    return torch.device('cpu') if device is None else torch.device(device)


def synchronize(device: DeviceLike = None) -> None:
    """Wait for the pending kernels of a CUDA ``device``; nothing on CPU."""
    device = _device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------------------
# memory


def _statm_rss() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _maxrss() -> int:
    """Peak resident set size of the process so far, bytes (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == 'darwin' else rss * 1024


class PeakMemory:
    """Peak memory while the context is open, on CPU or CUDA.

    * CPU: the resident set size of the process, read from ``/proc/self/statm`` at entry, at exit and every
      ``interval`` seconds in between by a sampling thread (a peak shorter than ``interval`` may be missed;
      allocator caching makes it approximate). Without ``/proc`` (macOS), the process peak
      ``ru_maxrss``: then ``peak`` is the growth over the process's earlier peak (0 when the block never
      exceeds it).
    * CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats`` (tensors only,
      not the caching allocator's reserve).

    Attributes (set on exit; bytes):
        base (int): memory at entry (CPU: resident set; CUDA: allocated tensors).
        peak_total (int): the highest memory seen while the context was open.
        peak (int): ``peak_total - base``, >= 0: the growth during the block.
        kind (str): what was measured.

    Args:
        device (str | torch.device, optional): the device whose memory to meter. Defaults to CPU.
        interval (float): seconds between CPU samples. Defaults to 0.002.

    Example::

        with PeakMemory('cpu') as mem:
            run()
        print(mem.peak_mib)
    """

    def __init__(self, device: DeviceLike = None, interval: float = 0.002):
        self.device = _device(device)
        self.interval = interval
        self.base = self.peak_total = self.peak = 0
        self._statm = os.path.exists('/proc/self/statm')
        if self.device.type == 'cuda':
            self.kind = 'torch.cuda.max_memory_allocated'
        elif self._statm:
            self.kind = f'process resident set size, sampled every {1000 * interval:g} ms'
        else:
            self.kind = 'process peak resident set size (getrusage ru_maxrss)'

    @property
    def peak_mib(self) -> float:
        """``peak`` in MiB."""
        return self.peak / MIB

    @property
    def peak_total_mib(self) -> float:
        """``peak_total`` in MiB."""
        return self.peak_total / MIB

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        if not self._statm:
            self.base = _maxrss()
            return self
        self.base = self._max = _statm_rss()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                self._max = max(self._max, _statm_rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_total = torch.cuda.max_memory_allocated(self.device)
        elif not self._statm:
            self.peak_total = _maxrss()
        else:
            self._stop.set()
            self._thread.join()
            self.peak_total = max(self._max, _statm_rss())
        self.peak = max(0, self.peak_total - self.base)


# ---------------------------------------------------------------------------------------------------------
# timing


def time_call(fn: Callable[[], Any], device: DeviceLike = None,
              clock: Callable[[], float] = time.perf_counter) -> Tuple[Any, float]:
    """Run ``fn()`` once; return its output and its wall clock in seconds (CUDA synchronised before and
    after, so that the time covers its kernels)."""
    synchronize(device)
    t0 = clock()
    out = fn()
    synchronize(device)
    return out, clock() - t0


def time_runs(fn: Callable[[], Any], repeats: int, warmup: int = 0, device: DeviceLike = None,
              clock: Callable[[], float] = time.perf_counter,
              on_run: Optional[Callable[[int], None]] = None) -> List[float]:
    """Seconds of each of ``repeats`` timed calls of ``fn()`` after ``warmup`` untimed ones.

    Args:
        fn: called without arguments, ``warmup + repeats`` times.
        repeats (int): timed calls (>= 1).
        warmup (int): calls before them, not reported. Defaults to 0.
        device: CUDA device to synchronise around each call (see :func:`time_call`). Defaults to CPU.
        clock: a monotonic clock in seconds, read twice per call. Defaults to ``time.perf_counter``.
        on_run: called with the 0-based run index after each call (warm-up included), outside the timed part
            (e.g. a progress bar).

    Returns:
        list[float]: ``repeats`` durations in seconds; ``statistics.median`` of them is the usual summary.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'time_runs: need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}')
    times = []
    for i in range(warmup + repeats):
        _, dt = time_call(fn, device, clock)
        if i >= warmup:
            times.append(dt)
        if on_run is not None:
            on_run(i)
    return times


def interleaved_runs(jobs: Dict[str, Callable[[], Any]], repeats: int, warmup: int = 0,
                     device: DeviceLike = None, clock: Callable[[], float] = time.perf_counter,
                     memory: bool = True) -> Tuple[Dict[str, List[float]], Dict[str, int]]:
    """Time several jobs in rounds: every round runs each job once, in order, so that a change of the
    machine's speed (background load) hits them alike.

    Returns:
        tuple[dict, dict]: ``{name: [seconds of each timed run]}`` and ``{name: peak memory growth in bytes}``
        (the largest :attr:`PeakMemory.peak` over the timed runs; 0 when ``memory`` is False).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'interleaved_runs: need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}')
    times = {k: [] for k in jobs}
    peaks = {k: 0 for k in jobs}
    for r in range(warmup + repeats):
        for k, fn in jobs.items():
            if memory:
                with PeakMemory(device) as mem:
                    _, dt = time_call(fn, device, clock)
            else:
                mem, (_, dt) = None, time_call(fn, device, clock)
            if r >= warmup:
                times[k].append(dt)
                if mem is not None:
                    peaks[k] = max(peaks[k], mem.peak)
    return times, peaks


def time_forward(model, inputs: torch.Tensor, mode: str = 'predict', repeats: int = 10, warmup: int = 3,
                 progress: bool = False) -> dict:
    """Time ``repeats`` forward passes of ``model`` on one normalised clip batch, under
    ``torch.inference_mode()``.

    Args:
        model: a CFAD model (``cfad_mm.apis.init_detector``).
        inputs (Tensor): ``(N, C, T, H, W)`` float, already normalised (e.g. ``cfad_mm.apis.export.
            random_clip``), on the model's device.
        mode (str): ``'predict'`` (the test-time path with post-processing) or ``'tensor'`` (the exported
            graph's path). Defaults to ``'predict'``.
        repeats (int): timed passes. Defaults to 10.
        warmup (int): untimed passes before them. Defaults to 3.
        progress (bool): a progress bar over the passes (tqdm on stderr, updated outside the timed part).

    Returns:
        dict: ``times_s`` (list, seconds), ``median_s``, ``min_s``, ``max_s``, ``clips_per_s`` and
        ``frames_per_s`` (from the median), ``peak_mem_mib`` (the highest memory during warm-up + timed
        passes: CPU: process resident set; CUDA: allocated tensors), ``peak_mem_increase_mib`` (its growth
        over the memory before them) and ``peak_mem_kind`` (see :class:`PeakMemory`).
    """
    from mmaction.structures import ActionDataSample
    n, t = inputs.shape[0], inputs.shape[2]

    def run():
        if mode == 'tensor':
            return model(inputs, mode='tensor')
        return model(inputs, [ActionDataSample() for _ in range(n)], mode='predict')

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=warmup + repeats, desc=f'{warmup} warm-up + {repeats} timed runs', unit='run')
    try:
        with torch.inference_mode(), PeakMemory(inputs.device) as mem:
            times = time_runs(run, repeats, warmup, inputs.device,
                              on_run=(lambda _: bar.update()) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    med = statistics.median(times)
    return dict(times_s=times, median_s=med, min_s=min(times), max_s=max(times), clips_per_s=n / med,
                frames_per_s=n * t / med, peak_mem_mib=mem.peak_total_mib, peak_mem_increase_mib=mem.peak_mib,
                peak_mem_kind=mem.kind)


# ---------------------------------------------------------------------------------------------------------
# clip sources and windows


def synthetic_video(num_frames: int, hw: Sequence[int], num_actors: int = 2,
                    seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A noise video with ``num_actors`` moving, uniformly coloured boxes.

    Returns:
        tuple[np.ndarray, np.ndarray]: frames ``(num_frames, H, W, 3)`` uint8 RGB and the boxes
        ``(num_frames, num_actors, 4)`` float32 ``(x1, y1, x2, y2)`` in pixels.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    frames = rng.integers(0, 80, size=(num_frames, h, w, 3), dtype=np.uint8)
    boxes = np.zeros((num_frames, num_actors, 4), np.float32)
    for a in range(num_actors):
        bw, bh = w // 4, h // 3
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        vx, vy = rng.uniform(-1, 1, size=2)
        color = rng.integers(120, 255, size=3)
        for t in range(num_frames):
            x1 = float(np.clip(x0 + vx * t, 0, w - bw))
            y1 = float(np.clip(y0 + vy * t, 0, h - bh))
            frames[t, int(y1):int(y1) + bh, int(x1):int(x1) + bw] = color
            boxes[t, a] = (x1, y1, x1 + bw, y1 + bh)
    return frames, boxes


class ArrayFrames(VideoFrames):
    """An in-memory video ``(L, H, W, 3)`` uint8 RGB, read by :func:`cfad_mm.apis.inference_video` like a
    decoded file (decoding excluded from any timing)."""

    def __init__(self, frames: np.ndarray, name: str = 'in_memory'):
        self.frames = frames
        self.path = name
        self.num_frames = len(frames)
        self.shape = self.decode_shape = tuple(frames.shape[1:3])

    def get(self, positions: Sequence[int]) -> List[np.ndarray]:
        return [self.frames[int(p)] for p in positions]


def video_tensor(frames: np.ndarray, device: DeviceLike = None) -> torch.Tensor:
    """Frames ``(L, H, W, 3)`` uint8 -> a ``(3, L, H, W)`` uint8 tensor on ``device`` (the layout the data
    preprocessor takes for one clip)."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).contiguous().to(_device(device))


def centred_clip(frames_t: torch.Tensor, f: int, clip_len: int, frame_interval: int = 1) -> torch.Tensor:
    """Clip ``(3, clip_len, H, W)`` of ``frames_t (3, L, H, W)`` sampled every ``frame_interval`` frames and
    centred on frame ``f`` (position ``clip_len // 2`` is ``f``; positions outside the video repeat its edge
    frames), as mmaction2's AVA recipe samples a clip for a key frame."""
    offsets = frame_interval * (np.arange(clip_len) - clip_len // 2)
    idx = np.clip(f + offsets, 0, frames_t.shape[1] - 1)
    return frames_t[:, idx]


def window_grid(nframes: int, clip_len: int, stride: int,
                frame_interval: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """The sliding windows of the dataset and of :func:`cfad_mm.apis.inference_video` over a video.

    Returns:
        tuple[np.ndarray, np.ndarray]: 0-based positions ``(W, clip_len)`` int64 (clipped to the video) and
        their validity ``(W, clip_len)`` bool, for the windows of :func:`window_starts` with span
        ``(clip_len - 1) * frame_interval + 1``.
    """
    starts = window_starts(nframes, span_length(clip_len, frame_interval), stride)
    grid = [window_positions(s, clip_len, frame_interval, nframes) for s in starts]
    return np.stack([p for p, _ in grid]), np.stack([v for _, v in grid])


def backbone_frames_per_output_frame(nframes: int, clip_len: int, stride: int,
                                     frame_interval: int = 1) -> float:
    """Frames fed to the backbone per video frame when windows of :func:`window_grid` cover the video
    (e.g. 2.0 for ``stride = clip_len // 2`` on a long video; 1.0 when every frame is fed once)."""
    return len(window_starts(nframes, span_length(clip_len, frame_interval), stride)) * clip_len / nframes


# ---------------------------------------------------------------------------------------------------------
# models


def build_cfad(config, input_hw: Sequence[int], device: DeviceLike = None, seed: int = 0,
               quiet: bool = False):
    """A CFAD model in eval mode, random weights (``torch.manual_seed(seed)``), with ``model.cfg``.

    Args:
        config (str | Config): a CFAD config. Its backbone's ``init_cfg`` (pretrained weights) is dropped.
        input_hw (tuple[int, int]): the frame size of the videos: the test pipeline's resize is set to it
            (``keep_ratio=False``), so that in-memory frames of that size are not resized.
        device: Defaults to CPU.
        quiet (bool): Keep the current mmengine logger at WARNING while the model is built: ``init_weights``
            logs every parameter, a list that random weights do not need. Defaults to False.
    """
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    cfg = Config.fromfile(config) if isinstance(config, (str, os.PathLike)) else config.copy()
    cfg.model.backbone.pop('init_cfg', None)
    h, w = input_hw
    for t in cfg.test_dataloader.dataset.pipeline:
        if t['type'] in ('TubeResize', 'Resize'):
            t['scale'] = (w, h)
            t['keep_ratio'] = False
    torch.manual_seed(seed)
    logger = MMLogger.get_current_instance()
    level = logger.level
    if quiet:
        logger.setLevel('WARNING')
    try:
        model = MODELS.build(cfg.model)
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.cfg = cfg
    return model.to(_device(device)).eval()


def backbone_channels(cfad_cfg) -> int:
    """Channels of the backbone output: the neck's input when the CFAD config has a neck, else
    ``feat_channels``."""
    neck = cfad_cfg.model.get('neck', None)
    return neck['in_channels'] if neck else cfad_cfg.model.feat_channels


def build_ava_detector(cfad_cfg, device: DeviceLike = None, num_classes: Optional[int] = None, seed: int = 0):
    """mmaction2's AVA recipe on the CFAD config's backbone: mmdet ``FastRCNN`` with ``AVARoIHead``,
    ``SingleRoIExtractor3D`` (RoIAlign, 8x8, temporal pooling) and ``BBoxHeadAVA`` (multi-label, with a
    background class), in eval mode with random weights.

    When the CFAD config runs its backbone channels-last (``model.channels_last``), this backbone does too
    (weights and input clips), so that both share the same backbone speed.

    Args:
        cfad_cfg (Config): the CFAD config (``model.cfg`` of :func:`build_cfad`).
        device: Defaults to CPU.
        num_classes (int, optional): action classes. Defaults to the CFAD config's ``model.num_classes``.
    """
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.config import ConfigDict
    bb = dict(cfad_cfg.model.backbone)
    bb['type'] = 'mmaction.' + bb['type']
    num_classes = cfad_cfg.model.num_classes if num_classes is None else num_classes
    cfg = dict(
        type='FastRCNN', _scope_='mmdet', backbone=bb,
        roi_head=dict(
            type='AVARoIHead',
            bbox_roi_extractor=dict(type='SingleRoIExtractor3D', roi_layer_type='RoIAlign', output_size=8,
                                    with_temporal_pool=True),
            bbox_head=dict(type='BBoxHeadAVA', background_class=True, in_channels=backbone_channels(cfad_cfg),
                           num_classes=num_classes + 1, multilabel=True, dropout_ratio=0.5)),
        data_preprocessor=dict(type='mmaction.ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
        train_cfg=dict(rcnn=None), test_cfg=dict(rcnn=None))
    torch.manual_seed(seed)
    model = MMDET_MODELS.build(ConfigDict(cfg))
    model.init_weights()
    if cfad_cfg.model.get('channels_last', False):
        model.backbone.to(memory_format=torch.channels_last_3d)
        model.backbone.register_forward_pre_hook(
            lambda _, args: (args[0].contiguous(memory_format=torch.channels_last_3d), ) + tuple(args[1:]))
    return model.to(_device(device)).eval()


# ---------------------------------------------------------------------------------------------------------
# what is timed

def run_cfad(model, video: VideoFrames, clip_len: int, stride: int, frame_interval: int = 1,
             batch_size: int = 1) -> dict:
    """CFAD whole-video inference (:func:`cfad_mm.apis.inference_video`): windows of ``clip_len`` frames
    ``stride`` frames apart, coarse + refine, post-processing and linking into video tubes; every frame of the
    video gets boxes.

    Args:
        model: from :func:`build_cfad` or ``init_detector``.
        video (VideoFrames): e.g. :class:`ArrayFrames`.
        clip_len (int): frames per window T.
        stride (int): frames between window starts.
        frame_interval (int): sample every ``frame_interval``-th frame (windows span
            ``(clip_len - 1) * frame_interval + 1`` frames, boxes at every one of them); the model must have
            been built with the same ``model.frame_interval`` (it raises a ValueError naming both otherwise).
        batch_size (int): windows per forward pass.

    Returns:
        dict: the result of ``inference_video``.
    """
    return inference_video(model, video, clip_len=clip_len, stride=stride, frame_interval=frame_interval,
                           batch_size=batch_size, progress=False)


def run_ava(model, frames_t: torch.Tensor, boxes: np.ndarray, frame_ids: Sequence[int], clip_len: int,
            frame_interval: int = 1, batch_size: int = 1) -> int:
    """mmaction2's AVA-style detector as its users run it: for each frame of ``frame_ids`` the clip of
    :func:`centred_clip`, with that frame's actor boxes as proposals (no person detector is run). The backbone
    runs on batches of ``batch_size`` clips, ``AVARoIHead.predict`` (one clip at a time) on each clip.

    Args:
        model: from :func:`build_ava_detector`.
        frames_t (Tensor): the video ``(3, L, H, W)`` uint8 (:func:`video_tensor`) on the model's device.
        boxes (np.ndarray): ``(L, A, 4)`` float32 boxes in pixels, the proposals of each frame.
        frame_ids (Sequence[int]): 0-based frames to label.
        clip_len (int): frames per clip T.
        frame_interval (int): frames between the sampled frames of a clip. Defaults to 1.
        batch_size (int): clips per backbone forward pass. Defaults to 1.

    Returns:
        int: the number of frames labelled (``len(frame_ids)``).
    """
    from mmaction.structures import ActionDataSample
    from mmengine.structures import InstanceData
    hw = tuple(frames_t.shape[-2:])
    frame_ids = list(frame_ids)
    for i in range(0, len(frame_ids), batch_size):
        ids = frame_ids[i:i + batch_size]
        samples = []
        for f in ids:
            ds = ActionDataSample()
            ds.proposals = InstanceData(bboxes=torch.from_numpy(boxes[f]).to(frames_t.device),
                                        scores=torch.ones(len(boxes[f]), device=frames_t.device))
            ds.set_metainfo(dict(img_shape=hw))
            samples.append(ds)
        clips = [centred_clip(frames_t, f, clip_len, frame_interval) for f in ids]
        data = model.data_preprocessor(dict(inputs=clips, data_samples=samples), False)
        feats = model.extract_feat(data['inputs'])
        feats = feats if isinstance(feats, (tuple, list)) else (feats, )
        for j, ds in enumerate(samples):
            out = model.roi_head.predict(tuple(f[j:j + 1] for f in feats), [ds.proposals], [ds])
            assert out[0].scores.shape[0] == len(boxes[ids[j]])
    return len(frame_ids)


def run_backbone(model, frames_t: torch.Tensor, clip_len: int, stride: int, frame_interval: int = 1,
                 batch_size: int = 1) -> int:
    """The backbone of a CFAD model alone over the windows of :func:`window_grid` (data preprocessing
    included; the neck, if any, excluded), in batches of ``batch_size`` windows.

    With the windows of :func:`run_cfad` this is the floor of its cost; with ``stride = clip_len`` (and
    ``frame_interval = 1``) the backbone sees every frame once.

    Args:
        model: a CFAD model.
        frames_t (Tensor): the video ``(3, L, H, W)`` uint8 (:func:`video_tensor`) on the model's device.
        clip_len (int), stride (int), frame_interval (int): the window grid (see :func:`window_grid`).
        batch_size (int): windows per forward pass. Defaults to 1.

    Returns:
        int: frames fed to the backbone (windows x ``clip_len``).
    """
    positions, _ = window_grid(frames_t.shape[1], clip_len, stride, frame_interval)
    channels_last = getattr(model, 'channels_last', False)
    for i in range(0, len(positions), batch_size):
        clips = [frames_t[:, pos] for pos in positions[i:i + batch_size]]
        x = model.data_preprocessor(dict(inputs=clips, data_samples=None), False)['inputs']
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        model.backbone(x)
    return positions.size


def time_calls(owner, name: str, acc: dict, key: str, device: DeviceLike = None) -> Callable[[], None]:
    """Replace ``owner.<name>`` (a method of an object or a function of a module) by a wrapper adding the wall
    clock of every call, in seconds, to ``acc[key]`` (CUDA synchronised).

    Returns:
        callable: restores ``owner.<name>`` as it was (call it when done, e.g. in a ``finally``).
    """
    missing = object()
    previous = vars(owner).get(name, missing)
    fn = getattr(owner, name)

    def timed(*a, **k):
        out, dt = time_call(lambda: fn(*a, **k), device)
        acc[key] = acc.get(key, 0.0) + dt
        return out

    setattr(owner, name, timed)

    def restore():
        if previous is missing:
            delattr(owner, name)
        else:
            setattr(owner, name, previous)
    return restore


def compare_speed(cfad, ava, frames: np.ndarray, boxes: np.ndarray, clip_len: int,
                  stride: Optional[int] = None, frame_interval: int = 1, batch_size: int = 4,
                  ava_frames: int = 8, backbone_stride: Optional[int] = None, warmup: int = 1,
                  repeats: int = 5, device: DeviceLike = None) -> dict:
    """Frames/s of boxing every frame of one in-memory video: (a) CFAD (:func:`run_cfad`), (b) the AVA-style
    detector (:func:`run_ava`) and (c) the backbone alone (:func:`run_backbone`), interleaved in each round
    (:func:`interleaved_runs`, medians of ``repeats`` runs after ``warmup``), under ``torch.inference_mode``.

    The cost of (b) per frame does not depend on the video, so it is timed on ``ava_frames`` frames spread
    over it. The share of (a)'s time spent outside its backbone calls is timed inside (a)'s own runs.

    Args:
        cfad, ava: from :func:`build_cfad` and :func:`build_ava_detector`.
        frames (np.ndarray): ``(L, H, W, 3)`` uint8; boxes (np.ndarray): ``(L, A, 4)`` proposals of (b).
        clip_len (int): frames per window or clip T, for all three.
        stride (int, optional): window stride of (a). Defaults to ``max(1, clip_len // 2)``.
        frame_interval (int): see :func:`run_cfad`.
        batch_size (int): clips per backbone forward pass, for all three.
        ava_frames (int): frames labelled by (b) per run.
        backbone_stride (int, optional): window stride of (c). Defaults to ``stride`` (the windows of (a));
            ``clip_len`` feeds every frame to the backbone once.

    Returns:
        dict: ``{cfad,ava,backbone}_fps`` (video frames per second), ``{cfad,ava,backbone}_mem`` (peak memory
        growth, MiB), ``a_over_b``, ``a_over_c`` (ratios of frames/s), ``outside_backbone`` (fraction of (a)'s
        time outside its backbone, median over the runs) and ``backbone_frames_per_frame`` of (a).
    """
    device = _device(device)
    stride = stride or max(1, span_length(clip_len, frame_interval) // 2)
    backbone_stride = backbone_stride or stride
    nframes = len(frames)
    video = ArrayFrames(frames)
    frames_t = video_tensor(frames, device)
    step = max(1, nframes // ava_frames)
    ava_ids = list(range(step // 2, nframes, step))[:ava_frames]
    in_backbone = {'s': 0.0}
    backbone_s = []  # time inside (a)'s backbone calls, per run of (a)

    def cfad_job():
        in_backbone['s'] = 0.0
        run_cfad(cfad, video, clip_len, stride, frame_interval, batch_size)
        backbone_s.append(in_backbone['s'])

    jobs = {
        'cfad': cfad_job,
        'ava': lambda: run_ava(ava, frames_t, boxes, ava_ids, clip_len, frame_interval, batch_size),
        'backbone': lambda: run_backbone(cfad, frames_t, clip_len, backbone_stride, frame_interval,
                                         batch_size),
    }
    counts = {'cfad': nframes, 'ava': len(ava_ids), 'backbone': nframes}
    restore = time_calls(cfad.backbone, 'forward', in_backbone, 's', device)
    try:
        with torch.inference_mode():
            times, peaks = interleaved_runs(jobs, repeats, warmup, device)
    finally:
        restore()
    row = {}
    for k in jobs:
        row[f'{k}_fps'] = counts[k] / statistics.median(times[k])
        row[f'{k}_mem'] = peaks[k] / MIB
    row['a_over_b'] = row['cfad_fps'] / row['ava_fps']
    row['a_over_c'] = row['cfad_fps'] / row['backbone_fps']
    shares = [s / dt for s, dt in zip(backbone_s[warmup:], times['cfad'])]
    row['outside_backbone'] = 1 - statistics.median(shares)
    row['backbone_frames_per_frame'] = backbone_frames_per_output_frame(nframes, clip_len, stride,
                                                                        frame_interval)
    return row


#: the stages timed by :func:`stage_breakdown`: (label, where): ``where`` is the attribute path of a method
#: on the model, or ``module:function`` for a function of a module (patched where the model's module calls it)
STAGES = [('backbone', 'backbone.forward'), ('neck', 'neck.forward'),
          ('temporal proposals', 'proposal_head.forward'), ('temporal RoI pooling', 'proposal_head.pool'),
          ('coarse head', 'coarse_head.forward'), ('coarse top-k tubes', 'coarse_head.predict_by_feat'),
          ('tube following (track head)', 'roi_head.track_head.follow'),
          ('actor heatmaps (actor head)', 'roi_head.actor_head.forward'),
          ('snap to actors + re-fit', 'roi_head.snap_to_actors'),
          ('key-timestamp selector', 'roi_head.key_selector.forward'),
          ('key selection', 'roi_head.key_selector.select'),
          ('key-frame 2-D branch', 'roi_head.key_frame_encoder.key_frame_maps'),
          ('refine key boxes', 'roi_head.refine_head.refine_key_boxes'),
          ('trajectory re-fit', 'coder.fit_update'), ('tube classifier', 'roi_head.refine_head.classify'),
          ('post-processing (NMS, mapping)', 'cfad_mm.models.detectors.cfad:outputs_to_clip_tubes'),
          ('predict (all of the model)', 'predict')]


def _stage_owner(model, where: str):
    if ':' in where:
        module, name = where.split(':')
        return importlib.import_module(module), name
    *owner_path, name = where.split('.')
    owner = model
    for a in owner_path:
        owner = getattr(owner, a, None) if owner is not None else None
    return owner, name


def stage_breakdown(model, video: VideoFrames, clip_len: int, stride: int, frame_interval: int = 1,
                    batch_size: int = 1, repeats: int = 5, warmup: int = 1, device: DeviceLike = None,
                    stages: Sequence[Tuple[str, str]] = STAGES) -> Tuple[Dict[str, float], float]:
    """Seconds per video of each stage of :func:`run_cfad` (wall clock inside the stage's method, nested
    stages included in their parents) and of the whole run; the rest of the run is the sliding-window
    pipeline and the linking. Stages the model lacks (e.g. no neck) stay at 0. Every patched method or module
    function is restored afterwards, also on error.

    Returns:
        tuple[dict, float]: ``{label: seconds per video}`` (labels of ``stages``) and seconds per video of the
        whole :func:`run_cfad`, both averaged over ``repeats`` runs after ``warmup``.
    """

    def run():
        return run_cfad(model, video, clip_len, stride, frame_interval, batch_size)

    spent = {label: 0.0 for label, _ in stages}
    restore = []
    try:
        for label, where in stages:
            owner, name = _stage_owner(model, where)
            if owner is not None:
                restore.append(time_calls(owner, name, spent, label, device))
        with torch.inference_mode():
            for _ in range(warmup):
                run()
            for k in spent:
                spent[k] = 0.0
            total = sum(time_runs(run, repeats, 0, device))
    finally:
        for undo in reversed(restore):
            undo()
    return {k: v / repeats for k, v in spent.items()}, total / repeats


def profile_cfad(model, video: VideoFrames, clip_len: int, stride: int, batch_size: int = 1,
                 row_limit: int = 12) -> str:
    """``torch.profiler`` table (CPU activity, sorted by self CPU time) of one :func:`run_cfad` after one
    warm-up run: its ``row_limit`` most expensive operators."""
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode():
        run_cfad(model, video, clip_len, stride, 1, batch_size)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run_cfad(model, video, clip_len, stride, 1, batch_size)
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=row_limit)


def train_throughput(config, device: DeviceLike = None, input_hw: Sequence[int] = (96, 112), warmup: int = 1,
                     repeats: int = 5, seed: int = 0) -> dict:
    """Training speed of a CFAD config: forward + backward + AdamW step on batches of the config's
    ``train_dataloader.batch_size`` clips (one synthetic clip with one ground-truth tube, repeated).

    Returns:
        dict: ``clips_per_s`` and ``frames_per_s`` (median over ``repeats`` steps after ``warmup``; the data
        preprocessing is not timed), ``peak_mem_mib`` (peak memory growth over all steps, see
        :class:`PeakMemory`), ``batch_size`` and ``clip_len``.
    """
    from mmaction.registry import MODELS
    from mmaction.structures import ActionDataSample
    from mmengine.config import Config
    from mmengine.structures import InstanceData
    device = _device(device)
    cfg = Config.fromfile(config) if isinstance(config, (str, os.PathLike)) else config
    bs = cfg.train_dataloader.batch_size
    t = cfg.get('clip_len', None) or cfg.train_dataloader.dataset.clip_len
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    h, w = input_hw
    frames, boxes = synthetic_video(t, (h, w), num_actors=1)
    clip = video_tensor(frames)

    def sample():
        ds = ActionDataSample()
        ds.gt_instances = InstanceData(tubes=torch.from_numpy(boxes[:, 0][None]),
                                       tube_masks=torch.ones(1, t, dtype=torch.bool),
                                       labels=torch.tensor([0]))
        ds.set_metainfo(dict(img_shape=(h, w), frame_numbers=np.arange(1, t + 1),
                             frame_valid=np.ones(t, bool)))
        return ds

    def step(data):
        losses = model(**data, mode='loss')
        sum(losses.values()).backward()
        opt.step()
        opt.zero_grad()

    times = []
    with PeakMemory(device) as mem:
        for i in range(warmup + repeats):
            data = model.data_preprocessor(dict(inputs=[clip.to(device)] * bs,
                                                data_samples=[sample() for _ in range(bs)]), True)
            _, dt = time_call(lambda: step(data), device)
            if i >= warmup:
                times.append(dt)
    cps = bs / statistics.median(times)
    return dict(clips_per_s=cps, frames_per_s=cps * t, peak_mem_mib=mem.peak_mib, batch_size=bs, clip_len=t)
