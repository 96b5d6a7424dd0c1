"""The installed environment: imports, registration into mmaction's registries, the stack workarounds."""
import os
import subprocess
import sys

import pytest


def test_stack_imports_in_a_fresh_interpreter():
    # A new process, so that nothing imported by other tests hides a missing workaround.
    code = 'import cfad_mm, mmaction.models, mmdet.models, mmcv.ops; import mmcv._ext; print("ops ok")'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('ops ok')
    # the pinned stack is the one every workaround of cfad_mm.compat was written for: no version warning
    assert 'cfad_mm stack workaround' not in out.stderr, out.stderr[-2000:]


def test_pinned_versions():
    import mmaction
    import mmcv
    import mmdet
    import mmengine
    import numpy
    assert (mmcv.__version__, mmdet.__version__, mmaction.__version__, mmengine.__version__) == \
        ('2.1.0', '3.3.0', '1.2.0', '0.10.7')
    assert numpy.__version__ == '1.26.4'


@pytest.mark.parametrize('registry,names', [
    ('MODELS', ['CFAD', 'CoarseTubeHead', 'KeyTimestampSelector', 'RefineTubeHead', 'TemporalProposalHead']),
    ('TASK_UTILS', ['PolyTubeCoder', 'TubeAssigner']),
    ('DATASETS', ['TubeDataset', 'UCF101_24Dataset', 'JHMDB21Dataset', 'UCFSportsDataset',
                  'SyntheticTubeDataset']),
    ('TRANSFORMS', ['TubeResize', 'TubeRandomCrop', 'TubeFlip', 'PackTubeInputs']),
    ('METRICS', ['TubeMetric']),
])
def test_components_registered_in_mmaction(registry, names):
    import cfad_mm  # noqa: F401
    # isort: split
    import mmaction.registry as reg
    r = getattr(reg, registry)
    for name in names:
        assert r.get(name) is not None, f'{name} missing from mmaction {registry}'


def test_missing_drn_placeholder_gives_a_clear_error():
    import cfad_mm  # noqa: F401
    # isort: split
    from mmaction.models.localizers import DRN
    with pytest.raises(ImportError, match='drn is missing from the mmaction2 1.2.0 wheel'):
        DRN()


def test_mmengine_loads_its_checkpoints_safely_after_import(tmp_path):
    """``import cfad_mm`` keeps torch's weights_only default and makes mmengine's loader use the
    allow-list."""
    import cfad_mm  # noqa: F401
    # isort: split
    import torch
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])}}}, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 1.5


def test_cpu_ddp_wrapper_cfg_has_no_device_ids():
    from cfad_mm.compat import cpu_ddp_wrapper_cfg, setup_distributed
    assert cpu_ddp_wrapper_cfg()['device_ids'] is None
    assert setup_distributed('none') is False
