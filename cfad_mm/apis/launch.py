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
    usual nccl set-up. The config is checked first (:func:`check_config`): an unknown ``type`` raises a
    ``KeyError`` naming the config file and the key.
    """
    import torch
    check_config(cfg)
    cfg.launcher = launcher
    if setup_distributed(launcher) and not torch.cuda.is_available():
        cfg.setdefault('model_wrapper_cfg', cpu_ddp_wrapper_cfg())
    if 'runner_type' in cfg:
        from mmaction.registry import RUNNERS
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def shutdown_distributed() -> None:
    """End a distributed run cleanly: wait for every rank, then destroy the process group (no-op otherwise).

    Without it the ranks exit while gloo's communication threads are still alive, which can end a finished run
    with ``terminate called without an active exception`` (SIGABRT) on one rank.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _registries():
    import mmaction.registry as mmaction_registry
    from mmengine.registry import Registry
    return [getattr(mmaction_registry, n) for n in dir(mmaction_registry)
            if isinstance(getattr(mmaction_registry, n), Registry)]


def _type_is_registered(name: str, registries) -> bool:
    for registry in registries:
        try:
            if registry.get(name) is not None:
                return True
        except Exception:  # a registry with a broken lazy-import location: not the one that knows the type
            continue
    return False


def _all_registered_names(registries) -> list:
    names = set()
    for registry in registries:
        stack = [registry]
        while stack:
            reg = stack.pop()
            names.update(reg.module_dict)
            stack.extend(reg.children.values())
    return sorted(names)


def check_config(cfg: Config) -> None:
    """Check a config before any component is built, so that a typo fails at once and names the config file.

    * ``custom_imports`` must import ``cfad_mm``: without it this project's tools still work (they import the
      plugin themselves) but mmaction2's own tools fail with ``CFAD is not in the mmaction::model registry``,
      so a warning is logged.
    * Every ``type='Name'`` (string) anywhere in the config must be registered in some registry of mmaction2
      or its parents / children (mmengine, mmcv, mmdet with the ``mmdet.`` prefix, cfad_mm); otherwise a
      ``KeyError`` names the config file, the key path and the closest registered names.

    Args:
        cfg (Config): The config (``cfg.filename`` is used in the messages).

    Raises:
        KeyError: An unknown ``type``.
    """
    import difflib

    from mmengine.logging import print_log
    name = cfg.filename or '<config>'
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    if 'cfad_mm' not in imports:
        print_log(
            f"{name}: no custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False). This project's "
            "tools import cfad_mm themselves, but mmaction2's tools/train.py and other OpenMMLab tools will fail "
            "with 'CFAD is not in the mmaction::model registry'; add it to the config.",
            logger='current',
            level=30)
    registries = _registries()
    unknown = []

    def walk(node, path):
        if isinstance(node, dict):
            typ = node.get('type')
            if isinstance(typ, str) and not _type_is_registered(typ, registries):
                unknown.append((f'{path}.type' if path else 'type', typ))
            for key, value in node.items():
                walk(value, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{path}[{i}]')

    walk(cfg.to_dict(), '')
    if unknown:
        names = _all_registered_names(registries)
        lines = []
        for path, typ in unknown:
            close = difflib.get_close_matches(typ.split('.')[-1], names, n=3, cutoff=0.6)
            hint = f' (did you mean {", ".join(map(repr, close))}?)' if close else ''
            lines.append(f'{path}={typ!r}{hint}')
        raise KeyError(f'{name}: unknown type(s) {"; ".join(lines)}. No registry of mmaction2/mmdet/mmengine/'
                       "cfad_mm knows them: check the spelling (mmdet components need the 'mmdet.' prefix) and "
                       "that the config has custom_imports = dict(imports=['cfad_mm']).")


def load_checkpoint_for_test(runner: Runner, checkpoint: str, strict: bool = True, unsafe_load: bool = False,
                             config: str = None):
    """Load the checkpoint to test into the runner's model, safely and strictly.

    ``tools/test.py`` calls this instead of leaving ``load_from`` to mmengine, whose loading is not strict: a
    checkpoint of another model would only log warnings and the test would evaluate random weights.

    Args:
        runner (Runner): The runner (its model may be wrapped for DDP).
        checkpoint (str): The checkpoint file.
        strict (bool): See :func:`cfad_mm.engine.checkpoint.load_model_checkpoint`. Defaults to True.
        unsafe_load (bool): Full pickle semantics for this trusted file. Defaults to False.
        config (str, optional): The config path, named in errors.

    Returns:
        The loaded checkpoint.
    """
    from mmengine.model import is_model_wrapper

    from cfad_mm.engine.checkpoint import load_model_checkpoint
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    ckpt = load_model_checkpoint(model, checkpoint, strict=strict, unsafe_load=unsafe_load, config=config)
    runner.call_hook('after_load_checkpoint', checkpoint=ckpt)  # as Runner.load_checkpoint does
    runner.logger.info(f'Load checkpoint from {checkpoint} (strict={strict})')
    return ckpt


def trust_config_checkpoints(cfg: Config, resume=None) -> list:
    """``--unsafe-load`` of ``tools/train.py``: trust the checkpoint files this run will read.

    These are ``load_from``, the checkpoint to resume (a path, or with ``'auto'`` the one named by
    ``work_dir/last_checkpoint``) and the backbone's ``init_cfg`` checkpoint; each is passed to
    :func:`cfad_mm.engine.checkpoint.trust_checkpoint`. Nothing else in the process loads unsafely.

    Returns:
        list[str]: The trusted files.
    """
    from cfad_mm.engine.checkpoint import trust_checkpoint
    paths = []
    if cfg.get('load_from'):
        paths.append(cfg.load_from)
    if resume == 'auto' and cfg.get('work_dir'):
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                paths.append(f.read().strip())
    init_cfg = cfg.get('model', {}).get('backbone', {}).get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('checkpoint'):
        paths.append(init_cfg['checkpoint'])
    paths = [p for p in paths if p and osp.isfile(p)]
    for path in paths:
        trust_checkpoint(path)
    return paths
