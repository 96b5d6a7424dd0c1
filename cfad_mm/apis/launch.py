"""What tools/train.py and tools/test.py share: work dir, distributed set-up on CPU or CUDA, runner building;
and the test run itself (:func:`run_test`, the body of ``tools/test.py``)."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from cfad_mm.compat import cpu_ddp_wrapper_cfg, setup_distributed


def default_work_dir(config_path: str) -> str:
    """``./work_dirs/<config name>``, mmaction's default."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def build_runner(cfg: Config, launcher: str = 'none') -> Runner:
    """Build the stock mmengine ``Runner`` (or ``cfg.runner_type``) after distributed set-up.

    With a launcher (``torchrun`` -> ``'pytorch'``) and no CUDA, a ``gloo`` process group is created here and
    the model wrapper is configured without ``device_ids`` (see :mod:`cfad_mm.compat.distributed`); on CUDA
    mmengine does the usual nccl set-up. The config is checked first (:func:`check_config`): an unknown
    ``type`` raises a ``KeyError`` naming the config file and the key.
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
            f"{name}: no custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False). This "
            "project's tools import cfad_mm themselves, but mmaction2's tools/train.py and other OpenMMLab "
            "tools will fail with 'CFAD is not in the mmaction::model registry'; add it to the config.",
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
                       "cfad_mm knows them: check the spelling (mmdet components need the 'mmdet.' prefix) "
                       "and that the config has custom_imports = dict(imports=['cfad_mm']).")


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


def parse_cfg_options(options) -> dict:
    """``key=value`` strings parsed as ``--cfg-options`` parses them (mmengine's ``DictAction``).

    Args:
        options (list[str] | dict | None): The strings; a dict (already parsed) is returned as a copy.

    Returns:
        dict: The overrides (``{}`` for none).
    """
    import argparse

    from mmengine.config import DictAction
    if not options:
        return {}
    if isinstance(options, dict):
        return dict(options)
    namespace = argparse.Namespace()
    DictAction(option_strings=['--cfg-options'], dest='cfg_options')(None, namespace, list(options))
    return namespace.cfg_options

def merge_test_cfg(cfg: Config, config: str, work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None, dump: Optional[str] = None, show: bool = False,
                   show_dir: Optional[str] = None, interval: int = 1, wait_time: float = 2) -> Config:
    """Merge the options of ``tools/test.py`` into the config (mmaction2's semantics).

    Args:
        cfg (Config): The config, changed in place.
        config (str): Its path (for the default work dir ``./work_dirs/<config name>``).
        work_dir (str, optional): The work dir; default: the config's, else the default one.
        cfg_options (dict, optional): Overrides (``--cfg-options``), merged before ``dump`` is added.
        dump (str, optional): A ``.pkl`` file: a ``DumpResults`` metric is appended to ``test_evaluator``.
        show, show_dir, interval, wait_time: ``TubeVisualizationHook`` settings (``show`` or ``show_dir``
            enable it).

    Returns:
        Config: ``cfg``, with ``load_from=None`` and ``resume=False`` (the checkpoint is loaded by
        :func:`load_checkpoint_for_test`, safely and strictly).

    Raises:
        ValueError: ``dump`` is not a ``.pkl`` file, or ``show``/``show_dir`` with another visualization hook.
    """
    if show or show_dir is not None:
        # TubeVisualizationHook (cfad_mm/engine/hooks) renders every interval-th test clip with its tubes.
        if 'default_hooks' not in cfg:
            cfg.default_hooks = dict()
        if cfg.default_hooks.get('visualization') is None:
            cfg.default_hooks.visualization = dict(type='TubeVisualizationHook')
        vis = cfg.default_hooks.visualization
        if vis.get('type') not in ('TubeVisualizationHook', 'mmaction.TubeVisualizationHook'):
            raise ValueError('--show/--show-dir need default_hooks.visualization of type '
                             'TubeVisualizationHook (the one that draws tubes), the config has '
                             f'{vis.get("type")!r}')
        vis.enable = True
        vis.show = show
        vis.wait_time = wait_time
        vis.out_dir = show_dir
        vis.interval = interval
    if cfg_options is not None:  # before dump turns test_evaluator into a list
        cfg.merge_from_dict(cfg_options)
    if dump is not None:
        if not dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must name a .pkl file, got {dump!r}')
        dump_metric = dict(type='DumpResults', out_file_path=dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = list(cfg.test_evaluator) + [dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    # loaded by load_checkpoint_for_test (safe and strict), not by mmengine's non-strict load_from; no resume,
    # so that Runner.test() does not load another checkpoint of the work dir over it
    cfg.load_from = None
    cfg.resume = False
    return cfg


def run_test(config: str, checkpoint: str, work_dir: Optional[str] = None, cfg_options: Optional[dict] = None,
             dump: Optional[str] = None, unsafe_load: bool = False, launcher: str = 'none',
             show: bool = False, show_dir: Optional[str] = None, interval: int = 1,
             wait_time: float = 2) -> dict:
    """Test (and evaluate) a checkpoint with mmengine's ``Runner``: what ``tools/test.py`` does.

    The options are merged by :func:`merge_test_cfg`, the runner is built by :func:`build_runner`, the
    checkpoint is loaded by :func:`load_checkpoint_for_test` (strict unless the config sets
    ``load_strict=False``) and the distributed run is ended by :func:`shutdown_distributed`.

    Args:
        config (str): The config file.
        checkpoint (str): The checkpoint file (local).
        work_dir, cfg_options, dump, show, show_dir, interval, wait_time: see :func:`merge_test_cfg`.
        unsafe_load (bool): Full pickle semantics for this trusted checkpoint. Defaults to False.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``. Defaults to ``'none'``.

    Returns:
        dict: The test metrics.

    Raises:
        SystemExit: A one-line ``error: ...`` message for a missing checkpoint or one that cannot be loaded.
        ValueError: See :func:`merge_test_cfg`.
    """
    cfg = merge_test_cfg(Config.fromfile(config), config, work_dir=work_dir, cfg_options=cfg_options,
                         dump=dump, show=show, show_dir=show_dir, interval=interval, wait_time=wait_time)
    if not osp.isfile(checkpoint):
        raise SystemExit(f'error: checkpoint not found: {checkpoint} (a local file is needed: download a '
                         'remote checkpoint first)')
    runner = build_runner(cfg, launcher)
    from cfad_mm.engine.checkpoint import CHECKPOINT_ERRORS
    try:
        load_checkpoint_for_test(runner, checkpoint, strict=bool(cfg.get('load_strict', True)),
                                 unsafe_load=unsafe_load, config=config)
    except CHECKPOINT_ERRORS as err:
        raise SystemExit(f'error: {err}') from None
    metrics = runner.test()
    shutdown_distributed()
    return metrics
