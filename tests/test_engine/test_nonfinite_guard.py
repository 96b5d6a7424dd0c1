"""NonFiniteGuardOptimWrapper skips (or raises on) NaN/inf losses and gradients, naming the batch's videos;
ReliabilityHook publishes the video ids and reports skipped samples and steps."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

import cfad_mm  # noqa: F401
from cfad_mm.engine import (
    AmpNonFiniteGuardOptimWrapper,
    NonFiniteGuardOptimWrapper,
    NonFiniteLossError,
    ReliabilityHook,
)
from cfad_mm.engine.optimizers.nonfinite_guard import BATCH_VIDEOS_KEY, SKIPPED_STEPS_KEY


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


@pytest.fixture()
def hub(request):
    """A fresh message hub, the current instance (the most recently created one), as a runner makes it."""
    hub = MessageHub.get_instance(f'nonfinite_{request.node.name}')
    assert MessageHub.get_current_instance() is hub
    return hub


@pytest.fixture()
def log():
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _wrapper(nonfinite='skip', **kwargs):
    model = torch.nn.Linear(3, 1)
    with DefaultScope.overwrite_default_scope('mmaction'):
        wrapper = build_optim_wrapper(
            model, dict(type='NonFiniteGuardOptimWrapper', nonfinite=nonfinite,
                        optimizer=dict(type='SGD', lr=0.1), **kwargs))
    assert type(wrapper) is NonFiniteGuardOptimWrapper
    return model, wrapper


def _state(model):
    return [p.detach().clone() for p in model.parameters()]


def test_nan_loss_skips_the_step_and_names_the_videos(hub, log):
    model, wrapper = _wrapper()
    hub.update_info(BATCH_VIDEOS_KEY, ['walk/v_1', 'jump/v_7'])
    hub.update_info('iter', 41)
    before = _state(model)
    loss = model(torch.ones(2, 3)).sum() * float('nan')
    wrapper.update_params(loss)
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model)))
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert wrapper.skipped == [dict(iter=41, what='loss', value=wrapper.skipped[0]['value'],
                                    videos=['walk/v_1', 'jump/v_7'])]
    assert hub.get_info(SKIPPED_STEPS_KEY) == 1
    warnings = [m for level, m in log if level == logging.WARNING]
    assert any('Non-finite loss (nan) at iteration 42; videos of the batch: [walk/v_1, jump/v_7]' in m
               and 'step is skipped' in m for m in warnings)
    # a finite loss afterwards updates the weights as usual
    wrapper.update_params(model(torch.ones(2, 3)).sum())
    assert not all(torch.equal(a, b) for a, b in zip(before, _state(model)))


def test_inf_gradient_with_finite_loss_skips_the_step(hub, log):
    model, wrapper = _wrapper(clip_grad=dict(max_norm=1.0))
    hub.update_info(BATCH_VIDEOS_KEY, ['a'])
    before = _state(model)
    model.weight.register_hook(lambda g: g * float('inf'))
    loss = model(torch.ones(2, 3)).sum()
    assert torch.isfinite(loss)
    wrapper.update_params(loss)
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model)))
    assert [s['what'] for s in wrapper.skipped] == ['gradient']
    assert any('Non-finite gradient' in m for _, m in log)


def test_raise_mode_and_max_skips(hub):
    model, wrapper = _wrapper(nonfinite='raise')
    hub.update_info(BATCH_VIDEOS_KEY, ['walk/v_1'])
    hub.update_info('iter', 0)
    with pytest.raises(NonFiniteLossError,
                       match=r'Non-finite loss \(inf\) at iteration 1; videos of the batch: '
                       r"\[walk/v_1\]\. .*optim_wrapper.nonfinite='skip'"):
        wrapper.update_params(model(torch.ones(1, 3)).sum() + float('inf'))
    model, wrapper = _wrapper(max_skips=1)
    wrapper.update_params(model(torch.ones(1, 3)).sum() * float('nan'))  # first skip is allowed
    with pytest.raises(NonFiniteLossError, match='More than max_skips=1 steps were skipped'):
        wrapper.update_params(model(torch.ones(1, 3)).sum() * float('nan'))
    with pytest.raises(ValueError, match=r"nonfinite must be one of \('skip', 'raise'\), got 'ignore'"):
        _wrapper(nonfinite='ignore')


def test_amp_variant_is_registered_and_train_tool_maps_it():
    import os.path as osp
    import sys
    assert issubclass(AmpNonFiniteGuardOptimWrapper, NonFiniteGuardOptimWrapper.__mro__[1])
    sys.path.insert(0, osp.join(osp.dirname(__file__), '../../tools'))
    import train as train_tool
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '../../configs/cfad/cfad_r3d-18-tiny_synthetic.py'))
    assert cfg.optim_wrapper.type == 'NonFiniteGuardOptimWrapper'
    args = train_tool.parse_args([cfg.filename, '--amp'])
    assert train_tool.merge_args(cfg, args).optim_wrapper.type == 'AmpNonFiniteGuardOptimWrapper'


class _Logger:

    def __init__(self):
        self.warnings, self.infos = [], []

    def warning(self, msg):
        self.warnings.append(msg)

    def info(self, msg):
        self.infos.append(msg)


def test_reliability_hook_publishes_video_ids_and_summarises(hub):
    runner = SimpleNamespace(message_hub=hub, logger=_Logger(), epoch=0)
    hook = ReliabilityHook()
    hook.before_train_epoch(runner)
    bad = [dict(video='jump/v_001', clip=3, path='x.mp4', error='MediaError: x.mp4: the video file is empty')]
    samples = [BaseDataElement(metainfo=dict(video_id='walk/v_000', bad_samples=bad)),
               BaseDataElement(metainfo=dict(video_id='jump/v_003'))]
    hook.before_train_iter(runner, 0, dict(inputs=None, data_samples=samples))
    assert hub.get_info(BATCH_VIDEOS_KEY) == ['walk/v_000', 'jump/v_003']
    hub.update_info(SKIPPED_STEPS_KEY, hub.get_info(SKIPPED_STEPS_KEY, 0) + 2)
    hook.after_train_epoch(runner)
    assert runner.logger.warnings == [
        'Epoch 0: skipped unreadable training 1 sample(s) of 1 video(s): jump/v_001 (1x): MediaError: x.mp4: '
        'the video file is empty',
        'Epoch 0: 2 optimizer step(s) skipped for a non-finite loss or gradient (each one is logged above '
        'with its videos)'
    ]
    test_ds = SimpleNamespace(bad_samples=[dict(video='walk/v_002', clip=None, path='y',
                                                error='FileNotFoundError')])
    runner.test_loop = SimpleNamespace(
        dataloader=SimpleNamespace(dataset=SimpleNamespace(datasets=[test_ds])))
    hook.after_test_epoch(runner)
    assert 'test: the dataset left out unreadable 1 sample(s) of 1 video(s): walk/v_002' in \
        runner.logger.warnings[-1]
    hook.after_run(runner)
    assert runner.logger.warnings[-1].startswith('Skipped in this run: 1 unreadable training sample(s) '
                                                 'skipped')
    assert '2 optimizer step(s) skipped' in runner.logger.warnings[-1]
    quiet = SimpleNamespace(message_hub=MessageHub.get_instance('nonfinite_quiet'), logger=_Logger(), epoch=0)
    ReliabilityHook().after_run(quiet)
    assert quiet.logger.warnings == [] and 'nothing' in quiet.logger.infos[0]
