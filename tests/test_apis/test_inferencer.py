"""TubeInferencer: a model NAME of the metafile, the same tubes as tools/demo.py, arrays, clear errors."""
import importlib.util
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

import cfad_mm  # noqa: F401
from cfad_mm.apis import TubeInferencer, VideoFrames, inference_video, init_detector, tubes_to_json

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAME = 'cfad_r3d-18-tiny_synthetic'
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
CLASSES = ['walk_line', 'circle', 'zigzag', 'jump', 'stop_and_go']
# an untrained model keeps a few low-scoring tubes: keep them all so that there is something to compare
SMALL = dict(score_thr=0.0)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_detector(CONFIG)
    path = tmp_path_factory.mktemp('ckpt') / 'untrained.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': CLASSES}}}, path)
    return str(path)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    """One generated synthetic video (20 frames, 64x48)."""
    from cfad_mm.datasets.synthetic_generator import make_synthetic_dataset
    root = tmp_path_factory.mktemp('synth')
    make_synthetic_dataset(str(root), num_videos=5, frames=20, size=(64, 48), seed=3, test_ratio=0.0,
                           logger=None)
    path = next(p for p in sorted((root / 'videos').rglob('*.mp4')))
    return str(path)


def test_inferencer_by_name_matches_the_demo(tmp_path, checkpoint, video):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import demo
    demo_out = tmp_path / 'demo'
    demo_tubes = demo.main([video, CONFIG, checkpoint, '--out', str(demo_out), '--score-thr', '0'])
    assert json.loads((demo_out / 'tubes.json').read_text()) == demo_tubes

    inferencer = TubeInferencer(NAME, weights=checkpoint, device='cpu', show_progress=False)
    out_dir = tmp_path / 'infer'
    res = inferencer(video, out_dir=str(out_dir), **SMALL)
    assert set(res) == {'predictions', 'visualization'} and res['visualization'] == [None]
    pred = res['predictions'][0]
    assert pred == demo_tubes and pred['tubes'], 'the same tubes as tools/demo.py'
    name = osp.splitext(osp.basename(video))[0]
    written = json.loads((out_dir / name / 'tubes.json').read_text())
    assert written == pred
    rendered = VideoFrames(str(out_dir / name / f'{name}_tubes.mp4'))
    assert rendered.num_frames == pred['nframes'] == 20 and rendered.shape == (48, 64)
    has_timeline = importlib.util.find_spec('cfad_mm.analysis') is not None
    assert (out_dir / name / 'timeline.png').is_file() == has_timeline
    assert (demo_out / 'timeline.png').is_file() == has_timeline
    # and the same as the library path the demo was written on before
    model = init_detector(CONFIG, checkpoint)
    assert tubes_to_json(inference_video(model, video, progress=False), CLASSES, 0.0) == pred
    for t in pred['tubes']:
        assert t['label_name'] in CLASSES


def test_inferencer_on_arrays_and_lists(tmp_path, checkpoint, video):
    frames = VideoFrames(video)
    array = np.stack(frames.get(range(frames.num_frames)))
    inferencer = TubeInferencer(CONFIG, weights=checkpoint, device='cpu', show_progress=False)
    from_file = inferencer(video, **SMALL)['predictions'][0]
    out_dir = tmp_path / 'arrays'
    res = inferencer([array, array[:5]], out_dir=str(out_dir), return_vis=True, render=False, batch_size=3,
                     **SMALL)
    first, second = res['predictions']
    assert first['video'] == 'array_0' and second['video'] == 'array_1'
    assert first['nframes'] == 20 and second['nframes'] == 5 and first['resolution'] == [48, 64]
    # the decoded frames of the file give the same tubes (up to float noise of batching 3 windows)
    assert len(first['tubes']) == len(from_file['tubes'])
    for a, b in zip(first['tubes'], from_file['tubes']):
        assert a['label'] == b['label'] and abs(a['score'] - b['score']) < 1e-4
        np.testing.assert_allclose(np.array(a['boxes']), np.array(b['boxes']), atol=0.05)
    assert json.loads((out_dir / 'array_0' / 'tubes.json').read_text()) == first
    assert sorted(p.name for p in out_dir.iterdir()) == ['array_0', 'array_1']
    assert not (out_dir / 'array_0' / 'array_0_tubes.mp4').exists()  # render=False
    vis = res['visualization']
    assert vis[0].shape == (20, 48, 64, 3) and vis[0].dtype == np.uint8 and vis[1].shape[0] == 5
    # one array (not in a list), rendered
    one = inferencer(array[:4], out_dir=str(tmp_path / 'one'), **SMALL)
    assert one['predictions'][0]['nframes'] == 4
    assert VideoFrames(str(tmp_path / 'one' / 'array_0' / 'array_0_tubes.mp4')).num_frames == 4
    with pytest.raises(ValueError, match=r'array_0: a video array must be a non-empty \(T, H, W, 3\) RGB '
                                         r'uint8'):
        inferencer(array.astype(np.float32))


def test_inferencer_errors(tmp_path, checkpoint):
    with pytest.raises(ValueError, match="unknown model 'no_such_model'") as err:
        TubeInferencer('no_such_model', weights=checkpoint)
    for name in (NAME, 'cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24', 'cfad_r3d-18-tiny_finetune-custom'):
        assert name in str(err.value)
    with pytest.raises(FileNotFoundError, match='config not found'):
        TubeInferencer(str(tmp_path / 'missing.py'), weights=checkpoint)
    with pytest.raises(FileNotFoundError, match='checkpoint not found|No such file'):
        TubeInferencer(NAME, weights=str(tmp_path / 'missing.pth'))
    inferencer = TubeInferencer(CONFIG, weights=checkpoint, device='cpu', show_progress=False)
    with pytest.raises(FileNotFoundError, match='video not found'):
        inferencer(str(tmp_path / 'missing.mp4'))
    with pytest.raises(ValueError, match='unknown_kwarg'):
        inferencer(str(tmp_path / 'missing.mp4'), unknown_kwarg=1)


def test_timeline_is_skipped_with_a_message_without_its_module(tmp_path, checkpoint, monkeypatch):
    from cfad_mm.apis import inferencer as inferencer_module
    messages = []
    monkeypatch.setitem(sys.modules, 'cfad_mm.analysis.timeline', None)  # the import fails
    monkeypatch.setattr(inferencer_module, 'print_log', lambda msg, *a, **k: messages.append(msg))
    tubes = dict(video='v', nframes=3, resolution=[4, 4], tubes=[])
    assert inferencer_module.save_timeline(tubes, str(tmp_path / 'timeline.png')) is None
    assert not (tmp_path / 'timeline.png').exists()
    assert len(messages) == 1 and messages[0].startswith('tube timeline skipped (cfad_mm.analysis.timeline')
    inferencer = TubeInferencer(CONFIG, weights=checkpoint, device='cpu', show_progress=False)
    out = inferencer(np.zeros((3, 48, 64, 3), np.uint8), out_dir=str(tmp_path / 'o'))
    assert out['predictions'][0]['nframes'] == 3
    assert (tmp_path / 'o' / 'array_0' / 'array_0_tubes.mp4').is_file()
    assert not (tmp_path / 'o' / 'array_0' / 'timeline.png').exists()


def test_inputs_with_the_same_name_do_not_overwrite_each_other(tmp_path, checkpoint, video, monkeypatch):
    import shutil
    other = tmp_path / 'b'
    other.mkdir()
    copy = other / osp.basename(video)
    shutil.copy(video, copy)
    inferencer = TubeInferencer(CONFIG, weights=checkpoint, device='cpu', show_progress=False)
    # a failing timeline is skipped with a warning: the tubes and the video are still written
    import cfad_mm.analysis.timeline as timeline

    def broken(*args, **kwargs):
        raise RuntimeError('no canvas')

    monkeypatch.setattr(timeline, 'plot_tube_timeline', broken)
    out_dir = tmp_path / 'same'
    res = inferencer([video, str(copy)], out_dir=str(out_dir), **SMALL)
    name = osp.splitext(osp.basename(video))[0]
    assert sorted(p.name for p in out_dir.iterdir()) == [name, f'{name}_1']
    for sub, pred in zip((name, f'{name}_1'), res['predictions']):
        assert json.loads((out_dir / sub / 'tubes.json').read_text()) == pred
        assert (out_dir / sub / f'{sub}_tubes.mp4').is_file() and \
            not (out_dir / sub / 'timeline.png').exists()
