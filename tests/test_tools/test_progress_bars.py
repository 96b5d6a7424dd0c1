"""Progress bars of the long tool steps (on stderr), and quiet library calls by default."""
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch

import cfad_mm  # noqa: F401
from cfad_mm.apis import init_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
for sub in ('data', 'analysis', 'deployment'):
    sys.path.insert(0, osp.join(REPO, 'tools', sub))


def test_synthetic_generation_progress(tmp_path, capsys):
    from cfad_mm.datasets.synthetic_generator import make_synthetic_dataset
    small = dict(num_videos=5, frames=12, size=(32, 24), seed=2, test_ratio=0.0)
    make_synthetic_dataset(str(tmp_path / 'quiet'), logger=None, **small)
    out, err = capsys.readouterr()
    assert out == '' and err == ''  # the library default: no bar
    make_synthetic_dataset(str(tmp_path / 'bar'), logger=None, progress=True, **small)
    assert 'synthetic videos' in capsys.readouterr().err
    import make_synthetic
    argv = ['--out', str(tmp_path / 'tool'), '--num-videos', '6', '--frames', '12', '--size', '32x24',
            '--test-ratio', '0.34']
    assert make_synthetic.main(argv) == 0
    out, err = capsys.readouterr()
    assert '6/6' in err and 'synthetic videos' in err and 'annotations:' in out  # the tool: on by default
    assert make_synthetic.main(argv + ['--no-progress']) == 0
    assert 'synthetic videos' not in capsys.readouterr().err


def gt_dump(ann_file, path):
    """A dump of clip predictions made of the ground truth (16-frame clips every 8 frames)."""
    from cfad_mm.datasets.annotation import load_annotations
    ann = load_annotations(ann_file)
    samples = []
    for video in ann['test_videos'][0]:
        n = ann['nframes'][video]
        for start in range(0, max(1, n - 8), 8):
            frame_numbers = np.arange(start + 1, start + 17)
            tubes, masks, labels = [], [], []
            for label, per_label in ann['gttubes'][video].items():
                for tube in per_label:
                    dense, mask = np.zeros((16, 4), np.float32), np.zeros(16, bool)
                    for row in tube:
                        t = int(row[0]) - 1 - start
                        if 0 <= t < 16:
                            dense[t], mask[t] = row[1:], True
                    if mask.any():
                        tubes.append(dense)
                        masks.append(mask)
                        labels.append(label)
            if tubes:
                samples.append(dict(video_id=video, frame_numbers=frame_numbers,
                                    frame_valid=frame_numbers <= n,
                                    pred_instances=dict(tubes=torch.from_numpy(np.stack(tubes)),
                                                        tube_masks=torch.from_numpy(np.stack(masks)),
                                                        scores=torch.full((len(tubes), ), 0.9),
                                                        labels=torch.tensor(labels))))
    with open(path, 'wb') as f:
        pickle.dump(samples, f)
    return samples


def test_offline_evaluation_progress(tiny_synth, tmp_path, capsys):
    import eval_results

    from cfad_mm.evaluation import evaluate_clip_predictions, load_dump
    _, ann_file = tiny_synth
    dump = str(tmp_path / 'gt.pkl')
    gt_dump(ann_file, dump)
    capsys.readouterr()
    quiet = evaluate_clip_predictions(load_dump(dump), ann_file)  # the library (and TubeMetric): no bar
    assert capsys.readouterr().err == ''
    report = eval_results.main([dump, ann_file])
    err = capsys.readouterr().err
    assert 'prepare clips' in err and 'link tubes' in err and 'video' in err
    assert report['metrics'] == quiet['metrics'] and report['metrics']['frame_mAP@0.5'] > 0.9
    eval_results.main([dump, ann_file, '--no-progress'])
    assert 'link tubes' not in capsys.readouterr().err


def test_benchmark_progress(capsys):
    import benchmark
    res = benchmark.main([CONFIG, '--clip-len', '8', '--shape', '48', '64', '--repeats', '2', '--warmup', '1',
                          '--mode', 'tensor'])
    out, err = capsys.readouterr()
    assert len(res['times_s']) == 2 and '1 warm-up + 2 timed runs' in err and '3/3' in err
    assert 'clips/s' in out


def test_export_onnx_prints_its_stages(tmp_path, capsys):
    pytest.importorskip('onnx')
    import export_onnx
    torch.manual_seed(0)
    ckpt = tmp_path / 'untrained.pth'
    torch.save({'state_dict': init_detector(CONFIG).state_dict(), 'meta': {}}, ckpt)
    export_onnx.main([CONFIG, str(ckpt), '--out', str(tmp_path / 'm.onnx'), '--shape', '1', '3', '8', '48',
                      '64', '--no-check'])
    out = capsys.readouterr().out
    assert out.index('[1/2] loading') < out.index('[2/2] exporting') < out.index('exported ')
