"""How close the tubes of each stage of a trained CFAD come to the ground truth of the test windows.

For every GT tube of every test window: the best tube of each stage (coarse, moved onto the actors, followed,
after each refine pass), i.e. the one with the highest mean per-frame IoU over the GT tube's annotated frames,
before any score threshold or NMS; plus a reference row holding each GT tube at its box of its middle
annotated frame and three ceilings of the model's representation (the GT as a trajectory of its tube coder,
the GT known only at the feature steps or at the sampled input frames and interpolated). Prints the mean
per-frame IoU and the share of GT frames at IoU >= 0.5 per stage, and that share per class (definitions:
:mod:`cfad_mm.analysis.stage_reach`).

Usage::

    python tools/analysis/stage_reach.py CONFIG CHECKPOINT [--max-windows 200] [--json out.json]
    python tools/analysis/stage_reach.py CONFIG CHECKPOINT --doc docs/results.md --block stage-reach-16x4
    python tools/analysis/stage_reach.py CONFIG   # no checkpoint: the reference and ceiling rows only

``--doc`` writes the tables, with the command and the settings, into block ``--block`` of a markdown file.
"""
import argparse
import datetime
import json
import os.path as osp
import platform
import shlex
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from cfad_mm.analysis.stage_reach import (  # noqa: E402
    format_class_reach_table,
    format_motion_error_table,
    format_reach_table,
    summarize_motion_errors,
    summarize_reach,
    window_stage_reach,
)
from cfad_mm.apis import init_detector  # noqa: E402
from cfad_mm.utils.markdown import write_block  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Reach of the tubes of each CFAD stage on the test windows: '
                                'the best tube per GT tube (mean per-frame IoU, share of GT frames at IoU '
                                '>= 0.5)')
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='trained checkpoint; without it only the reference and the ceiling rows (they need '
                   "the config's tube coder and feature steps, no trained weights)")
    p.add_argument('--max-windows', type=int, default=0,
                   help='test windows used, in dataset order (0: all) [0]')
    p.add_argument('--batch-size', type=int, default=4, help='windows per forward pass [4]')
    p.add_argument('--json', default=None, help='write the summary as JSON here')
    p.add_argument('--doc', default=None, help='markdown file to write the table into (block --block)')
    p.add_argument('--block', default='stage-reach', help='block name in --doc [stage-reach]')
    p.add_argument('--title', default=None, help="the block's heading [the config's file name]")
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='config overrides (as tools/test.py), e.g. model.test_cfg.topk=20')
    p.add_argument('--unsafe-load', action='store_true',
                   help='load the checkpoint with full pickle semantics: ONLY for files you trust')
    args = p.parse_args(argv)
    if args.max_windows < 0 or args.batch_size < 1:
        p.error(f'--max-windows must be >= 0 and --batch-size >= 1, got {args.max_windows} and '
                f'{args.batch_size}')
    if args.doc and not osp.isfile(args.doc):
        p.error(f'--doc {args.doc}: no such file')
    for path in [args.config] + ([args.checkpoint] if args.checkpoint else []):
        if not osp.isfile(path):
            p.error(f'{path}: no such file')
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = init_detector(cfg, args.checkpoint, 'cuda:0' if torch.cuda.is_available() else 'cpu',
                          unsafe_load=args.unsafe_load)
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(batch_size=args.batch_size, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    total = len(loader.dataset) if not args.max_windows else min(args.max_windows, len(loader.dataset))
    per_stage, labels, motion, seen, start = {}, [], [], 0, time.time()
    for batch in loader:
        if seen >= total:
            break
        keep = min(total - seen, len(batch['inputs']))
        batch = dict(inputs=batch['inputs'][:keep], data_samples=batch['data_samples'][:keep])
        data = model.data_preprocessor(batch, False)
        for name, ious in window_stage_reach(model, data['inputs'], data['data_samples'], labels,
                                             with_stages=args.checkpoint is not None, motion=motion).items():
            per_stage.setdefault(name, []).extend(ious)
        seen += keep
        print(f'\rwindows {seen}/{total} ({time.time() - start:.0f} s)', end='', file=sys.stderr, flush=True)
    print(file=sys.stderr)
    summary = summarize_reach(per_stage, labels)
    table = format_reach_table(summary)
    if labels:
        table += ('\n\nShare of GT frames at IoU >= 0.5 per class of the GT tube:\n\n'
                  + format_class_reach_table(summary, loader.dataset.metainfo.get('classes')))
    motion_summary = summarize_motion_errors(motion)
    if motion_summary is not None:
        table += ("\n\nThe actor head's learned displacements at the GT centres (every map, every GT box "
                  'there, each side):\n\n' + format_motion_error_table(motion_summary))
    print(table)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint, windows=seen, stages=summary,
                           motion=motion_summary), f, indent=2)
    if args.doc:
        command = 'python tools/analysis/stage_reach.py ' + shlex.join(sys.argv[1:] if argv is None else argv)
        ds = cfg.test_dataloader.dataset
        if args.checkpoint:
            stages_text = (f"the model's top {model.test_cfg['topk']} coarse tubes per window and what "
                           'each stage makes of them; per GT tube of a window its best tube of each stage '
                           '(highest mean per-frame IoU over its annotated frames, 0 outside the tube), '
                           'whatever its score or class. ')
        else:
            stages_text = 'no checkpoint: the reference and ceiling rows only. '
        body = (f'## Reach of each stage: {args.title or osp.basename(args.config)}\n\n'
                f'Produced by `{command}` on {datetime.date.today()} ({platform.machine()}, torch '
                f'{torch.__version__}): {seen} test windows of `{ds.ann_file}` (windows of '
                f"{ds.get('clip_len')} frames every {ds.get('frame_interval', 1)}), " + stages_text
                + 'The ceiling rows need no trained weights, only the tube coder '
                f'(`{model.coder!r}`) and the feature steps of the config: the GT tube as a trajectory of '
                'the coder, or known only at the frames of the feature steps or at the sampled input frames '
                'and interpolated between them.\n\n' + table + '\n')
        write_block(args.doc, args.block, body)
        print(f'wrote block {args.block} of {args.doc}')


if __name__ == '__main__':
    main()
