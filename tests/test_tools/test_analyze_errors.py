"""tools/analysis/analyze_errors.py end to end on a tiny dump of noisy-GT predictions (with a wrong-class tube
and a background tube added): its JSON numbers are those of the library call, and its base mAP is the
metric's."""
import json
import os.path as osp
import pickle
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from noisy_predictions import noisy_gt_samples as shared_noisy_gt_samples  # noqa: E402


def noisy_gt_samples(ann, seed=0):
    """The noisy GT predictions; in every clip of the first test video also a tube of a wrong class on its
    first GT tube and a background tube."""
    num_classes = len(ann['labels'])

    def wrong_class_and_background(index, vi, video, valid, tubes, masks, labels, scores):
        if vi != 0:
            return
        w, h = ann['resolution'][video][1], ann['resolution'][video][0]
        tubes.append(tubes[0].copy())
        masks.append(masks[0].copy())
        labels.append((labels[0] + 1) % num_classes)
        scores.append(0.95)
        tubes.append(np.tile(np.array([w - 6, h - 6, w - 1, h - 1], np.float32), (16, 1)))
        masks.append(valid.copy())
        labels.append(labels[0])
        scores.append(0.97)

    return shared_noisy_gt_samples(ann, seed, wrong_class_and_background)


def test_analyze_errors_end_to_end(tiny_synth, tmp_path, capsys):
    import analyze_errors

    from cfad_mm.analysis import video_error_breakdown
    from cfad_mm.datasets.annotation import load_annotations
    from cfad_mm.evaluation import evaluate_clip_predictions
    root, ann_file = tiny_synth
    ann = load_annotations(ann_file)
    dump = str(tmp_path / 'noisy_gt.pkl')
    with open(dump, 'wb') as f:
        pickle.dump(noisy_gt_samples(ann), f)
    out = str(tmp_path / 'errors')
    result = analyze_errors.main([dump, ann_file, '--out', out, '--config', CONFIG, '--markdown'])
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith('| class | AP@0.5 | ddup | dcls |')

    with open(osp.join(out, 'errors.json')) as f:
        saved = json.load(f)
    assert saved['settings']['link_iou'] == 0.3  # the tiny config's test_evaluator
    # the library call on the tubes linked as the metric links them
    from mmengine.config import Config
    metric = dict(Config.fromfile(CONFIG).test_evaluator)
    settings = {
        k: metric[k]
        for k in ('link_iou', 'trim_thr', 'nms_thr', 'max_gap', 'protocol') if k in metric
    }
    with open(dump, 'rb') as f:
        samples = pickle.load(f)
    from cfad_mm.evaluation.metrics.tube_metric import data_samples_to_clip_predictions
    report = evaluate_clip_predictions(
        data_samples_to_clip_predictions(samples), ann, return_tubes=True, **settings)
    lib = video_error_breakdown(
        report['video_tubes'],
        ann,
        nms_thr=report['settings']['nms_thr'],
        protocol=report['settings']['protocol'])
    assert saved['mAP'] == pytest.approx(report['metrics']['video_mAP@0.5'], abs=1e-6)
    assert saved['mAP'] == lib['mAP'] and saved['dAP'] == lib['dAP'] and saved['counts'] == lib['counts']
    assert saved['dAP_per_class'] == lib['dAP_per_class']
    assert saved['mAP'] < 1.0 and saved['mAP'] + saved['dAP']['all'] == pytest.approx(1.0, abs=1e-6)
    # the added wrong-class and background tubes show up
    assert saved['counts']['cls'] + saved['counts']['both'] >= 1 and saved['counts']['bkg'] >= 1
    assert result['dAP'] == saved['dAP']
    assert osp.isfile(osp.join(out, 'errors.png'))
    for video in ann['test_videos'][0]:
        assert osp.isfile(osp.join(out, 'timelines', video + '.png')), video


def test_missing_inputs_are_one_error_line(tmp_path):
    import analyze_errors
    with pytest.raises(SystemExit, match='^error: .*not found'):
        analyze_errors.main([str(tmp_path / 'missing.pkl'), str(tmp_path / 'missing_ann.pkl'), '--out',
                             str(tmp_path / 'out')])
