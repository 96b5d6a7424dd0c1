"""Train a CFAD model with mmengine's Runner (same flags as mmaction2's tools/train.py).

Examples:
    python tools/train.py configs/cfad/cfad_r3d-18-tiny_synthetic.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume  # resume from the latest checkpoint
    python tools/train.py CONFIG --cfg-options model.refine=False train_cfg.max_epochs=4
    python tools/train.py CONFIG --tensorboard                    # curves: tensorboard --logdir work_dirs
    bash tools/dist_train.sh CONFIG 2                             # 2 processes (gloo on CPU, nccl on GPU)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402

import cfad_mm  # noqa: E402,F401  (applies the stack workarounds, registers the plugin)
from cfad_mm.apis import build_runner, default_work_dir, shutdown_distributed, trust_config_checkpoints  # noqa
from cfad_mm.utils.cli import parse_launch_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a CFAD spatio-temporal action detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from a checkpoint PATH, or (no value / "auto") from the latest '
                             'checkpoint in the work directory')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--no-validate', action='store_true', help='do not evaluate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size / base batch size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--diff-rank-seed', action='store_true', help='different seeds for different ranks')
    parser.add_argument('--deterministic', action='store_true', help='deterministic algorithms (slower)')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log training curves to TensorBoard (adds TensorboardVisBackend to '
                        'visualizer.vis_backends; events under <work_dir>/<timestamp>/vis_data)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load the checkpoints this run reads (load_from, --resume, the backbone\'s '
                        'init_cfg checkpoint) with full pickle semantics. ONLY for files you trust: a pickle '
                        'can run code. Without it they load with weights_only=True and a short allow-list')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs, e.g. train_cfg.max_epochs=2')
    return parse_launch_args(parser, argv,
                             launcher_help='job launcher (tools/dist_train.sh uses torchrun -> pytorch)')


# optimizer wrapper type -> its mixed-precision counterpart (--amp)
AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'AmpOptimWrapper': 'AmpOptimWrapper',
    'NonFiniteGuardOptimWrapper': 'AmpNonFiniteGuardOptimWrapper',
    'AmpNonFiniteGuardOptimWrapper': 'AmpNonFiniteGuardOptimWrapper'
}


def merge_args(cfg, args):
    """Merge command-line arguments into the config (mmaction2's semantics)."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper not in AMP_WRAPPERS:
            raise ValueError(f'--amp is not supported with the custom optimizer wrapper {wrapper!r}')
        cfg.optim_wrapper.type = AMP_WRAPPERS[wrapper]
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if cfg.get('randomness') is None or args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        randomness.setdefault('seed', None)
        randomness['diff_rank_seed'] = args.diff_rank_seed or randomness.get('diff_rank_seed', False)
        randomness['deterministic'] = args.deterministic or randomness.get('deterministic', False)
        cfg.randomness = randomness
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.tensorboard:
        add_tensorboard_backend(cfg)
    return cfg


def add_tensorboard_backend(cfg):
    """Add ``TensorboardVisBackend`` to the visualizer's backends (once) and check the package is there."""
    try:
        import tensorboard  # noqa: F401
    except ImportError as e:
        raise ImportError('--tensorboard needs the tensorboard package: '
                          'pip install -r requirements/optional.txt') from e
    if cfg.get('visualizer') is None:
        cfg.visualizer = dict(type='ActionVisualizer', vis_backends=[dict(type='LocalVisBackend')])
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if not any(str(b.get('type', '')).endswith('TensorboardVisBackend') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer.vis_backends = backends
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    if args.unsafe_load:
        trust_config_checkpoints(cfg, args.resume)
    runner = build_runner(cfg, args.launcher)
    from cfad_mm.engine.checkpoint import CheckpointMismatchError, UnsafeCheckpointError
    try:
        runner.train()
    except (UnsafeCheckpointError, CheckpointMismatchError) as err:  # load_from / --resume refused: one line
        raise SystemExit(f'error: {err}') from None
    shutdown_distributed()


if __name__ == '__main__':
    main()
