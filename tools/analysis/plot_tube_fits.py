"""How well do tube trajectories (PolyTubeCoder, SplineTubeCoder) fit ground-truth tubes?

Loads an annotation pickle (ACT format, e.g. the synthetic dataset), fits every training tube with
``PolyTubeCoder`` of each degree, prints the fit errors per degree and plots one tube with its fits.

Two settings are measured:

- ``clip``: what the detector actually regresses. Every training video is cut into clips of ``--clip-len``
  frames (sliding windows, stride ``--clip-len // 2``, the last window aligned to the video end); each tube is
  fitted over its extent inside the clip.
- ``whole``: each tube is fitted over its whole extent in the video (an upper bound on the difficulty).

Errors are averaged over every annotated (tube, frame) box: mean ``|box - fit|`` of each coordinate
``(x1, y1, x2, y2)`` in pixels, and the mean IoU of the fitted box vs the ground-truth box.

With ``--coder-table`` the tool compares the tube coders instead (no annotation file): whole tubes of
``--lengths`` frames are generated in memory with the synthetic generator's motion model
(:func:`~cfad_mm.datasets.synthetic_generator.motion_trajectory`, ``--tubes-per-class`` per motion class),
each is fitted over its whole extent with ``PolyTubeCoder`` (degree ``D - 1``) and with ``SplineTubeCoder``
(``max_frames`` = the tube length, knots spread to give the same ``D`` coefficients per box parameter), and
the mean per-frame IoU of each fit is tabulated; a second table lets the spline's capacity grow with the
length (fixed ``--knot-interval``). ``--doc`` writes both tables into the generated section of that Markdown
file.

With ``--window-table`` the tubes of the training videos (split ``--split``) of ``--ann`` are cut into the
windows of each ``--windows`` span (``TxK``, every half span, as the span sweep slides them) and fitted inside
each window (least squares, in the coders' normalised box parameters) with ``PolyTubeCoder(degree=3)`` and
``SplineTubeCoder`` of each ``--knot-intervals`` (an interval of at least the span minus one frame, a single
cubic segment, is skipped with a note), beside a reference row that holds each tube at its box of its middle
annotated frame. Per span and coder: mean and 5th-percentile IoU of the fit, the share of boxes at IoU >= 0.5
and the mean IoU per class. ``--doc`` writes it into its own generated section (``window-fit-table``).

Usage::

    python tools/data/make_synthetic.py --out data/synth --seed 0
    python tools/analysis/plot_tube_fits.py --ann data/synth/annotations.pkl \\
        --out docs/figures/tube_fits.png
    python tools/analysis/plot_tube_fits.py --coder-table --doc docs/tube_parameterization.md
    python tools/analysis/plot_tube_fits.py --window-table --ann data/synth_long/annotations.pkl \\
        --doc docs/tube_parameterization.md
"""
import argparse
import math
import os
import os.path as osp
import sys
import textwrap
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import cfad_mm  # noqa: E402,F401
from cfad_mm.analysis.span_sweep import SpanSpec  # noqa: E402
from cfad_mm.datasets.annotation import load_annotations  # noqa: E402
from cfad_mm.datasets.synthetic_generator import MOTION_CLASSES, motion_trajectory  # noqa: E402
from cfad_mm.models.task_modules.spline_tube_coder import SplineTubeCoder  # noqa: E402
from cfad_mm.models.task_modules.tube_coder import BaseTubeCoder, PolyTubeCoder  # noqa: E402
from cfad_mm.structures.tube_ops import box_iou_aligned, mask_extents  # noqa: E402
from cfad_mm.utils.markdown import write_block  # noqa: E402

DOC_BLOCK = 'coder-table'  # the generated block of the --doc file (cfad_mm.utils.markdown)
WINDOW_BLOCK = 'window-fit-table'  # the block --window-table writes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Fit training tubes with PolyTubeCoder of several degrees: '
                                     'print the fit errors and plot one tube with its fits; or compare the '
                                     'tube coders (--coder-table, --window-table).')
    parser.add_argument(
        '--ann',
        default='data/synth/annotations.pkl',
        help='annotation pickle. Default: data/synth/annotations.pkl')
    parser.add_argument(
        '--out', default='docs/figures/tube_fits.png', help='output PNG. Default: docs/figures/tube_fits.png')
    parser.add_argument(
        '--degrees',
        type=int,
        nargs='+',
        default=[1, 2, 3, 5],
        help='polynomial degrees to compare. Default: 1 2 3 5')
    parser.add_argument(
        '--clip-len',
        type=int,
        default=16,
        help='clip length of the "clip" setting (the config\'s clip_len). Default: 16')
    parser.add_argument('--split', type=int, default=0, help='index of the train split. Default: 0')
    parser.add_argument(
        '--video',
        default=None,
        help='video of the plotted tube. Default: the video of the longest training tube '
        '(of --label)')
    parser.add_argument(
        '--tube',
        type=int,
        default=0,
        help='index of the plotted tube among the tubes of --video (in label order). '
        'Default: 0')
    parser.add_argument(
        '--label',
        default=None,
        help='without --video: plot the longest training tube of this class. Default: any class')
    table = parser.add_argument_group('coder table (--coder-table: PolyTubeCoder vs SplineTubeCoder on whole '
                                      'synthetic tubes generated in memory; --ann is not read)')
    table.add_argument('--coder-table', action='store_true', help='compare the tube coders (see above)')
    table.add_argument(
        '--lengths',
        type=int,
        nargs='+',
        default=[16, 32, 64, 128, 250],
        help='tube lengths in frames. Default: 16 32 64 128 250')
    table.add_argument(
        '--num-coeffs',
        type=int,
        nargs='+',
        default=[4, 8, 16, 32, 64],
        help='coefficients per box parameter D compared (>= 4). Default: 4 8 16 32 64')
    table.add_argument(
        '--knot-interval',
        type=float,
        default=4.0,
        help='knot interval of the second table (capacity growing with the length). Default: 4')
    table.add_argument(
        '--tubes-per-class', type=int, default=40, help='tubes per motion class and length. Default: 40')
    table.add_argument(
        '--num-classes', type=int, default=5, help='motion classes used (the first ones). Default: 5')
    table.add_argument('--size', default='128x96', help='frame size WxH. Default: 128x96')
    table.add_argument('--seed', type=int, default=0, help='random seed. Default: 0')
    table.add_argument(
        '--doc',
        default=None,
        help='Markdown file whose generated block (between <!-- coder-table:start --> and '
        '<!-- coder-table:end -->; window-fit-table with --window-table; appended when missing) receives '
        'the tables. Default: print only')
    windows = parser.add_argument_group('window table (--window-table: the best fit each coder allows to the '
                                        'tubes of --ann inside the windows a detector regresses)')
    windows.add_argument('--window-table', action='store_true', help='tabulate the window fits (see above)')
    windows.add_argument(
        '--windows',
        nargs='+',
        default=['16x1', '16x4', '16x8'],
        help='windows TxK (T frames sampled every K: spans of (T - 1) * K + 1 frames, every half span). '
        'Default: 16x1 16x4 16x8')
    windows.add_argument(
        '--knot-intervals',
        type=float,
        nargs='+',
        default=[16.0, 8.0, 4.0],
        help='knot intervals of the SplineTubeCoder rows (frames). Default: 16 8 4')
    args = parser.parse_args(argv)
    try:
        args.windows = [SpanSpec.parse(w) for w in args.windows]
    except ValueError as err:
        parser.error(f'--windows: {err}')
    if args.coder_table and args.window_table:
        parser.error('--coder-table and --window-table write different tables: give one of them')
    if not all(math.isfinite(k) and k > 0 for k in args.knot_intervals):
        parser.error(f'--knot-intervals must be finite and > 0, got {args.knot_intervals}')
    if not args.degrees or min(args.degrees) < 0:
        parser.error(f'--degrees must be non-negative integers, got {args.degrees}')
    if args.clip_len < 1:
        parser.error(f'--clip-len must be >= 1, got {args.clip_len}')
    if min(args.lengths) < 2:
        parser.error(f'--lengths must be >= 2, got {args.lengths}')
    if min(args.num_coeffs) < 4:
        parser.error(f'--num-coeffs must be >= 4 (a cubic spline has at least 4 control points), '
                     f'got {args.num_coeffs}')
    if args.knot_interval <= 0 or args.tubes_per_class < 1:
        parser.error('--knot-interval must be > 0 and --tubes-per-class >= 1')
    if not 1 <= args.num_classes <= len(MOTION_CLASSES):
        parser.error(f'--num-classes must be in 1..{len(MOTION_CLASSES)}, got {args.num_classes}')
    try:
        args.size = tuple(int(v) for v in args.size.lower().split('x'))
        assert len(args.size) == 2 and min(args.size) > 0
    except (ValueError, AssertionError):
        parser.error(f'--size must be WxH, got {args.size!r}')
    return args


def video_tubes(ann: dict, video: str) -> List[Tuple[int, np.ndarray]]:
    """``[(label, rows (n, 5) float64 frame (1-based), x1, y1, x2, y2), ...]`` of a video, in label order."""
    return [(label, np.asarray(rows, dtype=np.float64)) for label in sorted(ann['gttubes'][video])
            for rows in ann['gttubes'][video][label]]


def dense_window(rows: np.ndarray, first: int, length: int) -> Tuple[np.ndarray, np.ndarray]:
    """Dense ``boxes (length, 4)``, ``mask (length,)`` of a tube on 1-based frames ``first ..``."""
    boxes = np.zeros((length, 4))
    mask = np.zeros(length, dtype=bool)
    idx = rows[:, 0].astype(np.int64) - first
    sel = (idx >= 0) & (idx < length)
    boxes[idx[sel]] = rows[sel, 1:]
    mask[idx[sel]] = True
    return boxes, mask


def clip_starts(nframes: int, clip_len: int) -> List[int]:
    """0-based first frames of the sliding clips: stride ``clip_len // 2``, the last clip ends the video."""
    length = min(clip_len, nframes)
    starts = list(range(0, nframes - length + 1, max(1, length // 2)))
    if starts[-1] != nframes - length:
        starts.append(nframes - length)
    return starts


def collect_fit_sets(ann: dict, videos: List[str], clip_len: int) -> Dict[str, list]:
    """Groups ``(boxes (n, T, 4), masks (n, T), img_shape, labels (n,))`` to fit, per setting
    (``clip`` / ``whole``)."""
    sets = {'clip': [], 'whole': []}
    for video in videos:
        tubes = video_tubes(ann, video)
        img_shape = tuple(ann['resolution'][video])
        for label, rows in tubes:
            first, last = int(rows[0, 0]), int(rows[-1, 0])
            boxes, mask = dense_window(rows, first, last - first + 1)
            sets['whole'].append((boxes[None], mask[None], img_shape, np.array([label])))
        nframes = int(ann['nframes'][video])
        length = min(clip_len, nframes)
        for start in clip_starts(nframes, clip_len):
            dense = [dense_window(rows, start + 1, length) + (label, ) for label, rows in tubes]
            dense = [d for d in dense if d[1].any()]
            if dense:
                sets['clip'].append(
                    (np.stack([d[0] for d in dense]), np.stack([d[1] for d in dense]), img_shape,
                     np.array([d[2] for d in dense])))
    return sets


def training_videos(ann: dict, ann_path: str, split: int) -> List[str]:
    """The training videos of ``split`` (0-based) of the annotations ``ann`` read from ``ann_path``; a split
    out of range stops the tool with a message naming the file."""
    if not 0 <= split < len(ann['train_videos']):
        raise SystemExit(f'--split {split} out of range: {ann_path} has {len(ann["train_videos"])} splits')
    return list(ann['train_videos'][split])


def static_middle_fit(boxes: np.ndarray, masks: np.ndarray, img_shape=None) -> np.ndarray:
    """A trajectory that does not move: each tube ``boxes (n, T, 4)`` held at the box of its middle annotated
    frame (``masks (n, T)``) at every frame (the reference row of the window table)."""
    out = np.array(boxes, dtype=np.float64, copy=True)
    for i, mask in enumerate(masks):
        valid = np.nonzero(mask)[0]
        if len(valid):
            out[i] = boxes[i, valid[(len(valid) - 1) // 2]]
    return out


def fit_errors(coder, groups: list, num_labels: int) -> Dict[str, float]:
    """Mean |box - fit| per coordinate (pixels), mean and 5th-percentile IoU over every annotated box, the
    share of boxes fitted at IoU >= 0.5 and the mean IoU per label (``iou_per_label``, NaN for labels without
    boxes). ``coder``: a tube coder (its least-squares fit) or :func:`static_middle_fit`."""
    abs_err, ious, labels = [], [], []
    for boxes, masks, img_shape, tube_labels in groups:
        if isinstance(coder, BaseTubeCoder):
            coeffs, extents = coder.encode(boxes, masks, img_shape)
            fits, _ = coder.decode(coeffs, extents, img_shape, num_frames=boxes.shape[1])
        else:
            fits = coder(boxes, masks, img_shape)
        abs_err.append(np.abs(fits[masks] - boxes[masks]))
        ious.append(box_iou_aligned(fits[masks], boxes[masks]))
        labels.append(np.broadcast_to(tube_labels[:, None], masks.shape)[masks])
    abs_err, ious, labels = np.concatenate(abs_err), np.concatenate(ious), np.concatenate(labels)
    per_label = [ious[labels == k].mean() if (labels == k).any() else float('nan') for k in range(num_labels)]
    return dict(
        boxes=len(ious),
        x1=abs_err[:, 0].mean(),
        y1=abs_err[:, 1].mean(),
        x2=abs_err[:, 2].mean(),
        y2=abs_err[:, 3].mean(),
        mean=abs_err.mean(),
        iou=ious.mean(),
        iou_p5=np.percentile(ious, 5),
        iou_ge_half=(ious >= 0.5).mean(),
        iou_per_label=per_label)


def _box_curves(boxes: np.ndarray) -> Dict[str, np.ndarray]:
    return {
        'centre x': (boxes[..., 0] + boxes[..., 2]) / 2,
        'centre y': (boxes[..., 1] + boxes[..., 3]) / 2,
        'width': boxes[..., 2] - boxes[..., 0],
        'height': boxes[..., 3] - boxes[..., 1]
    }


def _plot_row(axes, boxes: np.ndarray, mask: np.ndarray, first: int, img_shape, degrees: List[int], colours,
              title: str) -> List[str]:
    """One row of panels (cx, cy, w, h vs frame): GT dots and the fits of every degree; returns IoU notes."""
    frames = np.arange(first, first + len(mask))
    first, last, _ = mask_extents(mask[None])
    fine = np.linspace(first[0], last[0], 200)
    gt = _box_curves(boxes)
    for ax, name in zip(axes, gt):
        ax.plot(frames[mask], gt[name][mask], 'k.', ms=5, label='ground truth')
        ax.set_title(f'{title}: {name} (px)', fontsize=10)
        ax.set_xlabel('video frame')
    notes = []
    for colour, degree in zip(colours, degrees):
        coder = PolyTubeCoder(degree=degree)
        coeffs, extents = coder.encode(boxes[None], mask[None], img_shape)
        curve, _ = coder.decode(coeffs, extents, img_shape, times=fine)
        at_frames, _ = coder.decode(coeffs, extents, img_shape, num_frames=len(mask))
        notes.append(f'K={degree}: {box_iou_aligned(at_frames[0][mask], boxes[mask]).mean():.3f}')
        for ax, (name, values) in zip(axes, _box_curves(curve[0]).items()):
            ax.plot(fine + first, values, '-', color=colour, lw=1.6, label=f'degree {degree}')
    return notes


def plot_tube(video: str, label: str, rows: np.ndarray, img_shape, nframes: int, clip_len: int,
              degrees: List[int], out: str) -> None:
    """Whole-tube fits (top row) and the fits in the sliding clip holding most of the tube (bottom row)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    colours = plt.get_cmap('viridis')(np.linspace(0, 0.9, len(degrees)))
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    first, last = int(rows[0, 0]), int(rows[-1, 0])
    boxes, mask = dense_window(rows, first, last - first + 1)
    whole = _plot_row(axes[0], boxes, mask, first, img_shape, degrees, colours, 'whole tube')
    length = min(clip_len, nframes)
    starts = clip_starts(nframes, clip_len)
    inside = [dense_window(rows, s + 1, length)[1].sum() for s in starts]
    clip_first = starts[int(np.argmax(inside))] + 1
    boxes, mask = dense_window(rows, clip_first, length)
    clip = _plot_row(axes[1], boxes, mask, clip_first, img_shape, degrees, colours, f'{length}-frame clip')
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f'PolyTubeCoder fits of {video} ({label}, frames {first}..{last}, {img_shape[1]}x{img_shape[0]} '
        f'px); mean IoU whole tube: {", ".join(whole)}; clip {clip_first}..{clip_first + length - 1}: '
        f'{", ".join(clip)}',
        fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def place_path(rng: np.random.Generator, dx: np.ndarray, dy: np.ndarray, w: np.ndarray, h: np.ndarray,
               width: int, height: int) -> np.ndarray:
    """Integer xyxy boxes ``(length, 4)`` of a centre path placed in the frame as the synthetic generator does
    (the path shrunk uniformly when it does not fit, a random offset keeping the sprite inside every frame),
    with the offset range clamped so that floating-point round-off cannot make it empty."""
    room_x, room_y = width - w.max(), height - h.max()
    span_x, span_y = float(np.ptp(dx)), float(np.ptp(dy))
    shrink = min(1.0, room_x / span_x if span_x > 0 else 1.0, room_y / span_y if span_y > 0 else 1.0)
    dx, dy = dx * shrink, dy * shrink
    lo_x, hi_x = w.max() / 2 - dx.min(), width - w.max() / 2 - dx.max()
    lo_y, hi_y = h.max() / 2 - dy.min(), height - h.max() / 2 - dy.max()
    off_x, off_y = rng.uniform(lo_x, max(lo_x, hi_x)), rng.uniform(lo_y, max(lo_y, hi_y))
    x1 = np.clip(np.round(off_x + dx - w / 2), 0, width - w)
    y1 = np.clip(np.round(off_y + dy - h / 2), 0, height - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float64)


def synthetic_whole_tubes(length: int, tubes_per_class: int, num_classes: int, size: Tuple[int, int],
                          seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Whole actor tubes of ``length`` frames from the synthetic generator's motion model, in memory.

    Tube ``i`` of class ``c`` is drawn from ``np.random.default_rng([seed, length, c, i])``: its centre path
    and sprite size by :func:`motion_trajectory`, its placement by :func:`place_path`.

    Returns:
        tuple: ``boxes`` float64 ``(n, length, 4)`` xyxy pixels and ``labels`` int ``(n,)``,
        ``n = num_classes * tubes_per_class``.
    """
    width, height = size
    boxes, labels = [], []
    for label in range(num_classes):
        for i in range(tubes_per_class):
            rng = np.random.default_rng([seed, length, label, i])
            dx, dy, w, h = motion_trajectory(MOTION_CLASSES[label], rng, length, width, height)
            boxes.append(place_path(rng, dx, dy, w, h, width, height))
            labels.append(label)
    return np.stack(boxes), np.array(labels)


def window_fit_table(ann_path: str, split: int, windows: Sequence[SpanSpec],
                     knot_intervals: Sequence[float]) -> List[str]:
    """The Markdown lines of the window-fit table: for every window span, the tubes of the training videos
    of ``split`` inside each window (every half span, the last one aligned to the video end; each tube
    over its extent inside the window) fitted with ``PolyTubeCoder(degree=3)`` and with
    ``SplineTubeCoder(max_frames=span, knot_interval=k)`` (least squares in the coders' normalised box
    parameters: the trajectory closest to the annotation that the coder represents; a detector's coarse and
    refine stages output trajectories of the same space); the first row of a span holds each tube at its
    box of its middle annotated frame (:func:`static_middle_fit`): a trajectory that does not move. Knot
    intervals of at least ``span - 1`` frames (one cubic segment) are skipped, with a note line."""
    ann = load_annotations(ann_path)
    videos = training_videos(ann, ann_path, split)
    labels = list(ann['labels'])
    lines = [
        f'Tubes of the {len(videos)} training videos of split {split} of `{ann_path}`, cut into the windows '
        'of each span (every half span, the last window aligned to the video end), each tube fitted over '
        'its extent inside the window; per-frame IoU of the fit vs the annotated box over every annotated '
        'box of every window (least-squares fits in the coders\' normalised box parameters). `D`: '
        'coefficients per box parameter; `static (middle box)`: each tube held at its box of its middle '
        'annotated frame in the window, a trajectory that does not move; the class columns are mean IoU.', '',
        '| window (T x K) | frames | coder | D | mean IoU | 5th pct IoU | boxes at IoU >= 0.5 | '
        + ' | '.join(labels) + ' |',
        '|---|---|---|---|---|---|---|' + '---|' * len(labels)
    ]
    notes = []
    for window in windows:
        name, span = window.name, window.span
        groups = collect_fit_sets(ann, videos, span)['clip']
        coders = [('static (middle box)', static_middle_fit),
                  ('PolyTubeCoder(degree=3)', PolyTubeCoder(degree=3))]
        coders += [(f'SplineTubeCoder(knot_interval={k:g})',
                    SplineTubeCoder(max_frames=span, knot_interval=k))
                   for k in knot_intervals if k < span - 1]
        skipped = [f'{k:g}' for k in knot_intervals if k >= span - 1]
        if skipped:  # one segment over the span: the cubic of the PolyTubeCoder row
            notes.append(f'{name}: knot interval {", ".join(skipped)} skipped (one cubic segment over the '
                         f'{span} frames: the PolyTubeCoder(degree=3) row).')
        for coder_name, coder in coders:
            e = fit_errors(coder, groups, len(labels))
            d = coder.num_coeffs if isinstance(coder, BaseTubeCoder) else 1
            lines.append(f'| {name} | {span} | {coder_name} | {d} | {e["iou"]:.3f} | '
                         f'{e["iou_p5"]:.3f} | {e["iou_ge_half"]:.3f} | '
                         + ' | '.join(f'{v:.3f}' for v in e['iou_per_label']) + ' |')
    return lines + ([''] + notes if notes else [])


def spline_with_num_coeffs(length: int, num_coeffs: int) -> SplineTubeCoder:
    """A ``SplineTubeCoder`` over a ``length``-frame window with exactly ``num_coeffs`` (>= 4) control points:
    ``num_coeffs - 3`` segments of ``(length - 1) / (num_coeffs - 3)`` frames."""
    coder = SplineTubeCoder(max_frames=length, knot_interval=(length - 1) / (num_coeffs - 3))
    assert coder.num_coeffs == num_coeffs, (length, num_coeffs, coder.num_coeffs)
    return coder


def whole_tube_iou(coder: BaseTubeCoder, boxes: np.ndarray, img_shape: Tuple[int, int]) -> float:
    """Mean over tubes and frames of the IoU between each box of dense whole tubes ``boxes (n, T, 4)`` and the
    box of the coder's fit at that frame."""
    masks = np.ones(boxes.shape[:2], dtype=bool)
    coeffs, extents = coder.encode(boxes, masks, img_shape)
    fits, _ = coder.decode(coeffs, extents, img_shape, num_frames=boxes.shape[1])
    return float(box_iou_aligned(fits, boxes).mean())


def coder_tables(lengths: Sequence[int], num_coeffs: Sequence[int], knot_interval: float,
                 tubes_per_class: int, num_classes: int, size: Tuple[int, int], seed: int) -> List[str]:
    """The Markdown lines of the two coder tables (equal ``D``; capacity growing with the length)."""
    img_shape = (size[1], size[0])
    tubes = {length: synthetic_whole_tubes(length, tubes_per_class, num_classes, size, seed)[0]
             for length in lengths}
    classes = ', '.join(MOTION_CLASSES[:num_classes])
    lines = [
        f'Whole tubes generated in memory by the synthetic motion model ({classes}; {tubes_per_class} tubes '
        f'per class and length, {size[0]}x{size[1]} px, seed {seed}), each fitted over its whole extent; '
        'mean IoU of the fitted box vs the ground-truth box over every frame of every tube.', '',
        'Equal numbers of coefficients per box parameter `D` (`PolyTubeCoder(degree=D - 1)` vs '
        '`SplineTubeCoder` with `D - 3` segments spread over the tube; `-`: more coefficients than frames):',
        '',
        '| tube frames | coder | ' + ' | '.join(f'D = {d}' for d in num_coeffs) + ' |',
        '|---|---|' + '---|' * len(num_coeffs)
    ]
    for length in lengths:
        for name, make in (('PolyTubeCoder', lambda d: PolyTubeCoder(degree=d - 1)),
                           ('SplineTubeCoder', lambda d: spline_with_num_coeffs(length, d))):
            cells = [f'{whole_tube_iou(make(d), tubes[length], img_shape):.3f}' if d <= length else '-'
                     for d in num_coeffs]
            lines.append(f'| {length} | {name} | ' + ' | '.join(cells) + ' |')
    lines += [
        '', 'Capacity growing with the length: '
        f'`SplineTubeCoder(max_frames=T, knot_interval={knot_interval:g})` (`D` in brackets) vs the default '
        '`PolyTubeCoder(degree=3)` (`D = 4`):', '',
        '| coder | ' + ' | '.join(f'{length} frames' for length in lengths) + ' |',
        '|---|' + '---|' * len(lengths)
    ]
    poly = [whole_tube_iou(PolyTubeCoder(degree=3), tubes[length], img_shape) for length in lengths]
    lines.append('| PolyTubeCoder, degree 3 | ' + ' | '.join(f'{v:.3f} (4)' for v in poly) + ' |')
    cells = []
    for length in lengths:
        coder = SplineTubeCoder(max_frames=length, knot_interval=knot_interval)
        cells.append(f'{whole_tube_iou(coder, tubes[length], img_shape):.3f} ({coder.num_coeffs})')
    lines.append(f'| SplineTubeCoder, knot_interval {knot_interval:g} | ' + ' | '.join(cells) + ' |')
    return lines


def write_doc_section(path: str, command: str, lines: List[str], block: str = DOC_BLOCK) -> None:
    """Set the generated ``block`` (:data:`DOC_BLOCK` by default) of a Markdown file to the command and
    ``lines`` (the block is appended to the file when it has none)."""
    prose = [line if line.startswith('|') else textwrap.fill(line, 110, break_long_words=False,
                                                             break_on_hyphens=False) for line in lines]
    try:
        write_block(path, block, '\n'.join(['', f'Written by `{command}`:', ''] + prose))
    except ValueError as err:
        raise SystemExit(f'{path}: {err}') from None


def run_coder_table(args, argv: Optional[List[str]] = None) -> None:
    start = time.time()
    if args.window_table:
        lines, block = window_fit_table(args.ann, args.split, args.windows, args.knot_intervals), WINDOW_BLOCK
    else:
        lines, block = coder_tables(args.lengths, args.num_coeffs, args.knot_interval, args.tubes_per_class,
                                    args.num_classes, args.size, args.seed), DOC_BLOCK
    print('\n'.join(lines))
    print(f'\n({time.time() - start:.1f} s)')
    if args.doc:
        given = sys.argv[1:] if argv is None else argv
        command = ' '.join(['python tools/analysis/plot_tube_fits.py'] + list(given))
        write_doc_section(args.doc, command, lines, block)
        print(f'wrote the tables into {args.doc}')


def main(argv=None):
    args = parse_args(argv)
    if args.coder_table or args.window_table:
        run_coder_table(args, argv)
        return
    ann = load_annotations(args.ann)
    videos = training_videos(ann, args.ann, args.split)
    sets = collect_fit_sets(ann, videos, args.clip_len)
    print(f'{args.ann}: {len(videos)} training videos, {len(sets["whole"])} tubes, '
          f'{len(sets["clip"])} clips of {args.clip_len} frames')
    header = ('| setting | degree | boxes | x1 err | y1 err | x2 err | y2 err | mean err (px) | mean IoU '
              '| 5th pct IoU |')
    print(header)
    print('|' + '---|' * (header.count('|') - 1))
    labels = list(ann['labels'])
    per_label = {}
    for setting in ('clip', 'whole'):
        for degree in args.degrees:
            e = fit_errors(PolyTubeCoder(degree=degree), sets[setting], len(labels))
            per_label[setting, degree] = e['iou_per_label']
            print(f'| {setting} | {degree} | {e["boxes"]} | {e["x1"]:.2f} | {e["y1"]:.2f} | {e["x2"]:.2f} | '
                  f'{e["y2"]:.2f} | {e["mean"]:.2f} | {e["iou"]:.3f} | {e["iou_p5"]:.3f} |')
    print()
    print('Mean IoU of the fit per class:')
    print('| setting | degree | ' + ' | '.join(labels) + ' |')
    print('|' + '---|' * (len(labels) + 2))
    for (setting, degree), values in per_label.items():
        print(f'| {setting} | {degree} | ' + ' | '.join(f'{v:.3f}' for v in values) + ' |')

    if args.video is None:
        if args.label is not None and args.label not in labels:
            raise SystemExit(f'--label {args.label!r} is not a class of {args.ann}: {labels}')
        candidates = [(len(rows), -v, -i, video, i) for v, video in enumerate(videos)
                      for i, (label, rows) in enumerate(video_tubes(ann, video))
                      if args.label is None or labels[label] == args.label]
        if not candidates:
            raise SystemExit(f'no training tube of class {args.label!r} in {args.ann}')
        video, tube = max(candidates)[3:]
    else:
        video, tube = args.video, args.tube
        if video not in ann['gttubes']:
            raise SystemExit(f'--video {video!r} is not in {args.ann}')
    tubes = video_tubes(ann, video)
    if not 0 <= tube < len(tubes):
        raise SystemExit(f'--tube {tube} out of range: {video} has {len(tubes)} tubes')
    label, rows = tubes[tube]
    plot_tube(video, labels[label], rows, tuple(ann['resolution'][video]), int(ann['nframes'][video]),
              args.clip_len, args.degrees, args.out)
    print(f'plotted tube {tube} of {video} ({ann["labels"][label]}, {len(rows)} frames) -> {args.out}')


if __name__ == '__main__':
    main()
