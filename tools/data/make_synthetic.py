"""Write the synthetic tube dataset (mp4v videos + an ACT-format annotation pickle) and print a summary.

Usage::

    python tools/data/make_synthetic.py --out data/synth --seed 0
    python tools/data/make_synthetic.py --out data/synth_small --num-videos 20 --frames 32 --size 96x72
    python tools/data/make_synthetic.py --out data/synth7 --num-classes 7 --frames 40 80 --size 160

``--frames F`` makes every video F frames long, ``--frames MIN MAX`` draws each length uniformly.
``--size WxH`` (or one int for a square frame). See docs/synthetic_dataset.md for what the videos show.
The written annotation file is validated with ``cfad_mm.datasets.annotation.load_annotations``.
"""
import argparse
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.datasets.annotation import load_annotations, tube_statistics  # noqa: E402
from cfad_mm.datasets.synthetic_generator import MOTION_CLASSES, make_synthetic_dataset  # noqa: E402


def parse_size(text: str):
    """``'128x96'`` -> (128, 96); ``'112'`` -> (112, 112)."""
    parts = text.lower().split('x')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f'--size must be WxH or one int, got {text!r}') from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f'--size must be WxH or one int, got {text!r}')
    return tuple(values)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the synthetic spatio-temporal action detection dataset (classes defined by '
        f'motion: {", ".join(MOTION_CLASSES)}).')
    parser.add_argument('--out', default='data/synth', help='output folder. Default: data/synth')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0). Default: 0')
    parser.add_argument('--num-videos', type=int, default=240, help='number of videos. Default: 240')
    parser.add_argument('--frames', type=int, nargs='+', default=[40, 64], metavar='F',
                        help='frames per video: F, or MIN MAX for lengths drawn uniformly. Default: 40 64')
    parser.add_argument('--size', type=parse_size, default=(128, 96),
                        help='frame size WxH, or one int for a square. Default: 128x96')
    parser.add_argument('--num-classes', type=int, default=5,
                        help=f'number of motion classes, 1..{len(MOTION_CLASSES)}. Default: 5')
    parser.add_argument('--test-ratio', type=float, default=0.25,
                        help='fraction of test videos. Default: 0.25')
    parser.add_argument('--fps', type=float, default=10.0, help='frame rate of the videos. Default: 10')
    parser.add_argument('--max-actors', type=int, default=3, help='most actors per video. Default: 3')
    parser.add_argument('--min-action-len', type=int, default=12,
                        help='shortest action in frames. Default: 12')
    parser.add_argument('--occluder-prob', type=float, default=0.5,
                        help='probability that a video has an occluder. Default: 0.5')
    parser.add_argument('--log-interval', type=int, default=20,
                        help='print progress every N videos (0: never). Default: 20')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar over the videos')
    args = parser.parse_args(argv)
    if len(args.frames) not in (1, 2):
        parser.error(f'--frames takes F or MIN MAX, got {len(args.frames)} values')
    return args


def folder_size_mb(folder: str) -> float:
    """Total size of the files under ``folder`` in MB (10^6 bytes)."""
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(osp.getsize(osp.join(root, f)) for f in files)
    return total / 1e6


def main(argv=None) -> int:
    args = parse_args(argv)
    frames = args.frames[0] if len(args.frames) == 1 else tuple(args.frames)
    tic = time.perf_counter()
    try:
        ann_file = make_synthetic_dataset(
            args.out, num_videos=args.num_videos, frames=frames, size=args.size, seed=args.seed,
            num_classes=args.num_classes, test_ratio=args.test_ratio, fps=args.fps,
            max_actors=args.max_actors, min_action_len=args.min_action_len, occluder_prob=args.occluder_prob,
            log_interval=args.log_interval, progress=not args.no_progress)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - tic
    stats = tube_statistics(load_annotations(ann_file))
    split = stats['splits'][0]
    print(f'annotations: {ann_file}')
    print(f'videos: {stats["num_videos"]} in {osp.join(args.out, "videos")} '
          f'({args.size[0]}x{args.size[1]} WxH, {stats["nframes"]["min"]}-{stats["nframes"]["max"]} frames, '
          f'{folder_size_mb(args.out):.1f} MB)')
    print(f'split: {split["train"]} train / {split["test"]} test videos')
    print(f'tubes: {stats["num_tubes"]}, length {stats["tube_length"]["min"]}-{stats["tube_length"]["max"]} '
          f'(mean {stats["tube_length"]["mean"]}) frames')
    for name, count in stats['tubes_per_class'].items():
        print(f'  {name:<12s} {count:4d} tubes')
    print(f'elapsed: {elapsed:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
