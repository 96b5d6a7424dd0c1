"""Fixtures of the dataset tests: tiny tube datasets written once per session (see ``tiny_tube_data``)."""
import pytest
from tiny_tube_data import write_tiny_dataset


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """The tiny dataset with mp4 videos and png frame folders (lossless, for exact pixel checks)."""
    return write_tiny_dataset(str(tmp_path_factory.mktemp('tiny')), frames_ext='.png')


@pytest.fixture(scope='session')
def tiny_data_jpg(tmp_path_factory):
    """The tiny dataset with jpg frame folders (the UCF101-24 / UCFSports layout)."""
    return write_tiny_dataset(str(tmp_path_factory.mktemp('tiny_jpg')), frames_ext='.jpg')
