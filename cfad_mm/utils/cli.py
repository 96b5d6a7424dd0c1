"""Command-line options that several tools share, declared once (the tools may not import each other).

* :func:`add_checkpoint_args`: ``--unsafe-load`` and ``--cfg-options`` of a tool that loads one checkpoint
  (``tools/test.py``, ``tools/demo.py``).
* :func:`parse_launch_args`: ``--launcher`` and ``--local_rank`` of ``tools/train.py`` / ``tools/test.py``
  (mmaction2's distributed flags), then parsing.
* :func:`add_box_tolerance_arg`: ``--box-tolerance`` of the annotation tools (the ``box_tolerance`` of
  :func:`cfad_mm.datasets.annotation.validate_annotations`).
"""
import argparse
import os
from typing import Optional, Sequence

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

UNSAFE_LOAD_HELP = ('load the checkpoint with full pickle semantics (weights_only=False). ONLY for a '
                    'file you trust: a pickle can run code. Without it, checkpoints load with '
                    'weights_only=True and a short allow-list (docs/security.md)')


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--unsafe-load`` and ``--cfg-options`` (mmengine's ``DictAction``; ``load_strict=False`` among
    them loads a checkpoint that does not fit the model partially)."""
    from mmengine.config import DictAction
    parser.add_argument('--unsafe-load', action='store_true', help=UNSAFE_LOAD_HELP)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs; load_strict=False loads a '
                        'checkpoint that does not fit the model partially instead of refusing it')


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None,
                      launcher_help: str = 'job launcher') -> argparse.Namespace:
    """Add ``--launcher`` and ``--local_rank`` / ``--local-rank``, parse ``argv`` and set the environment
    variable ``LOCAL_RANK`` from ``--local_rank`` unless it is set (as mmaction2's train / test tools)."""
    parser.add_argument('--launcher', choices=list(LAUNCHERS), default='none', help=launcher_help)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_box_tolerance_arg(parser) -> None:
    """Add ``--box-tolerance`` (default 0.05, as ``validate_annotations``) to a parser or argument group."""
    parser.add_argument(
        '--box-tolerance',
        type=float,
        default=0.05,
        help='allowed box overshoot outside the frame, fraction of the side (at least 8 px). '
        'Default: 0.05')
