"""How fast the annotated actors of a dataset move, and whether a window that sees one frame in k can still
tell them apart by position: the ground truth only, no model (definitions: :mod:`cfad_mm.analysis.gt_motion`).

Prints the centre motion per frame and the distance to the nearest other actor (pixels and box heights), and,
per gap k, the share of steps where the nearest box k frames later is the actor's own, predicted from perfect
boxes by position or by constant velocity. Use it to choose ``frame_interval`` for a dataset: where that share
drops well below 100 %, following actors between sampled frames needs more than their positions.

Usage::

    python tools/analysis/gt_motion.py data/synth_long/annotations.pkl
    python tools/analysis/gt_motion.py ANN --subset all --gaps 1 2 3 4 6 8 --json work_dirs/motion.json
    python tools/analysis/gt_motion.py ANN --doc docs/synthetic_dataset.md --block gt-motion-long \
        --title 'long preset'
"""
import argparse
import datetime
import json
import os.path as osp
import platform
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.analysis.gt_motion import format_motion_tables, motion_statistics  # noqa: E402
from cfad_mm.datasets.annotation import annotation_summary, densify_tubes, load_annotations  # noqa: E402
from cfad_mm.utils.markdown import cited_command, write_block  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Motion of the annotated actors and their association across k '
                                'frames by position (ground truth only)')
    p.add_argument('ann_file', help='annotation file (.pkl or .json, the format of docs/datasets.md)')
    p.add_argument('--split', type=int, default=0, help='0-based split index (not with --subset all) [0]')
    p.add_argument('--subset', choices=['test', 'train', 'all'], default='test',
                   help="videos: the split's test or train videos, or every video of the file [test]")
    p.add_argument('--gaps', type=int, nargs='+', default=[1, 2, 4, 8],
                   help='frame gaps k of the association table [1 2 4 8]')
    p.add_argument('--json', default=None, help='write the statistics as JSON here')
    p.add_argument('--doc', default=None, help='markdown file to write the tables into (block --block)')
    p.add_argument('--block', default='gt-motion', help='block name in --doc [gt-motion]')
    p.add_argument('--title', default=None, help="the block's heading [the annotation file's name]")
    args = p.parse_args(argv)
    if any(g < 1 for g in args.gaps):
        p.error(f'--gaps must all be >= 1, got {args.gaps}')
    if not osp.isfile(args.ann_file):
        p.error(f'{args.ann_file}: no such file')
    if args.doc and not osp.isfile(args.doc):
        p.error(f'--doc {args.doc}: no such file')
    return args


def main(argv=None):
    args = parse_args(argv)
    ann = load_annotations(args.ann_file)
    if args.subset == 'all':
        videos = sorted(ann['nframes'])
    else:
        splits = ann[f'{args.subset}_videos']
        if not 0 <= args.split < len(splits):
            sys.exit(f'error: {args.ann_file} has {len(splits)} split(s); --split {args.split} is out of '
                     'range')
        videos = list(splits[args.split])
    if not videos:
        sys.exit(f'error: {args.ann_file}: no {args.subset} videos in split {args.split}')
    dense = (densify_tubes(ann['gttubes'].get(v, {}), ann['nframes'][v])[:2] for v in videos)
    stats = motion_statistics(dense, args.gaps)
    tables = format_motion_tables(stats)
    print(tables)
    if args.json:
        with open(args.json, 'w') as f:
            where = dict(subset='all') if args.subset == 'all' else dict(split=args.split, subset=args.subset)
            json.dump(dict(ann_file=args.ann_file, **where, **stats), f, indent=2)
    if args.doc:
        command = cited_command('tools/analysis/gt_motion.py', sys.argv[1:] if argv is None else argv)
        subset = 'all videos' if args.subset == 'all' else f'the {args.subset} videos of split {args.split}'
        body = (f'### Motion of the annotated actors: {args.title or osp.basename(args.ann_file)}\n\n'
                f'Produced by `{command}` on {datetime.date.today()} ({platform.machine()}): '
                f'{stats["videos"]} videos ({subset}) of {annotation_summary(args.ann_file)}; ground truth '
                'only, pixels of the annotation. The association table predicts where each actor is k frames '
                'later from its perfect boxes and checks that the nearest box there is its own.\n\n'
                + tables + '\n')
        write_block(args.doc, args.block, body)
        print(f'wrote block {args.block} of {args.doc}')


if __name__ == '__main__':
    main()
