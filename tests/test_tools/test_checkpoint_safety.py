"""Checkpoint loading: safe by default at every entry point, strict about the model, explicit opt-ins.

A crafted checkpoint whose pickle would create a marker file when loaded is refused by the inference API, the
demo, the test and export tools, training's ``load_from`` / ``--resume`` and a backbone's ``init_cfg``; the
marker never appears. The project's own checkpoints (fresh, and one written by the code before the safe
loader, ``tests/data/cfad_tiny-small_mmengine-0.10.7_legacy.pth``) load; ``import cfad_mm`` leaves torch's
defaults alone.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import cfad_mm  # noqa: F401
from cfad_mm.apis import init_detector
from cfad_mm.engine.checkpoint import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    load_checkpoint_file,
    trust_checkpoint,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
LEGACY = osp.join(REPO, 'tests/data/cfad_tiny-small_mmengine-0.10.7_legacy.pth')
# The tiny config, narrowed: the settings the legacy checkpoint was trained with (1 epoch on tiny synthetic
# data by tools/train.py of the code before the safe loader, mmengine 0.10.7, torch 2.13).
SMALL = {
    'model.backbone.base_channels': 4,
    'model.feat_channels': 16,
    'model.proposal_head.feat_channels': 16,
    'model.coarse_head.feat_channels': 16,
    'model.roi_head.refine_head.hidden_channels': 16
}
SMALL_CLI = [f'{k}={v}' for k, v in SMALL.items()]
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))


class MarkerPayload:
    """Pickles as ``open(path, 'w')``: loading it with full pickle semantics creates the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture(scope='module')
def small_state():
    torch.manual_seed(0)
    return init_detector(CONFIG, cfg_options=dict(SMALL)).state_dict()


@pytest.fixture
def evil(tmp_path, small_state):
    """``(checkpoint, marker)``: a checkpoint that fits the small model and carries the payload in its
    meta."""
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': small_state, 'meta': {'note': MarkerPayload(marker)}}, path)
    return str(path), marker


def test_import_leaves_torch_defaults_alone(evil):
    """A plain torch.load in a process that imported the plugin still refuses the payload."""
    path, marker = evil
    code = ('import os, torch, cfad_mm\n'
            'assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ, "import cfad_mm set the variable"\n'
            'try:\n'
            f'    torch.load({path!r})\n'
            'except Exception as e:\n'
            '    print("refused:", type(e).__name__)\n')
    env = {k: v for k, v in os.environ.items() if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'refused: UnpicklingError' in out.stdout
    assert not marker.exists()


def test_the_loader_refuses_the_payload_naming_the_global_and_the_opt_in(evil):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    msg = str(info.value)
    assert path in msg and ("'io.open'" in msg or "'builtins.open'" in msg), msg
    assert '--unsafe-load' in msg and 'unsafe_load=True' in msg
    assert not marker.exists()


def test_getattr_is_only_allowed_for_history_buffer_statistics(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    class GetInit:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'getattr.pth'
    torch.save({'x': GetInit()}, path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_file(str(path))
    buf = HistoryBuffer()
    buf.update(2.0)
    buf.update(6.0)
    torch.save({'message_hub': {'log_scalars': {'loss': buf}}}, tmp_path / 'ok.pth')
    loaded = load_checkpoint_file(str(tmp_path / 'ok.pth'))['message_hub']['log_scalars']['loss']
    assert loaded.mean() == 4.0 and loaded.statistics('max') == 6.0
    # a loaded buffer pickles back as a plain HistoryBuffer (no getattr needed any more)
    torch.save({'loss': loaded}, tmp_path / 'again.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(tmp_path / 'again.pth')) == [
        'mmengine.logging.history_buffer.HistoryBuffer']
    assert load_checkpoint_file(str(tmp_path / 'again.pth'))['loss'].mean() == 4.0


def test_a_history_buffer_state_cannot_change_the_process(tmp_path, monkeypatch):
    """mmengine's HistoryBuffer.__setstate__ would merge the pickled statistics methods into a dict shared by
    every buffer (here: 'mean' replaced by 'max') and copy other keys into the instance."""
    from mmengine.logging.history_buffer import HistoryBuffer
    evil_state = dict(HistoryBuffer([1.0, 5.0], [1, 1]).__dict__,
                      statistics_methods={'mean': HistoryBuffer.max}, __deepcopy__=HistoryBuffer.max)
    monkeypatch.setattr(HistoryBuffer, '__getstate__', lambda self: evil_state)
    torch.save({'h': HistoryBuffer()}, tmp_path / 'planted.pth')
    monkeypatch.undo()
    loaded = load_checkpoint_file(str(tmp_path / 'planted.pth'))['h']
    assert HistoryBuffer([1.0, 5.0], [1, 1]).statistics('mean') == 3.0  # not 5.0
    assert loaded.statistics('mean') == 3.0 and '__deepcopy__' not in vars(loaded)
    bad_state = dict(HistoryBuffer([1.0], [1]).__dict__, _log_history='not an array')
    monkeypatch.setattr(HistoryBuffer, '__getstate__', lambda self: bad_state)
    torch.save({'h': HistoryBuffer()}, tmp_path / 'bad.pth')
    monkeypatch.undo()
    with pytest.raises(UnsafeCheckpointError, match='HistoryBuffer state must hold'):
        load_checkpoint_file(str(tmp_path / 'bad.pth'))


def test_the_users_own_safe_globals_survive_a_load(tmp_path):
    import collections
    torch.serialization.add_safe_globals([collections.Counter])
    try:
        torch.save({'x': 1}, tmp_path / 'x.pth')
        load_checkpoint_file(str(tmp_path / 'x.pth'))
        assert collections.Counter in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()


def test_text_and_random_bytes_are_unreadable_checkpoints_not_crashes(tmp_path):
    import numpy as np
    (tmp_path / 'text.pth').write_text('hello world')
    (tmp_path / 'noise.pth').write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    for name in ('text.pth', 'noise.pth'):
        with pytest.raises(ValueError, match='cannot read this checkpoint'):
            load_checkpoint_file(str(tmp_path / name))


def test_every_entry_point_refuses_the_payload(evil, tiny_synth, tmp_path, capsys):
    import demo
    import export_onnx
    import test as test_tool
    import train as train_tool
    from test_train_test_cli import data_options
    path, marker = evil
    root, ann = tiny_synth
    video = sorted(osp.join(dp, f) for dp, _, fs in os.walk(osp.join(root, 'videos')) for f in fs)[0]
    with pytest.raises(UnsafeCheckpointError):
        init_detector(CONFIG, path, cfg_options=dict(SMALL))
    small_opts = ['--cfg-options'] + SMALL_CLI
    for tool_main, argv in ((demo.main, [video, CONFIG, path, '--out', str(tmp_path / 'demo')] + small_opts),
                            (export_onnx.main, [CONFIG, path, '--out', str(tmp_path / 'x.onnx')]
                             + small_opts),
                            (test_tool.main, [CONFIG, path, '--work-dir', str(tmp_path / 'test')]
                             + small_opts + data_options(root, ann))):
        with pytest.raises(SystemExit) as info:
            tool_main(argv)
        assert str(info.value).startswith('error: ') and 'refused to load' in str(info.value), info.value
    train_opts = SMALL_CLI + data_options(root, ann) + ['train_cfg.max_epochs=1']
    with pytest.raises(SystemExit, match='^error: .*refused to load'):  # load_from (fine-tuning)
        train_tool.main([CONFIG, '--work-dir', str(tmp_path / 'ft'), '--cfg-options', f'load_from={path}'] +
                        train_opts)
    with pytest.raises(SystemExit, match='^error: .*refused to load'):  # --resume PATH
        train_tool.main([CONFIG, '--work-dir', str(tmp_path / 'rs'), '--resume', path,
                         '--cfg-options'] + train_opts)
    from cfad_mm.models.utils import load_pretrained_backbone
    model = init_detector(CONFIG, cfg_options=dict(SMALL))
    with pytest.raises(UnsafeCheckpointError):  # a backbone's init_cfg=dict(type='Pretrained', ...)
        load_pretrained_backbone(model.backbone, dict(type='Pretrained', checkpoint=path))
    assert not marker.exists()


def test_unsafe_load_is_an_explicit_per_file_opt_in(tmp_path, small_state):
    """A checkpoint that needs a harmless global outside the allow-list: refused, named, loaded on request."""
    import argparse
    path = tmp_path / 'namespace.pth'
    torch.save({'state_dict': small_state, 'meta': {'args': argparse.Namespace(lr=0.1)}}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"argparse\.Namespace"):
        init_detector(CONFIG, str(path), cfg_options=dict(SMALL))
    assert init_detector(CONFIG, str(path), cfg_options=dict(SMALL), unsafe_load=True) is not None
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': small_state, 'meta': {'args': argparse.Namespace(lr=0.2)}}, other)
    trust_checkpoint(str(path))  # trusting one file does not trust another
    assert load_checkpoint_file(str(path))['meta']['args'].lr == 0.1
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_file(str(other))


def test_legacy_checkpoint_loads_and_resumes(tiny_synth, tmp_path):
    """A checkpoint written by the Runner before the safe loader: init_detector, and --resume from it."""
    import train as train_tool
    from test_train_test_cli import data_options
    model = init_detector(CONFIG, LEGACY, cfg_options=dict(SMALL))  # strict: every weight fits
    ref = torch.load(LEGACY, map_location='cpu', weights_only=False)['state_dict']  # a test, trusted file
    # written before the refine stage became one RoI head: its key_selector / refine_head weights are renamed
    assert any(k.startswith('key_selector.') for k in ref) and not any(k.startswith('roi_head.') for k in ref)
    ref = model.upgrade_state_dict(dict(ref))
    for key, value in model.state_dict().items():
        assert torch.equal(value, ref[key]), key
    root, ann = tiny_synth
    work = tmp_path / 'resume'
    train_tool.main([CONFIG, '--work-dir', str(work), '--resume', LEGACY, '--cfg-options'] + SMALL_CLI +
                    data_options(root, ann) + ['train_cfg.max_epochs=2', 'train_cfg.val_interval=5',
                                               'param_scheduler.1.T_max=2', 'param_scheduler.1.end=2'])
    resumed = load_checkpoint_file(str(work / 'epoch_2.pth'))  # a fresh checkpoint loads safely too
    assert resumed['meta']['epoch'] == 2 and resumed['meta']['iter'] > 0


def test_checkpoint_of_another_model_is_refused_by_default(tmp_path, tiny_synth, small_state):
    import demo
    import test as test_tool
    from test_train_test_cli import data_options
    other = init_detector(CONFIG, cfg_options=dict(SMALL, **{'model.num_classes': 7})).state_dict()
    path = str(tmp_path / 'seven_classes.pth')
    torch.save({'state_dict': other, 'meta': {}}, path)
    with pytest.raises(CheckpointMismatchError) as info:
        init_detector(CONFIG, path, cfg_options=dict(SMALL))
    msg = str(info.value)
    assert path in msg and CONFIG in msg and 'weights of another shape' in msg
    assert 'coarse_head' in msg and 'load_strict=False' in msg
    # knowingly partial: the fitting weights are loaded, the rest keeps its initialisation
    model = init_detector(CONFIG, path, cfg_options=dict(SMALL, load_strict=False))
    assert torch.equal(model.state_dict()['backbone.conv1.conv.weight'], other['backbone.conv1.conv.weight'])
    # a file with no weight of the model is refused even when partial loading is allowed
    unrelated = str(tmp_path / 'unrelated.pth')
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, unrelated)
    with pytest.raises(CheckpointMismatchError, match='holds no weight of the model'):
        init_detector(CONFIG, unrelated, cfg_options=dict(SMALL, load_strict=False))
    root, ann = tiny_synth
    video = sorted(osp.join(dp, f) for dp, _, fs in os.walk(osp.join(root, 'videos')) for f in fs)[0]
    with pytest.raises(SystemExit, match='does not fit'):
        demo.main([video, CONFIG, path, '--out', str(tmp_path / 'demo'), '--cfg-options'] + SMALL_CLI)
    with pytest.raises(SystemExit, match='does not fit'):
        test_tool.main([CONFIG, path, '--work-dir', str(tmp_path / 'test'), '--cfg-options'] + SMALL_CLI +
                       data_options(root, ann))
    # resume=True in the config must not make Runner.test() load the work dir's newest checkpoint over it
    work = tmp_path / 'resume_work'
    work.mkdir()
    good = str(work / 'epoch_1.pth')
    torch.save({'state_dict': small_state, 'meta': {}}, good)
    (work / 'last_checkpoint').write_text(good)
    with pytest.raises(SystemExit, match='does not fit'):
        test_tool.main([CONFIG, path, '--work-dir', str(work), '--cfg-options', 'resume=True'] + SMALL_CLI +
                       data_options(root, ann))


def test_unknown_train_and_test_cfg_keys_raise():
    from mmengine.config import Config
    for key, hint in (('model.test_cfg.refine_iter', 'refine_iters'),
                      ('model.test_cfg.score_thres', 'score_thr'), ('model.train_cfg.topK', 'topk')):
        with pytest.raises(KeyError, match=f"did you mean '{hint}'") as info:
            init_detector(Config.fromfile(CONFIG), cfg_options={key: 0})
        assert 'known keys' in str(info.value)
