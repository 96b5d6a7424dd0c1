"""Import tube annotations from CVAT, MOT-challenge and AVA-style CSV files (and export them back).

The importers turn annotations made with common tools into the ACT annotation dict of
:mod:`cfad_mm.datasets.annotation` (``labels``, ``gttubes``, ``nframes``, ``resolution``, ``train_videos``,
``test_videos``), validated by :func:`~cfad_mm.datasets.annotation.validate_annotations`.
``tools/data/import_annotations.py`` is their command-line front end.

Formats and frame-number conventions (the ACT dict numbers frames from 1):

* **CVAT for video 1.1** XML (``<annotations><meta>...<track><box .../></track>``): ``frame`` is 0-based, so
  frame ``f`` becomes ``f + 1``. A ``<box outside="1">`` marks the frames where the object is not visible: a
  track is split into one tube per visible run of consecutive frames (at ``outside`` boxes and at gaps);
  ``keep_gaps=True`` keeps one tube per track instead (ACT tubes may have gaps). Occluded boxes
  (``occluded="1"``) are kept: ground truth continues through occlusion. Tracks without ``<box>`` (polygons,
  points...) are skipped and counted. Labels are those declared in ``<meta>`` (``<labels><label><name>``), in
  declaration order (several files: first file first, files sorted by name, new names appended). One XML file
  is one video; its name is, in this order: ``video_name`` (single file only), ``<meta><source>`` without its
  video extension, ``<meta><task><name>``, the XML file name without ``.xml``. Tasks with a start frame other
  than 0 or a frame step (``<start_frame>``, ``<frame_filter>step=N``) are refused. ``<original_size>`` must
  match the media.
* **MOT challenge** text, one row per box ``frame, id, x, y, w, h, conf[, class[, visibility]]``: ``frame`` is
  1-based and kept; the box is ``(x, y, x + w, y + h)`` in pixels (coordinates kept as written). Rows with
  ``conf == 0`` (ignore regions of MOT ground truth) are skipped and counted. Labels: ``class_map``
  (``{class: label}``, a class mapped to ``None`` is skipped and counted; label order = ascending class id) or
  ``track_labels`` (``{track_id: label}`` or ``{video: {track_id: label}}``, a track mapped to ``None`` is
  skipped; labels sorted by name) or, with neither, the class numbers as label names (sorted numerically).
  The visibility column is ignored (occluded boxes are kept). A track is split at gaps like a CVAT track
  (``keep_gaps`` likewise). The video name of a single file: ``video_name``, else ``<video>`` of a
  ``.../<video>/gt/gt.txt`` path, else the file name without extension; a directory is searched for
  ``<video>/gt/gt.txt`` files (``<video>`` may be a nested path).
* **AVA-style CSV** ``video_id, timestamp_seconds, x1, y1, x2, y2, action_id, person_id`` with coordinates
  normalised to 0..1: a timestamp ``t`` becomes frame ``floor((t - time_offset) * fps + 0.5) + 1`` (rounded
  half up; ``fps`` from the video read with decord, or given), coordinates are multiplied by the frame width /
  height. Each ``(video, person_id, action_id)`` is one tube (several actions of one person make several
  tubes); consecutive keyframes more than ``max_gap_seconds`` apart (default 1.5 s) split it. Labels: the
  label map (AVA ``item { name: "..." id: N }`` pbtxt or ``id,name`` CSV), in ascending id order, or the
  action ids as names (sorted numerically). A first row whose first column is ``video_id`` / ``video`` is a
  header.

Media: ``nframes`` and ``resolution`` are read from the media under ``videos_dir``, never from the annotation
file: a frame folder ``videos_dir/<video>/`` holding images (or an ``img1/`` sub-folder of images, the MOT
layout), else a video file ``videos_dir/<video><ext>`` (``ext`` given, else ``.mp4``, ``.avi``, ``.mkv`` in
this order). A missing media file is an error.

Splits: ``test_list`` / ``train_list`` (paths of files with one video name a line, or lists of names; only
one of them given: the other split is every other video) or ``test_ratio`` (default 0.2): the sorted video
names are shuffled with ``random.Random(seed)`` and the first ``round(ratio * n)`` (at least 1, at most
``n - 1``) are the test videos. One split; each list is sorted.

Every check of the input raises :class:`AnnotationImportError` (a ``ValueError``) naming the file and the line
or the track: unknown label, malformed row or attribute, duplicated frame in a track, frame beyond the video,
box outside the frame (same rule and tolerance as ``validate_annotations``: each coordinate within
``max(box_tolerance_px, box_tolerance * side)`` px of the frame and a positive overlap), empty track.

The exporters (:func:`export_cvat`, :func:`export_mot`, :func:`export_ava_csv`) write an annotation dict back
in these formats, so that importing their output gives the same tubes (within the written precision: CVAT
writes 2 decimals).
"""
import csv
import json
import math
import os
import os.path as osp
import pickle
import random
import re
import tempfile
import xml.parsers.expat
from collections import OrderedDict, namedtuple
from typing import Dict, List, Optional, Sequence, Union
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from .annotation import box_tolerances, boxes_outside_frame, validate_annotations
from .media import MediaError, probe_video

__all__ = [
    'AnnotationImportError', 'ImportResult', 'import_annotations', 'import_cvat', 'import_mot',
    'import_ava_csv', 'read_media_info', 'split_videos', 'parse_class_map', 'parse_track_labels',
    'parse_label_map', 'write_annotation_pickle', 'export_cvat', 'export_mot', 'export_ava_csv', 'FORMATS'
]

FORMATS = ('cvat', 'mot', 'ava-csv')
VIDEO_EXTS = ('.mp4', '.avi', '.mkv')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
_SOURCE_EXTS = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv', '.flv', '.3gp')

ImportResult = namedtuple('ImportResult', ['annotations', 'summary'])
ImportResult.__doc__ = """The validated annotation dict and a summary dict (``format``, ``inputs``,
``videos``, ``tubes``, ``tubes_per_label``, ``train``, ``test``, ``skipped`` (messages), ``notes``)."""


class AnnotationImportError(ValueError):
    """Malformed or inconsistent input of an importer. The message names the file and the line or track."""


def _fail(msg: str):
    raise AnnotationImportError(msg)


class _Track:
    """Visible boxes of one track: rows ``(frame 1-based, x1, y1, x2, y2, ref)``; ``ref`` names the line."""

    __slots__ = ('video', 'label', 'where', 'rows')

    def __init__(self, video: str, label: str, where: str):
        self.video, self.label, self.where, self.rows = video, label, where, []


# ----------------------------------------------------------------------------------------------------------
# Media, label maps, splits
# ----------------------------------------------------------------------------------------------------------
def _images(folder: str) -> List[str]:
    return sorted(n for n in os.listdir(folder) if osp.splitext(n)[1].lower() in IMAGE_EXTS)


def read_media_info(videos_dir: str, video: str, ext: Optional[str] = None, need_fps: bool = False) -> dict:
    """Number of frames, resolution (and fps of a video file) of the media of one video.

    Args:
        videos_dir (str): Folder of the media.
        video (str): Video name (may contain ``/``).
        ext (str, optional): Video file extension; default: try ``.mp4``, ``.avi``, ``.mkv``.
        need_fps (bool): Also read the frame rate of a video file (decord's average fps).

    Returns:
        dict: ``path``, ``kind`` (``'frames'`` or ``'video'``), ``nframes``, ``resolution`` (h, w), ``fps``
        (None for a frame folder or when not asked).

    Raises:
        AnnotationImportError: No media, an empty frame folder, or a video file decord cannot read.
    """
    base = osp.join(videos_dir, video)
    for folder in (base, osp.join(base, 'img1')):
        if osp.isdir(folder):
            names = _images(folder)
            if names:
                import cv2
                first = osp.join(folder, names[0])
                img = cv2.imread(first, cv2.IMREAD_UNCHANGED)
                if img is None:
                    _fail(f'{first}: cannot read this image (first frame of the frame folder of video '
                          f'{video!r})')
                return dict(
                    path=folder,
                    kind='frames',
                    nframes=len(names),
                    resolution=(int(img.shape[0]), int(img.shape[1])),
                    fps=None)
    exts = [ext] if ext else list(VIDEO_EXTS)
    candidates = [base + e for e in exts]
    path = next((p for p in candidates if osp.isfile(p)), None)
    if path is None:
        tried = ', '.join(candidates + [base + '/ (frame folder with images)'])
        _fail(f'no media for video {video!r} under {videos_dir}: none of {tried} exists; nframes and '
              'resolution are read from the media (--videos DIR, --ext)')
    try:
        nframes, resolution = probe_video(path)
        fps = None
        if need_fps:
            import decord
            fps = float(decord.VideoReader(path, num_threads=1).get_avg_fps())
    except (MediaError, FileNotFoundError) as err:
        _fail(f'media of video {video!r}: {err}')
    return dict(path=path, kind='video', nframes=nframes, resolution=resolution, fps=fps)


def _read_lines(path: str, what: str) -> List[str]:
    if not osp.isfile(path):
        _fail(f'{what} file not found: {path}')
    try:
        with open(path, encoding='utf-8-sig') as f:
            return f.read().splitlines()
    except UnicodeDecodeError as err:
        _fail(f'{path}: not UTF-8 text ({err})')


def _read_video_list(spec, known: set, what: str) -> List[str]:
    if isinstance(spec, str):
        names = []
        for lineno, line in enumerate(_read_lines(spec, what), 1):
            name = line.strip()
            if not name or name.startswith('#'):
                continue
            if name not in known:
                _fail(f'{spec}, line {lineno}: video {name!r} is not among the imported videos '
                      f'({len(known)} videos, e.g. {sorted(known)[:3]})')
            if name in names:
                _fail(f'{spec}, line {lineno}: video {name!r} is listed twice')
            names.append(name)
        return names
    names = [str(n) for n in spec]
    for name in names:
        if name not in known:
            _fail(f'{what}: video {name!r} is not among the imported videos')
    return names


def split_videos(videos: Sequence[str],
                 test_ratio: Optional[float] = 0.2,
                 seed: int = 0,
                 test_list=None,
                 train_list=None) -> tuple:
    """One train / test split of the videos (rules in the module docstring).

    Returns:
        tuple: ``(train_videos, test_videos)``, each a list of one sorted list.
    """
    videos = sorted(set(videos))
    known = set(videos)
    if test_list is not None or train_list is not None:
        test = _read_video_list(test_list, known, 'test list') if test_list is not None else None
        train = _read_video_list(train_list, known, 'train list') if train_list is not None else None
        if test is None:
            test = [v for v in videos if v not in set(train)]
        if train is None:
            train = [v for v in videos if v not in set(test)]
        both = sorted(set(train) & set(test))
        if both:
            _fail(f'video {both[0]!r} is in both the train list and the test list ({len(both)} such videos)')
        for name, split in (('train', train), ('test', test)):
            if not split:
                _fail(f'the {name} split is empty (train list / test list leave no video for it)')
        return [sorted(train)], [sorted(test)]
    if test_ratio is None or not 0 < test_ratio < 1:
        _fail(f'test ratio must be in (0, 1), got {test_ratio}')
    if len(videos) < 2:
        _fail(
            f'a train / test split needs at least 2 videos, got {len(videos)} ({videos}): a video cannot be '
            'both a train and a test video; import more videos')
    order = list(videos)
    random.Random(seed).shuffle(order)
    n_test = min(max(int(round(test_ratio * len(order))), 1), len(order) - 1)
    return [sorted(order[n_test:])], [sorted(order[:n_test])]


def _load_json(path: str, what: str):
    text = '\n'.join(_read_lines(path, what))
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        _fail(f'{path}: cannot parse the {what} as JSON: {err}')


def _int_key(key, where: str, what: str) -> int:
    try:
        value = float(str(key).strip())
    except ValueError:
        value = float('nan')
    if not math.isfinite(value) or value != int(value):
        _fail(f'{where}: {what} {key!r} is not an integer')
    return int(value)


def parse_class_map(spec) -> 'OrderedDict[int, Optional[str]]':
    """``{MOT class: label or None}`` from a dict, a JSON file (``{"1": "walk", "2": null}``) or a string
    ``"1:walk,2:run"``.

    A class mapped to ``None`` (JSON ``null``, or ``"3:"`` inline) is skipped (its rows are counted).
    """
    if isinstance(spec, dict):
        items, where = list(spec.items()), 'class map'
    elif osp.isfile(spec) or str(spec).lower().endswith('.json'):
        data = _load_json(spec, 'class map')
        if not isinstance(data, dict):
            _fail(f'{spec}: the class map must be a JSON object {{"class": "label", ...}}')
        items, where = list(data.items()), spec
    else:
        items, where = [], f'class map {spec!r}'
        for pair in str(spec).split(','):
            if not pair.strip():
                continue
            if ':' not in pair:
                _fail(f'{where}: {pair!r} is not a class:label pair')
            key, name = pair.split(':', 1)
            items.append((key, name.strip() or None))
    out = OrderedDict()
    for key, name in items:
        cls = _int_key(key, where, 'class')
        if cls in out:
            _fail(f'{where}: class {cls} is mapped twice')
        if name is not None and (not isinstance(name, str) or not name.strip()):
            _fail(f'{where}: class {cls} must map to a label name (or null to skip it), got {name!r}')
        out[cls] = name.strip() if name is not None else None
    if not out:
        _fail(f'{where}: the class map is empty')
    return OrderedDict(sorted(out.items()))


def parse_track_labels(spec) -> dict:
    """``{track id: label}`` or ``{video: {track id: label}}`` from a dict or a JSON file (None: skip it)."""
    where = 'track labels'
    data = spec
    if not isinstance(spec, dict):
        data, where = _load_json(spec, 'track labels'), spec
        if not isinstance(data, dict):
            _fail(f'{where}: the track labels must be a JSON object {{"track id": "label"}} or '
                  '{"video": {"track id": "label"}}')

    def one(mapping, ctx):
        out = {}
        for key, name in mapping.items():
            tid = _int_key(key, ctx, 'track id')
            if name is not None and (not isinstance(name, str) or not name.strip()):
                _fail(f'{ctx}: track {tid} must map to a label name (or null to skip it), got {name!r}')
            out[tid] = name.strip() if name is not None else None
        return out

    if data and all(isinstance(v, dict) for v in data.values()):
        return {'per_video': {str(v): one(m, f'{where}, video {v!r}') for v, m in data.items()}}
    return {'all': one(data, where)}


def parse_label_map(path: str) -> 'OrderedDict[int, str]':
    """``{action id: name}`` (ascending ids) from an AVA pbtxt (``item { name: "..." id: N }``) or an
    ``id,name`` CSV."""
    lines = _read_lines(path, 'label map')
    text = '\n'.join(lines)
    out = {}

    def add(id_text, name, where):
        idx = _int_key(id_text, where, 'id')
        if idx in out:
            _fail(f'{where}: id {idx} appears twice in the label map')
        if not name:
            _fail(f'{where}: empty label name for id {idx}')
        if name in out.values():
            _fail(f'{where}: label name {name!r} appears twice in the label map')
        out[idx] = name

    if re.match(r'\s*(#[^\n]*\n\s*)*item\s*\{', text):
        for match in re.finditer(r'item\s*\{(.*?)\}', text, re.S):
            body = match.group(1)
            lineno = text.count('\n', 0, match.start()) + 1
            where = f'{path}, line {lineno}'
            name = re.search(r'\b(?:display_)?name\s*:\s*"((?:[^"\\]|\\.)*)"', body)
            idm = re.search(r'\b(?:label_)?id\s*:\s*(-?[0-9]+)', body)
            if name is None or idm is None:
                _fail(f'{where}: an item of the label map needs name: "..." and id: N')
            add(idm.group(1), re.sub(r'\\(.)', r'\1', name.group(1)), where)
    else:
        for lineno, row in enumerate(csv.reader(lines), 1):
            if not row or not ''.join(row).strip() or row[0].strip().startswith('#'):
                continue
            where = f'{path}, line {lineno}'
            if len(row) != 2:
                _fail(f'{where}: expected 2 comma-separated values (id, name), got {len(row)}')
            if lineno == 1 and not re.fullmatch(r'\s*-?[0-9]+\s*', row[0]):
                continue  # a header such as "id,name"
            add(row[0], row[1].strip(), where)
    if not out:
        _fail(f'{path}: the label map has no entry')
    return OrderedDict(sorted(out.items()))


# ----------------------------------------------------------------------------------------------------------
# Common checks and assembly
# ----------------------------------------------------------------------------------------------------------
def _check_and_split(track: _Track, media: dict, tol: tuple, max_step: float, times=None) -> List[np.ndarray]:
    """Check a track (duplicates, frame range, boxes) and return its tubes (split at gaps > ``max_step``).

    ``times`` (AVA) replaces frame numbers for the gap test.
    """
    if not track.rows:
        _fail(f'{track.where}: empty track: no visible box')
    order = sorted(range(len(track.rows)), key=lambda i: track.rows[i][0])
    rows = [track.rows[i] for i in order]
    for prev, row in zip(rows, rows[1:]):
        if row[0] == prev[0]:
            _fail(f'{track.where}, {row[5]}: frame {row[0]} is annotated twice in the track (also {prev[5]})')
    nframes = media['nframes']
    height, width = media['resolution']
    box_tol, box_tol_px = tol
    tol_x, tol_y = box_tolerances(height, width, box_tol, box_tol_px)
    for frame, x1, y1, x2, y2, ref in rows:
        if frame < 1:
            _fail(f'{track.where}, {ref}: frame {frame} is before the first frame of the video (frame 1)')
        if frame > nframes:
            _fail(f'{track.where}, {ref}: frame {frame} is beyond the video {track.video!r} (frames '
                  f'1..{nframes} in {media["path"]})')
        if not (x2 > x1 and y2 > y1):
            _fail(f'{track.where}, {ref}: empty box (x2 <= x1 or y2 <= y1): ({x1:g}, {y1:g}, {x2:g}, {y2:g})')
        if boxes_outside_frame((x1, y1, x2, y2), height, width, tol_x, tol_y)[0]:
            _fail(f'{track.where}, {ref}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the '
                  f'{width}x{height} (WxH) frame of video {track.video!r} beyond the tolerance ({tol_x:.1f}, '
                  f'{tol_y:.1f}) px of validate_annotations')
    keys = [times[i] for i in order] if times is not None else [r[0] for r in rows]
    tubes, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or keys[i] - keys[i - 1] > max_step + 1e-9:
            tubes.append(np.array([r[:5] for r in rows[start:i]], dtype=np.float32))
            start = i
    return tubes


def _assemble(fmt: str,
              inputs: List[str],
              tracks: List[_Track],
              videos: List[str],
              labels: List[str],
              media: Dict[str, dict],
              split: dict,
              tol: tuple,
              max_step: float,
              skipped: List[str],
              notes: List[str],
              times: Optional[dict] = None) -> ImportResult:
    index = {name: i for i, name in enumerate(labels)}
    gttubes = {v: {} for v in videos}
    for track in tracks:
        tubes = _check_and_split(track, media[track.video], tol, max_step,
                                 times.get(id(track)) if times else None)
        gttubes[track.video].setdefault(index[track.label], []).extend(tubes)
    train, test = split_videos(videos, **split)
    raw = dict(
        labels=list(labels),
        gttubes=gttubes,
        nframes={v: media[v]['nframes']
                 for v in videos},
        resolution={v: tuple(media[v]['resolution'])
                    for v in videos},
        train_videos=train,
        test_videos=test)
    ann = validate_annotations(
        raw, ann_file=f'imported from {", ".join(inputs)}', box_tolerance=tol[0], box_tolerance_px=tol[1])
    per_label = OrderedDict((name, 0) for name in labels)
    for per in ann['gttubes'].values():
        for label, tubes in per.items():
            per_label[labels[label]] += len(tubes)
    summary = dict(
        format=fmt,
        inputs=list(inputs),
        videos=len(videos),
        tubes=sum(per_label.values()),
        tubes_per_label=per_label,
        train=len(train[0]),
        test=len(test[0]),
        skipped=skipped,
        notes=notes)
    return ImportResult(ann, summary)


def _media_of(videos: List[str],
              videos_dir: str,
              ext: Optional[str],
              need_fps: bool = False) -> Dict[str, dict]:
    if not osp.isdir(videos_dir):
        _fail(f'media folder not found: {videos_dir} (--videos DIR)')
    return {v: read_media_info(videos_dir, v, ext, need_fps) for v in videos}


def _number(text, where: str, what: str, integer: bool = False) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        _fail(f'{where}: {what} = {text!r} is not a number')
    if not math.isfinite(value):
        _fail(f'{where}: {what} = {text!r} is not a finite number')
    if integer and value != int(value):
        _fail(f'{where}: {what} = {text!r} is not an integer')
    return int(value) if integer else value


def _split_options(test_ratio, seed, test_list, train_list) -> dict:
    return dict(test_ratio=test_ratio, seed=seed, test_list=test_list, train_list=train_list)


# ----------------------------------------------------------------------------------------------------------
# CVAT for video 1.1
# ----------------------------------------------------------------------------------------------------------
def _parse_xml(path: str):
    """Parse an XML file into an ElementTree root and a dict ``id(element) -> line number``."""
    builder = ET.TreeBuilder()
    lines = {}
    parser = xml.parsers.expat.ParserCreate()

    def start(tag, attrs):
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.ordered_attributes = False
    try:
        with open(path, 'rb') as f:
            parser.ParseFile(f)
        root = builder.close()
    except xml.parsers.expat.ExpatError as err:
        _fail(f'{path}: not well-formed XML (line {err.lineno}, column {err.offset}): '
              f'{xml.parsers.expat.ErrorString(err.code)}')
    return root, lines


def _xml_files(input_path: str, what: str, pattern: str = '.xml') -> List[str]:
    if osp.isdir(input_path):
        files = sorted(osp.join(input_path, n) for n in os.listdir(input_path) if n.lower().endswith(pattern))
        if not files:
            _fail(f'{input_path}: no {pattern} file in this folder ({what})')
        return files
    if not osp.isfile(input_path):
        _fail(f'{what} not found: {input_path}')
    return [input_path]


def _cvat_video_name(path: str, meta, video_name: Optional[str]) -> str:
    if video_name:
        return video_name
    source = (meta.findtext('source') or meta.findtext('task/source')
              or '').strip() if meta is not None else ''
    if source:
        stem, ext = osp.splitext(source)
        return stem if ext.lower() in _SOURCE_EXTS else source
    name = (meta.findtext('task/name') or '').strip() if meta is not None else ''
    if name:
        return name
    return osp.splitext(osp.basename(path))[0]


def import_cvat(input_path: str,
                videos_dir: str,
                video_name: Optional[str] = None,
                keep_gaps: bool = False,
                ext: Optional[str] = None,
                test_ratio: Optional[float] = 0.2,
                seed: int = 0,
                test_list=None,
                train_list=None,
                box_tolerance: float = 0.05,
                box_tolerance_px: float = 8.0) -> ImportResult:
    """Import "CVAT for video 1.1" XML: one file (one video) or a folder of ``*.xml`` files (one per video).

    Conventions in the module docstring. Returns an :class:`ImportResult`.
    """
    files = _xml_files(input_path, 'CVAT XML')
    if video_name and len(files) > 1:
        _fail(f'{input_path}: a video name can only be given for a single XML file, not a folder of '
              f'{len(files)} files')
    labels, tracks, videos, sizes = [], [], OrderedDict(), {}
    skipped, notes = [], []
    for path in files:
        root, lines = _parse_xml(path)
        if root.tag != 'annotations':
            _fail(f'{path}: not a CVAT XML file: the root element is <{root.tag}>, expected <annotations>')
        meta = root.find('meta')
        if root.find('track') is None and root.find('image') is not None:
            _fail(f'{path}: this is a "CVAT for images" file (<image> elements, no <track>); export the task '
                  'as "CVAT for video 1.1"')
        version = (root.findtext('version') or '').strip()
        if version and version != '1.1':
            notes.append(f'{path}: format version {version} (read as 1.1)')
        declared = []
        for labels_el in (meta.iter('labels') if meta is not None else []):
            for label_el in labels_el.findall('label'):
                name = (label_el.findtext('name') or '').strip()
                if name and name not in declared:
                    declared.append(name)
        labels.extend(n for n in declared if n not in labels)
        task = meta.find('task') if meta is not None else None
        if task is not None:
            start = (task.findtext('start_frame') or '0').strip() or '0'
            step = re.search(r'step\s*=\s*([0-9]+)', task.findtext('frame_filter') or '')
            if start != '0' or (step and int(step.group(1)) != 1):
                ffilter = (task.findtext('frame_filter') or '').strip()
                _fail(
                    f'{path}: the task starts at frame {start} (<start_frame>) or has the frame filter '
                    f'{ffilter!r} (<frame_filter>): its frame numbers are not those of the video; only tasks '
                    'made of the whole video, frame by frame, are supported')
            size = task.find('original_size')
            if size is not None:
                sizes[path] = (_number(size.findtext('height'), f'{path}, <original_size>', 'height', True),
                               _number(size.findtext('width'), f'{path}, <original_size>', 'width', True))
        video = _cvat_video_name(path, meta, video_name)
        if video in videos:
            _fail(f'{path}: video {video!r} is also the video of {videos[video]} (name from <meta><source>, '
                  '<meta><task><name> or the file name); one XML file per video')
        videos[video] = path
        others = _other_elements(root)
        if others:
            notes.append(f'{path}: ignored elements ' + ', '.join(f'<{t}> x{n}' for t, n in others.items()))
        for track_el in root.findall('track'):
            line = lines.get(id(track_el))
            tid = track_el.get('id', '?')
            label = track_el.get('label')
            where = f'{path}, line {line}, track {tid}'
            if label is None:
                _fail(f'{where}: <track> lacks the attribute label')
            if label not in declared:
                _fail(f'{where}: unknown label {label!r} (not declared in <meta><labels>: {declared})')
            boxes = track_el.findall('box')
            if not boxes:
                if len(track_el):
                    skipped.append(
                        f'{where}: track of <{track_el[0].tag}> shapes skipped (only <box> is imported)')
                    continue
                _fail(f'{where} (label {label!r}): empty track: no <box>')
            track = _Track(video, label, f'{path}, track {tid} (label {label!r})')
            seen = {}
            for box in boxes:
                bline = lines.get(id(box))
                bwhere = f'{path}, line {bline}, track {tid}'
                for key in ('frame', 'xtl', 'ytl', 'xbr', 'ybr'):
                    if box.get(key) is None:
                        _fail(f'{bwhere}: <box> lacks the attribute {key}')
                frame = _number(box.get('frame'), bwhere, 'frame', integer=True)
                if frame < 0:
                    _fail(f'{bwhere}: frame = {frame} is negative (CVAT frames are 0-based)')
                ref = f'line {bline}, CVAT frame {frame}'
                if frame in seen:
                    _fail(f'{track.where}, {ref}: frame {frame + 1} is annotated twice in the track '
                          f'(also line {seen[frame]})')
                seen[frame] = bline
                if box.get('outside', '0').strip() not in ('0', ''):
                    continue
                coords = [_number(box.get(k), bwhere, k) for k in ('xtl', 'ytl', 'xbr', 'ybr')]
                track.rows.append((frame + 1, *coords, ref))
            if not track.rows:
                _fail(f'{track.where}, line {line}: empty track: no visible box (every box has outside="1")')
            tracks.append(track)
    media = _media_of(list(videos), videos_dir, ext)
    for video, path in videos.items():
        if path in sizes and tuple(sizes[path]) != tuple(media[video]['resolution']):
            (h, w), (mh, mw) = sizes[path], media[video]['resolution']
            _fail(f'{path}: <original_size> of the task is {w}x{h} (WxH) but the media of video {video!r} '
                  f'({media[video]["path"]}) is {mw}x{mh}: the boxes would not fit the frames')
    if not labels:
        _fail(f'{input_path}: no label declared in <meta><labels>')
    return _assemble('cvat', files, tracks, list(videos), labels, media,
                     _split_options(test_ratio, seed, test_list, train_list),
                     (box_tolerance, box_tolerance_px), math.inf if keep_gaps else 1, skipped, notes)


def _other_elements(root) -> 'OrderedDict[str, int]':
    """Counts of the top-level elements of a CVAT file that are not imported (e.g. ``<tag>``)."""
    out = OrderedDict()
    for child in root:
        if child.tag not in ('version', 'meta', 'track'):
            out[child.tag] = out.get(child.tag, 0) + 1
    return out


# ----------------------------------------------------------------------------------------------------------
# MOT challenge
# ----------------------------------------------------------------------------------------------------------
def _mot_files(input_path: str, video_name: Optional[str]) -> List[tuple]:
    if osp.isdir(input_path):
        found = []
        for dirpath, dirnames, filenames in os.walk(input_path):
            dirnames.sort()
            if osp.basename(dirpath) == 'gt' and 'gt.txt' in filenames:
                video = osp.relpath(osp.dirname(dirpath), input_path).replace(os.sep, '/')
                found.append((video, osp.join(dirpath, 'gt.txt')))
        if not found:
            _fail(f'{input_path}: no <video>/gt/gt.txt file in this folder (MOT layout)')
        if video_name:
            _fail(f'{input_path}: a video name can only be given for a single gt.txt file, not a folder')
        return sorted(found)
    if not osp.isfile(input_path):
        _fail(f'MOT file not found: {input_path}')
    if video_name:
        return [(video_name, input_path)]
    parent = osp.dirname(osp.abspath(input_path))
    if osp.basename(input_path) == 'gt.txt' and osp.basename(parent) == 'gt':
        return [(osp.basename(osp.dirname(parent)), input_path)]
    return [(osp.splitext(osp.basename(input_path))[0], input_path)]


def import_mot(input_path: str,
               videos_dir: str,
               class_map=None,
               track_labels=None,
               video_name: Optional[str] = None,
               keep_gaps: bool = False,
               ext: Optional[str] = None,
               test_ratio: Optional[float] = 0.2,
               seed: int = 0,
               test_list=None,
               train_list=None,
               box_tolerance: float = 0.05,
               box_tolerance_px: float = 8.0) -> ImportResult:
    """Import MOT-challenge ground truth: one ``gt.txt`` (one video) or a folder of ``<video>/gt/gt.txt``.

    ``class_map`` / ``track_labels``: see :func:`parse_class_map` / :func:`parse_track_labels` (paths, inline
    pairs or dicts; not both). Conventions in the module docstring. Returns an :class:`ImportResult`.
    """
    if class_map is not None and track_labels is not None:
        _fail('give a class map or track labels, not both')
    cmap = parse_class_map(class_map) if class_map is not None else None
    tmap = parse_track_labels(track_labels) if track_labels is not None else None
    entries = _mot_files(input_path, video_name)
    dup = [v for i, (v, _) in enumerate(entries) if v in [e[0] for e in entries[:i]]]
    if dup:
        _fail(f'{input_path}: two files give the video {dup[0]!r}')
    if tmap is not None and 'per_video' in tmap:
        unknown = sorted(set(tmap['per_video']) - {v for v, _ in entries})
        if unknown:
            _fail(f'{track_labels}: track labels for video {unknown[0]!r}, which is not among the imported '
                  f'videos {[v for v, _ in entries][:5]}')
    tracks, skipped, notes, used = [], [], [], set()
    ncols = '7 to 9 comma-separated values (frame, id, x, y, w, h, conf[, class[, visibility]])'
    for video, path in entries:
        per_track = OrderedDict()
        n_conf0, n_class_skip, n_track_skip = 0, 0, 0
        for lineno, line in enumerate(_read_lines(path, 'MOT file'), 1):
            if not line.strip():
                continue
            where = f'{path}, line {lineno}'
            cols = [c.strip() for c in line.split(',')]
            if not 7 <= len(cols) <= 9:
                _fail(f'{where}: malformed row: expected {ncols}, got {len(cols)} values')
            frame = _number(cols[0], where, 'frame', integer=True)
            tid = _number(cols[1], where, 'id', integer=True)
            x, y, w, h, conf = (_number(c, where, n) for c, n in zip(cols[2:7], ('x', 'y', 'w', 'h', 'conf')))
            if conf == 0:
                n_conf0 += 1
                continue
            if tmap is not None:
                table = tmap.get('all') if 'all' in tmap else tmap['per_video'].get(video, {})
                if tid not in table:
                    _fail(f'{path}, line {lineno}, track {tid}: no label for this track in the '
                          f'track labels ({track_labels if isinstance(track_labels, str) else "given dict"})')
                label = table[tid]
                if label is None:
                    n_track_skip += 1
                    continue
                cls = None
            else:
                if len(cols) < 8:
                    _fail(f'{where}: malformed row: no class column (8th value); give track labels, or rows '
                          'frame, id, x, y, w, h, conf, class[, visibility]')
                cls = _number(cols[7], where, 'class', integer=True)
                if cmap is not None:
                    if cls not in cmap:
                        _fail(f'{where}, track {tid}: unknown label: class {cls} is not in the class map '
                              f'{dict(cmap)} (map it to a label, or to null to skip its rows)')
                    label = cmap[cls]
                    if label is None:
                        n_class_skip += 1
                        continue
                else:
                    label = str(cls)
            track = per_track.get(tid)
            if track is None:
                track = per_track[tid] = _Track(video, label, f'{path}, track {tid} (label {label!r})')
            if track.label != label:
                first = track.rows[0][5]
                _fail(f'{where}, track {tid}: label {label!r} (class {cls}) differs from the label '
                      f'{track.label!r} of the track\'s earlier rows ({first}); a track needs a single label')
            track.rows.append((frame, x, y, x + w, y + h, f'line {lineno}'))
        for tid in sorted(per_track):
            tracks.append(per_track[tid])
            used.add(per_track[tid].label)
        if n_conf0:
            skipped.append(f'{path}: {n_conf0} rows with conf == 0 (ignore regions) skipped')
        if n_class_skip:
            skipped.append(f'{path}: {n_class_skip} rows of classes mapped to null skipped')
        if n_track_skip:
            skipped.append(f'{path}: {n_track_skip} rows of tracks mapped to null skipped')
    if cmap is not None:
        labels = []
        for name in cmap.values():
            if name is not None and name not in labels:
                labels.append(name)
    elif tmap is not None:
        names = tmap['all'].values() if 'all' in tmap else [
            n for m in tmap['per_video'].values() for n in m.values()
        ]
        labels = sorted({n for n in names if n is not None})
    else:
        labels = sorted(used, key=int)
    if not labels:
        _fail(f'{input_path}: no label: every row was skipped or the label map maps everything to null')
    videos = [v for v, _ in entries]
    media = _media_of(videos, videos_dir, ext)
    return _assemble('mot', [p for _, p in entries], tracks, videos, labels, media,
                     _split_options(test_ratio, seed, test_list, train_list),
                     (box_tolerance, box_tolerance_px), math.inf if keep_gaps else 1, skipped, notes)


# ----------------------------------------------------------------------------------------------------------
# AVA-style CSV
# ----------------------------------------------------------------------------------------------------------
def import_ava_csv(input_path: str,
                   videos_dir: str,
                   label_map=None,
                   fps: Optional[float] = None,
                   max_gap_seconds: float = 1.5,
                   time_offset: float = 0.0,
                   ext: Optional[str] = None,
                   test_ratio: Optional[float] = 0.2,
                   seed: int = 0,
                   test_list=None,
                   train_list=None,
                   box_tolerance: float = 0.05,
                   box_tolerance_px: float = 8.0) -> ImportResult:
    """Import an AVA-style CSV (one file, all videos). Conventions in the module docstring.

    Args:
        label_map: Path of a pbtxt / ``id,name`` CSV label map, or a dict ``{id: name}``; None: ids as names.
        fps (float, optional): Frame rate of every video; default: read from each video file.
        max_gap_seconds (float): Keyframes farther apart than this split a tube. Defaults to 1.5.
        time_offset (float): Subtracted from the timestamps (e.g. 900 for AVA's 15-minute clips cut at 900 s).

    Returns:
        ImportResult
    """
    if not osp.isfile(input_path):
        _fail(f'AVA CSV file not found: {input_path}')
    if fps is not None and not fps > 0:
        _fail(f'fps must be positive, got {fps}')
    if label_map is None:
        lmap = None
    elif isinstance(label_map, dict):
        lmap = OrderedDict(sorted((int(k), str(v)) for k, v in label_map.items()))
    else:
        lmap = parse_label_map(label_map)
    lines = _read_lines(input_path, 'AVA CSV')
    records = OrderedDict()  # (video, person, action) -> [(t, x1, y1, x2, y2, lineno)]
    videos = []
    for lineno, row in enumerate(csv.reader(lines), 1):
        if not row or not ''.join(row).strip():
            continue
        where = f'{input_path}, line {lineno}'
        if len(row) != 8:
            _fail(f'{where}: malformed row: expected 8 comma-separated values (video_id, timestamp, x1, y1, '
                  f'x2, '
                  f'y2, action_id, person_id), got {len(row)}')
        row = [c.strip() for c in row]
        if not records and row[0].lower() in ('video_id', 'video', 'video_name'):
            try:
                float(row[1])
            except ValueError:
                continue  # header row
        video = row[0]
        t = _number(row[1], where, 'timestamp')
        box = [_number(c, where, n) for c, n in zip(row[2:6], ('x1', 'y1', 'x2', 'y2'))]
        action = _number(row[6], where, 'action_id', integer=True)
        person = row[7]
        if lmap is not None and action not in lmap:
            _fail(f'{where}: unknown label: action id {action} is not in the label map {label_map} '
                  f'(ids {list(lmap)[:10]}{"..." if len(lmap) > 10 else ""})')
        if video not in videos:
            videos.append(video)
        records.setdefault((video, person, action), []).append((t, *box, lineno))
    if not records:
        _fail(f'{input_path}: no annotation row')
    media = _media_of(videos, videos_dir, ext, need_fps=fps is None)
    for video in videos:
        if fps is None and not media[video]['fps']:
            _fail(f'video {video!r}: the frame rate of {media[video]["path"]} is unknown (a frame folder has '
                  'none): give fps (--fps)')
    labels = list(lmap.values()) if lmap is not None else [str(a) for a in sorted({k[2] for k in records})]
    tracks, times = [], {}
    for (video, person, action), rows in records.items():
        rate = fps if fps is not None else media[video]['fps']
        h, w = media[video]['resolution']
        label = lmap[action] if lmap is not None else str(action)
        track = _Track(
            video, label, f'{input_path}, video {video!r}, person {person}, action {action} '
            f'(label {label!r})')
        stamps = []
        for t, x1, y1, x2, y2, lineno in rows:
            frame = int(math.floor((t - time_offset) * rate + 0.5)) + 1
            track.rows.append((frame, x1 * w, y1 * h, x2 * w, y2 * h,
                               f'line {lineno}, timestamp {t:g} s = frame {frame} at {rate:g} fps'))
            stamps.append(t)
        order = sorted(range(len(stamps)), key=lambda i: track.rows[i][0])
        times[id(track)] = [stamps[i] for i in order]
        # _check_and_split sorts the rows by frame with the same key; keep the times in that order
        track.rows = [track.rows[i] for i in order]
        tracks.append(track)
    notes = [f'fps: {fps:g} (given)' if fps is not None else 'fps: read from each video']
    return _assemble(
        'ava-csv', [input_path],
        tracks,
        videos,
        labels,
        media,
        _split_options(test_ratio, seed, test_list, train_list), (box_tolerance, box_tolerance_px),
        max_gap_seconds, [],
        notes,
        times=times)


# ----------------------------------------------------------------------------------------------------------
# Dispatch and output
# ----------------------------------------------------------------------------------------------------------
def import_annotations(fmt: str, input_path: str, videos_dir: str, **kwargs) -> ImportResult:
    """Import ``input_path`` of format ``fmt`` (one of :data:`FORMATS`); ``kwargs`` go to the importer."""
    importers = {'cvat': import_cvat, 'mot': import_mot, 'ava-csv': import_ava_csv}
    if fmt not in importers:
        raise ValueError(f'unknown format {fmt!r}; expected one of {FORMATS}')
    return importers[fmt](input_path, videos_dir, **kwargs)


def write_annotation_pickle(ann: dict, out: str) -> None:
    """Write an annotation dict as a pickle (to a temporary file first, then renamed: never half-written)."""
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.import-', suffix='.pkl', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            pickle.dump(ann, f, protocol=4)
        os.replace(tmp, out)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


# ----------------------------------------------------------------------------------------------------------
# Exporters
# ----------------------------------------------------------------------------------------------------------
def _num(value: float, decimals: int = 4) -> str:
    text = f'{float(value):.{decimals}f}'
    return text.rstrip('0').rstrip('.') if '.' in text else text


def _tubes_of(ann: dict, video: str):
    """(label index, tube rows sorted by frame) of a video, by label then tube order."""
    for label in sorted(ann['gttubes'].get(video, {})):
        for tube in ann['gttubes'][video][label]:
            arr = np.asarray(tube, dtype=np.float64)
            yield int(label), arr[np.argsort(arr[:, 0], kind='stable')]


def _safe_name(video: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]', '_', video.replace('/', '__'))


def export_cvat(ann: dict, out: str) -> List[str]:
    """Write each video as a "CVAT for video 1.1" XML file (2 decimals, as CVAT writes).

    Args:
        ann (dict): An annotation dict (layout of :mod:`cfad_mm.datasets.annotation`).
        out (str): A ``.xml`` file (one video only) or a folder (one ``<video>.xml`` a video, ``/`` written
            ``__``).

    A tube becomes a track; a gap in a tube and the frame after its end (inside the video) get an
    ``outside="1"`` box, as CVAT writes them. Returns the written paths.
    """
    videos = sorted(ann['nframes'])
    if out.lower().endswith('.xml'):
        if len(videos) != 1:
            raise ValueError(f'{out}: one XML file holds one video; {len(videos)} videos need a folder')
        paths = {videos[0]: out}
    else:
        os.makedirs(out, exist_ok=True)
        paths = {v: osp.join(out, _safe_name(v) + '.xml') for v in videos}
    for video in videos:
        height, width = ann['resolution'][video]
        nframes = int(ann['nframes'][video])
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>', '<annotations>', '  <version>1.1</version>', '  <meta>',
            '    <task>', f'      <name>{escape(video)}</name>', f'      <size>{nframes}</size>',
            '      <mode>interpolation</mode>', '      <start_frame>0</start_frame>',
            f'      <stop_frame>{nframes - 1}</stop_frame>', '      <frame_filter></frame_filter>',
            '      <labels>'
        ]
        for name in ann['labels']:
            parts += [
                '        <label>', f'          <name>{escape(name)}</name>',
                '          <type>rectangle</type>', '          <attributes></attributes>', '        </label>'
            ]
        parts += [
            '      </labels>', '      <original_size>', f'        <width>{int(width)}</width>',
            f'        <height>{int(height)}</height>', '      </original_size>', '    </task>',
            f'    <source>{escape(video)}</source>', '  </meta>'
        ]

        def box(frame0, row, outside):
            return (
                f'    <box frame="{frame0}" outside="{outside}" occluded="0" keyframe="1" '
                f'xtl="{row[1]:.2f}" ytl="{row[2]:.2f}" xbr="{row[3]:.2f}" ybr="{row[4]:.2f}" z_order="0">'
                '</box>')

        for tid, (label, rows) in enumerate(_tubes_of(ann, video)):
            parts.append(f'  <track id="{tid}" label={quoteattr(ann["labels"][label])} source="manual">')
            for i, row in enumerate(rows):
                frame = int(round(row[0]))
                parts.append(box(frame - 1, row, 0))
                following = int(round(rows[i + 1][0])) if i + 1 < len(rows) else None
                if (following is None and frame < nframes) or (following is not None
                                                               and following > frame + 1):
                    parts.append(box(frame, row, 1))  # CVAT frame `frame` is the 1-based frame frame + 1
            parts.append('  </track>')
        parts.append('</annotations>')
        with open(paths[video], 'w', encoding='utf-8') as f:
            f.write('\n'.join(parts) + '\n')
    return [paths[v] for v in videos]


def export_mot(ann: dict, out_dir: str) -> str:
    """Write ``out_dir/<video>/gt/gt.txt`` files and ``out_dir/class_map.json``; returns the class map path.

    A tube becomes a track (ids 1, 2, ... per video); rows ``frame, id, x, y, w, h, 1, class, 1`` sorted by
    frame, with class = label index + 1; ``class_map.json`` maps the classes back to the labels.
    """
    for video in sorted(ann['nframes']):
        rows = []
        for tid, (label, tube) in enumerate(_tubes_of(ann, video), 1):
            for f, x1, y1, x2, y2 in tube:
                rows.append((int(round(f)), tid, x1, y1, x2 - x1, y2 - y1, label + 1))
        rows.sort(key=lambda r: (r[0], r[1]))
        path = osp.join(out_dir, video, 'gt', 'gt.txt')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            for frame, tid, x, y, w, h, cls in rows:
                f.write(f'{frame},{tid},{_num(x)},{_num(y)},{_num(w)},{_num(h)},1,{cls},1\n')
    class_map = osp.join(out_dir, 'class_map.json')
    with open(class_map, 'w', encoding='utf-8') as f:
        json.dump({str(i + 1): name for i, name in enumerate(ann['labels'])}, f, ensure_ascii=False, indent=1)
    return class_map


def export_ava_csv(ann: dict,
                   out_csv: str,
                   fps: Union[float, Dict[str, float]],
                   label_map_file: Optional[str] = None) -> None:
    """Write an AVA-style CSV: one row per box, timestamp ``(frame - 1) / fps``, coordinates normalised.

    Args:
        fps: Frame rate of every video, or ``{video: fps}``.
        label_map_file (str, optional): Also write a pbtxt label map (id = label index + 1).

    Action id = label index + 1; person id = the tube's number in its video (1, 2, ...), so each tube is one
    ``(video, person, action)``.
    """
    rows = []
    for video in sorted(ann['nframes']):
        rate = fps[video] if isinstance(fps, dict) else fps
        height, width = ann['resolution'][video]
        for person, (label, tube) in enumerate(_tubes_of(ann, video), 1):
            for f, x1, y1, x2, y2 in tube:
                rows.append((video, (f - 1) / rate, x1 / width, y1 / height, x2 / width, y2 / height,
                             label + 1, person))
    rows.sort(key=lambda r: (r[0], r[1], r[7]))
    os.makedirs(osp.dirname(osp.abspath(out_csv)), exist_ok=True)
    with open(out_csv, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        for video, t, x1, y1, x2, y2, action, person in rows:
            writer.writerow([video, f'{t:.6f}'] + [f'{v:.10g}' for v in (x1, y1, x2, y2)] + [action, person])
    if label_map_file:
        with open(label_map_file, 'w', encoding='utf-8') as f:
            for i, name in enumerate(ann['labels'], 1):
                quoted = name.replace('\\', '\\\\').replace('"', '\\"')
                f.write(f'item {{\n  name: "{quoted}"\n  id: {i}\n}}\n')
