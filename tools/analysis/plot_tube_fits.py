"""How well do degree-K Legendre trajectories (PolyTubeCoder) fit real ground-truth tubes?

Loads an annotation pickle (ACT format, e.g. the synthetic dataset), fits every training tube with
``PolyTubeCoder`` of each degree, prints the fit errors per degree and plots one tube with its fits.

Two settings are measured:

- ``clip``: what the detector actually regresses. Every training video is cut into clips of ``--clip-len``
  frames (sliding windows, stride ``--clip-len // 2``, the last window aligned to the video end); each tube is
  fitted over its extent inside the clip.
- ``whole``: each tube is fitted over its whole extent in the video (an upper bound on the difficulty).

Errors are averaged over every annotated (tube, frame) box: mean ``|box - fit|`` of each coordinate
``(x1, y1, x2, y2)`` in pixels, and the mean IoU of the fitted box vs the ground-truth box.

Usage::

    python tools/data/make_synthetic.py --out data/synth --seed 0
    python tools/analysis/plot_tube_fits.py --ann data/synth/annotations.pkl \\
        --out docs/figures/tube_fits.png
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Tuple

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import cfad_mm  # noqa: E402,F401
from cfad_mm.datasets.annotation import load_annotations  # noqa: E402
from cfad_mm.models.task_modules.tube_coder import PolyTubeCoder  # noqa: E402
from cfad_mm.structures.tube_ops import box_iou_aligned  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Fit training tubes with PolyTubeCoder of several degrees: '
                                     'print the fit errors and plot one tube with its fits.')
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
    args = parser.parse_args(argv)
    if not args.degrees or min(args.degrees) < 0:
        parser.error(f'--degrees must be non-negative integers, got {args.degrees}')
    if args.clip_len < 1:
        parser.error(f'--clip-len must be >= 1, got {args.clip_len}')
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


def fit_errors(coder: PolyTubeCoder, groups: list, num_labels: int) -> Dict[str, float]:
    """Mean |box - fit| per coordinate (pixels), mean and 5th-percentile IoU over every annotated box, and the
    mean IoU per label (``iou_per_label``, NaN for labels without boxes)."""
    abs_err, ious, labels = [], [], []
    for boxes, masks, img_shape, tube_labels in groups:
        coeffs, extents = coder.encode(boxes, masks, img_shape)
        fits, _ = coder.decode(coeffs, extents, img_shape, num_frames=boxes.shape[1])
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
    valid = np.flatnonzero(mask)
    fine = np.linspace(valid[0], valid[-1], 200)
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


def main(argv=None):
    args = parse_args(argv)
    ann = load_annotations(args.ann)
    if not 0 <= args.split < len(ann['train_videos']):
        raise SystemExit(
            f'--split {args.split} out of range: {args.ann} has {len(ann["train_videos"])} splits')
    videos = list(ann['train_videos'][args.split])
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
