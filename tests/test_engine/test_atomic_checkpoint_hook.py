"""AtomicCheckpointHook: a save interrupted at any point leaves complete checkpoints and a valid
last_checkpoint."""
import itertools
import os
import os.path as osp
from types import SimpleNamespace

import pytest
from mmaction.registry import HOOKS
from mmengine.logging import MessageHub

import cfad_mm  # noqa: F401
from cfad_mm.engine import AtomicCheckpointHook


class Killed(BaseException):
    """Stands for the process dying in the middle of a write."""


class FakeRunner:
    """What the hook uses of a Runner; ``save_checkpoint`` writes ``payload`` and can die half-way.

    Each runner gets a message hub of its own, as a new run does. (Naming the hub by ``id(self)`` was
    flaky: a garbage-collected runner's id is reused, so a new runner inherited an earlier test's
    ``keep_ckpt_ids`` and mmengine's ``before_train`` pruned checkpoints by them.)
    """

    _serial = itertools.count()

    def __init__(self, work_dir):
        self.work_dir = str(work_dir)
        self.message_hub = MessageHub.get_instance(f'atomic_ckpt_runner_{next(self._serial)}')
        self.logger = SimpleNamespace(info=lambda *a, **k: None, warning=lambda *a, **k: None)
        self.epoch = 0
        self.iter = 0
        self.die_after_bytes = None
        self.saved = []

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        payload = f'checkpoint of epoch {self.epoch} '.encode() * 100
        path = osp.join(out_dir, filename)
        self.saved.append(filename)
        with open(path, 'wb') as f:
            if self.die_after_bytes is not None:
                f.write(payload[:self.die_after_bytes])
                raise Killed()
            f.write(payload)


def _train_epochs(hook, runner, epochs):
    for epoch in epochs:
        runner.epoch, runner.iter = epoch, (epoch + 1) * 10
        hook.after_train_epoch(runner)
        runner.epoch = epoch + 1


def _last(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def test_registered_and_default_in_runtime_config():
    from mmengine.config import Config
    assert HOOKS.get('AtomicCheckpointHook') is AtomicCheckpointHook
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '../../configs/_base_/default_runtime.py'))
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'


def test_saves_rotate_after_the_new_file_is_in_place(tmp_path):
    runner = FakeRunner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=2)
    hook.before_train(runner)
    _train_epochs(hook, runner, range(3))
    assert sorted(os.listdir(tmp_path)) == ['epoch_2.pth', 'epoch_3.pth', 'last_checkpoint']
    assert _last(tmp_path) == osp.join(str(tmp_path), 'epoch_3.pth')
    assert runner.saved == ['epoch_1.pth.cfad-partial0', 'epoch_2.pth.cfad-partial0',
                            'epoch_3.pth.cfad-partial0']


@pytest.mark.parametrize('die_after_bytes', [0, 1000])
def test_kill_during_a_save_keeps_the_previous_checkpoints(tmp_path, die_after_bytes):
    runner = FakeRunner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=2)
    hook.before_train(runner)
    _train_epochs(hook, runner, range(2))
    good = (tmp_path / 'epoch_2.pth').read_bytes()
    runner.die_after_bytes = die_after_bytes
    with pytest.raises(Killed):
        _train_epochs(hook, runner, [2])
    # epoch_3 is not visible under its name, nothing was rotated away, last_checkpoint still valid
    assert not (tmp_path / 'epoch_3.pth').exists()
    assert (tmp_path / 'epoch_1.pth').exists() and (tmp_path / 'epoch_2.pth').read_bytes() == good
    assert _last(tmp_path) == osp.join(str(tmp_path), 'epoch_2.pth')
    assert (tmp_path / 'epoch_3.pth.cfad-partial0').exists()
    assert (tmp_path / 'epoch_3.pth.cfad-partial0.cfad-marker').exists()
    # the restarted run removes the half-written file
    restarted = AtomicCheckpointHook(interval=1, max_keep_ckpts=2)
    restarted.before_train(FakeRunner(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'epoch_2.pth', 'last_checkpoint']


def test_kill_during_a_best_save_keeps_the_previous_best(tmp_path):
    runner = FakeRunner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=2, save_best='acc', rule='greater')
    hook.before_train(runner)
    _train_epochs(hook, runner, [0])
    hook.after_val_epoch(runner, dict(acc=0.5))
    first_best = osp.join(str(tmp_path), 'best_acc_epoch_1.pth')
    assert osp.isfile(first_best)
    hook.after_val_epoch(runner, dict(acc=0.7))  # same epoch, better: replaces the file in place
    assert osp.isfile(first_best)
    _train_epochs(hook, runner, [1])
    runner.die_after_bytes = 10
    with pytest.raises(Killed):
        hook.after_val_epoch(runner, dict(acc=0.9))
    assert osp.isfile(first_best), 'the previous best must survive until the new one is complete'
    assert not osp.isfile(osp.join(str(tmp_path), 'best_acc_epoch_2.pth'))
    runner.die_after_bytes = None  # (in this process the message hub already holds 0.9 as the best score)
    hook.after_val_epoch(runner, dict(acc=0.95))
    assert osp.isfile(osp.join(str(tmp_path), 'best_acc_epoch_2.pth'))
    assert not [n for n in os.listdir(tmp_path) if '.cfad-' in n]


def test_previous_best_is_removed_once_the_new_best_is_saved(tmp_path):
    runner = FakeRunner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=1, save_best='acc', rule='greater')
    hook.before_train(runner)
    for epoch, acc in enumerate([0.5, 0.6, 0.4]):
        _train_epochs(hook, runner, [epoch])
        hook.after_val_epoch(runner, dict(acc=acc))
    assert sorted(os.listdir(tmp_path)) == ['best_acc_epoch_2.pth', 'epoch_3.pth', 'last_checkpoint']


def test_cleanup_touches_only_files_this_hook_marked(tmp_path):
    """A user's ``*.tmp<digits>`` files (and unmarked look-alikes) survive the clean-up of an interrupted
    run."""
    runner = FakeRunner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=2)
    hook.before_train(runner)
    _train_epochs(hook, runner, [0])
    runner.die_after_bytes = 5
    with pytest.raises(Killed):
        _train_epochs(hook, runner, [1])
    user_files = ['model.tmp1', 'notes.txt.tmp20', 'epoch_9.pth.cfad-partial0']  # the last has no marker
    for name in user_files:
        (tmp_path / name).write_text('user data')
    (tmp_path / 'other.cfad-partial1.cfad-marker').write_text('not json')  # a marker not written by us
    (tmp_path / 'other.cfad-partial1').write_text('user data')
    AtomicCheckpointHook(interval=1, max_keep_ckpts=2).before_train(FakeRunner(tmp_path))
    left = sorted(os.listdir(tmp_path))
    assert 'epoch_2.pth.cfad-partial0' not in left and 'epoch_2.pth.cfad-partial0.cfad-marker' not in left
    for name in user_files + ['other.cfad-partial1', 'other.cfad-partial1.cfad-marker']:
        assert name in left and (tmp_path / name).read_text() in ('user data', 'not json'), name
    assert 'epoch_1.pth' in left and 'last_checkpoint' in left


@pytest.mark.parametrize('cut', [0, 1, 30, -6, -1])
def test_a_marker_cut_short_by_a_kill_is_removed_and_nothing_else(tmp_path, cut):
    """A kill while the marker itself is written leaves it empty or cut short (seen after a SIGKILL right
    after a checkpoint: ``last_checkpoint.cfad-partial<pid>.cfad-marker`` stayed behind). The clean-up
    removes such a marker; a foreign file with the same kind of name but other text stays."""
    from cfad_mm.engine.hooks.atomic_checkpoint_hook import _write_marker
    ours = tmp_path / 'last_checkpoint.cfad-partial4242'
    _write_marker(str(ours))
    marker = tmp_path / 'last_checkpoint.cfad-partial4242.cfad-marker'
    full = marker.read_text()
    assert full.startswith('{"writer": "cfad_mm.engine.AtomicCheckpointHook"') and full.endswith('}')
    marker.write_text(full[:cut])
    foreign = tmp_path / 'notes.cfad-partial7.cfad-marker'
    foreign.write_text('{"writer": "someone else"')
    (tmp_path / 'notes.cfad-partial7').write_text('user data')
    AtomicCheckpointHook(interval=1).before_train(FakeRunner(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['notes.cfad-partial7', 'notes.cfad-partial7.cfad-marker']


def test_a_stale_keep_list_never_removes_the_checkpoint_just_written(tmp_path):
    """A message hub that already lists the step being saved (carried over from another run) must not make
    the hook delete the file it has just written."""
    runner = FakeRunner(tmp_path)
    runner.message_hub.update_info('keep_ckpt_ids', [1, 2])
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=2)
    hook.before_train(runner)
    _train_epochs(hook, runner, [0])
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'last_checkpoint']
    assert _last(tmp_path) == osp.join(str(tmp_path), 'epoch_1.pth')
