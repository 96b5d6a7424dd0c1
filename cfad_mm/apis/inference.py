"""Inference on a whole video (file or frame folder): sliding windows -> CFAD -> linking -> video tubes."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from cfad_mm.datasets.media import MediaError, probe_video
from cfad_mm.datasets.tube_dataset import window_positions, window_starts

# Pipeline steps that read media: the inference API decodes the frames itself.
DECODE_STEPS = ('DecordInit', 'DecordDecode', 'RawFrameDecode', 'OpenCVInit', 'OpenCVDecode', 'PyAVInit',
                'PyAVDecode', 'SampleFrames', 'SampleAVAFrames', 'UntrimmedSampleFrames')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def init_detector(config, checkpoint: Optional[str] = None, device: str = 'cpu', cfg_options=None):
    """Build a CFAD model from a config (path or :class:`Config`) and load a checkpoint.

    Returns:
        nn.Module: the model in eval mode, with ``model.cfg`` (the config) and ``model.dataset_meta``
        (``classes`` from the checkpoint's meta when present).
    """
    import cfad_mm  # noqa: F401  (registers the plugin)
    from mmaction.registry import MODELS
    if isinstance(config, (str, os.PathLike)):
        config = Config.fromfile(str(config))
    if cfg_options:
        config.merge_from_dict(cfg_options)
    DefaultScope.get_instance(f'cfad_inference_{id(config)}', scope_name=config.get('default_scope', 'mmaction'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        model.dataset_meta = meta.get('dataset_meta', {})
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
        MediaError: (a ``ValueError``) the file is empty or cannot be decoded, or the folder holds no image.
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
            self.decode_shape = None
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
        if self.decode_shape is not None and tuple(img.shape[:2]) != self.decode_shape:
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
    """The linking keyword arguments (``link_iou``, ``trim_thr``, ``nms_thr``, ``max_gap``) that the config's
    ``test_evaluator`` (a ``TubeMetric``) sets; ``{}`` when it has none."""
    ev = cfg.get('test_evaluator', None)
    if isinstance(ev, (list, tuple)):
        ev = next((e for e in ev if e.get('type') == 'TubeMetric'), None)
    if not ev:
        return {}
    return {k: ev[k] for k in ('link_iou', 'trim_thr', 'nms_thr', 'max_gap') if k in ev}


def inference_video(model, video: str, clip_len: Optional[int] = None, stride: Optional[int] = None,
                    frame_interval: int = 1, batch_size: int = 1, link_cfg: Optional[dict] = None,
                    progress: bool = True, max_side: Optional[int] = 1280) -> Dict:
    """Detect action tubes in a whole video.

    Sliding windows of ``clip_len`` frames with ``stride`` cover every frame (the last window is aligned to the
    video end; a video shorter than the window is padded by repeating its last frame). Clip tubes are linked
    into video tubes with :func:`cfad_mm.evaluation.linking.link_video_tubes`.

    Args:
        model: from :func:`init_detector`. video (str | VideoFrames): video file or frame folder (or one
            already opened).
        clip_len (int, optional): defaults to the config's test ``clip_len``.
        stride (int, optional): defaults to the config's ``test_stride`` (or ``clip_len // 2``).
        frame_interval (int): temporal sampling interval. Defaults to 1.
        batch_size (int): clips per forward pass. Defaults to 1.
        link_cfg (dict, optional): keyword arguments of ``link_video_tubes``. Defaults to the linking settings
            of the config's ``test_evaluator`` (``link_iou``, ``trim_thr``, ``nms_thr``, ``max_gap``), so that
            the demo links as the evaluation does.
        progress (bool): show a progress bar over windows. Defaults to True.
        max_side (int, optional): frames with a longer side are decoded downscaled (see :class:`VideoFrames`);
            the tubes are mapped back to the original pixels. Defaults to 1280.

    Returns:
        dict: ``video``, ``nframes``, ``resolution`` (H, W), ``clips`` (list of clip predictions as numpy dicts)
        and ``tubes`` (the linked video tubes: ``tubes (K, nframes, 4)``, ``tube_masks``, ``scores``,
        ``labels``, ...), ``num_nonfinite`` (clip tubes with NaN/inf scores or boxes, left out of the linking
        with a warning). All boxes are in original video pixels.
    """
    from cfad_mm.evaluation.linking import drop_nonfinite_tubes, link_video_tubes
    cfg = model.cfg
    ds_cfg = cfg.test_dataloader.dataset
    clip_len = clip_len or ds_cfg.get('clip_len', 16)
    stride = stride or ds_cfg.get('test_stride') or max(1, clip_len // 2)
    frames = video if isinstance(video, VideoFrames) else VideoFrames(video, max_side)
    video = frames.path
    # boxes predicted on the decoded frames -> original pixels
    sy, sx = (o / d for o, d in zip(frames.shape, frames.decode_shape))
    to_original = np.array([sx, sy, sx, sy], dtype=np.float32)
    pipeline = build_inference_pipeline(cfg)
    span = (clip_len - 1) * frame_interval + 1
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
            clips.append(dict(frame_inds=np.asarray(ds.metainfo['frame_inds']),
                              frame_valid=np.asarray(ds.metainfo['frame_valid']),
                              tubes=p.tubes.cpu().numpy() * to_original, tube_masks=p.tube_masks.cpu().numpy(),
                              scores=p.scores.cpu().numpy(), labels=p.labels.cpu().numpy(),
                              frame_scores=p.frame_scores.cpu().numpy()))
        batch.clear()

    for start in starts:
        positions, valid = window_positions(start, clip_len, frame_interval, frames.num_frames)
        imgs = frames.get(positions)
        t = len(imgs)
        results = dict(imgs=imgs, video_id=osp.basename(video.rstrip('/')), frame_inds=positions.copy(),
                       video_frame_inds=positions + 1, frame_valid=valid, clip_len=clip_len, num_clips=1,
                       frame_interval=frame_interval, nframes=frames.num_frames,
                       original_shape=tuple(frames.decode_shape), img_shape=tuple(frames.decode_shape),
                       gt_tubes=np.zeros((0, t, 4), np.float32), gt_tube_masks=np.zeros((0, t), bool),
                       gt_labels=np.zeros((0, ), np.int64))
        packed = pipeline(results)
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
    return dict(video=video, nframes=frames.num_frames, resolution=tuple(frames.shape), clips=clips, tubes=tubes,
                num_nonfinite=num_nonfinite)


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
