"""Every workaround for the pinned OpenMMLab stack (``requirements/runtime.txt``), one module each, with its
version guard.

``import cfad_mm`` calls :func:`apply_compat_patches` before any mmaction model code is imported. It applies
the import-time workarounds and then runs :func:`check_workarounds` once: for each record of
:data:`WORKAROUNDS` whose library version is outside the range it was written for, or whose probe says it no
longer applies, it emits ONE :class:`StackWorkaroundWarning` (a ``UserWarning``) naming the workaround, the
installed version, the version it was written for and the file to review (docs/troubleshooting.md, "Stack
workaround warnings"). On the pinned stack it is silent. The check reads versions with
``importlib.metadata`` and imports no library.

Modules (written-for versions in brackets):

- :mod:`~cfad_mm.compat.mmaction_drn` (mmaction2==1.2.0): the wheel lacks ``mmaction/models/localizers/drn``;
  a placeholder package is registered.
- :mod:`~cfad_mm.compat.torch_weights_only` (mmengine==0.10.7, torch>=2.6): ``weights_only=True`` rejects
  mmengine's checkpoints; registers the safe local loader of ``cfad_mm/engine/checkpoint.py``.
- :mod:`~cfad_mm.compat.distributed` (mmengine==0.10.7): DDP on CPU (gloo, no ``device_ids``):
  :func:`setup_distributed`, :func:`cpu_ddp_wrapper_cfg`.
- :mod:`~cfad_mm.compat.onnx_export` (mmcv==2.1.0; mmdet==3.3.0): mmcv's RoIAlign ONNX symbolic and the
  missing ``mmdet.core.export``, installed only inside :func:`onnx_export_context`.
- :mod:`~cfad_mm.compat.mmengine_checkpoint_hook` (mmengine==0.10.7): the guard of
  ``AtomicCheckpointHook`` (``cfad_mm/engine/hooks/``), which overrides private ``CheckpointHook`` methods.
- :mod:`~cfad_mm.compat.backbone_pretrained` (mmaction2==1.2.0): mmaction's 3-D backbones ignore a
  ``Pretrained`` ``init_cfg``; the loader stays in ``cfad_mm/models/utils/pretrained.py``.

A new workaround gets its own module here with a :class:`Workaround` record, listed in :data:`WORKAROUNDS`.
"""
import warnings
from typing import Callable, List, Optional, Sequence

from . import (
    backbone_pretrained,
    distributed,
    mmaction_drn,
    mmengine_checkpoint_hook,
    onnx_export,
    torch_weights_only,
)
from .distributed import cpu_ddp_wrapper_cfg, setup_distributed
from .mmaction_drn import DRN_MODULE
from .onnx_export import onnx_export_context
from .workaround import StackWorkaroundWarning, Workaround, workaround_problems

__all__ = [
    'apply_compat_patches', 'check_workarounds', 'setup_distributed', 'cpu_ddp_wrapper_cfg',
    'onnx_export_context', 'Workaround', 'StackWorkaroundWarning', 'WORKAROUNDS', 'DRN_MODULE'
]

#: Every workaround of the stack, in the order they take effect.
WORKAROUNDS = (
    mmaction_drn.WORKAROUND,
    torch_weights_only.WORKAROUND,
    distributed.WORKAROUND,
    onnx_export.ROI_ALIGN_WORKAROUND,
    onnx_export.MMDET_CORE_EXPORT_WORKAROUND,
    mmengine_checkpoint_hook.WORKAROUND,
    backbone_pretrained.WORKAROUND,
)

_APPLIED = False


def check_workarounds(workarounds: Sequence[Workaround] = WORKAROUNDS,
                      version_of: Optional[Callable[[str], Optional[str]]] = None) -> List[str]:
    """Warn about each workaround that may no longer apply (one :class:`StackWorkaroundWarning` each).

    Args:
        workarounds (Sequence[Workaround]): Defaults to :data:`WORKAROUNDS`.
        version_of (callable, optional): Distribution name -> installed version (tests). Defaults to
            ``importlib.metadata``.

    Returns:
        list[str]: The warning messages (empty on the stack the workarounds were written for).
    """
    messages = []
    for w in workarounds:
        problems = workaround_problems(w, version_of)
        if not problems:
            continue
        message = (f'cfad_mm stack workaround {w.name!r} ({w.summary}) may no longer apply: '
                   f'{"; ".join(problems)}. Review {", ".join(w.files)} ({w.implemented_by}) and test the '
                   'workaround on this version, then update its written_for or remove it '
                   '(docs/troubleshooting.md, "Stack workaround warnings").')
        warnings.warn(message, StackWorkaroundWarning, stacklevel=2)
        messages.append(message)
    return messages


def apply_compat_patches() -> None:
    """Apply the import-time workarounds once (idempotent), then :func:`check_workarounds`."""
    global _APPLIED
    if _APPLIED:
        return
    mmaction_drn.register_missing_drn()
    torch_weights_only.apply()
    _APPLIED = True
    check_workarounds()
