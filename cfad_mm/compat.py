"""Workarounds for the pinned OpenMMLab stack, in ONE place.

Everything here is applied by :func:`apply_compat_patches`, which ``import cfad_mm`` calls before any mmaction
model code is imported. Each patch says which breakage it fixes :

1. **mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn``** (upstream issue 2714), so
   ``import mmaction.models`` raises ``ModuleNotFoundError``. We register a placeholder package
   ``mmaction.models.localizers.drn`` whose ``DRN`` class raises a clear error when someone tries to build it.
   Nothing else in mmaction depends on it.
2. **torch >= 2.6 ``torch.load(weights_only=True)`` default** rejects mmengine 0.10.7 checkpoints
   (``Unsupported global: ...HistoryBuffer``), which breaks ``load_from`` and ``--resume``. torch's safe
   default stays on: :func:`cfad_mm.engine.checkpoint.register_safe_local_loader` makes mmengine's
   ``CheckpointLoader`` load local files with ``weights_only=True`` and a short allow-list (mmengine's
   ``HistoryBuffer``, numpy's array / scalar / dtype reconstruction). Nothing here changes an environment
   variable.
3. **Distributed training on CPU**: mmengine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally
   and the default DDP wrapper passes ``device_ids=[rank]``. :func:`setup_distributed` initialises a ``gloo``
   process group itself when CUDA is absent, and :func:`cpu_ddp_wrapper_cfg` gives the model wrapper config
   that works on CPU. ``tools/train.py`` / ``tools/test.py`` use both.
"""
import sys
import types

_APPLIED = False

DRN_MODULE = 'mmaction.models.localizers.drn'


class _MissingDRN:
    """Stands in for mmaction's DRN localizer, which the mmaction2 1.2.0 wheel does not ship."""

    def __init__(self, *args, **kwargs):
        raise ImportError('mmaction.models.localizers.drn is missing from the mmaction2 1.2.0 wheel on PyPI '
                          '(upstream issue 2714); install mmaction2 from source to use DRN.')


def _register_missing_drn():
    """Put a placeholder ``drn`` package into ``sys.modules`` if mmaction lacks it."""
    if DRN_MODULE in sys.modules:
        return
    import importlib.util
    import os.path as osp
    # Look at the folder, not at the submodule: find_spec of the submodule would import mmaction.models,
    # which is exactly what fails.
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return  # mmaction itself is absent: nothing to patch
    roots = list(spec.submodule_search_locations)
    if any(osp.isdir(osp.join(r, 'models', 'localizers', 'drn')) for r in roots):
        return
    pkg = types.ModuleType(DRN_MODULE)
    pkg.__path__ = []  # a package, so that ``from .drn.drn import DRN`` resolves the submodule below
    sub = types.ModuleType(DRN_MODULE + '.drn')
    sub.DRN = _MissingDRN
    pkg.drn = sub
    sys.modules[DRN_MODULE] = pkg
    sys.modules[DRN_MODULE + '.drn'] = sub


def apply_compat_patches():
    """Apply every workaround once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _register_missing_drn()
    from cfad_mm.engine.checkpoint import register_safe_local_loader
    register_safe_local_loader()
    _APPLIED = True


def setup_distributed(launcher: str, backend: str = None) -> bool:
    """Initialise ``torch.distributed`` for a launched run, on CPU or CUDA.

    On CUDA this defers to mmengine's ``init_dist`` (nccl). On CPU it calls
    ``torch.distributed.init_process_group('gloo')`` directly, because mmengine's ``init_dist`` would call
    ``torch.cuda.set_device``. Reads the usual ``torchrun`` variables (RANK, WORLD_SIZE, MASTER_ADDR, ...).

    Args:
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        backend (str, optional): Overrides the backend. Defaults to ``'nccl'`` with CUDA, else ``'gloo'``.

    Returns:
        bool: whether the run is distributed.
    """
    if launcher == 'none':
        return False
    import torch
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return True
    if torch.cuda.is_available():
        from mmengine.dist import init_dist
        init_dist(launcher, backend=backend or 'nccl')
        return True
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher={launcher!r} on a machine without CUDA is not supported: '
                           "use torchrun (launcher='pytorch'), e.g. tools/dist_train.sh.")
    dist.init_process_group(backend=backend or 'gloo')
    return True


def cpu_ddp_wrapper_cfg() -> dict:
    """The model wrapper config that works for DDP on CPU (no ``device_ids``)."""
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=True)
