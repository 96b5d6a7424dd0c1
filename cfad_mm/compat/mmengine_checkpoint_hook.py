"""The guard of :class:`cfad_mm.engine.hooks.AtomicCheckpointHook`, which overrides private methods of
mmengine 0.10.7's ``CheckpointHook``.

The hook (a feature: checkpoints that are never half-written) lives in
``cfad_mm/engine/hooks/atomic_checkpoint_hook.py``. It replaces :data:`OVERRIDDEN_PRIVATE_METHODS` and reads
the hook's private state (``keep_ckpt_ids``, ``file_backend``, ``filename_tmpl``, ``best_ckpt_path`` ...) as
mmengine 0.10.7 defines them. If mmengine renames or drops those methods, the overrides are never called and
checkpoints are silently written the non-atomic way again: :func:`private_methods_present` is the probe of
:data:`WORKAROUND` for that case.
"""
import sys

from .workaround import Workaround

#: The private methods of mmengine's ``CheckpointHook`` that ``AtomicCheckpointHook`` overrides.
OVERRIDDEN_PRIVATE_METHODS = ('_save_checkpoint_with_step', '_save_best_checkpoint')


def private_methods_present() -> bool:
    """Whether mmengine's ``CheckpointHook`` still defines :data:`OVERRIDDEN_PRIVATE_METHODS`.

    Looks only when ``mmengine.hooks`` is imported already (``import cfad_mm`` has imported it by the time
    the workarounds are checked); otherwise it assumes they are.
    """
    hooks = sys.modules.get('mmengine.hooks')
    if hooks is None:
        return True
    hook_cls = getattr(hooks, 'CheckpointHook', None)
    return hook_cls is not None and all(
        callable(getattr(hook_cls, m, None)) for m in OVERRIDDEN_PRIVATE_METHODS)


WORKAROUND = Workaround(
    name='mmengine-atomic-checkpoint-hook',
    summary="AtomicCheckpointHook overrides private methods of mmengine's CheckpointHook",
    written_for=('mmengine==0.10.7', ),
    files=('cfad_mm/engine/hooks/atomic_checkpoint_hook.py', 'cfad_mm/compat/mmengine_checkpoint_hook.py'),
    implemented_by='cfad_mm.engine.hooks.AtomicCheckpointHook',
    still_needed=private_methods_present,
    probe="mmengine's CheckpointHook no longer defines " + ' / '.join(OVERRIDDEN_PRIVATE_METHODS))
