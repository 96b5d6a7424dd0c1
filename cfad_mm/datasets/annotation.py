"""Loading and validation of ACT-style tube annotation pickles.

The format (used by ACT, MOC, YOWO and mmaction2's data-preparation READMEs for UCF101-24, JHMDB-21 and
UCFSports) is one pickle holding a dict::

    {'labels': [str, ...],                                   # class names, index = label id
     'gttubes': {video: {label_index: [ndarray (n_i, 5)]}},  # rows (frame 1-based, x1, y1, x2, y2) in pixels
     'nframes': {video: int},
     'resolution': {video: (height, width)},
     'train_videos': [[video, ...], ...],                    # one list per split
     'test_videos': [[video, ...], ...]}

The published files are Python-2 pickles, so they are read with ``encoding='latin1'``.

:func:`load_annotations` validates everything a dataset relies on and raises :class:`AnnotationError` (a
``ValueError``) naming the file and the offending video. The returned dict has the same layout, normalised:
tube arrays are ``float32`` ``(n, 5)`` sorted by frame number, label keys are ``int``, ``nframes`` values are
``int``, resolutions are ``(int, int)`` tuples, split lists are lists of ``str``.

Box tolerance: annotated boxes of the real datasets sometimes cross the image border by a few pixels. A box is
accepted when every coordinate lies within ``max(box_tolerance_px, box_tolerance * side)`` pixels of the image
(defaults: 8 px or 5 % of the side, whichever is larger) AND the box overlaps the image with a positive area.
Anything farther away is almost certainly a wrong resolution or swapped coordinates and raises.
"""
import os.path as osp
import pickle
from typing import Dict, List, Optional

import numpy as np

REQUIRED_KEYS = ('labels', 'gttubes', 'nframes', 'resolution', 'train_videos', 'test_videos')


class AnnotationError(ValueError):
    """Raised for a malformed tube annotation file. The message names the file and the video."""


def _fail(ann_file: str, msg: str, video: Optional[str] = None):
    where = f'{ann_file}' if video is None else f'{ann_file}, video {video!r}'
    raise AnnotationError(f'Invalid tube annotation ({where}): {msg}')


def read_pickle(ann_file: str) -> dict:
    """Read an annotation pickle (Python 2 or 3) without validating it.

    Args:
        ann_file (str): Path of the pickle.

    Returns:
        dict: The raw content.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Tube annotation file not found: {ann_file}')
    with open(ann_file, 'rb') as f:
        try:
            data = pickle.load(f, encoding='latin1')
        except Exception as err:  # a truncated or non-pickle file
            raise AnnotationError(f'Invalid tube annotation ({ann_file}): cannot unpickle: {err}') from err
    return data


def _as_str(name, ann_file: str, what: str) -> str:
    if isinstance(name, bytes):  # Python-2 byte strings loaded without latin1 decoding
        name = name.decode('latin1')
    if not isinstance(name, str):
        _fail(ann_file, f'{what} must be a string, got {type(name).__name__} {name!r}')
    return name


def _validate_tube(tube, ann_file: str, video: str, label: int, idx: int, nframes: int, height: int,
                   width: int, tol_x: float, tol_y: float) -> np.ndarray:
    where = f'tube {idx} of label {label}'
    try:
        arr = np.asarray(tube, dtype=np.float64)
    except (TypeError, ValueError) as err:
        _fail(ann_file, f'{where} is not a numeric array: {err}', video)
    if arr.ndim != 2 or arr.shape[1] != 5:
        _fail(ann_file, f'{where} must have shape (n, 5) rows (frame, x1, y1, x2, y2), got {arr.shape}',
              video)
    if arr.shape[0] == 0:
        _fail(ann_file, f'{where} is empty (no annotated frame)', video)
    if not np.all(np.isfinite(arr)):
        bad = int(np.nonzero(~np.all(np.isfinite(arr), axis=1))[0][0])
        _fail(ann_file, f'{where} has a NaN/inf value in row {bad}: {arr[bad].tolist()}', video)
    frames = arr[:, 0]
    if np.any(np.abs(frames - np.round(frames)) > 1e-6):
        _fail(ann_file, f'{where} has non-integer frame numbers', video)
    frames = np.round(frames).astype(np.int64)
    out_of_range = (frames < 1) | (frames > nframes)
    if np.any(out_of_range):
        bad = frames[out_of_range]
        _fail(ann_file, f'{where} has frame numbers outside 1..{nframes} (nframes): {bad[:5].tolist()}',
              video)
    if len(np.unique(frames)) != len(frames):
        uniq, counts = np.unique(frames, return_counts=True)
        _fail(ann_file, f'{where} repeats frame numbers {uniq[counts > 1][:5].tolist()}', video)
    x1, y1, x2, y2 = arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4]
    degenerate = (x2 <= x1) | (y2 <= y1)
    if np.any(degenerate):
        row = int(np.nonzero(degenerate)[0][0])
        _fail(
            ann_file, f'{where} has a box with x2 <= x1 or y2 <= y1 at frame {frames[row]}: '
            f'{arr[row, 1:].tolist()}', video)
    outside = ((x1 < -tol_x) | (y1 < -tol_y) | (x2 > width + tol_x) | (y2 > height + tol_y)
               | (x1 >= width) | (y1 >= height) | (x2 <= 0) | (y2 <= 0))
    if np.any(outside):
        row = int(np.nonzero(outside)[0][0])
        _fail(
            ann_file, f'{where} has a box outside the {width}x{height} (WxH) frame beyond the tolerance '
            f'({tol_x:.1f}, {tol_y:.1f}) px at frame {frames[row]}: {arr[row, 1:].tolist()}', video)
    order = np.argsort(frames, kind='stable')
    return arr[order].astype(np.float32)


def validate_annotations(data: dict,
                         ann_file: str = '<memory>',
                         box_tolerance: float = 0.05,
                         box_tolerance_px: float = 8.0) -> dict:
    """Validate an annotation dict and return a normalised copy.

    Args:
        data (dict): The raw annotation dict (layout in the module docstring).
        ann_file (str): Name used in error messages. Defaults to ``'<memory>'``.
        box_tolerance (float): Allowed distance of a box coordinate outside the image, as a fraction of the
            image side. Defaults to 0.05.
        box_tolerance_px (float): Minimum allowed distance in pixels (the larger of the two applies).
            Defaults to 8.0.

    Returns:
        dict: The normalised annotation dict.

    Raises:
        AnnotationError: On the first problem found, naming ``ann_file`` and the video.
    """
    if not isinstance(data, dict):
        _fail(ann_file, f'the pickle must hold a dict, got {type(data).__name__}')
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        _fail(ann_file, f'missing keys {missing} (required: {list(REQUIRED_KEYS)})')

    labels = data['labels']
    if not isinstance(labels, (list, tuple)) or len(labels) == 0:
        _fail(ann_file, f"'labels' must be a non-empty list of class names, got {labels!r:.80}")
    labels = [_as_str(name, ann_file, 'a class name') for name in labels]
    if len(set(labels)) != len(labels):
        _fail(ann_file, f"'labels' has duplicate class names: {labels}")
    num_classes = len(labels)

    for key in ('gttubes', 'nframes', 'resolution'):
        if not isinstance(data[key], dict):
            _fail(ann_file, f"'{key}' must be a dict keyed by video name, got {type(data[key]).__name__}")

    nframes: Dict[str, int] = {}
    for video, n in data['nframes'].items():
        video = _as_str(video, ann_file, 'a video name')
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            _fail(ann_file, f'nframes must be a positive integer, got {n!r}', video)
        nframes[video] = int(n)

    resolution: Dict[str, tuple] = {}
    for video, res in data['resolution'].items():
        video = _as_str(video, ann_file, 'a video name')
        try:
            height, width = (int(v) for v in res)
            ok = all(float(v) == int(v) for v in res)
        except (TypeError, ValueError):
            ok = False
        if not ok or height < 1 or width < 1:
            _fail(ann_file, f'resolution must be a (height, width) pair of positive integers, got {res!r}',
                  video)
        resolution[video] = (height, width)

    gttubes: Dict[str, Dict[int, List[np.ndarray]]] = {}
    for video, per_label in data['gttubes'].items():
        video = _as_str(video, ann_file, 'a video name')
        if video not in nframes:
            _fail(ann_file, "has tubes but no entry in 'nframes'", video)
        if video not in resolution:
            _fail(ann_file, "has tubes but no entry in 'resolution'", video)
        if not isinstance(per_label, dict):
            _fail(
                ann_file, f'gttubes entry must be a dict label_index -> list of tubes, got '
                f'{type(per_label).__name__}', video)
        height, width = resolution[video]
        tol_x = max(box_tolerance_px, box_tolerance * width)
        tol_y = max(box_tolerance_px, box_tolerance * height)
        tubes_of_video = {}
        for label, tubes in per_label.items():
            if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
                _fail(ann_file, f'label keys must be integers, got {label!r}', video)
            label = int(label)
            if not 0 <= label < num_classes:
                _fail(ann_file, f'label index {label} out of range 0..{num_classes - 1} '
                      f'({num_classes} labels)', video)
            if isinstance(tubes, np.ndarray) and tubes.ndim == 2:
                tubes = [tubes]  # tolerate a bare array for a single tube
            if not isinstance(tubes, (list, tuple)):
                _fail(ann_file,
                      f'tubes of label {label} must be a list of arrays, got {type(tubes).__name__}', video)
            tubes_of_video[label] = [
                _validate_tube(tube, ann_file, video, label, i, nframes[video], height, width, tol_x, tol_y)
                for i, tube in enumerate(tubes)
            ]
        gttubes[video] = tubes_of_video

    splits = {}
    for key in ('train_videos', 'test_videos'):
        value = data[key]
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            _fail(ann_file,
                  f"'{key}' must be a non-empty list of splits (lists of video names), got {value!r:.80}")
        lists = []
        for split_idx, videos in enumerate(value):
            if not isinstance(videos, (list, tuple)):
                _fail(ann_file,
                      f"'{key}'[{split_idx}] must be a list of video names, got {type(videos).__name__}")
            if len(videos) == 0:
                _fail(ann_file, f"split {split_idx} of '{key}' is empty")
            names = [_as_str(v, ann_file, f"an entry of '{key}'[{split_idx}]") for v in videos]
            for video in names:
                if video not in nframes:
                    _fail(ann_file, f"is in '{key}'[{split_idx}] but has no entry in 'nframes'", video)
                if video not in resolution:
                    _fail(ann_file, f"is in '{key}'[{split_idx}] but has no entry in 'resolution'", video)
            if len(set(names)) != len(names):
                dup = sorted({v for v in names if names.count(v) > 1})
                _fail(ann_file, f"'{key}'[{split_idx}] lists the video twice", dup[0])
            lists.append(names)
        splits[key] = lists
    if len(splits['train_videos']) != len(splits['test_videos']):
        _fail(
            ann_file, f"'train_videos' has {len(splits['train_videos'])} splits but 'test_videos' has "
            f"{len(splits['test_videos'])}")

    return dict(
        labels=labels,
        gttubes=gttubes,
        nframes=nframes,
        resolution=resolution,
        train_videos=splits['train_videos'],
        test_videos=splits['test_videos'])


def load_annotations(ann_file: str, box_tolerance: float = 0.05, box_tolerance_px: float = 8.0) -> dict:
    """Load, validate and normalise a tube annotation pickle.

    Args:
        ann_file (str): Path of the pickle (Python 2 or 3; read with ``encoding='latin1'``).
        box_tolerance (float): See :func:`validate_annotations`. Defaults to 0.05.
        box_tolerance_px (float): See :func:`validate_annotations`. Defaults to 8.0.

    Returns:
        dict: ``labels``, ``gttubes``, ``nframes``, ``resolution``, ``train_videos``, ``test_videos``
        (layout in the module docstring).

    Raises:
        FileNotFoundError: If ``ann_file`` does not exist.
        AnnotationError: If the content is malformed (the message names the file and the video).
    """
    return validate_annotations(read_pickle(ann_file), ann_file, box_tolerance, box_tolerance_px)


def tube_statistics(ann: dict) -> dict:
    """Summary numbers of a validated annotation dict (used by ``tools/data/convert_annotations.py``).

    Args:
        ann (dict): The output of :func:`load_annotations`.

    Returns:
        dict: ``num_videos``, ``num_classes``, ``splits`` (per split: number of train / test videos),
        ``tubes_per_class`` {class name: count}, ``tube_length`` {min, mean, max} in annotated frames,
        ``nframes`` {min, mean, max}, ``resolutions`` {"HxW": number of videos}, ``videos_without_tubes``.
    """
    labels = ann['labels']
    tubes_per_class = {name: 0 for name in labels}
    lengths = []
    for per_label in ann['gttubes'].values():
        for label, tubes in per_label.items():
            tubes_per_class[labels[label]] += len(tubes)
            lengths.extend(len(t) for t in tubes)
    resolutions: Dict[str, int] = {}
    for height, width in ann['resolution'].values():
        key = f'{height}x{width}'
        resolutions[key] = resolutions.get(key, 0) + 1
    nframes = np.array(list(ann['nframes'].values()), dtype=np.float64)
    no_tubes = sorted(v for v in ann['nframes']
                      if sum(len(t) for t in ann['gttubes'].get(v, {}).values()) == 0)

    def _summary(values):
        if len(values) == 0:
            return dict(min=0, mean=0.0, max=0)
        values = np.asarray(values, dtype=np.float64)
        return dict(min=int(values.min()), mean=round(float(values.mean()), 2), max=int(values.max()))

    return dict(
        num_videos=len(ann['nframes']),
        num_classes=len(labels),
        splits=[dict(train=len(tr), test=len(te)) for tr, te in zip(ann['train_videos'], ann['test_videos'])],
        tubes_per_class=tubes_per_class,
        num_tubes=int(sum(tubes_per_class.values())),
        tube_length=_summary(lengths),
        nframes=_summary(nframes),
        resolutions=resolutions,
        videos_without_tubes=no_tubes)
