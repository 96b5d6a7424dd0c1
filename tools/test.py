"""Test a CFAD checkpoint with mmengine's Runner (same flags as mmaction2's tools/test.py).

Examples:
    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --dump results.pkl      # then tools/analysis/eval_results.py
    python tools/test.py CONFIG CHECKPOINT --show-dir work_dirs/vis --interval 10   # rendered clips (mp4)
    bash tools/dist_test.sh CONFIG CHECKPOINT 2
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cfad_mm  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402

from cfad_mm.apis import build_runner, default_work_dir, load_checkpoint_for_test, shutdown_distributed  # noqa


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a CFAD checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--dump', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show-dir', help='directory where the test clips are saved with the predicted tubes '
                        'drawn (one mp4 per clip, TubeVisualizationHook)')
    parser.add_argument('--show', action='store_true', help='show prediction results (needs a display)')
    parser.add_argument('--interval', type=int, default=1, help='visualize every k-th sample')
    parser.add_argument('--wait-time', type=float, default=2, help='display time of every window (s)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load the checkpoint with full pickle semantics (weights_only=False). ONLY for a '
                        'file you trust: a pickle can run code. Without it, checkpoints load with '
                        'weights_only=True and a short allow-list (docs/security.md)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs; load_strict=False loads a checkpoint '
                        'that does not fit the model partially instead of refusing it')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg, args):
    """Merge command-line arguments into the config (mmaction2's semantics)."""
    if args.show or args.show_dir is not None:
        # TubeVisualizationHook (cfad_mm/engine/hooks) renders every --interval-th test clip with its tubes.
        if 'default_hooks' not in cfg:
            cfg.default_hooks = dict()
        if cfg.default_hooks.get('visualization') is None:
            cfg.default_hooks.visualization = dict(type='TubeVisualizationHook')
        vis = cfg.default_hooks.visualization
        if vis.get('type') not in ('TubeVisualizationHook', 'mmaction.TubeVisualizationHook'):
            raise ValueError(f'--show/--show-dir need default_hooks.visualization of type TubeVisualizationHook '
                             f'(the one that draws tubes), the config has {vis.get("type")!r}')
        vis.enable = True
        vis.show = args.show
        vis.wait_time = args.wait_time
        vis.out_dir = args.show_dir
        vis.interval = args.interval
    if args.cfg_options is not None:  # before --dump turns test_evaluator into a list
        cfg.merge_from_dict(args.cfg_options)
    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must name a .pkl file, got {args.dump!r}')
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = list(cfg.test_evaluator) + [dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    # loaded by load_checkpoint_for_test (safe and strict), not by mmengine's non-strict load_from; no resume, so
    # that Runner.test() does not load another checkpoint of the work dir over it
    cfg.load_from = None
    cfg.resume = False
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    if not os.path.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint} (a local file is needed: download a '
                         'remote checkpoint first)')
    runner = build_runner(cfg, args.launcher)
    from cfad_mm.engine.checkpoint import CHECKPOINT_ERRORS
    try:
        load_checkpoint_for_test(runner, args.checkpoint, strict=bool(cfg.get('load_strict', True)),
                                 unsafe_load=args.unsafe_load, config=args.config)
    except CHECKPOINT_ERRORS as err:
        raise SystemExit(f'error: {err}') from None
    metrics = runner.test()
    shutdown_distributed()
    return metrics


if __name__ == '__main__':
    main()
