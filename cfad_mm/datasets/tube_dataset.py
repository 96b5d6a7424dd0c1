"""Clip datasets for spatio-temporal action detection with tube annotations.

:class:`TubeDataset` reads an ACT-style annotation pickle (see :mod:`cfad_mm.datasets.annotation`) and serves
fixed-length clips of ``clip_len`` frames with their ground-truth tubes.

Frame indexing, kept straight in ONE place (:meth:`TubeDataset.get_clip`):

* ``results['frame_inds']`` -- 0-based DECODER indices (what mmaction's ``DecordDecode`` feeds to
  ``VideoReader.get_batch``). For frame folders, ``results['offset'] = frame_start_index`` (default 1) makes
  mmaction's ``RawFrameDecode`` read ``filename_tmpl.format(frame_ind + offset)``, i.e. ``00001.jpg`` for the
  first frame.
* ``results['frame_numbers']`` -- 1-based video frame numbers as in the annotation file. ``PackTubeInputs``
  publishes them under the same name as the metainfo key ``frame_numbers`` of the packed sample, together
  with ``frame_valid``; clip predictions carry them as ``frame_numbers`` too. (``frame_inds`` always means
  the 0-based decoder indices; it is not packed.)

Clip sampling (``span = (clip_len - 1) * frame_interval + 1`` frames):

* test mode (``test_mode=True``, the default for ``subset='test'``): sliding windows with stride
  ``test_stride`` starting at frame 1; the last window is aligned to the video end, so together the windows
  cover EVERY frame of every video. A video shorter than ``span`` gets one window whose positions past the end
  repeat the last frame with ``frame_valid=False``.
* training mode: the same window grid with stride ``train_stride``; windows in which at least one GT tube has
  an annotated frame of the span are all kept, plus background windows (no tube) making up
  ``background_fraction`` of the clips (chosen once with ``seed``). With ``temporal_jitter=J > 0`` each fetch
  shifts a window start by a random amount in ``[-J, J]`` (clipped to the video), falling back to the anchor
  position if the shifted window would lose all tubes of a positive clip.

Ground truth of a clip (computed per fetch, so jitter is exact): every tube of the video is restricted to the
clip frames and becomes ``gt_tubes`` (n, T, 4) float32 + ``gt_tube_masks`` (n, T) bool + ``gt_labels`` (n,)
int64. Boxes are clipped to the frame (annotations may cross the border by a few pixels); values where the
mask is False are 0. Padded positions (``frame_valid=False``) are never annotated. A tube with no annotated
frame inside the clip is not part of that clip (it lies outside the clip in time).

Bad samples (``on_bad_sample``): with the default ``'error'`` the first unreadable clip raises, naming the
clip, the video and the file (missing / empty / truncated / non-video files, frame folders with gaps, videos
with fewer frames than ``nframes``; see :mod:`cfad_mm.datasets.media`). With ``'skip'``:

* test mode: every video of the split is checked when the dataset is built (:func:`~.media.probe_video` or
  :func:`~.media.check_frame_folder`); the clips of bad videos are left out and listed in
  :attr:`TubeDataset.bad_samples` (their ground truth still counts in the metric, as missed tubes). A clip
  that fails later still raises: a test loop cannot drop a sample.
* training: a clip that fails to load is skipped and another one is drawn (mmengine's refetch); later clips of
  the same video are skipped at once. Each skip is logged once per video and recorded in the metainfo key
  ``bad_samples`` of the next sample served, so that the main process learns about skips made in dataloader
  workers: :class:`cfad_mm.engine.ReliabilityHook` counts them and logs a summary at the end of every epoch.
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from .annotation import (
    DEFAULT_MAX_NFRAMES,
    DEFAULT_MAX_SIDE,
    AnnotationError,
    densify_tubes,
    load_annotations,
)
from .media import check_frame_folder, probe_video
from .sampling import span_length, window_positions, window_span, window_starts  # noqa: F401 (re-exported)
from .transforms.box_mapping import clip_boxes_to_shape

SOURCES = ('video', 'frames')
BAD_SAMPLE_MODES = ('error', 'skip')
BAD_SAMPLES_KEY = 'bad_samples'


class VideoTubes:
    """Dense ground-truth tubes of one video on the video's own time axis (internal).

    Attributes:
        nframes (int): Number of frames.
        resolution (tuple[int, int]): (height, width).
        labels (np.ndarray): (n,) int64 class indices.
        boxes (np.ndarray): (n, nframes, 4) float32 xyxy, clipped to the frame, 0 where not annotated.
        masks (np.ndarray): (n, nframes) bool, True on annotated frames.
    """

    __slots__ = ('nframes', 'resolution', 'labels', 'boxes', 'masks')

    def __init__(self, nframes: int, resolution: tuple, gttubes: Dict[int, List[np.ndarray]]):
        self.nframes = nframes
        self.resolution = resolution
        boxes, self.masks, self.labels = densify_tubes(gttubes, nframes, np.float32)
        # training targets stay inside the frame (annotations may cross the border by a few pixels); the
        # metric evaluates against the annotation as it is
        self.boxes = clip_boxes_to_shape(boxes, resolution)

    def clip(self, positions: np.ndarray, frame_valid: np.ndarray):
        """Ground truth at 0-based frame ``positions`` (T,) (already clipped to the video)."""
        masks = self.masks[:, positions] & frame_valid[None]
        keep = masks.any(axis=1)
        masks = masks[keep]
        boxes = self.boxes[keep][:, positions]
        boxes[~masks] = 0
        return boxes.astype(np.float32), masks, self.labels[keep].copy()

    def has_tube(self, positions: np.ndarray, frame_valid: np.ndarray) -> bool:
        return bool((self.masks[:, positions] & frame_valid[None]).any())


@DATASETS.register_module()
class TubeDataset(BaseDataset):
    """Clips of videos with spatio-temporal action tubes (ACT-style annotation pickle).

    Args:
        ann_file (str): Annotation pickle, relative to ``data_root`` unless absolute.
        pipeline (list[dict | callable]): Transforms (decode, tube transforms, ``PackTubeInputs``).
        data_prefix (dict): ``dict(video=DIR)``: the folder holding ``{video}{video_ext}`` files or
            ``{video}/`` frame folders, relative to ``data_root`` unless absolute. Defaults to
            ``dict(video='')``.
        data_root (str): Root joined to ``ann_file`` and ``data_prefix``. Defaults to ``''``.
        split (int): Index into ``train_videos`` / ``test_videos``. Defaults to 0.
        subset (str): ``'train'`` or ``'test'``: which video list of the split. Defaults to ``'train'``.
        source (str): ``'video'`` (decoded with decord, pipeline ``DecordInit`` + ``DecordDecode``) or
            ``'frames'`` (image folders, pipeline ``RawFrameDecode``). Defaults to ``'video'``.
        video_ext (str): Extension of video files, e.g. ``'.mp4'`` or ``'.avi'``. Defaults to ``'.mp4'``.
        filename_tmpl (str): Frame file name template for ``source='frames'``. Defaults to ``'{:05d}.jpg'``.
        frame_start_index (int): File number of a video's first frame for ``source='frames'``. Defaults to 1.
        modality (str): Passed to ``RawFrameDecode`` (``'RGB'``). Defaults to ``'RGB'``.
        clip_len (int): Frames per clip T. Defaults to 16.
        frame_interval (int): Distance between sampled frames. Defaults to 1.
        train_stride (int, optional): Stride of the training window grid in frames.
            Defaults to half the window span.
        test_stride (int, optional): Stride of the test sliding windows in frames.
            Defaults to half the window span.
        background_fraction (float): Fraction of the training clips that contain no tube, in ``[0, 1)``
            (limited by the number of such windows). Defaults to 0.0.
        temporal_jitter (int): Maximum random shift in frames of a training window per fetch.
            Defaults to 0 (no jitter).
        seed (int): Seed of the choice of background clips. Defaults to 0.
        test_mode (bool, optional): Sliding-window sampling over every frame when True, training sampling
            otherwise. Defaults to ``subset == 'test'``.
        check_files (bool): Check before decoding that the media of a clip can be read: the frame folder and
            frame files exist (``FileNotFoundError``), the video file exists, is not empty, decodes and has at
            least ``nframes`` frames (``MediaError``; probed once per video). Skipped for URLs.
            Defaults to True.
        on_bad_sample (str): ``'error'`` (raise on the first unreadable clip) or ``'skip'`` (leave bad clips
            out, count them and report them; see the module docstring). Defaults to ``'error'``.
        box_tolerance (float): Tolerance of boxes outside the frame, see
            :func:`cfad_mm.datasets.annotation.validate_annotations`. Defaults to 0.05.
        max_nframes (int): Largest ``nframes`` the annotation may give a video; larger values are refused as
            corrupt (raise it for genuinely longer videos). Defaults to 1,000,000.
        max_side (int): Largest height or width the annotation may give a video. Defaults to 16384.
        metainfo (dict, optional): ``dict(classes=...)``; the class names come from the annotation file when
            omitted. Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset` (``indices``, ``serialize_data``,
            ``lazy_init``, ``max_refetch``).
    """

    METAINFO: dict = dict()
    DEFAULT_SOURCE = 'video'

    def __init__(self,
                 ann_file: str,
                 pipeline: Sequence[Union[dict, Callable]],
                 data_prefix: Optional[dict] = None,
                 data_root: str = '',
                 split: int = 0,
                 subset: str = 'train',
                 source: Optional[str] = None,
                 video_ext: str = '.mp4',
                 filename_tmpl: str = '{:05d}.jpg',
                 frame_start_index: int = 1,
                 modality: str = 'RGB',
                 clip_len: int = 16,
                 frame_interval: int = 1,
                 train_stride: Optional[int] = None,
                 test_stride: Optional[int] = None,
                 background_fraction: float = 0.0,
                 temporal_jitter: int = 0,
                 seed: int = 0,
                 test_mode: Optional[bool] = None,
                 check_files: bool = True,
                 on_bad_sample: str = 'error',
                 box_tolerance: float = 0.05,
                 max_nframes: int = DEFAULT_MAX_NFRAMES,
                 max_side: int = DEFAULT_MAX_SIDE,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        name = type(self).__name__
        if subset not in ('train', 'test'):
            raise ValueError(f"{name}: subset must be 'train' or 'test', got {subset!r}")
        source = self.DEFAULT_SOURCE if source is None else source
        if source not in SOURCES:
            raise ValueError(f'{name}: source must be one of {SOURCES}, got {source!r}')
        if not isinstance(split, int) or split < 0:
            raise ValueError(f'{name}: split must be a non-negative int, got {split!r}')
        if clip_len < 1 or frame_interval < 1:
            raise ValueError(
                f'{name}: clip_len and frame_interval must be >= 1, got {clip_len}, {frame_interval}')
        if not 0.0 <= background_fraction < 1.0:
            raise ValueError(f'{name}: background_fraction must be in [0, 1), got {background_fraction}')
        if temporal_jitter < 0:
            raise ValueError(f'{name}: temporal_jitter must be >= 0, got {temporal_jitter}')
        if on_bad_sample not in BAD_SAMPLE_MODES:
            raise ValueError(f'{name}: on_bad_sample must be one of {BAD_SAMPLE_MODES}, '
                             f'got {on_bad_sample!r}')
        span = span_length(clip_len, frame_interval)
        default_stride = max(1, span // 2)
        self.train_stride = int(default_stride if train_stride is None else train_stride)
        self.test_stride = int(default_stride if test_stride is None else test_stride)
        if self.train_stride < 1 or self.test_stride < 1:
            raise ValueError(f'{name}: strides must be >= 1, got train_stride={self.train_stride}, '
                             f'test_stride={self.test_stride}')
        self.split = split
        self.subset = subset
        self.source = source
        self.video_ext = video_ext
        self.filename_tmpl = filename_tmpl
        self.frame_start_index = int(frame_start_index)
        self.modality = modality
        self.clip_len = int(clip_len)
        self.frame_interval = int(frame_interval)
        self.span = span
        self.background_fraction = float(background_fraction)
        self.temporal_jitter = int(temporal_jitter)
        self.seed = seed
        self.check_files = check_files
        self.on_bad_sample = on_bad_sample
        # Bad clips found by this process (the load-time check in test mode, skips in training).
        self.bad_samples: List[dict] = []
        self._bad_videos: Dict[str, str] = {}  # video -> reason, for the skip mode
        self._pending_bad: List[dict] = []  # skips not yet reported through a served sample
        self._probed: set = set()  # video files already probed by _check_media
        self.box_tolerance = box_tolerance
        self.ann_limits = dict(max_nframes=int(max_nframes), max_side=int(max_side))
        self.videos: Dict[str, VideoTubes] = {}
        if data_prefix is None:
            data_prefix = dict(video='')
        if 'video' not in data_prefix:
            raise ValueError(f"{name}: data_prefix must be dict(video=DIR), got {data_prefix!r}")
        if test_mode is None:
            test_mode = subset == 'test'
        # Pipelines name mmaction transforms (DecordInit, FormatShape, ...): outside a runner (no default
        # scope set) build them in the mmaction scope so that the dataset also works on its own.
        scope = 'mmaction' if DefaultScope.get_current_instance() is None else None
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(
                ann_file=ann_file,
                metainfo=metainfo,
                data_root=data_root,
                data_prefix=data_prefix,
                pipeline=pipeline,
                test_mode=test_mode,
                **kwargs)

    # ------------------------------------------------------------------ loading
    def _set_classes(self, labels: List[str]):
        """Class names: the file's labels; a preset/metainfo list must agree in length (names: warning)."""
        expected = self._metainfo.get('classes')
        if expected is not None:
            expected = list(expected)
            if len(expected) != len(labels):
                raise AnnotationError(
                    f'Invalid tube annotation ({self.ann_file}): {type(self).__name__} expects '
                    f'{len(expected)} classes but the file has {len(labels)} labels: {labels}')
            if expected != labels:
                print_log(
                    f'{type(self).__name__}: class names of {self.ann_file} differ from the expected ones '
                    f'{expected}; using the names from the file: {labels}',
                    logger='current',
                    level=30)
        self._metainfo['classes'] = tuple(labels)

    def load_data_list(self) -> List[dict]:
        """Load the annotation file and build the clip list of the chosen split/subset."""
        ann = load_annotations(self.ann_file, box_tolerance=self.box_tolerance, **self.ann_limits)
        self._set_classes(ann['labels'])
        key = f'{self.subset}_videos'
        if self.split >= len(ann[key]):
            raise ValueError(f'{type(self).__name__}: split {self.split} requested but {self.ann_file} has '
                             f'{len(ann[key])} split(s)')
        video_names = ann[key][self.split]
        self.videos = {
            v: VideoTubes(ann['nframes'][v], ann['resolution'][v], ann['gttubes'].get(v, {}))
            for v in video_names
        }
        if self.test_mode:
            if self.on_bad_sample == 'skip':
                video_names = self._drop_bad_videos(video_names)
            return self._test_clips(video_names)
        return self._train_clips(video_names)

    def _drop_bad_videos(self, video_names: List[str]) -> List[str]:
        """Test mode with ``on_bad_sample='skip'``: check the media of every video, drop the bad ones."""
        good = []
        for video in video_names:
            path = self.media_path(video)
            nframes = self.videos[video].nframes
            try:
                self._check_media(path, np.arange(1, nframes + 1), video)
            except (OSError, ValueError) as err:
                self._record_bad(video, None, f'{type(err).__name__}: {err}', path)
                continue
            good.append(video)
        if self.bad_samples:
            print_log(
                f"{type(self).__name__}: on_bad_sample='skip': {len(self.bad_samples)} of {len(video_names)} "
                f'{self.subset} videos of {self.ann_file} are left out (their ground truth counts as '
                'missed): ' + '; '.join(f"{r['video']}: {r['error']}" for r in self.bad_samples[:5]),
                logger='current',
                level=30)
        return good

    def _clip_info(self, video: str, start: int, positive: bool) -> dict:
        return dict(
            video_id=video,
            clip_start=int(start),
            nframes=self.videos[video].nframes,
            positive=bool(positive))

    def _test_clips(self, video_names: List[str]) -> List[dict]:
        clips = []
        for video in video_names:
            tubes = self.videos[video]
            # the spans of the grid cover every frame (the model predicts at every frame of a span)
            for start in window_starts(tubes.nframes, self.span, self.test_stride):
                pos, valid, _ = window_span(start, self.clip_len, self.frame_interval, tubes.nframes)
                clips.append(self._clip_info(video, start, tubes.has_tube(pos, valid)))
        return clips

    def _train_clips(self, video_names: List[str]) -> List[dict]:
        positives, backgrounds = [], []
        for video in video_names:
            tubes = self.videos[video]
            for start in window_starts(tubes.nframes, self.span, self.train_stride):
                pos, valid, _ = window_span(start, self.clip_len, self.frame_interval, tubes.nframes)
                positive = tubes.has_tube(pos, valid)
                (positives if positive else backgrounds).append(self._clip_info(video, start, positive))
        num_bg = 0
        if self.background_fraction > 0 and backgrounds:
            wanted = int(round(self.background_fraction / (1 - self.background_fraction) * len(positives)))
            num_bg = min(len(backgrounds), wanted)
        chosen = []
        if num_bg:
            rng = np.random.default_rng(self.seed)
            chosen = [backgrounds[i] for i in sorted(rng.choice(len(backgrounds), num_bg, replace=False))]
        clips = positives + chosen
        if not clips:
            raise ValueError(
                f'{type(self).__name__}: no training clip in split {self.split} of {self.ann_file}: '
                'no window overlaps a tube and background_fraction is 0')
        return clips

    # ------------------------------------------------------------------ fetching
    def media_path(self, video: str) -> str:
        """Path of a video's file (``source='video'``) or frame folder (``source='frames'``)."""
        base = osp.join(self.data_prefix['video'], video)
        return base + self.video_ext if self.source == 'video' else base

    def _check_media(self, path: str, frame_numbers: np.ndarray, video: str):
        """Raise ``FileNotFoundError`` / ``MediaError`` (prefixed with the class name) if the media of a clip
        (1-based ``frame_numbers``) cannot be read. A video file is probed once (see :mod:`.media`)."""
        if not self.check_files or '://' in path:
            return
        try:
            if self.source == 'video':
                if path not in self._probed:
                    probe_video(path, self.videos[video].nframes,
                                f'nframes of video {video!r} in {self.ann_file}')
                    self._probed.add(path)
                return
            numbers = np.unique(frame_numbers) - 1 + self.frame_start_index
            check_frame_folder(path, numbers, self.filename_tmpl)
        except (OSError, ValueError) as err:
            raise type(err)(f'{type(self).__name__}: {err}') from err

    def _jittered_start(self, info: dict) -> int:
        start = info['clip_start']
        if self.test_mode or self.temporal_jitter == 0:
            return start
        tubes = self.videos[info['video_id']]
        last = max(0, tubes.nframes - self.span)
        shifted = int(
            np.clip(start + np.random.randint(-self.temporal_jitter, self.temporal_jitter + 1), 0, last))
        if info['positive'] and shifted != start:
            pos, valid, _ = window_span(shifted, self.clip_len, self.frame_interval, tubes.nframes)
            if not tubes.has_tube(pos, valid):
                return start
        return shifted

    def get_clip(self, idx: int) -> dict:
        """The pipeline input of clip ``idx``: media path, frame indices and clip ground truth.

        Returns:
            dict: ``video_id``, ``filename`` (video) or ``frame_dir`` + ``filename_tmpl`` + ``offset`` +
            ``modality`` (frames), ``frame_inds`` (T,) 0-based decoder indices of the sampled frames,
            ``frame_numbers`` (S,) 1-based video frame numbers of EVERY frame of the span, ``frame_valid``
            (S,), ``clip_len`` (T), ``num_clips`` (1), ``frame_interval`` (k), ``nframes``, ``ann_shape``
            (H, W) from the annotation, ``gt_tubes`` (n, S, 4), ``gt_tube_masks`` (n, S), ``gt_labels`` (n,),
            ``sample_idx``; ``S = (T - 1) * k + 1`` (see :func:`window_span`).
        """
        info = self.get_data_info(idx)
        video = info['video_id']
        tubes = self.videos[video]
        start = self._jittered_start(info)
        positions, frame_valid, sampled = window_span(start, self.clip_len, self.frame_interval,
                                                      tubes.nframes)
        gt_tubes, gt_masks, gt_labels = tubes.clip(positions, frame_valid)
        path = self.media_path(video)
        frame_numbers = positions + 1
        self._check_media(path, frame_numbers[sampled], video)
        results = dict(
            video_id=video,
            sample_idx=info['sample_idx'],
            frame_inds=positions[sampled],
            frame_numbers=frame_numbers,
            frame_valid=frame_valid,
            clip_len=self.clip_len,
            num_clips=1,
            frame_interval=self.frame_interval,
            nframes=tubes.nframes,
            ann_shape=tuple(tubes.resolution),
            gt_tubes=gt_tubes,
            gt_tube_masks=gt_masks,
            gt_labels=gt_labels)
        if self.source == 'video':
            results['filename'] = path
        else:
            results.update(
                frame_dir=path,
                filename_tmpl=self.filename_tmpl,
                offset=self.frame_start_index,
                modality=self.modality)
        return results

    def prepare_data(self, idx: int):
        """Run the pipeline on clip ``idx``; errors name the clip, video and frames.

        With ``on_bad_sample='skip'`` in training, a clip that fails returns None (mmengine's
        ``BaseDataset.__getitem__`` then draws another clip) and the skip is recorded (see the module
        docstring).
        """
        if self.on_bad_sample != 'skip' or self.test_mode:
            return self._load(idx)
        video = self.get_data_info(idx)['video_id']
        if video in self._bad_videos:
            self._record_bad(video, idx, self._bad_videos[video], self.media_path(video), log=False)
            return None
        try:
            data = self._load(idx)
        except Exception as err:  # anything a broken file can raise: skip it, never silently
            reason = f'{type(err).__name__}: {err}'
            self._bad_videos[video] = reason
            self._record_bad(video, idx, reason, self.media_path(video))
            return None
        if self._pending_bad and isinstance(data, dict) and hasattr(data.get('data_samples'), 'set_metainfo'):
            data['data_samples'].set_metainfo({BAD_SAMPLES_KEY: list(self._pending_bad)})
            self._pending_bad.clear()
        return data

    def _record_bad(self, video: str, idx: Optional[int], reason: str, path: str, log: bool = True) -> None:
        """Count a skipped clip (``idx``) or video (``idx=None``); log the first skip of each video."""
        record = dict(video=video, clip=idx, path=path, error=reason)
        self.bad_samples.append(record)
        self._pending_bad.append(record)
        if log and idx is not None:
            print_log(
                f"{type(self).__name__}: on_bad_sample='skip': skipping video {video!r} ({path}): {reason}",
                logger='current',
                level=30)

    def _load(self, idx: int):
        """Clip ``idx`` through the pipeline; pipeline errors are re-raised naming the clip, video and
        file."""
        results = self.get_clip(idx)
        where = (f"clip {idx} of {type(self).__name__} (video {results['video_id']!r}, frames "
                 f"{int(results['frame_numbers'][0])}..{int(results['frame_numbers'][-1])}, "
                 f"{results.get('filename', results.get('frame_dir'))})")
        try:
            return self.pipeline(results)
        except Exception as err:
            raise RuntimeError(f'Failed to load {where}: {type(err).__name__}: {err}') from err

    # ------------------------------------------------------------------ helpers
    def video_clip_indices(self) -> Dict[str, List[int]]:
        """Clip indices of every video, in clip order (useful for evaluation and tests)."""
        out: Dict[str, List[int]] = {}
        for idx in range(len(self)):
            out.setdefault(self.get_data_info(idx)['video_id'], []).append(idx)
        return out
