"""Size limits of the network input of whole-video inference (checked before the model runs)."""
import os.path as osp

import cv2
import numpy as np
import pytest

import cfad_mm  # noqa: F401
from cfad_mm.apis import VideoFrames, inference_video, init_detector
from cfad_mm.apis.inference import MAX_INPUT_AREA, MAX_INPUT_SIDE, InputSizeError, check_input_size
from cfad_mm.datasets.media import MediaError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


def write_video(path, num_frames, size):
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (w, h))
    rng = np.random.default_rng(0)
    for _ in range(num_frames):
        writer.write(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8))
    writer.release()
    return str(path)


@pytest.fixture(scope='module')
def model():
    return init_detector(CONFIG)


def refuse_forward(model, monkeypatch):
    def forward(*args, **kwargs):
        raise AssertionError('the model ran')

    monkeypatch.setattr(model, 'forward', forward)


def test_a_very_wide_video_is_refused_before_the_model_runs(tmp_path, model, monkeypatch):
    video = write_video(tmp_path / 'wide.mp4', 3, (2000, 16))
    frames = VideoFrames(video)
    assert frames.shape == (16, 2000) and frames.decode_shape == (10, 1280)
    refuse_forward(model, monkeypatch)
    # short side 10 -> 96 (the tiny config's TubeResize scale=(-1, 96)): a 12288x96 network input
    expected = (f'{video}: the 2000x16 video (decoded at 1280x10) gives a 12288x96 (WxH) network input with '
                "the config's test pipeline: long side 12288 px > max_input_side=2048. Crop or resize the "
                'video to a usual aspect ratio, bound the long side in the test resize (--cfg-options '
                '"test_dataloader.dataset.pipeline.2.scale=(LONG,SHORT)"), or raise the limit '
                '(--max-input-side / --max-input-area, 0 disables it).')
    with pytest.raises(InputSizeError) as info:
        inference_video(model, video, progress=False)
    assert str(info.value) == expected
    assert isinstance(info.value, MediaError) and isinstance(info.value, ValueError)


def test_limits_are_configurable_and_can_be_disabled(tmp_path, model, monkeypatch):
    video = write_video(tmp_path / 'v.mp4', 2, (128, 96))  # network input 128x96
    assert (MAX_INPUT_SIDE, MAX_INPUT_AREA) == (2048, 2048 * 1536)
    with monkeypatch.context() as m:
        refuse_forward(model, m)
        pattern = r'gives a 128x96 \(WxH\) network input .*: long side 128 px > max_input_side=100\.'
        with pytest.raises(InputSizeError, match=pattern):
            inference_video(model, video, progress=False, max_input_side=100)
        with pytest.raises(InputSizeError, match=r': area 12288 px > max_input_area=12000 \(1\.0x\)\.'):
            inference_video(model, video, progress=False, max_input_area=12000)
    for limits in (dict(max_input_side=None, max_input_area=None), dict(max_input_side=0, max_input_area=0),
                   dict(max_input_side=128, max_input_area=128 * 96)):
        res = inference_video(model, video, progress=False, **limits)
        assert res['nframes'] == 2 and len(res['clips']) == 1


def test_check_input_size_arguments():
    check_input_size('v', (20, 5000), (1, 3, 16, 96, 2048))  # at the limit
    with pytest.raises(InputSizeError, match=r'^v: the 5000x20 video gives a 2049x96 \(WxH\) .*\.<i>\.'):
        check_input_size('v', (20, 5000), (3, 16, 96, 2049))
    with pytest.raises(ValueError, match='max_input_area must be >= 0 .*got -1'):
        check_input_size('v', (20, 5000), (3, 16, 96, 20), max_input_area=-1)
