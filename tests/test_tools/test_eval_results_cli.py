"""tools/test.py --dump, then tools/analysis/eval_results.py --config on the real dump: the same numbers."""
import os.path as osp
import pickle
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def test_offline_evaluation_of_a_real_dump_equals_tools_test(tiny_synth, tmp_path, capsys):
    import eval_results
    import test as test_tool

    from cfad_mm.apis import init_detector
    from cfad_mm.evaluation import DumpUnpickler
    root, ann = tiny_synth
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'untrained.pth')
    torch.save({'state_dict': init_detector(CONFIG).state_dict(), 'meta': {}}, ckpt)
    opts = [f'test_dataloader.dataset.ann_file={ann}',
            f'test_dataloader.dataset.data_prefix.video={root}/videos',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'test_dataloader.dataset.pipeline.2.scale=(-1,48)', f'test_evaluator.ann_file={ann}',
            'model.test_cfg.score_thr=0.0']
    dump = str(tmp_path / 'results.pkl')
    online = test_tool.main([CONFIG, ckpt, '--work-dir', str(tmp_path / 'work'), '--dump', dump,
                             '--cfg-options'] + opts)
    # the real dump (with the metainfo of the test pipeline) passes the allow-list
    with open(dump, 'rb') as f:
        samples = DumpUnpickler(f).load()
    with open(dump, 'rb') as f:
        plain = pickle.load(f)
    assert len(samples) == len(plain) > 0 and sorted(samples[0]) == sorted(plain[0])
    report = eval_results.main([dump, ann, '--config', CONFIG])
    assert report['settings']['link_iou'] == 0.3  # the tiny config's test_evaluator, not TubeMetric's 0.5
    for key, value in report['metrics'].items():
        assert online[f'tube/{key}'] == pytest.approx(value, abs=1e-12), key


def test_offline_equals_online_on_predictions_that_score(tiny_synth, tmp_path):
    """The same check with predictions that find the actors (noisy GT tubes, a NaN tube added), so that the
    linking settings and the non-finite handling change the numbers: offline (eval_results --config) and
    online (TubeMetric with the config's test_evaluator) agree, and both are far from 0."""
    import eval_results
    import numpy as np
    from mmengine.config import Config
    from noisy_predictions import noisy_gt_samples

    from cfad_mm.datasets.annotation import load_annotations
    from cfad_mm.evaluation import TubeMetric
    root, ann_file = tiny_synth
    ann = load_annotations(ann_file)

    def nan_tube_in_the_first_clip(index, vi, video, valid, tubes, masks, labels, scores):
        if index == 0:  # one numerically broken tube: left out online and offline alike
            tubes.append(np.full((16, 4), np.nan, np.float32))
            masks.append(np.ones(16, bool))
            labels.append(labels[0])
            scores.append(0.9)

    samples = noisy_gt_samples(ann, 0, nan_tube_in_the_first_clip)
    dump = str(tmp_path / 'noisy_gt.pkl')
    with open(dump, 'wb') as f:
        pickle.dump(samples, f)
    settings = dict(Config.fromfile(CONFIG).test_evaluator)
    settings.pop('type')
    settings['ann_file'] = ann_file
    metric = TubeMetric(**settings)
    metric.process({}, samples)
    online = metric.compute_metrics(metric.results)
    report = eval_results.main([dump, ann_file, '--config', CONFIG])
    assert report['num_nonfinite_tubes'] == 1
    assert report['metrics']['frame_mAP@0.5'] > 0.5 and report['metrics']['video_mAP@0.5'] > 0.5, \
        report['metrics']
    for key, value in report['metrics'].items():
        assert online[key] == pytest.approx(value, abs=1e-12), key
