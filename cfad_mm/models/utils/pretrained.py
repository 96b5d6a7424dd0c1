"""Loading a backbone's pretrained weights from a LOCAL checkpoint named by its ``init_cfg``.

mmaction's 3-D backbones (``ResNet3d`` and its relatives) override ``init_weights`` and only honour their own
``pretrained`` argument, so ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` on them is silently ignored
by mmengine. :class:`~cfad_mm.models.CFAD` therefore applies such an ``init_cfg`` itself, through
:func:`load_pretrained_backbone`, and refuses a checkpoint that holds no weight of the backbone (a wrong file
would otherwise leave the backbone random without a word).

A workaround of mmaction2 1.2.0's backbones: its version guard is :mod:`cfad_mm.compat.backbone_pretrained`.
"""
import os.path as osp
from typing import Optional

from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import get_state_dict
from torch import nn


def load_pretrained_backbone(backbone: nn.Module, init_cfg: Optional[dict]) -> bool:
    """Load ``init_cfg['checkpoint']`` into ``backbone`` if ``init_cfg`` is a ``Pretrained`` config.

    Keys are taken with ``init_cfg['prefix']`` stripped (e.g. ``'backbone.'`` for a recognizer checkpoint of
    mmaction2); a checkpoint of the bare backbone (no such prefix anywhere) is accepted too. Weights whose
    shape differs from the backbone's are reported and skipped, like mmengine's non-strict loading.

    Args:
        backbone (nn.Module): The backbone.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``.

    Returns:
        bool: Whether weights were loaded (``False`` when there is no ``Pretrained`` config or its checkpoint
        is ``None``, which is logged as a warning: the backbone then trains from scratch).

    Raises:
        FileNotFoundError: The checkpoint path does not exist.
        ValueError: The checkpoint holds no weight of the backbone.
    """
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return False
    path = init_cfg.get('checkpoint')
    if not path:
        print_log('The backbone has init_cfg=dict(type="Pretrained", checkpoint=None): it starts from random '
                  'weights. Set model.backbone.init_cfg.checkpoint to a local checkpoint '
                  '(e.g. Kinetics-400 I3D weights).', logger='current', level=30)
        return False
    if not osp.isfile(path):
        raise FileNotFoundError(f'backbone pretrained checkpoint {path!r} '
                                '(model.backbone.init_cfg.checkpoint) does not exist; give a local file '
                                '(no download happens)')
    # weights_only with the allow-list (cfad_mm.engine.checkpoint); trusted files: trust_checkpoint(path)
    from cfad_mm.engine.checkpoint import load_checkpoint_file
    ckpt = load_checkpoint_file(path, map_location=init_cfg.get('map_location', 'cpu'))
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    prefix = init_cfg.get('prefix') or ''
    if prefix and any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    own = get_state_dict(backbone)
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ValueError(f'backbone pretrained checkpoint {path!r} holds no weight of the backbone '
                         f'{type(backbone).__name__} (looked for keys with prefix {prefix!r} and bare keys; '
                         f'first keys of the file: {list(state)[:3]})')
    backbone.load_state_dict(matched, strict=False)
    missing = sorted(set(own) - set(matched))
    mismatched = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    logger = MMLogger.get_current_instance()
    logger.info(f'backbone: loaded {len(matched)}/{len(own)} tensors from {path}')
    if missing:
        logger.warning(f'backbone: {len(missing)} tensors not in {path}, left at their init: '
                       f'{missing[:5]} ...')
    if mismatched:
        logger.warning(f'backbone: {len(mismatched)} tensors of another shape in {path}, skipped: '
                       f'{mismatched[:5]} ...')
    return True
