"""Markers shared by the whole suite: every test under ``tests/test_models`` is also marked ``model``, so that
``tools/check_cpu_kernels.sh`` can select the model and learning tests with ``-m "model or learning"``."""
import os.path as osp

import pytest

MODEL_TESTS = osp.join(osp.dirname(osp.abspath(__file__)), 'test_models')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(MODEL_TESTS + osp.sep):
            item.add_marker(pytest.mark.model)
