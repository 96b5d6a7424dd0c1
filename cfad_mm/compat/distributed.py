"""Distributed training on CPU with mmengine 0.10.7.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and the default DDP wrapper passes
``device_ids=[rank]``, so a ``torchrun`` launch on a machine without CUDA fails. :func:`setup_distributed`
initialises a ``gloo`` process group itself when CUDA is absent, and :func:`cpu_ddp_wrapper_cfg` gives the
model wrapper config that works on CPU. ``tools/train.py`` / ``tools/test.py`` use both through
:func:`cfad_mm.apis.launch.build_runner`. Record: :data:`WORKAROUND` (version guard only).
"""
from .workaround import Workaround


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


WORKAROUND = Workaround(
    name='mmengine-cpu-distributed',
    summary="mmengine's init_dist calls torch.cuda.set_device and its DDP wrapper passes device_ids on CPU",
    written_for=('mmengine==0.10.7', ),
    files=('cfad_mm/compat/distributed.py', 'cfad_mm/apis/launch.py'),
    implemented_by='cfad_mm.compat.distributed.setup_distributed')
