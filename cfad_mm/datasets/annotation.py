"""Loading and validation of ACT-style tube annotation files (pickle, or the JSON copy written by
``tools/data/convert_annotations.py --json``).

The format (used by ACT, MOC, YOWO and mmaction2's data-preparation READMEs for UCF101-24, JHMDB-21 and
UCFSports) is one pickle holding a dict::

    {'labels': [str, ...],                                   # class names, index = label id
     'gttubes': {video: {label_index: [ndarray (n_i, 5)]}},  # rows (frame 1-based, x1, y1, x2, y2) in pixels
     'nframes': {video: int},
     'resolution': {video: (height, width)},
     'train_videos': [[video, ...], ...],                    # one list per split
     'test_videos': [[video, ...], ...]}

File kind: a file whose name ends with ``.json`` (any case) is read as JSON, anything else as a pickle. The
JSON copy has the same keys; label keys are strings (``"0"``, ``"1"``, ...), tubes are lists of
``[frame, x1, y1, x2, y2]`` rows, resolutions ``[height, width]`` lists. :func:`to_json_dict` writes every
coordinate with all the digits of its ``float32`` value, so a pickle and its JSON copy load to equal arrays.
JSON objects with a repeated key are refused (``json`` would silently keep the last one).

Pickles are untrusted input: they are read with a restricted unpickler that only rebuilds what the format
needs (lists, dicts, tuples, sets, strings, numbers, ``collections.OrderedDict`` / ``defaultdict`` and numpy
arrays, dtypes and scalars; see :data:`SAFE_PICKLE_GLOBALS`). Any other global (a function or class a
crafted pickle would call to run code while it is loaded) is refused with an :class:`AnnotationError` naming
it, before it is called.

The published files are Python-2 pickles, so they are read with ``encoding='latin1'`` (Python-2 ``str`` are
bytes; latin1 maps each byte to one character and never fails). A Python-2 ``str`` holding UTF-8 text (e.g. a
video named ``'vidéo'``) therefore comes out garbled (``'vidÃ©o'``). Rule used to repair the names (class
names, and video names in ``gttubes``, ``nframes``, ``resolution`` and the split lists), applied only to
pickles of protocol 0-2 (Python 2 writes no other; protocols 3-5 come from Python 3, whose ``str`` are stored
as text): a non-ASCII name whose characters are all latin1 and whose latin1 bytes are valid UTF-8 is replaced
by the decoded text -- in a protocol-2 pickle only if these bytes are stored in the file as a Python-2 string
(``SHORT_BINSTRING`` / ``BINSTRING`` opcode; Python 3 stores its ``str`` as ``BINUNICODE``), in protocol 0-1
pickles (no header) on the name rule alone. A genuine Python-3 ``str`` (``'café'``, ``'日本'``) is left
unchanged, and so is a latin1 Python-2 name (``b'caf\\xe9'`` -> ``'café'``, not valid UTF-8). A repair that
would make two names equal is not made.

:func:`load_annotations` validates everything a dataset relies on and raises :class:`AnnotationError` (a
``ValueError``) naming the file and the offending video. The returned dict has the same layout, normalised:
tube arrays are ``float32`` ``(n, 5)`` sorted by frame number, label keys are ``int``, ``nframes`` values are
``int``, resolutions are ``(int, int)`` tuples, split lists are lists of ``str``.

Box tolerance: annotated boxes of the real datasets sometimes cross the image border by a few pixels. A box is
accepted when every coordinate lies within ``max(box_tolerance_px, box_tolerance * side)`` pixels of the image
(defaults: 8 px or 5 % of the side, whichever is larger) AND the box overlaps the image with a positive area.
Anything farther away is almost certainly a wrong resolution or swapped coordinates and raises.

Size limits: ``nframes`` above ``max_nframes`` (default 1,000,000) or a resolution side above ``max_side``
(default 16384 px) raises instead of failing later with a bare out-of-memory error while the dataset allocates
its per-frame tube arrays; both are keyword arguments of :func:`load_annotations` and
:func:`validate_annotations`.
"""
import codecs
import io
import json
import os.path as osp
import pickle
import re
from collections import Counter
from typing import Dict, List, Optional

import numpy as np

REQUIRED_KEYS = ('labels', 'gttubes', 'nframes', 'resolution', 'train_videos', 'test_videos')
DEFAULT_MAX_NFRAMES = 1_000_000
DEFAULT_MAX_SIDE = 16384

# The globals an ACT-format annotation pickle may reference (module, name). Python-2 names (``__builtin__``,
# ``copy_reg``) are mapped to their Python-3 modules before the look-up, as ``pickle`` itself does.
SAFE_PICKLE_GLOBALS = frozenset([
    # containers and scalars that protocols 0-2 rebuild through a global (protocol 4 has opcodes for them)
    ('builtins', 'set'),
    ('builtins', 'frozenset'),
    ('builtins', 'list'),
    ('builtins', 'dict'),
    ('builtins', 'tuple'),
    ('builtins', 'str'),
    ('builtins', 'bytes'),
    ('builtins', 'bytearray'),
    ('builtins', 'int'),
    ('builtins', 'float'),
    ('builtins', 'complex'),
    ('builtins', 'bool'),
    ('collections', 'OrderedDict'),
    ('collections', 'defaultdict'),
    # bytes in protocols 0-2 (Python 3 writes _codecs.encode(text, 'latin1')); see _safe_codecs_encode
    ('_codecs', 'encode'),
    # numpy arrays, dtypes and scalars (numpy 1.x and 2.x module paths; _frombuffer for protocol 5)
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'),
])


class AnnotationError(ValueError):
    """Raised for a malformed tube annotation file. The message names the file and the video."""


def _fail(ann_file: str, msg: str, video: Optional[str] = None):
    where = f'{ann_file}' if video is None else f'{ann_file}, video {video!r}'
    raise AnnotationError(f'Invalid tube annotation ({where}): {msg}')


def _safe_codecs_encode(obj, encoding: str = 'utf-8', errors: str = 'strict'):
    """``codecs.encode`` limited to the text encodings pickles use for ``bytes`` (latin1, UTF-8)."""
    name = encoding.lower().replace('-', '').replace('_', '') if isinstance(encoding, str) else None
    if not isinstance(obj, str) or name not in ('latin1', 'iso88591', 'utf8'):
        raise pickle.UnpicklingError(f'_codecs.encode({type(obj).__name__}, {encoding!r}) is not allowed')
    return codecs.encode(obj, encoding, errors)


class _AnnotationUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds the globals of :data:`SAFE_PICKLE_GLOBALS` (see the module doc)."""

    def __init__(self, file, ann_file: str):
        super().__init__(file, encoding='latin1')
        self.ann_file = ann_file

    def find_class(self, module: str, name: str):
        import _compat_pickle
        key = _compat_pickle.NAME_MAPPING.get((module, name))
        if key is None:
            key = (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        if key not in SAFE_PICKLE_GLOBALS:
            raise AnnotationError(
                f'Invalid tube annotation ({self.ann_file}): refused to unpickle the global {module}.{name}: '
                'an annotation pickle holds only lists, dicts, strings, numbers and numpy arrays, so this '
                'file is not one or was crafted to run code when loaded; the global was not called')
        if key == ('_codecs', 'encode'):
            return _safe_codecs_encode
        return super().find_class(*key)


def _pickle_protocol(payload: bytes) -> int:
    """Protocol of a pickle from its ``PROTO`` header (protocols 2-5); 0 for protocols 0 and 1 (no header)."""
    if len(payload) >= 2 and payload[:1] == pickle.PROTO:
        return payload[1]
    return 0


def _py2_strings(payload: bytes, candidates: set) -> set:
    """The byte strings of ``candidates`` stored in ``payload`` as Python-2 strings (one pass over the file).

    A Python-2 ``str`` is written ``SHORT_BINSTRING <1-byte length> <bytes>`` (``BINSTRING <4-byte length>``
    from 256 bytes on); Python 3 writes its ``str`` with the ``*BINUNICODE`` opcodes, its ``bytes`` otherwise.
    """
    found = set()
    short = {c for c in candidates if len(c) < 256}
    lengths = {len(c) for c in short}
    pos = payload.find(pickle.SHORT_BINSTRING)
    while pos != -1 and len(found) < len(short):
        n = payload[pos + 1] if pos + 1 < len(payload) else -1
        if n in lengths and payload[pos + 2:pos + 2 + n] in short:
            found.add(payload[pos + 2:pos + 2 + n])
        pos = payload.find(pickle.SHORT_BINSTRING, pos + 1)
    for raw in candidates - short:
        if pickle.BINSTRING + len(raw).to_bytes(4, 'little') + raw in payload:
            found.add(raw)
    return found


def _utf8_repairs(names: list, payload: bytes, protocol: int) -> Dict[str, str]:
    """{garbled name: repaired name} for the names of a protocol 0-2 pickle (rule in the module docstring)."""
    candidates = {}
    for name in set(n for n in names if isinstance(n, str)):
        if name.isascii():
            continue
        try:
            raw = name.encode('latin1')
            candidates[raw] = (name, raw.decode('utf-8'))
        except UnicodeError:  # not latin1 (a Python-3 str) or not UTF-8 (a latin1 Python-2 str)
            continue
    if not candidates:
        return {}
    if protocol == 2:  # protocols 0 and 1 have no header telling them apart: the name rule alone decides
        stored = _py2_strings(payload, set(candidates))
        candidates = {raw: pair for raw, pair in candidates.items() if raw in stored}
    targets = Counter(fixed for _, fixed in candidates.values())
    existing = set(n for n in names if isinstance(n, str))
    # never merge two names: skip a repair whose result already exists or that two names would share
    return {
        name: fixed
        for name, fixed in candidates.values() if fixed not in existing and targets[fixed] == 1
    }


def _repair_py2_utf8_names(data, payload: bytes, protocol: int):
    """Repair UTF-8 names garbled by the latin1 decoding of a Python-2 pickle (rule: module docstring)."""
    if protocol > 2 or not isinstance(data, dict):
        return data
    names = []
    lists = [data.get('labels')] + [
        s for k in ('train_videos', 'test_videos') if isinstance(data.get(k), (list, tuple)) for s in data[k]
    ]
    for seq in lists:
        if isinstance(seq, (list, tuple)):
            names.extend(seq)
    dicts = [k for k in ('gttubes', 'nframes', 'resolution') if isinstance(data.get(k), dict)]
    for key in dicts:
        names.extend(data[key])
    repairs = _utf8_repairs(names, payload, protocol)
    if not repairs:
        return data

    def fix(name):
        return repairs.get(name, name) if isinstance(name, str) else name

    data = dict(data)
    for key in dicts:
        data[key] = {fix(k): v for k, v in data[key].items()}
    if isinstance(data.get('labels'), (list, tuple)):
        data['labels'] = [fix(n) for n in data['labels']]
    for key in ('train_videos', 'test_videos'):
        if isinstance(data.get(key), (list, tuple)):
            data[key] = [[fix(n) for n in s] if isinstance(s, (list, tuple)) else s for s in data[key]]
    return data


def read_pickle(ann_file: str) -> dict:
    """Read an annotation pickle (Python 2 or 3) safely, without validating it.

    Only the globals of :data:`SAFE_PICKLE_GLOBALS` are rebuilt; Python-2 strings are decoded as latin1 and
    UTF-8 names garbled by that are repaired (rule in the module docstring).

    Args:
        ann_file (str): Path of the pickle.

    Returns:
        dict: The raw content.

    Raises:
        FileNotFoundError: If ``ann_file`` does not exist.
        AnnotationError: If the file cannot be unpickled or references a global outside the allowed set.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Tube annotation file not found: {ann_file}')
    with open(ann_file, 'rb') as f:
        payload = f.read()
    try:
        data = _AnnotationUnpickler(io.BytesIO(payload), ann_file).load()
    except AnnotationError:
        raise
    except Exception as err:  # a truncated or non-pickle file
        hint = ''
        if payload.lstrip()[:1] == b'{':
            hint = ' (the file looks like JSON: it is read as JSON only if its name ends with .json)'
        raise AnnotationError(f'Invalid tube annotation ({ann_file}): cannot unpickle: {err}{hint}') from err
    return _repair_py2_utf8_names(data, payload, _pickle_protocol(payload))


def _json_object(ann_file: str):
    """``object_pairs_hook`` of :func:`json.load` that refuses repeated keys (json would keep the last)."""

    def hook(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                _fail(ann_file, f'a JSON object has the key {key!r} twice (one of the values would be lost)')
            out[key] = value
        return out

    return hook


def from_json_dict(data, ann_file: str = '<memory>') -> dict:
    """Turn the content of a JSON annotation copy back into the pickle layout (not validated).

    Label keys ``"0"``, ``"1"`` ... become ``int``, resolutions become tuples; tubes stay lists of rows (the
    validation turns them into ``float32`` arrays). Anything unexpected is passed on as it is, for
    :func:`validate_annotations` to report.

    Args:
        data: The parsed JSON.
        ann_file (str): Name used in error messages. Defaults to ``'<memory>'``.

    Returns:
        dict: The annotation dict in the pickle layout.

    Raises:
        AnnotationError: If a label key is not a decimal integer or two keys give the same label.
    """
    if not isinstance(data, dict):
        _fail(ann_file, f'the JSON file must hold an object (dict), got {type(data).__name__}')
    out = dict(data)
    if isinstance(data.get('gttubes'), dict):
        gttubes = {}
        for video, per_label in data['gttubes'].items():
            if isinstance(per_label, dict):
                converted, keys = {}, {}
                for key, tubes in per_label.items():
                    if not (isinstance(key, str) and re.fullmatch(r'-?[0-9]+', key)):
                        _fail(ann_file,
                              f'label keys must be integers written as strings ("0", "1", ...), got {key!r}',
                              video)
                    label = int(key)
                    if label in converted:
                        _fail(ann_file, f'label keys {keys[label]!r} and {key!r} are the same label {label}',
                              video)
                    converted[label], keys[label] = tubes, key
                per_label = converted
            gttubes[video] = per_label
        out['gttubes'] = gttubes
    if isinstance(data.get('resolution'), dict):
        out['resolution'] = {
            video: tuple(res) if isinstance(res, list) else res
            for video, res in data['resolution'].items()
        }
    return out


def to_json_dict(ann: dict) -> dict:
    """A JSON-serialisable copy of a validated annotation dict (layout in the module docstring).

    Coordinates are written as the exact decimal value of their ``float32`` (Python's ``repr`` of the float),
    so that :func:`load_annotations` of the JSON copy gives arrays equal to those of the original.

    Args:
        ann (dict): The output of :func:`load_annotations` / :func:`validate_annotations`.

    Returns:
        dict: Label keys as strings, tubes as lists of ``[frame, x1, y1, x2, y2]`` rows (frame an ``int``),
        resolutions as ``[height, width]``.
    """
    gttubes = {}
    for video, per_label in ann['gttubes'].items():
        gttubes[video] = {
            str(label): [[[int(row[0])] + row[1:] for row in np.asarray(tube).tolist()] for tube in tubes]
            for label, tubes in per_label.items()
        }
    return dict(
        labels=list(ann['labels']),
        gttubes=gttubes,
        nframes={
            v: int(n)
            for v, n in ann['nframes'].items()
        },
        resolution={
            v: [int(h), int(w)]
            for v, (h, w) in ann['resolution'].items()
        },
        train_videos=[list(s) for s in ann['train_videos']],
        test_videos=[list(s) for s in ann['test_videos']])


def read_json(ann_file: str) -> dict:
    """Read a JSON annotation copy (UTF-8) into the pickle layout, without validating it.

    Args:
        ann_file (str): Path of the JSON file.

    Returns:
        dict: The raw content in the pickle layout (see :func:`from_json_dict`).

    Raises:
        FileNotFoundError: If ``ann_file`` does not exist.
        AnnotationError: If the file is not valid UTF-8 JSON, repeats a key, or has a non-integer label key.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Tube annotation file not found: {ann_file}')
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f, object_pairs_hook=_json_object(ann_file))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AnnotationError(f'Invalid tube annotation ({ann_file}): cannot parse JSON: {err}') from err
    return from_json_dict(data, ann_file)


def read_annotation_file(ann_file: str) -> dict:
    """Read a tube annotation file without validating it: JSON if the name ends with ``.json``, else a pickle.

    Args:
        ann_file (str): Path of the file.

    Returns:
        dict: The raw content in the pickle layout.
    """
    if str(ann_file).lower().endswith('.json'):
        return read_json(ann_file)
    return read_pickle(ann_file)


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
    outside = boxes_outside_frame(arr[:, 1:], height, width, tol_x, tol_y)
    if np.any(outside):
        row = int(np.nonzero(outside)[0][0])
        _fail(
            ann_file, f'{where} has a box outside the {width}x{height} (WxH) frame beyond the tolerance '
            f'({tol_x:.1f}, {tol_y:.1f}) px at frame {frames[row]}: {arr[row, 1:].tolist()}', video)
    order = np.argsort(frames, kind='stable')
    return arr[order].astype(np.float32)


def box_tolerances(height: int, width: int, box_tolerance: float = 0.05,
                   box_tolerance_px: float = 8.0) -> tuple:
    """``(tol_x, tol_y)``: how far (pixels) a box coordinate may lie outside a ``width x height`` frame: the
    larger of ``box_tolerance_px`` and ``box_tolerance`` times the side (the module docstring explains
    why)."""
    return max(box_tolerance_px, box_tolerance * width), max(box_tolerance_px, box_tolerance * height)


def boxes_outside_frame(boxes, height: int, width: int, tol_x: float, tol_y: float) -> np.ndarray:
    """Which boxes ``(n, 4)`` ``(x1, y1, x2, y2)`` lie outside the frame: a coordinate beyond the tolerance,
    or no positive overlap with the frame. The one rule of :func:`validate_annotations` and the annotation
    importers.

    Returns:
        np.ndarray: bool ``(n,)``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return ((x1 < -tol_x) | (y1 < -tol_y) | (x2 > width + tol_x) | (y2 > height + tol_y)
            | (x1 >= width) | (y1 >= height) | (x2 <= 0) | (y2 <= 0))


def validate_annotations(data: dict,
                         ann_file: str = '<memory>',
                         box_tolerance: float = 0.05,
                         box_tolerance_px: float = 8.0,
                         max_nframes: int = DEFAULT_MAX_NFRAMES,
                         max_side: int = DEFAULT_MAX_SIDE) -> dict:
    """Validate an annotation dict and return a normalised copy.

    Args:
        data (dict): The raw annotation dict (layout in the module docstring).
        ann_file (str): Name used in error messages. Defaults to ``'<memory>'``.
        box_tolerance (float): Allowed distance of a box coordinate outside the image, as a fraction of the
            image side. Defaults to 0.05.
        box_tolerance_px (float): Minimum allowed distance in pixels (the larger of the two applies).
            Defaults to 8.0.
        max_nframes (int): Largest accepted ``nframes`` of a video; a larger value is almost certainly a
            corrupt file (the dataset allocates per-frame arrays for each tube). Defaults to 1,000,000.
        max_side (int): Largest accepted resolution height or width in pixels. Defaults to 16384.

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
        if n > max_nframes:
            _fail(
                ann_file, f'nframes {int(n)} exceeds the limit max_nframes={max_nframes}; if the video '
                'really has that many frames, raise the limit (max_nframes=... of load_annotations / '
                'validate_annotations, --max-nframes of tools/data/convert_annotations.py)', video)
        nframes[video] = int(n)

    resolution: Dict[str, tuple] = {}
    for video, res in data['resolution'].items():
        video = _as_str(video, ann_file, 'a video name')
        try:
            height, width = (int(v) for v in res)
            ok = all(float(v) == int(v) for v in res)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok or height < 1 or width < 1:
            _fail(ann_file, f'resolution must be a (height, width) pair of positive integers, got {res!r}',
                  video)
        if max(height, width) > max_side:
            field, value = ('height', height) if height > max_side else ('width', width)
            _fail(
                ann_file, f'resolution {field} {value} px (HxW {res!r}) exceeds the limit '
                f'max_side={max_side}; if the frames really are that large, raise the limit (max_side=... of '
                'load_annotations / validate_annotations, --max-side of tools/data/convert_annotations.py)',
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
        tol_x, tol_y = box_tolerances(height, width, box_tolerance, box_tolerance_px)
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


def load_annotations(ann_file: str,
                     box_tolerance: float = 0.05,
                     box_tolerance_px: float = 8.0,
                     max_nframes: int = DEFAULT_MAX_NFRAMES,
                     max_side: int = DEFAULT_MAX_SIDE) -> dict:
    """Load, validate and normalise a tube annotation file.

    Args:
        ann_file (str): Path of the pickle (Python 2 or 3; read with ``encoding='latin1'`` by a restricted
            unpickler) or, if the name ends with ``.json``, of its JSON copy (see the module docstring).
        box_tolerance (float): See :func:`validate_annotations`. Defaults to 0.05.
        box_tolerance_px (float): See :func:`validate_annotations`. Defaults to 8.0.
        max_nframes (int): See :func:`validate_annotations`. Defaults to 1,000,000.
        max_side (int): See :func:`validate_annotations`. Defaults to 16384.

    Returns:
        dict: ``labels``, ``gttubes``, ``nframes``, ``resolution``, ``train_videos``, ``test_videos``
        (layout in the module docstring).

    Raises:
        FileNotFoundError: If ``ann_file`` does not exist.
        AnnotationError: If the content is malformed (the message names the file and the video), exceeds the
            size limits, or the pickle references a global other than the allowed containers, numbers and
            numpy arrays.
    """
    return validate_annotations(
        read_annotation_file(ann_file),
        ann_file,
        box_tolerance,
        box_tolerance_px,
        max_nframes=max_nframes,
        max_side=max_side)


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


def annotation_summary(ann_file: str, shown_as: Optional[str] = None) -> str:
    """One line for reports: '`data/synth/annotations.pkl` (240 videos, 180 train / 60 test, 5 classes,
    128x96, 40-250-frame tubes)' (split 0; ``shown_as`` replaces the path shown)."""
    stats = tube_statistics(load_annotations(ann_file))
    split = stats['splits'][0]
    sizes = ', '.join('x'.join(reversed(r.split('x'))) for r in stats['resolutions'])
    length = stats['tube_length']
    return (f"`{shown_as or ann_file}` ({stats['num_videos']} videos, {split['train']} train / "
            f"{split['test']} test, {stats['num_classes']} classes, {sizes}, "
            f"{length['min']}-{length['max']}-frame tubes)")


def densify_tubes(gttubes: Dict[int, List[np.ndarray]], nframes: int, dtype=np.float64):
    """The tubes of one video (``gttubes[label]``: arrays ``(n_i, 5)`` of ``(frame, x1, y1, x2, y2)``, 1-based
    frames) dense on the video's time axis: the one conversion the training data and the metric share.

    Args:
        gttubes (dict[int, list[np.ndarray]]): The video's entry of the annotation's ``gttubes``.
        nframes (int): Frames of the video.
        dtype: Box dtype. Defaults to float64.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``boxes (n, nframes, 4)`` (0 on unannotated frames, not
        clipped to the frame), ``masks (n, nframes)`` bool (True on annotated frames), ``labels (n,)`` int64;
        tubes ordered by label, then annotation order.
    """
    items = [(label, tube) for label in sorted(gttubes) for tube in gttubes[label]]
    boxes = np.zeros((len(items), nframes, 4), dtype=dtype)
    masks = np.zeros((len(items), nframes), dtype=bool)
    labels = np.zeros(len(items), dtype=np.int64)
    for i, (label, tube) in enumerate(items):
        frames = np.round(tube[:, 0]).astype(np.int64) - 1
        boxes[i, frames] = tube[:, 1:5]
        masks[i, frames] = True
        labels[i] = label
    return boxes, masks, labels
