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
from cfad_mm.apis import merge_test_cfg, run_test  # noqa: E402
from cfad_mm.utils.cli import add_checkpoint_args, parse_launch_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a CFAD checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--dump', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show-dir', help='directory where the test clips are saved with the predicted '
                                           'tubes drawn (one mp4 per clip, TubeVisualizationHook)')
    parser.add_argument('--show', action='store_true', help='show prediction results (needs a display)')
    parser.add_argument('--interval', type=int, default=1, help='visualize every k-th sample')
    parser.add_argument('--wait-time', type=float, default=2, help='display time of every window (s)')
    add_checkpoint_args(parser)  # --unsafe-load, --cfg-options
    return parse_launch_args(parser, argv)  # --launcher, --local_rank


def merge_args(cfg, args):
    """Merge command-line arguments into the config (mmaction2's semantics):
    :func:`cfad_mm.apis.merge_test_cfg`."""
    return merge_test_cfg(cfg, args.config, work_dir=args.work_dir, cfg_options=args.cfg_options,
                          dump=args.dump, show=args.show, show_dir=args.show_dir, interval=args.interval,
                          wait_time=args.wait_time)


def main(argv=None):
    args = parse_args(argv)
    return run_test(args.config, args.checkpoint, work_dir=args.work_dir, cfg_options=args.cfg_options,
                    dump=args.dump, unsafe_load=args.unsafe_load, launcher=args.launcher, show=args.show,
                    show_dir=args.show_dir, interval=args.interval, wait_time=args.wait_time)


if __name__ == '__main__':
    main()
