"""Import tube annotations from CVAT (for video 1.1 XML), MOT-challenge text or an AVA-style CSV.

Usage::

    python tools/data/import_annotations.py --format cvat annotations.xml --videos data/mine/videos \
        --out data/mine/annotations.pkl
    python tools/data/import_annotations.py --format cvat cvat_xmls/ --videos data/mine/videos --out ann.pkl
    python tools/data/import_annotations.py --format mot MOT17/train --videos MOT17/train \
        --track-labels track_actions.json --out ann.pkl
    python tools/data/import_annotations.py --format ava-csv actions.csv --label-map labels.pbtxt \
        --videos data/mine/videos --out ann.pkl --test-list test_videos.txt

Writes the ACT annotation pickle read by ``TubeDataset`` (validated first; nothing is written on an error).
``nframes`` and ``resolution`` come from the media under ``--videos DIR``: a frame folder ``DIR/<video>/`` (or
``DIR/<video>/img1/``), else ``DIR/<video><ext>`` (``--ext``, default: try .mp4, .avi, .mkv).

Frame numbers: CVAT frames are 0-based (frame f -> f + 1); MOT frames are 1-based (kept); AVA timestamps t
become frame floor((t - offset) * fps + 0.5) + 1. The parsing, the checks and the conventions are those of
:mod:`cfad_mm.datasets.importers` (see its docstring and docs/datasets.md).

Exit status: 0 on success, 1 on malformed input (``error: <message>`` naming the file and the line or track),
2 on bad arguments.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.datasets.annotation import AnnotationError  # noqa: E402
from cfad_mm.datasets.importers import (  # noqa: E402
    FORMATS,
    AnnotationImportError,
    import_annotations,
    write_annotation_pickle,
)
from cfad_mm.utils.cli import add_box_tolerance_arg  # noqa: E402

EPILOG = """frame numbers: CVAT <box frame> is 0-based (frame f becomes f + 1); MOT frame is 1-based (kept);
AVA timestamp t (seconds) becomes frame floor((t - time_offset) * fps + 0.5) + 1.
tracks: CVAT and MOT tracks are split into one tube per run of consecutive visible frames (at outside="1"
boxes and at gaps) unless --keep-gaps; occluded boxes are kept; MOT rows with conf == 0 are skipped and
counted.
AVA: one tube per (video, person_id, action_id), split where keyframes are more than --max-gap-seconds apart.
labels: CVAT: declared in <meta>, in that order; MOT: --class-map order (ascending class), or --track-labels
(sorted by name), or the class numbers; AVA: --label-map order (ascending id) or the action ids."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Import CVAT / MOT / AVA-style CSV annotations into an ACT annotation pickle.',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'input',
        help='annotation file, or a folder (cvat: *.xml files, one per video; mot: '
        '<video>/gt/gt.txt files)')
    parser.add_argument('--format', required=True, choices=FORMATS, help='input format')
    parser.add_argument(
        '--videos',
        required=True,
        metavar='DIR',
        help='folder of the media: DIR/<video><ext> video files or DIR/<video>/ frame folders')
    parser.add_argument('--out', required=True, help='annotation pickle to write')
    parser.add_argument('--ext', help='video file extension (default: try .mp4, .avi, .mkv)')
    group = parser.add_argument_group('cvat and mot')
    group.add_argument(
        '--video-name',
        help='video name of a single input file (cvat default: <meta><source> '
        'without extension, else <meta><task><name>, else the file name; mot default: <video> of '
        '<video>/gt/gt.txt, else the file name)')
    group.add_argument(
        '--keep-gaps',
        action='store_true',
        help='one tube per track, with gaps, instead of one tube per visible run')
    group = parser.add_argument_group('mot')
    group.add_argument(
        '--class-map',
        help='MOT class -> label: a JSON file {"1": "walk", "2": null} (null: '
        'skip) or pairs "1:walk,2:run"')
    group.add_argument(
        '--track-labels',
        help='JSON file {"track id": "label"} or {"video": {"track id": '
        '"label"}} (null: skip the track)')
    group = parser.add_argument_group('ava-csv')
    group.add_argument('--label-map', help='AVA pbtxt (item { name: "..." id: N }) or id,name CSV')
    group.add_argument('--fps', type=float, help='frame rate of every video (default: read from each video)')
    group.add_argument(
        '--max-gap-seconds',
        type=float,
        default=1.5,
        help='keyframes farther apart split a tube. Default: 1.5')
    group.add_argument(
        '--time-offset',
        type=float,
        default=0.0,
        help='seconds subtracted from the timestamps (AVA 15-min clips: 900). Default: 0')
    group = parser.add_argument_group('split (one train / test split)')
    group.add_argument(
        '--test-ratio',
        type=float,
        default=0.2,
        help='fraction of test videos (sorted names shuffled with --seed). Default: 0.2')
    group.add_argument('--seed', type=int, default=0, help='seed of the split shuffle. Default: 0')
    group.add_argument('--test-list', metavar='FILE', help='test videos, one a line (others: train)')
    group.add_argument('--train-list', metavar='FILE', help='train videos, one a line (others: test)')
    add_box_tolerance_arg(parser)
    args = parser.parse_args(argv)
    only = {
        'cvat': ('class_map', 'track_labels', 'label_map', 'fps'),
        'mot': ('label_map', 'fps'),
        'ava-csv': ('video_name', 'keep_gaps', 'class_map', 'track_labels')
    }
    for name in only[args.format]:
        if getattr(args, name):
            parser.error(f'--{name.replace("_", "-")} does not apply to --format {args.format}')
    if args.class_map and args.track_labels:
        parser.error('give --class-map or --track-labels, not both')
    if osp.exists(args.out) and osp.exists(args.input) and osp.samefile(args.out, args.input):
        parser.error(f'--out {args.out} is the input file; choose another output path')
    return args


# the options passed to the importer of each format, and to every importer
FORMAT_OPTIONS = {
    'cvat': ('video_name', 'keep_gaps'),
    'mot': ('video_name', 'keep_gaps', 'class_map', 'track_labels'),
    'ava-csv': ('label_map', 'fps', 'max_gap_seconds', 'time_offset'),
}
COMMON_OPTIONS = ('ext', 'test_ratio', 'seed', 'test_list', 'train_list', 'box_tolerance')


def main(argv=None) -> int:
    args = parse_args(argv)
    names = FORMAT_OPTIONS[args.format] + COMMON_OPTIONS
    try:
        ann, summary = import_annotations(args.format, args.input, args.videos,
                                          **{name: getattr(args, name) for name in names})
    except (AnnotationImportError, AnnotationError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    try:
        write_annotation_pickle(ann, args.out)
    except OSError as err:
        print(f'error: cannot write {args.out}: {err}', file=sys.stderr)
        return 1
    print(f"imported {summary['videos']} videos, {len(ann['labels'])} labels, {summary['tubes']} tubes "
          f"from {len(summary['inputs'])} {args.format} file(s)")
    for line in summary['skipped']:
        print(f'skipped: {line}')
    for line in summary['notes']:
        print(f'note: {line}')
    print(f"split: {summary['train']} train videos, {summary['test']} test videos")
    width = max(len(name) for name in summary['tubes_per_label'])
    print('tubes per label:')
    for name, count in summary['tubes_per_label'].items():
        print(f'  {name:<{width}}  {count}')
    print(f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
