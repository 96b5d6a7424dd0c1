"""Write the synthetic tube dataset (mp4v videos + an ACT-format annotation pickle) and print a summary.

Usage::

    python tools/data/make_synthetic.py --out data/synth --seed 0
    python tools/data/make_synthetic.py --out data/synth_small --num-videos 20 --frames 32 --size 96x72
    python tools/data/make_synthetic.py --out data/synth7 --num-classes 7 --frames 40 80 --size 160
    python tools/data/make_synthetic.py --out data/synth_long --preset long --seed 0

``--frames F`` makes every video F frames long, ``--frames MIN MAX`` draws each length uniformly.
``--size WxH`` (or one int for a square frame). ``--preset long`` renders long surveillance-like videos
(crowds of similar-looking actors whose paths cross, occlusions, pans, noise) with its own defaults; an option
given explicitly overrides the preset's value. See docs/synthetic_dataset.md for what the videos show.
The written annotation file is validated with ``cfad_mm.datasets.annotation.load_annotations``.
"""
import argparse
import os
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.datasets.annotation import load_annotations, tube_statistics  # noqa: E402
from cfad_mm.datasets.synthetic_generator import (  # noqa: E402
    MOTION_CLASSES,
    PRESETS,
    count_crossings,
    make_synthetic_dataset,
    tube_crossings,
)


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


def _default(key: str, show=str) -> str:
    """The help text of an option set by the presets, e.g. ``'Default: 240 (long preset: 120)'``."""
    values = {name: show(preset[key]) for name, preset in PRESETS.items()}
    others = ', '.join(f'{name} preset: {value}' for name, value in values.items()
                       if name != 'default' and value != values['default'])
    return f'Default: {values["default"]}' + (f' ({others})' if others else '')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the synthetic spatio-temporal action detection dataset (classes defined by '
        f'motion: {", ".join(MOTION_CLASSES)}).')
    parser.add_argument('--out', default='data/synth', help='output folder. Default: data/synth')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='default',
                        help='default: short clips of 1-3 actors; long: 150-300-frame surveillance-like '
                        'videos with up to 8 similar-looking actors whose paths cross, occlusions of 10-30 '
                        'frames, camera pans, low contrast and noise. Sets the defaults of the options '
                        'below. Default: default')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0). Default: 0')
    parser.add_argument('--num-videos', type=int, default=None,
                        help=f'number of videos. {_default("num_videos")}')
    parser.add_argument('--frames', type=int, nargs='+', default=None, metavar='F',
                        help='frames per video: F, or MIN MAX for lengths drawn uniformly. '
                        + _default('frames', lambda f: ' '.join(map(str, f))))
    parser.add_argument('--size', type=parse_size, default=None,
                        help='frame size WxH, or one int for a square. '
                        + _default('size', lambda s: '%dx%d' % s))
    parser.add_argument('--num-classes', type=int, default=None,
                        help=f'number of motion classes, 1..{len(MOTION_CLASSES)}. {_default("num_classes")}')
    parser.add_argument('--test-ratio', type=float, default=None,
                        help=f'fraction of test videos. {_default("test_ratio")}')
    parser.add_argument('--fps', type=float, default=None,
                        help=f'frame rate of the videos. {_default("fps", lambda f: "%g" % f)}')
    parser.add_argument('--max-actors', type=int, default=None,
                        help=f'most actors per video. {_default("max_actors")}')
    parser.add_argument('--min-action-len', type=int, default=None,
                        help=f'shortest action in frames. {_default("min_action_len")}')
    parser.add_argument('--occluder-prob', type=float, default=None,
                        help=f'probability that a video has an occluder. {_default("occluder_prob")}')
    parser.add_argument('--log-interval', type=int, default=20,
                        help='print progress every N videos (0: never). Default: 20')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar over the videos')
    args = parser.parse_args(argv)
    if args.frames is not None and len(args.frames) not in (1, 2):
        parser.error(f'--frames takes F or MIN MAX, got {len(args.frames)} values')
    return args


def folder_size_mb(folder: str) -> float:
    """Total size of the files under ``folder`` in MB (10^6 bytes)."""
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(osp.getsize(osp.join(root, f)) for f in files)
    return total / 1e6


def crowd_statistics(ann: dict) -> dict:
    """Actors per video and crossings (:func:`~cfad_mm.datasets.synthetic_generator.tube_crossings`) of an
    annotation dict.

    Returns:
        dict: ``actors`` {min, mean, max} tubes per video, ``crossings`` (sum over videos and tube pairs),
        ``crossing_pairs`` (tube pairs that cross at least once), ``videos_with_crossing``.
    """
    actors, crossings, pairs, videos = [], 0, 0, 0
    for per_label in ann['gttubes'].values():
        tubes = [tube for label_tubes in per_label.values() for tube in label_tubes]
        actors.append(len(tubes))
        count = count_crossings(tubes)
        crossings += count
        videos += int(count > 0)
        pairs += sum(tube_crossings(tubes[i], tubes[j]) > 0 for i in range(len(tubes))
                     for j in range(i + 1, len(tubes)))
    actors = np.asarray(actors, dtype=np.float64)
    return dict(
        actors=dict(min=int(actors.min()), mean=round(float(actors.mean()), 2), max=int(actors.max())),
        crossings=int(crossings), crossing_pairs=int(pairs), videos_with_crossing=videos)


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    frames = args.frames if args.frames is not None else list(preset['frames'])
    frames = frames[0] if len(frames) == 1 else tuple(frames)
    size = args.size if args.size is not None else preset['size']
    tic = time.perf_counter()
    try:
        ann_file = make_synthetic_dataset(
            args.out, num_videos=args.num_videos, frames=frames, size=size, seed=args.seed,
            num_classes=args.num_classes, test_ratio=args.test_ratio, fps=args.fps,
            max_actors=args.max_actors, min_action_len=args.min_action_len, occluder_prob=args.occluder_prob,
            log_interval=args.log_interval, progress=not args.no_progress, preset=args.preset)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - tic
    ann = load_annotations(ann_file)
    stats = tube_statistics(ann)
    split = stats['splits'][0]
    print(f'annotations: {ann_file}')
    print(f'videos: {stats["num_videos"]} in {osp.join(args.out, "videos")} '
          f'({size[0]}x{size[1]} WxH, {stats["nframes"]["min"]}-{stats["nframes"]["max"]} frames, '
          f'{folder_size_mb(args.out):.1f} MB)')
    print(f'split: {split["train"]} train / {split["test"]} test videos')
    print(f'tubes: {stats["num_tubes"]}, length {stats["tube_length"]["min"]}-{stats["tube_length"]["max"]} '
          f'(mean {stats["tube_length"]["mean"]}) frames')
    for name, count in stats['tubes_per_class'].items():
        print(f'  {name:<12s} {count:4d} tubes')
    if args.preset != 'default':
        crowd = crowd_statistics(ann)
        print(f'actors per video: {crowd["actors"]["min"]}-{crowd["actors"]["max"]} '
              f'(mean {crowd["actors"]["mean"]})')
        print(f'crossings: {crowd["crossings"]} (tube centres swapping sides while both are annotated; '
              f'{crowd["crossing_pairs"]} tube pairs, {crowd["videos_with_crossing"]} videos)')
    print(f'elapsed: {elapsed:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
