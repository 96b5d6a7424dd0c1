"""Optimizer wrappers that keep a NaN/inf loss or gradient from reaching the weights."""
from typing import Dict, List, Optional

import torch
from mmaction.registry import OPTIM_WRAPPERS
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

__all__ = ['NonFiniteLossError', 'NonFiniteGuardOptimWrapper', 'AmpNonFiniteGuardOptimWrapper',
           'BATCH_VIDEOS_KEY', 'SKIPPED_STEPS_KEY']

# Message-hub runtime-info keys shared with cfad_mm.engine.hooks.ReliabilityHook.
BATCH_VIDEOS_KEY = 'batch_video_ids'  # video ids of the current training batch (set by the hook)
SKIPPED_STEPS_KEY = 'nonfinite_skipped_steps'  # number of skipped steps since the start of the run
MODES = ('skip', 'raise')


class NonFiniteLossError(FloatingPointError):
    """Raised by a non-finite-guard optimizer wrapper with ``nonfinite='raise'``; names the batch's videos."""


class _NonFiniteGuardMixin:
    """Checks of :class:`NonFiniteGuardOptimWrapper` (shared with the AMP variant)."""

    check_grads = True

    def _init_guard(self, nonfinite: str, max_skips: Optional[int]) -> None:
        if nonfinite not in MODES:
            raise ValueError(f'{type(self).__name__}: nonfinite must be one of {MODES}, got {nonfinite!r}')
        if max_skips is not None and max_skips < 0:
            raise ValueError(f'{type(self).__name__}: max_skips must be >= 0 or None, got {max_skips}')
        self.nonfinite = nonfinite
        self.max_skips = max_skips
        self.skipped: List[Dict] = []

    @staticmethod
    def _all_finite(flag: bool) -> bool:
        """``flag`` of every rank combined (all ranks must skip together, or DDP would hang)."""
        if get_world_size() == 1:
            return flag
        t = torch.tensor([0.0 if flag else 1.0], device='cuda' if torch.cuda.is_available() else 'cpu')
        all_reduce(t, op='sum')
        return bool(t.item() == 0)

    def _grads_finite(self) -> bool:
        for group in self.optimizer.param_groups:
            for p in group['params']:
                if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                    return False
        return True

    def _handle(self, what: str, value: float) -> None:
        """Log (or raise for) a non-finite ``what`` of the current iteration; the caller skips the step."""
        hub = MessageHub.get_current_instance()
        videos = hub.get_info(BATCH_VIDEOS_KEY) or []
        it = hub.get_info('iter')
        where = f'iteration {it + 1}' if isinstance(it, int) else 'this iteration'
        shown = ', '.join(map(str, videos[:16])) + (' ...' if len(videos) > 16 else '')
        msg = (f'Non-finite {what} ({value}) at {where}; videos of the batch: [{shown or "unknown"}]')
        if self.nonfinite == 'raise':
            raise NonFiniteLossError(f'{msg}. Check these videos and their annotations, lower the learning '
                                     "rate or set optim_wrapper.nonfinite='skip' to skip such steps.")
        self.skipped.append(dict(iter=it, what=what, value=value, videos=list(videos)))
        hub.update_info(SKIPPED_STEPS_KEY, hub.get_info(SKIPPED_STEPS_KEY, 0) + 1)
        print_log(f'{msg}: the optimizer step is skipped ({len(self.skipped)} skipped so far).',
                  logger='current', level=30)
        if self.max_skips is not None and len(self.skipped) > self.max_skips:
            raise NonFiniteLossError(f'{msg}. More than max_skips={self.max_skips} steps were skipped for '
                                     'non-finite values: the training diverged (lower the learning rate, '
                                     'check the data).')

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        """``OptimWrapper.update_params`` that skips backward and step when ``loss`` (a scalar) is not finite,
        and the step when a gradient is not finite (see the class docstring)."""
        if not self._all_finite(bool(torch.isfinite(loss.detach()).all())):
            self._handle('loss', float(loss.detach().float().sum()))
            self._inner_count += 1  # keep the iteration counter (backward() increments it) in step
            self.zero_grad(**(zero_kwargs or {}))  # also drops the partial sum of gradient accumulation
            return
        super().update_params(loss, step_kwargs, zero_kwargs)

    def step(self, **kwargs) -> None:
        if self.check_grads and not self._all_finite(self._grads_finite()):
            self._handle('gradient', float('nan'))
            return
        super().step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(_NonFiniteGuardMixin, OptimWrapper):
    """``OptimWrapper`` that detects a NaN/inf loss or gradient, logs it with the batch's video ids and skips
    the optimizer step (``nonfinite='skip'``) or raises :class:`NonFiniteLossError` (``'raise'``).

    ::

        loss (scalar) --finite?--no--> log / raise (iteration, video ids) -> zero_grad, no backward, no step
              | yes
          backward -> grads finite? --no--> log / raise -> no step (grads cleared by the usual zero_grad)
              | yes
          clip_grad -> optimizer.step

    In distributed training the decision is all-reduced, so every rank skips the same steps. The video ids
    come from the message hub key ``batch_video_ids``, published by :class:`cfad_mm.engine.ReliabilityHook`
    (``custom_hooks`` of ``configs/_base_/default_runtime.py``); the number of skipped steps is kept in
    ``nonfinite_skipped_steps`` (reported by the hook at the end of each epoch) and in :attr:`skipped`.

    Args:
        optimizer (Optimizer): The optimizer.
        nonfinite (str): ``'skip'`` or ``'raise'``. Defaults to ``'skip'``.
        max_skips (int, optional): Raise once more than this many steps were skipped (a diverged run should
            stop rather than skip forever); None never raises. Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.optim.OptimWrapper` (``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, optimizer, nonfinite: str = 'skip', max_skips: Optional[int] = None, **kwargs):
        super().__init__(optimizer, **kwargs)
        self._init_guard(nonfinite, max_skips)


@OPTIM_WRAPPERS.register_module()
class AmpNonFiniteGuardOptimWrapper(_NonFiniteGuardMixin, AmpOptimWrapper):
    """:class:`NonFiniteGuardOptimWrapper` for mixed precision (``--amp``): the loss is checked as above;
    inf/NaN gradients are left to the ``GradScaler`` (they are expected while the loss scale is calibrated).

    Args:
        optimizer (Optimizer): The optimizer.
        nonfinite (str): ``'skip'`` or ``'raise'``. Defaults to ``'skip'``.
        max_skips (int, optional): See :class:`NonFiniteGuardOptimWrapper`. Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.optim.AmpOptimWrapper` (``loss_scale``, ``dtype``, ...).
    """

    check_grads = False

    def __init__(self, optimizer, nonfinite: str = 'skip', max_skips: Optional[int] = None, **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        self._init_guard(nonfinite, max_skips)
