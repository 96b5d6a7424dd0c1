"""torch >= 2.6 loads with ``weights_only=True`` by default, which rejects mmengine 0.10.7 checkpoints.

mmengine's ``CheckpointLoader`` reads local files with ``torch.load(filename)``, and checkpoints written by
its ``Runner`` reference ``HistoryBuffer`` and numpy globals (``Unsupported global: ...HistoryBuffer``), which
breaks ``load_from`` and ``--resume``. torch's safe default stays on:
:func:`cfad_mm.engine.checkpoint.register_safe_local_loader` makes ``CheckpointLoader`` load local files with
``weights_only=True`` and a short allow-list (mmengine's ``HistoryBuffer`` through
``RestrictedHistoryBuffer``, numpy's array / scalar / dtype reconstruction). Nothing changes an environment
variable.

The implementation stays in ``cfad_mm/engine/checkpoint.py`` (one loader for every entry point); it relies on
mmengine's private ``CheckpointLoader._schemes`` and on ``HistoryBuffer``'s private state
(``_log_history``, ``_count_history``, ``_set_default_statistics``), which the probe of :data:`WORKAROUND`
checks.
"""
import sys

from .workaround import Workaround


def apply() -> None:
    """Register the safe local loader with mmengine's ``CheckpointLoader`` (idempotent)."""
    from cfad_mm.engine.checkpoint import register_safe_local_loader
    register_safe_local_loader()


def mmengine_internals_present() -> bool:
    """Whether the mmengine internals the loader relies on exist (checked only on modules imported
    already)."""
    ckpt = sys.modules.get('mmengine.runner.checkpoint')
    if ckpt is not None and not isinstance(getattr(ckpt.CheckpointLoader, '_schemes', None), dict):
        return False
    buffer = sys.modules.get('mmengine.logging.history_buffer')
    return buffer is None or callable(getattr(buffer.HistoryBuffer, '_set_default_statistics', None))


WORKAROUND = Workaround(
    name='torch-weights-only-mmengine-checkpoints',
    summary="torch.load(weights_only=True) rejects mmengine's checkpoints (HistoryBuffer, numpy globals)",
    written_for=('mmengine==0.10.7', 'torch>=2.6'),
    files=('cfad_mm/engine/checkpoint.py', 'cfad_mm/compat/torch_weights_only.py'),
    implemented_by='cfad_mm.engine.checkpoint.register_safe_local_loader',
    still_needed=mmengine_internals_present,
    probe="mmengine's CheckpointLoader._schemes or HistoryBuffer._set_default_statistics is gone")
