"""What tools/train.py and tools/test.py share: work dir, distributed set-up on CPU or CUDA, runner building."""
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from cfad_mm.compat import cpu_ddp_wrapper_cfg, setup_distributed


def default_work_dir(config_path: str) -> str:
    """``./work_dirs/<config name>``, mmaction's default."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def build_runner(cfg: Config, launcher: str = 'none') -> Runner:
    """Build the stock mmengine ``Runner`` (or ``cfg.runner_type``) after distributed set-up.

    With a launcher (``torchrun`` -> ``'pytorch'``) and no CUDA, a ``gloo`` process group is created here and the
    model wrapper is configured without ``device_ids`` (see :mod:`cfad_mm.compat`); on CUDA mmengine does the
    usual nccl set-up.
    """
    import torch
    cfg.launcher = launcher
    if setup_distributed(launcher) and not torch.cuda.is_available():
        cfg.setdefault('model_wrapper_cfg', cpu_ddp_wrapper_cfg())
    if 'runner_type' in cfg:
        from mmaction.registry import RUNNERS
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
