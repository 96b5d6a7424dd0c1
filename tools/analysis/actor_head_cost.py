"""Where the work of the actor head (StepActorHead) goes: multiply-adds and time per map of each of its parts,
against the backbone's per input frame.

Builds the config's model with random weights (the counts and the times do not depend on the weights), feeds
``--windows`` random windows of the config's test ``clip_len`` frames at ``--input-size`` and prints, for each
top-level part of ``model.roi_head.actor_head`` (shared convs, 2-D branch, lateral projection, fusion conv,
outputs), its multiply-adds per map (one map per feature step, or per input frame with ``at_input_frames``);
then the head's and the backbone's multiply-adds and the median wall clock of their forward passes over
``--repeats`` runs, the head per map and the backbone per input frame.

Usage::

    python tools/analysis/actor_head_cost.py configs/cfad/cfad_r3d-18-tiny_synthetic-long_32x4.py
    python tools/analysis/actor_head_cost.py CONFIG --cfg-options model.roi_head.actor_head.fusion=add \\
        model.roi_head.actor_head.at_input_frames=True --doc docs/benchmarks.md --block actor-head-cost
"""
import argparse
import datetime
import os.path as osp
import platform
import statistics
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.analysis.head_cost import count_multiply_adds  # noqa: E402
from cfad_mm.analysis.speed import build_cfad, time_runs  # noqa: E402
from cfad_mm.utils.markdown import cited_command, write_block  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Multiply-adds and time per map of the parts of the actor head, '
                                "against the backbone's per input frame (random weights)")
    p.add_argument('config')
    p.add_argument('--input-size', type=int, nargs=2, default=(96, 128), metavar=('H', 'W'),
                   help='network input height and width [96 128]')
    p.add_argument('--windows', type=int, default=4, help='windows per forward pass [4]')
    p.add_argument('--repeats', type=int, default=10, help='timed forward passes (after 2 warm-ups) [10]')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='config overrides, e.g. model.roi_head.actor_head.fusion=add')
    p.add_argument('--doc', default=None, help='markdown file to write the tables into (block --block)')
    p.add_argument('--block', default='actor-head-cost', help='block name in --doc [actor-head-cost]')
    args = p.parse_args(argv)
    if args.windows < 1 or args.repeats < 1 or min(args.input_size) < 8:
        p.error(f'--windows and --repeats must be >= 1 and --input-size at least 8 x 8, got {args.windows}, '
                f'{args.repeats} and {args.input_size}')
    if not osp.isfile(args.config):
        p.error(f'{args.config}: no such file')
    if args.doc and not osp.isfile(args.doc):
        p.error(f'--doc {args.doc}: no such file')
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not cfg.model.get('roi_head', {}).get('actor_head'):
        sys.exit(f'{args.config}: model.roi_head.actor_head is not set; this config has no actor head')
    h, w = args.input_size
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = build_cfad(cfg, (h, w), quiet=True)
    head = model.roi_head.actor_head
    t = int(cfg.test_dataloader.dataset.get('clip_len', 16))
    k = int(cfg.test_dataloader.dataset.get('frame_interval', 1))
    span = (t - 1) * k + 1
    torch.manual_seed(0)
    frames = torch.randn(args.windows, 3, t, h, w)
    with torch.no_grad():
        feats = model.extract_feat(frames)
        backbone = count_multiply_adds(model, lambda: model.extract_feat(frames))
        parts = count_multiply_adds(head, lambda: head(feats, frames, span))
        maps = head(feats, frames, span)[0].shape[1]
        t_backbone = time_runs(lambda: model.extract_feat(frames), args.repeats, warmup=2)
        t_head = time_runs(lambda: head(feats, frames, span), args.repeats, warmup=2)
    n_maps, n_frames = args.windows * maps, args.windows * t
    groups = {}
    for name, macs in parts.items():
        top = name.split('.')[0]
        groups[top] = groups.get(top, 0) + macs
    head_total, backbone_total = sum(groups.values()), sum(backbone.values())
    ac = cfg.model.roi_head.actor_head
    setting = ', '.join(f'{key}={ac[key]}' for key in ('frame_widths', 'at_input_frames', 'fusion')
                        if key in ac) or 'defaults'
    lines = [f'Actor head ({setting}) of `{osp.basename(args.config)}`: {t}x{k} windows at {w}x{h}, '
             f'{maps} maps per window, {int(feats.shape[1])}-channel features at '
             f'{int(feats.shape[-1])}x{int(feats.shape[-2])}.', '',
             '| part | multiply-adds per map (M) | share of the head |', '|---|---|---|']
    for top, macs in groups.items():
        lines.append(f'| {top} | {macs / n_maps / 1e6:.2f} | {100 * macs / head_total:.0f} % |')
    lines += ['', '| | multiply-adds (M) | median ms (min-max) of the forward pass |', '|---|---|---|',
              f'| actor head, per map | {head_total / n_maps / 1e6:.2f} | '
              f'{_ms(t_head, n_maps)} |',
              f'| backbone, per input frame | {backbone_total / n_frames / 1e6:.2f} | '
              f'{_ms(t_backbone, n_frames)} |',
              f'| actor head, per input frame | {head_total / n_frames / 1e6:.2f} | '
              f'{_ms(t_head, n_frames)} |']
    print('\n'.join(lines))
    if args.doc:
        command = cited_command('tools/analysis/actor_head_cost.py', sys.argv[1:] if argv is None else argv)
        header = [f'## Cost of the actor head: {setting}', '',
                  f'Produced by `{command}` ({datetime.date.today()}, {platform.machine()}, '
                  f'{torch.get_num_threads()} threads, torch {torch.__version__}; random weights, '
                  f'{args.windows} windows per pass, {args.repeats} timed passes after 2 warm-ups). '
                  'Multiply-adds of the conv layers only; the times cover everything in the forward pass.',
                  '']
        write_block(args.doc, args.block, '\n'.join(header + lines))
        print(f'written into block {args.block} of {args.doc}')


def _ms(times, count):
    per = [1000 * s / count for s in times]
    return f'{statistics.median(per):.3f} ({min(per):.3f}-{max(per):.3f})'


if __name__ == '__main__':
    main()
