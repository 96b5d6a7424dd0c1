"""Inference on a whole video (file or frame folder): sliding windows -> CFAD -> linking -> video tubes."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from cfad_mm.datasets.media import MediaError, probe_video
from cfad_mm.datasets.tube_dataset import span_length, window_span, window_starts

# Pipeline steps that read media: the inference API decodes the frames itself.
DECODE_STEPS = ('DecordInit', 'DecordDecode', 'RawFrameDecode', 'OpenCVInit', 'OpenCVDecode', 'PyAVInit',
                'PyAVDecode', 'SampleFrames', 'SampleAVAFrames', 'UntrimmedSampleFrames')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
# Default limits of the network input (H, W after the test pipeline) of inference_video, see check_input_size.
MAX_INPUT_SIDE = 2048
MAX_INPUT_AREA = 2048 * 1536


def init_detector(config, checkpoint: Optional[str] = None, device: str = 'cpu', cfg_options=None,
                  strict: Optional[bool] = None, unsafe_load: bool = False):
    """Build a CFAD model from a config (path or :class:`Config`) and load a checkpoint.

    The checkpoint is loaded by :func:`cfad_mm.engine.checkpoint.load_model_checkpoint`: with
    ``weights_only=True`` and a short allow-list, and refused when it does not fit the model.

    Args:
        config (str | Config): The config.
        checkpoint (str, optional): A local checkpoint file. None leaves the model at its initialisation.
        device (str): ``'cpu'``, ``'cuda:0'`` ... Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config (``--cfg-options``).
        strict (bool, optional): Refuse a checkpoint that does not fit the model (missing, unexpected or
            differently shaped weights). None takes the config's ``load_strict`` (default True).
        unsafe_load (bool): Load the checkpoint with full pickle semantics: ONLY for files you trust.
            Defaults to False.

    Returns:
        nn.Module: the model in eval mode, with ``model.cfg`` (the config) and ``model.dataset_meta``
        (``classes`` from the checkpoint's meta when present).

    Raises:
        FileNotFoundError: The checkpoint does not exist.
        CheckpointMismatchError: The checkpoint does not fit the model (and ``strict``).
        UnsafeCheckpointError: The checkpoint needs globals outside the allow-list (and not ``unsafe_load``).
    """
    from mmaction.registry import MODELS

    import cfad_mm  # noqa: F401  (registers the plugin)
    from cfad_mm.engine.checkpoint import load_model_checkpoint
    if isinstance(config, (str, os.PathLike)):
        config = Config.fromfile(str(config))
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if strict is None:
        strict = bool(config.get('load_strict', True))
    DefaultScope.get_instance(f'cfad_inference_{id(config)}',
                              scope_name=config.get('default_scope', 'mmaction'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        ckpt = load_model_checkpoint(model, checkpoint, strict=strict, unsafe_load=unsafe_load,
                                     config=config.filename, map_location='cpu')
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        model.dataset_meta = meta.get('dataset_meta', {}) if isinstance(meta, dict) else {}
    else:
        model.dataset_meta = {}
    model.cfg = config
    return model.to(device).eval()


class VideoFrames:
    """Random access to the RGB frames of a video file (decord) or a folder of images (sorted by name).

    Frames larger than ``max_side`` on their long side are decoded downscaled (decord resizes while decoding,
    images are resized after reading), so that very large videos do not exhaust the memory: ``shape`` is the
    original ``(H, W)``, ``decode_shape`` the ``(h, w)`` of the frames :meth:`get` returns.

    Args:
        path (str): A video file or a folder of images.
        max_side (int, optional): Largest decoded side in pixels; None decodes at full size.
            Defaults to 1280.

    Raises:
        FileNotFoundError: the path does not exist.
        MediaError: (a ``ValueError``) the file is empty or cannot be decoded, or the folder holds no image;
            and from :meth:`get`, when a frame of a folder is read whose size differs from the first image's
            (one scale maps all boxes back to original pixels, so a folder of mixed sizes is refused).
    """

    def __init__(self, path: str, max_side: Optional[int] = 1280):
        self.path = path
        if not osp.exists(path):
            raise FileNotFoundError(f'video not found: {path}')
        if max_side is not None and max_side < 1:
            raise ValueError(f'VideoFrames: max_side must be >= 1 or None, got {max_side}')
        if osp.isdir(path):
            self.files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
            if not self.files:
                raise MediaError(f'{path}: frame folder holds no image ({", ".join(IMAGE_EXTS)})')
            self.shape = self.decode_shape = None
            first = self._read_image(0)
            self.num_frames, self.shape = len(self.files), tuple(first.shape[:2])
            self.decode_shape = _downscaled(self.shape, max_side)
            self.reader = None
        else:
            import decord
            self.num_frames, self.shape = probe_video(path)
            self.decode_shape = _downscaled(self.shape, max_side)
            size = {} if self.decode_shape == self.shape else dict(width=self.decode_shape[1],
                                                                   height=self.decode_shape[0])
            self.reader = decord.VideoReader(path, num_threads=1, **size)

    @property
    def downscaled(self) -> bool:
        """Whether the frames are decoded smaller than the original."""
        return self.decode_shape != self.shape

    def _read_image(self, i: int) -> np.ndarray:
        import cv2
        f = osp.join(self.path, self.files[i])
        img = cv2.imread(f)
        if img is None:
            raise MediaError(f'{f}: cannot read this image (empty, truncated or not an image)')
        size = tuple(img.shape[:2])  # the original size, compared before any downscaling
        if self.shape is not None and size != self.shape:
            raise MediaError(
                f'{self.path}: the frame folder holds images of different sizes: {self.files[i]} is '
                f'{size[1]}x{size[0]} (WxH) but the first image {self.files[0]} is {self.shape[1]}x'
                f'{self.shape[0]}; all frames of a video must have the same size (resize them to one size or '
                'split the folder), otherwise the boxes would be reported in wrong coordinates')
        if self.decode_shape is not None and size != self.decode_shape:
            img = cv2.resize(img, self.decode_shape[::-1], interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def get(self, positions: Sequence[int]) -> List[np.ndarray]:
        """RGB frames ``(h, w, 3)`` uint8 (``decode_shape``) at 0-based ``positions``."""
        if self.reader is None:
            return [self._read_image(int(p)) for p in positions]
        try:
            return list(self.reader.get_batch(list(map(int, positions))).asnumpy())
        except Exception as err:
            raise MediaError(f'{self.path}: cannot decode frames {int(positions[0]) + 1}..'
                             f'{int(positions[-1]) + 1}: {type(err).__name__}: {err}') from err


def _downscaled(shape, max_side: Optional[int]):
    """``(h, w)`` with the long side at most ``max_side`` (aspect ratio kept, even sizes for the decoder)."""
    h, w = (int(v) for v in shape)
    if max_side is None or max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(2, int(round(h * s / 2)) * 2), max(2, int(round(w * s / 2)) * 2)


def build_inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline without its decoding steps (frames are decoded by :class:`VideoFrames`)."""
    steps = [dict(s) for s in cfg.test_dataloader.dataset.pipeline if s['type'] not in DECODE_STEPS]
    return Compose(steps)


def config_link_cfg(cfg) -> dict:
    """The linking keyword arguments (``link_iou``, ``trim_thr``, ``nms_thr``, ``max_gap``, ``link_method``,
    ``vel_weight``) that the config's ``test_evaluator`` (a ``TubeMetric``) sets; ``{}`` when it has none."""
    from cfad_mm.evaluation.predictions import config_tube_metric
    ev = config_tube_metric(cfg)
    keys = ('link_iou', 'trim_thr', 'nms_thr', 'max_gap', 'link_method', 'vel_weight')
    return {k: ev[k] for k in keys if k in ev}


class InputSizeError(MediaError):
    """A video whose network input (its frames after the config's test pipeline) exceeds the size limits of
    :func:`inference_video`. The message names the video, both sizes, the limit and the remedies."""


def check_input_size(video: str, video_shape: Sequence[int], input_shape: Sequence[int],
                     max_input_side: Optional[int] = MAX_INPUT_SIDE,
                     max_input_area: Optional[int] = MAX_INPUT_AREA,
                     decode_shape: Optional[Sequence[int]] = None,
                     pipeline_cfg: Optional[Sequence[dict]] = None) -> None:
    """Refuse a network input whose long side or area exceeds the limits, before the model runs on it.

    The test pipelines resize by the short side, so the network input follows the video's aspect ratio: an
    extreme one (a 5000x20 video becomes a 20480x96 input) costs time and memory out of all proportion (33 s
    and 3.4 GB for one window of the tiny model on a CPU) without any warning. The defaults are far above
    what the configs need (16:9 videos at a 256 short side give 455x256; a long side of 2048 px keeps aspect
    ratios up to 8:1 at that short side) and still accept full-HD (1920x1080, 2.1 Mpx) and 2048x1536 inputs of
    pipelines that do not downscale; beyond them the memory of a window grows past a few GB.

    Args:
        video (str): The video, for the message.
        video_shape (Sequence[int]): Its original ``(H, W)``.
        input_shape (Sequence[int]): The network input: a shape ending with ``(H, W)``.
        max_input_side (int, optional): Largest accepted long side in pixels; 0 or None: no limit.
            Defaults to :data:`MAX_INPUT_SIDE` (2048).
        max_input_area (int, optional): Largest accepted ``H * W`` in pixels; 0 or None: no limit.
            Defaults to :data:`MAX_INPUT_AREA` (2048 * 1536).
        decode_shape (Sequence[int], optional): The ``(h, w)`` the frames were decoded at, when downscaled.
        pipeline_cfg (Sequence[dict], optional): The config's test pipeline, to name its resize step in the
            message.

    Raises:
        InputSizeError: (a :class:`~cfad_mm.datasets.media.MediaError`) A limit is exceeded.
        ValueError: A negative limit.
    """
    for name, limit in (('max_input_side', max_input_side), ('max_input_area', max_input_area)):
        if limit is not None and limit < 0:
            raise ValueError(f'{name} must be >= 0 (0 or None: no limit), got {limit}')
    h, w = (int(v) for v in input_shape[-2:])
    if max_input_side and max(h, w) > max_input_side:
        problem = f'long side {max(h, w)} px > max_input_side={max_input_side}'
    elif max_input_area and h * w > max_input_area:
        problem = f'area {h * w} px > max_input_area={max_input_area} ({h * w / max_input_area:.1f}x)'
    else:
        return
    vh, vw = (int(v) for v in video_shape[:2])
    decoded = ''
    if decode_shape is not None and tuple(int(v) for v in decode_shape[:2]) != (vh, vw):
        decoded = f' (decoded at {int(decode_shape[1])}x{int(decode_shape[0])})'
    steps = [str(dict(step).get('type', '')) for step in (pipeline_cfg or [])]
    resize = next((i for i, t in enumerate(steps) if t.split('.')[-1].endswith('Resize')), None)
    option = 'test_dataloader.dataset.pipeline.<i>.scale' if resize is None else \
        f'test_dataloader.dataset.pipeline.{resize}.scale'
    raise InputSizeError(
        f'{video}: the {vw}x{vh} video{decoded} gives a {w}x{h} (WxH) network input with the config\'s test '
        f'pipeline: {problem}. Crop or resize the video to a usual aspect ratio, bound the long side in the '
        f'test resize (--cfg-options "{option}=(LONG,SHORT)"), or raise the limit (--max-input-side / '
        '--max-input-area, 0 disables it).')


def inference_video(model, video: str, clip_len: Optional[int] = None, stride: Optional[int] = None,
                    frame_interval: Optional[int] = None, batch_size: int = 1,
                    link_cfg: Optional[dict] = None, progress: bool = True, max_side: Optional[int] = 1280,
                    max_input_side: Optional[int] = MAX_INPUT_SIDE,
                    max_input_area: Optional[int] = MAX_INPUT_AREA) -> Dict:
    """Detect action tubes in a whole video.

    Sliding windows of ``clip_len`` frames with ``stride`` cover every frame (the last window is aligned to
    the video end; a video shorter than the window is padded by repeating its last frame). Clip tubes are
    linked into video tubes with :func:`cfad_mm.evaluation.linking.link_video_tubes`.

    Args:
        model: from :func:`init_detector`. video (str | VideoFrames): video file or frame folder (or one
            already opened).
        clip_len (int, optional): defaults to the config's test ``clip_len``.
        stride (int, optional): defaults to the config's ``test_stride`` (or half the span).
        frame_interval (int, optional): sample every ``frame_interval``-th frame; a window spans
            ``(clip_len - 1) * frame_interval + 1`` frames and the model predicts at every one of them.
            Defaults to the config's test ``frame_interval`` (or 1).
        batch_size (int): clips per forward pass. Defaults to 1.
        link_cfg (dict, optional): keyword arguments of ``link_video_tubes``. Defaults to the linking settings
            of the config's ``test_evaluator`` (``link_iou``, ``trim_thr``, ``nms_thr``, ``max_gap``), so that
            the demo links as the evaluation does.
        progress (bool): show a progress bar over windows. Defaults to True.
        max_side (int, optional): frames with a longer side are decoded downscaled (see :class:`VideoFrames`);
            the tubes are mapped back to the original pixels. Defaults to 1280.
        max_input_side (int, optional): Largest long side of the network input (the frames after the test
            pipeline); 0 or None: no limit. Defaults to 2048 (reasons in :func:`check_input_size`).
        max_input_area (int, optional): Largest ``H * W`` of the network input; 0 or None: no limit.
            Defaults to 2048 * 1536.

    Returns:
        dict: ``video``, ``nframes``, ``resolution`` (H, W), ``clips`` (list of clip predictions as numpy
        dicts) and ``tubes`` (the linked video tubes: ``tubes (K, nframes, 4)``, ``tube_masks``, ``scores``,
        ``labels``, ...), ``num_nonfinite`` (clip tubes with NaN/inf scores or boxes, left out of the linking
        with a warning). All boxes are in original video pixels.

    Raises:
        FileNotFoundError: The video does not exist.
        MediaError: The video cannot be decoded; :class:`InputSizeError` (a ``MediaError``) when its network
            input exceeds ``max_input_side`` / ``max_input_area``, raised on the first window, before the
            model runs.
    """
    from cfad_mm.evaluation.linking import drop_nonfinite_tubes, link_video_tubes
    cfg = model.cfg
    ds_cfg = cfg.test_dataloader.dataset
    clip_len = clip_len or ds_cfg.get('clip_len', 16)
    frame_interval = int(frame_interval or ds_cfg.get('frame_interval', 1))
    span = span_length(clip_len, frame_interval)
    stride = stride or ds_cfg.get('test_stride') or max(1, span // 2)
    frames = video if isinstance(video, VideoFrames) else VideoFrames(video, max_side)
    video = frames.path
    # boxes predicted on the decoded frames -> original pixels
    sy, sx = (o / d for o, d in zip(frames.shape, frames.decode_shape))
    to_original = np.array([sx, sy, sx, sy], dtype=np.float32)
    pipeline = build_inference_pipeline(cfg)
    starts = window_starts(frames.num_frames, span, stride)
    device = next(model.parameters()).device
    clips, batch = [], []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(starts))

    def flush():
        if not batch:
            return
        data = model.data_preprocessor(dict(inputs=[b['inputs'] for b in batch],
                                            data_samples=[b['data_samples'] for b in batch]), False)
        with torch.inference_mode():
            outs = model(data['inputs'], data['data_samples'], mode='predict')
        for ds in outs:
            p = ds.pred_instances
            clips.append(dict(frame_numbers=np.asarray(ds.metainfo['frame_numbers']),
                              frame_valid=np.asarray(ds.metainfo['frame_valid']),
                              tubes=p.tubes.cpu().numpy() * to_original,
                              tube_masks=p.tube_masks.cpu().numpy(), scores=p.scores.cpu().numpy(),
                              labels=p.labels.cpu().numpy(), frame_scores=p.frame_scores.cpu().numpy()))
        batch.clear()

    for start in starts:
        # the network sees every frame_interval-th frame; the predictions cover every frame of the span
        positions, valid, sampled = window_span(start, clip_len, frame_interval, frames.num_frames)
        imgs = frames.get(positions[sampled])
        t = len(positions)
        results = dict(imgs=imgs, video_id=osp.basename(video.rstrip('/')), frame_inds=positions[sampled],
                       frame_numbers=positions + 1, frame_valid=valid, clip_len=clip_len, num_clips=1,
                       frame_interval=frame_interval, nframes=frames.num_frames,
                       original_shape=tuple(frames.decode_shape), img_shape=tuple(frames.decode_shape),
                       gt_tubes=np.zeros((0, t, 4), np.float32), gt_tube_masks=np.zeros((0, t), bool),
                       gt_labels=np.zeros((0, ), np.int64))
        packed = pipeline(results)
        check_input_size(video, frames.shape, packed['inputs'].shape, max_input_side, max_input_area,
                         frames.decode_shape, ds_cfg.get('pipeline'))
        packed['inputs'] = packed['inputs'].to(device)
        batch.append(packed)
        if len(batch) >= batch_size:
            flush()
        if bar is not None:
            bar.update()
    flush()
    linkable, num_nonfinite = drop_nonfinite_tubes(clips, video)
    if link_cfg is None:
        link_cfg = config_link_cfg(cfg)
    tubes = link_video_tubes(linkable, frames.num_frames, video=video, **link_cfg)
    return dict(video=video, nframes=frames.num_frames, resolution=tuple(frames.shape), clips=clips,
                tubes=tubes, num_nonfinite=num_nonfinite)


def tubes_to_json(result: Dict, classes: Optional[Sequence[str]] = None, score_thr: float = 0.0) -> Dict:
    """JSON-ready video tubes: label, score and per-frame boxes (1-based frame numbers, original pixels)."""
    t = result['tubes']
    out = []
    for k in range(len(t['scores'])):
        if float(t['scores'][k]) < score_thr:
            continue
        frames = np.nonzero(t['tube_masks'][k])[0]
        label = int(t['labels'][k])
        out.append(dict(
            tube_id=len(out), label=label,
            label_name=(classes[label] if classes is not None and label < len(classes) else str(label)),
            score=float(t['scores'][k]),
            boxes=[[int(f) + 1] + [round(float(v), 2) for v in t['tubes'][k, f]] for f in frames]))
    return dict(video=result['video'], nframes=result['nframes'], resolution=list(result['resolution']),
                tubes=out)
