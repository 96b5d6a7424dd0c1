"""Frame folders given to the inference API: every image must have the size of the first one."""
import cv2
import numpy as np
import pytest

from cfad_mm.apis import VideoFrames
from cfad_mm.datasets.media import MediaError


def _write_folder(folder, sizes, ext='.png'):
    """Images ``00001{ext}`` ... of the given (w, h) sizes; image i is filled with grey level 10 * (i + 1)."""
    folder.mkdir()
    for i, (w, h) in enumerate(sizes):
        assert cv2.imwrite(str(folder / f'{i + 1:05d}{ext}'), np.full((h, w, 3), 10 * (i + 1), np.uint8))
    return str(folder)


@pytest.mark.parametrize('ext', ['.png', '.jpg'])
def test_mixed_sizes_are_refused(tmp_path, ext):
    folder = _write_folder(tmp_path / 'frames', [(64, 48), (64, 48), (80, 60), (64, 48), (32, 24)], ext)
    frames = VideoFrames(folder)
    assert frames.num_frames == 5 and frames.shape == (48, 64) and frames.decode_shape == (48, 64)
    assert [f.shape for f in frames.get([0, 1, 3])] == [(48, 64, 3)] * 3
    with pytest.raises(MediaError) as info:
        frames.get(range(5))
    assert str(info.value) == (
        f'{folder}: the frame folder holds images of different sizes: 00003{ext} is 80x60 (WxH) but the '
        f'first image 00001{ext} is 64x48; all frames of a video must have the same size (resize them to one '
        'size or split the folder), otherwise the boxes would be reported in wrong coordinates')


def test_mixed_sizes_are_refused_when_downscaling(tmp_path):
    # the second image already has the downscaled size of the first one: it must still be refused
    folder = _write_folder(tmp_path / 'frames', [(200, 100), (100, 50), (200, 100)])
    frames = VideoFrames(folder, max_side=100)
    assert frames.shape == (100, 200) and frames.decode_shape == (50, 100) and frames.downscaled
    first, third = frames.get([0, 2])
    assert first.shape == third.shape == (50, 100, 3) and third[0, 0, 0] == 30
    with pytest.raises(
            MediaError, match='00002.png is 100x50 \\(WxH\\) but the first image 00001.png is 200x100;'):
        frames.get([1])
