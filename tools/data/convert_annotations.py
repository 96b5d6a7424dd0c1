"""Validate a tube annotation file, print its statistics and optionally write a JSON copy.

Usage::

    python tools/data/convert_annotations.py data/jhmdb/JHMDB-GT.pkl
    python tools/data/convert_annotations.py data/synth/annotations.pkl --json data/synth/annotations.json
    python tools/data/convert_annotations.py data/ucf101_24/UCF101v2-GT.pkl \
        --check-media data/ucf101_24/rgb-images --source frames --filename-tmpl '{:05d}.jpg'

The input is a pickle or, if its name ends with ``.json``, a JSON copy written by this tool (both are read by
:func:`cfad_mm.datasets.annotation.load_annotations`, which datasets use too). The JSON copy has the same keys
as the pickle; label keys become strings, tube arrays become lists of ``[frame, x1, y1, x2, y2]`` rows and
resolutions ``[height, width]``. Coordinates are written exactly (every digit of their ``float32`` value), so
the JSON copy loads to the same arrays as the pickle. ``--json`` refuses to overwrite the input file (also
through a symlink or a hard link) and an output name not ending with ``.json``: exit status 2, nothing
written.

``--check-media`` checks that every video of every split has its media: a video file ``{DIR}/{video}{ext}``
with at least ``nframes`` frames (read with decord), or a frame folder ``{DIR}/{video}/`` holding the files
``filename_tmpl.format(i)`` for i = start .. start + nframes - 1. Exit status 1 on any problem.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.datasets.annotation import (  # noqa: E402
    DEFAULT_MAX_NFRAMES,
    DEFAULT_MAX_SIDE,
    AnnotationError,
    load_annotations,
    to_json_dict,
    tube_statistics,
)
from cfad_mm.utils.cli import add_box_tolerance_arg  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Validate a tube annotation file (ACT format pickle, or its '
                                     'JSON copy), print statistics, write a JSON copy.')
    parser.add_argument('ann_file', help='annotation pickle, or a JSON copy (name ending with .json)')
    parser.add_argument('--json', metavar='OUT', help='write a JSON copy to OUT (not the input file)')
    parser.add_argument(
        '--check-media',
        metavar='DATA_PREFIX',
        help='folder holding the video files or frame folders; check each video is there')
    parser.add_argument(
        '--source',
        choices=('auto', 'video', 'frames'),
        default='auto',
        help='media kind for --check-media (auto: a frame folder if one exists, else a video '
        'file). Default: auto')
    parser.add_argument('--ext', default='.mp4', help='video file extension. Default: .mp4')
    parser.add_argument(
        '--filename-tmpl', default='{:05d}.jpg', help='frame file template. Default: {:05d}.jpg')
    parser.add_argument(
        '--frame-start-index', type=int, default=1, help='file number of the first frame. Default: 1')
    add_box_tolerance_arg(parser)
    parser.add_argument(
        '--max-nframes',
        type=int,
        default=DEFAULT_MAX_NFRAMES,
        help=f'largest accepted nframes of a video. Default: {DEFAULT_MAX_NFRAMES}')
    parser.add_argument(
        '--max-side',
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f'largest accepted resolution height or width in pixels. Default: {DEFAULT_MAX_SIDE}')
    args = parser.parse_args(argv)
    if args.json and _same_file(args.json, args.ann_file):
        parser.error(f'--json {args.json} would overwrite the input annotation file {args.ann_file} (same '
                     f'file {osp.realpath(args.ann_file)}); choose another output path, nothing was written')
    if args.json and not args.json.lower().endswith('.json'):
        parser.error(f'--json {args.json}: the name of the JSON copy must end with .json (annotation files '
                     'are read as JSON by that extension, as pickles otherwise); nothing was written')
    return args


def _same_file(out: str, ann_file: str) -> bool:
    """Whether writing ``out`` would overwrite ``ann_file``: same real path (symlinks resolved) or, when both
    exist, the same file (hard links)."""
    if osp.realpath(out) == osp.realpath(ann_file):
        return True
    try:
        return osp.samefile(out, ann_file)
    except OSError:  # one of them does not exist
        return False


def check_media(ann: dict, prefix: str, source: str, ext: str, tmpl: str, start: int) -> list:
    """Problems with the media of every video of every split (an empty list when all is well)."""
    videos = sorted({v for splits in ('train_videos', 'test_videos') for s in ann[splits] for v in s})
    problems = []
    for video in videos:
        nframes = ann['nframes'][video]
        folder = osp.join(prefix, video)
        kind = source
        if kind == 'auto':
            kind = 'frames' if osp.isdir(folder) else 'video'
        if kind == 'frames':
            if not osp.isdir(folder):
                problems.append(f'{video}: frame folder not found: {folder}')
                continue
            missing = [
                i for i in range(start, start + nframes) if not osp.isfile(osp.join(folder, tmpl.format(i)))
            ]
            if missing:
                problems.append(
                    f'{video}: {len(missing)} of {nframes} frame files missing in {folder}, first '
                    f'{tmpl.format(missing[0])}')
            continue
        path = folder + ext
        if not osp.isfile(path):
            problems.append(f'{video}: video file not found: {path}')
            continue
        try:
            import decord
            length = len(decord.VideoReader(path, num_threads=1))
        except Exception as err:  # unreadable file
            problems.append(f'{video}: cannot read {path}: {err}')
            continue
        if length < nframes:
            problems.append(f'{video}: {path} has {length} frames but the annotation says nframes={nframes}')
    return problems


def format_statistics(stats: dict) -> str:
    lines = [f"videos: {stats['num_videos']}, classes: {stats['num_classes']}, tubes: {stats['num_tubes']}"]
    for i, split in enumerate(stats['splits']):
        lines.append(f"split {i}: {split['train']} train videos, {split['test']} test videos")
    tl, nf = stats['tube_length'], stats['nframes']
    lines.append(f"tube length (annotated frames): min {tl['min']}, mean {tl['mean']}, max {tl['max']}")
    lines.append(f"video length (frames): min {nf['min']}, mean {nf['mean']}, max {nf['max']}")
    lines.append('resolutions (HxW: videos): ' + ', '.join(f'{k}: {v}'
                                                           for k, v in sorted(stats['resolutions'].items())))
    if stats['videos_without_tubes']:
        lines.append(f"videos without tubes: {len(stats['videos_without_tubes'])}")
    lines.append('tubes per class:')
    width = max(len(name) for name in stats['tubes_per_class'])
    for name, count in stats['tubes_per_class'].items():
        lines.append(f'  {name:<{width}}  {count}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        ann = load_annotations(
            args.ann_file,
            box_tolerance=args.box_tolerance,
            max_nframes=args.max_nframes,
            max_side=args.max_side)
    except (AnnotationError, FileNotFoundError) as err:
        print(f'ERROR: {err}', file=sys.stderr)
        return 1
    print(f'{args.ann_file}: valid')
    print(format_statistics(tube_statistics(ann)))
    status = 0
    if args.check_media:
        problems = check_media(ann, args.check_media, args.source, args.ext, args.filename_tmpl,
                               args.frame_start_index)
        if problems:
            print(f'media check: {len(problems)} problem(s)', file=sys.stderr)
            for problem in problems:
                print(f'  {problem}', file=sys.stderr)
            status = 1
        else:
            print(f'media check: all videos found under {args.check_media}')
    if args.json:
        try:
            with open(args.json, 'w', encoding='utf-8') as f:
                json.dump(to_json_dict(ann), f, ensure_ascii=False, allow_nan=False)
        except OSError as err:
            print(f'ERROR: cannot write the JSON copy {args.json}: {err}', file=sys.stderr)
            return 1
        print(f'JSON copy written to {args.json}')
    return status


if __name__ == '__main__':
    sys.exit(main())
