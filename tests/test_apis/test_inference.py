"""Whole-video inference and the demo tool on a generated synthetic video (untrained tiny model)."""
import json
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

import cfad_mm  # noqa: F401
from cfad_mm.apis import VideoFrames, inference_video, init_detector, tubes_to_json

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


def write_video(path, num_frames, size=(128, 96)):
    w, h = size
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (w, h))
    for t in range(num_frames):
        img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
        img[30:60, 10 + 2 * t:40 + 2 * t] = 220
        writer.write(img)
    writer.release()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_detector(CONFIG)
    path = tmp_path_factory.mktemp('ckpt') / 'untrained.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': ['walk_line', 'circle', 'zigzag', 'jump',
                                                      'stop_and_go']}}},
               path)
    return str(path)


@pytest.mark.parametrize('num_frames', [1, 10, 37])
def test_inference_covers_every_frame(tmp_path, checkpoint, num_frames):
    video = tmp_path / 'v.mp4'
    write_video(video, num_frames)
    model = init_detector(CONFIG, checkpoint)
    res = inference_video(model, str(video), progress=False)
    assert res['nframes'] == num_frames and res['resolution'] == (96, 128)
    covered = np.zeros(num_frames, bool)
    for clip in res['clips']:
        covered[clip['frame_numbers'][clip['frame_valid']] - 1] = True
    assert covered.all()
    tubes = res['tubes']
    assert tubes['tubes'].shape[1:] == (num_frames, 4)
    assert tubes['tube_masks'].shape == tubes['tubes'].shape[:2]
    js = tubes_to_json(res, model.dataset_meta['classes'])
    for t in js['tubes']:
        frames = [b[0] for b in t['boxes']]
        assert min(frames) >= 1 and max(frames) <= num_frames
        assert t['label_name'] in model.dataset_meta['classes']


def test_demo_tool_writes_json_and_renders(tmp_path, checkpoint):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import demo
    video = tmp_path / 'clip.mp4'
    write_video(video, 20)
    out = tmp_path / 'out'
    demo.main([str(video), CONFIG, checkpoint, '--out', str(out), '--gif', '--score-thr', '0'])
    data = json.loads((out / 'tubes.json').read_text())
    assert data['nframes'] == 20 and data['resolution'] == [96, 128]
    rendered = VideoFrames(str(out / 'clip_tubes.mp4'))
    assert rendered.num_frames == 20 and rendered.shape == (96, 128)
    assert (out / 'clip_tubes.gif').stat().st_size > 0


def test_unreadable_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='video not found: .*nope.mp4'):
        VideoFrames(str(tmp_path / 'nope.mp4'))
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'this is not a video')
    with pytest.raises(ValueError, match='bad.mp4: cannot decode this video file'):
        VideoFrames(str(bad))
    empty_dir = tmp_path / 'frames'
    empty_dir.mkdir()
    with pytest.raises(ValueError, match='frame folder holds no image'):
        VideoFrames(str(empty_dir))


def test_demo_on_a_one_frame_and_a_very_large_video(tmp_path, checkpoint):
    """A 1-frame video and a 2400x1800 video (decoded downscaled to 1280 px, tubes in original pixels)."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import demo
    one = tmp_path / 'one.mp4'
    write_video(one, 1)
    data = demo.main([str(one), CONFIG, checkpoint, '--out', str(tmp_path / 'o1'), '--score-thr', '0',
                      '--gif'])
    assert data['nframes'] == 1 and (tmp_path / 'o1' / 'one_tubes.gif').stat().st_size > 0
    big = tmp_path / 'big.mp4'
    write_video(big, 3, size=(2400, 1800))
    frames = VideoFrames(str(big))
    assert frames.shape == (1800, 2400) and frames.decode_shape == (960, 1280) and frames.downscaled
    assert frames.get([0])[0].shape == (960, 1280, 3)
    data = demo.main([str(big), CONFIG, checkpoint, '--out', str(tmp_path / 'o2'), '--score-thr', '0'])
    assert data['resolution'] == [1800, 2400]
    # untrained: keep every coarse tube (score_thr 0, topk 100) so that some cover the video's 3 frames
    model = init_detector(CONFIG, checkpoint, cfg_options={'model.test_cfg.score_thr': 0.0,
                                                           'model.test_cfg.topk': 100})
    res = inference_video(model, frames, progress=False, link_cfg=dict(trim_thr=None))
    for boxes in (res['clips'][0]['tubes'], res['tubes']['tubes'][res['tubes']['tube_masks']]):
        boxes = boxes.reshape(-1, 4)
        assert len(boxes) and boxes[:, [0, 2]].max() <= 2400 and boxes[:, [1, 3]].max() <= 1800
        assert boxes[:, 2].max() > 1280 or boxes[:, 3].max() > 960  # mapped back, not left in decoded pixels
    rendered = VideoFrames(str(tmp_path / 'o2' / 'big_tubes.mp4'), max_side=None)
    assert rendered.shape == (960, 1280) and rendered.num_frames == 3


def test_video_linking_follows_the_config_test_evaluator():
    from mmengine.config import Config

    from cfad_mm.apis.inference import config_link_cfg
    cfg = Config.fromfile(CONFIG)
    assert config_link_cfg(cfg) == dict(link_iou=0.3)  # the tiny config's evaluator sets link_iou only
    cfg.test_evaluator = [dict(type='Other'), dict(type='TubeMetric', link_iou=0.4, trim_thr=None, max_gap=2)]
    assert config_link_cfg(cfg) == dict(link_iou=0.4, trim_thr=None, max_gap=2)
    cfg.test_evaluator = None
    assert config_link_cfg(cfg) == {}
