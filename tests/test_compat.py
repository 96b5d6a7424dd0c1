"""cfad_mm.compat: the registry of stack workarounds, their version guards and probes, the export-only
patches."""
import importlib
import os
import os.path as osp
import pkgutil
import subprocess
import sys
import warnings

import pytest

import cfad_mm  # noqa: F401
from cfad_mm import compat
from cfad_mm.compat import mmaction_drn, mmengine_checkpoint_hook, onnx_export
from cfad_mm.compat import workaround as wmod
from cfad_mm.compat.workaround import StackWorkaroundWarning, Workaround

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _pins():
    """``{distribution: version}`` of the ``==`` pins in requirements/*.txt."""
    pins = {}
    folder = osp.join(REPO, 'requirements')
    for name in os.listdir(folder):
        with open(osp.join(folder, name)) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if '==' in line:
                    dist, version = line.split('==', 1)
                    pins[dist.strip().lower()] = version.strip()
    return pins


def test_old_import_paths_still_work():
    from cfad_mm.apis.export import onnx_export_context
    from cfad_mm.compat import (
        DRN_MODULE,
        apply_compat_patches,
        cpu_ddp_wrapper_cfg,
        setup_distributed,
    )
    assert callable(apply_compat_patches) and DRN_MODULE == 'mmaction.models.localizers.drn'
    assert cpu_ddp_wrapper_cfg()['device_ids'] is None and setup_distributed('none') is False
    assert onnx_export_context is compat.onnx_export_context is onnx_export.onnx_export_context


def test_registry_covers_every_workaround_module_and_names_existing_files():
    names = [w.name for w in compat.WORKAROUNDS]
    assert len(names) == len(set(names))
    for info in pkgutil.iter_modules(compat.__path__):
        if info.name == 'workaround':
            continue
        module = importlib.import_module(f'cfad_mm.compat.{info.name}')
        records = [v for v in vars(module).values() if isinstance(v, Workaround)]
        assert records, f'cfad_mm/compat/{info.name}.py declares no Workaround record'
        for record in records:
            assert record in compat.WORKAROUNDS, f'{record.name} is not in WORKAROUNDS'
    for w in compat.WORKAROUNDS:
        assert w.written_for and w.summary
        for path in w.files:
            assert osp.isfile(osp.join(REPO, path)), f'{w.name}: {path} does not exist'
        module, _, obj = w.implemented_by.rpartition('.')
        assert hasattr(importlib.import_module(module), obj), w.implemented_by


def test_written_for_ranges_contain_the_pinned_versions():
    pins = _pins()
    for w in compat.WORKAROUNDS:
        for requirement in w.written_for:
            dist, spec = wmod.parse_requirement(requirement)
            assert dist in pins, f'{w.name}: {dist} is not pinned in requirements/'
            assert wmod.version_matches(pins[dist], spec), f'{w.name}: {requirement} vs pin {pins[dist]}'


def test_no_warning_on_the_installed_stack():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert compat.check_workarounds() == []
    for w in compat.WORKAROUNDS:
        assert w.still_needed is None or w.still_needed(), w.name


def test_another_version_warns_naming_package_versions_and_file(monkeypatch):
    real = wmod.installed_version
    monkeypatch.setattr(wmod, 'installed_version', lambda d: '2.2.0' if d == 'mmcv' else real(d))
    with pytest.warns(StackWorkaroundWarning) as record:
        messages = compat.check_workarounds()
    assert len(messages) == len(record) == 1  # only the mmcv workaround, once
    msg = str(record[0].message)
    assert isinstance(record[0].message, UserWarning)
    for part in ("'mmcv-roialign-onnx-symbolic'", 'mmcv 2.2.0 is installed', 'written for mmcv==2.1.0',
                 'cfad_mm/compat/onnx_export.py', 'docs/troubleshooting.md'):
        assert part in msg, part


def test_one_warning_per_workaround_even_with_several_problems(monkeypatch):
    versions = {'mmengine': '0.11.0', 'torch': '2.5.1'}
    with pytest.warns(StackWorkaroundWarning) as record:
        messages = compat.check_workarounds(
            [compat.torch_weights_only.WORKAROUND], version_of=lambda d: versions.get(d))
    assert len(messages) == len(record) == 1
    msg = messages[0]
    assert 'mmengine 0.11.0 is installed, it was written for mmengine==0.10.7' in msg
    assert 'torch 2.5.1 is installed, it was written for torch>=2.6' in msg
    assert 'cfad_mm/engine/checkpoint.py' in msg


def test_absent_package_is_skipped():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert compat.check_workarounds(version_of=lambda d: None) == []


def test_probe_saying_no_longer_needed_warns(tmp_path, monkeypatch):
    # an mmaction2 install that ships localizers/drn (e.g. from source)
    os.makedirs(tmp_path / 'models' / 'localizers' / 'drn')
    monkeypatch.setattr(mmaction_drn, '_mmaction_roots', lambda: [str(tmp_path)])
    with pytest.warns(StackWorkaroundWarning, match='mmaction-missing-drn') as record:
        compat.check_workarounds([mmaction_drn.WORKAROUND])
    msg = str(record[0].message)
    assert 'its probe says it no longer applies' in msg
    assert 'mmaction/models/localizers/drn exists' in msg and 'mmaction2==1.2.0' in msg
    assert 'cfad_mm/compat/mmaction_drn.py' in msg
    # a generic record whose probe is negative
    record = Workaround(name='x', summary='s', written_for=('torch>=1.0', ), files=('f.py', ),
                        implemented_by='m.f', still_needed=lambda: False, probe='the bug is fixed')
    with pytest.warns(StackWorkaroundWarning, match=r"'x' .*the bug is fixed.*Review f\.py"):
        compat.check_workarounds([record])


def test_mmdet_core_export_probe(tmp_path, monkeypatch):
    coder = tmp_path / onnx_export.MMDET_DELTA_CODER
    coder.parent.mkdir(parents=True)
    monkeypatch.setattr(onnx_export, '_mmdet_roots', lambda: [str(tmp_path)])
    coder.write_text('from mmdet.core.export import dynamic_clip_for_onnx\n')
    assert onnx_export.mmdet_core_export_needed()
    coder.write_text('# mmdet fixed its ONNX branch\n')
    assert not onnx_export.mmdet_core_export_needed()
    coder.write_text('from mmdet.core.export import dynamic_clip_for_onnx\n')
    (tmp_path / 'core' / 'export').mkdir(parents=True)  # mmdet ships the module again
    assert not onnx_export.mmdet_core_export_needed()


def test_checkpoint_hook_probe_sees_missing_private_methods(monkeypatch):
    from mmengine.hooks import CheckpointHook
    assert mmengine_checkpoint_hook.private_methods_present()
    monkeypatch.delattr(CheckpointHook, '_save_best_checkpoint')
    assert not mmengine_checkpoint_hook.private_methods_present()
    with pytest.warns(StackWorkaroundWarning, match='_save_best_checkpoint') as record:
        compat.check_workarounds([mmengine_checkpoint_hook.WORKAROUND])
    assert 'cfad_mm/engine/hooks/atomic_checkpoint_hook.py' in str(record[0].message)


@pytest.mark.parametrize('version,spec,expected', [
    ('2.1.0', '==2.1.0', True), ('2.1', '==2.1.0', True), ('2.1.1', '==2.1.0', False),
    ('2.13.0+cpu', '==2.13.0', True), ('2.13.0+cpu', '>=2.6', True), ('2.5.1', '>=2.6', False),
    ('0.10.7', '>=0.10,<0.11', True), ('0.11.0', '>=0.10,<0.11', False), ('1.0', '', True),
])
def test_version_matching_with_and_without_packaging(version, spec, expected):
    assert wmod.version_matches(version, spec) is expected
    assert wmod._simple_matches(version, spec) is expected


def test_onnx_export_context_restores_everything():
    from mmcv.ops.roi_align import RoIAlignFunction
    before = RoIAlignFunction.__dict__['symbolic']
    assert 'mmdet.core' not in sys.modules and 'mmdet.core.export' not in sys.modules
    with pytest.raises(RuntimeError, match='boom'):
        with onnx_export.onnx_export_context():
            assert RoIAlignFunction.symbolic is onnx_export._roi_align_symbolic
            from mmdet.core.export import dynamic_clip_for_onnx
            assert dynamic_clip_for_onnx is onnx_export._dynamic_clip_for_onnx
            raise RuntimeError('boom')
    assert RoIAlignFunction.__dict__['symbolic'] is before
    assert 'mmdet.core' not in sys.modules and 'mmdet.core.export' not in sys.modules


def test_onnx_export_context_leaves_an_existing_mmdet_core_as_it_was(monkeypatch):
    import types
    core = types.ModuleType('mmdet.core')
    core.__path__ = []
    monkeypatch.setitem(sys.modules, 'mmdet.core', core)
    with onnx_export.onnx_export_context():
        assert core.export is sys.modules['mmdet.core.export']
    assert not hasattr(core, 'export') and 'mmdet.core.export' not in sys.modules
    assert sys.modules['mmdet.core'] is core


def test_import_warns_once_per_workaround_in_a_fresh_interpreter():
    """The check runs at ``import cfad_mm``; a faked mmcv version gives one warning naming it."""
    code = ('import importlib.metadata as m; real = m.version; '
            "m.version = lambda d: '9.9.9' if d == 'mmcv' else real(d); "
            'import warnings; warnings.simplefilter("always"); import cfad_mm, cfad_mm.compat; '
            'cfad_mm.compat.apply_compat_patches()')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count('cfad_mm stack workaround') == 1, out.stderr[-2000:]
    assert "'mmcv-roialign-onnx-symbolic'" in out.stderr and 'mmcv 9.9.9 is installed' in out.stderr
