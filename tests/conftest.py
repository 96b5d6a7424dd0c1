"""Shared by the whole suite: every test under ``tests/test_models`` is also marked ``model``, so that
``tools/check_cpu_kernels.sh`` can select the model and learning tests with ``-m "model or learning"``; and
one tiny synthetic tube dataset (6 videos of 24 frames, 64x48) per session (``tiny_synth``)."""
import os.path as osp

import pytest

MODEL_TESTS = osp.join(osp.dirname(osp.abspath(__file__)), 'test_models')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(MODEL_TESTS + osp.sep):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope='session')
def tiny_synth(tmp_path_factory):
    """``(root, ann_file)`` of a 6-video synthetic set (4 train / 2 test); the tests only read it."""
    from cfad_mm.datasets.synthetic_generator import make_synthetic_dataset
    root = tmp_path_factory.mktemp('tiny_synth')
    ann = make_synthetic_dataset(str(root), num_videos=6, frames=24, size=(64, 48), seed=1, test_ratio=0.34,
                                 logger=None)
    return str(root), ann
