"""Config typos fail before anything is built, naming the config file, the key and the closest names."""
import logging
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger

import cfad_mm  # noqa: F401
from cfad_mm.apis.launch import build_runner, check_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


@pytest.mark.parametrize('key,typo,suggestion', [
    ('model.coarse_head', 'CoarseTubeHaed', 'CoarseTubeHead'),
    ('train_dataloader.dataset.pipeline.2', 'TubeResise', 'TubeResize'),
    ('default_hooks.checkpoint', 'AtomicCheckpointHok', 'AtomicCheckpointHook'),
])
def test_unknown_type_names_the_file_key_and_suggestion(key, typo, suggestion):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({f'{key}.type': typo})
    path = re.sub(r'\.(\d+)', r'[\1]', key)
    with pytest.raises(KeyError, match=re.escape(f"{CONFIG}: unknown type(s) {path}.type='{typo}' (did you "
                                                 f"mean '{suggestion}'")):
        check_config(cfg)
    with pytest.raises(KeyError, match=re.escape(typo)):  # the tools' runner builder checks first
        build_runner(cfg)


def test_every_shipped_config_passes():
    import glob
    for path in sorted(glob.glob(osp.join(REPO, 'configs/cfad/*.py'))):
        check_config(Config.fromfile(path))


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_missing_custom_imports_is_reported(tmp_path):
    cfg_dict = Config.fromfile(CONFIG).to_dict()
    cfg_dict.pop('custom_imports')
    Config(cfg_dict).dump(str(tmp_path / 'no_imports.py'))
    cfg = Config.fromfile(str(tmp_path / 'no_imports.py'))
    assert 'custom_imports' not in cfg
    handler = _Capture()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        check_config(cfg)
    finally:
        logger.removeHandler(handler)
    assert any(str(tmp_path / 'no_imports.py') in m and "no custom_imports = dict(imports=['cfad_mm']" in m
               and 'CFAD is not in the mmaction::model registry' in m for m in handler.messages)
