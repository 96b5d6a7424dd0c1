import json
import pickle

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from tube_eval_data import clips_from_gt, make_ann, to_data_samples, tube

import cfad_mm  # noqa: F401
from cfad_mm.evaluation import TubeMetric, data_samples_to_clip_predictions, evaluate_tubes

KEYS = ['frame_mAP@0.5', 'video_mAP@0.2', 'video_mAP@0.5', 'video_mAP@0.75', 'video_mAP@0.5:0.95']


@pytest.fixture
def ann_file(tmp_path, two_video_ann):
    path = tmp_path / 'ann.pkl'
    with open(path, 'wb') as f:
        pickle.dump(two_video_ann, f)
    return str(path)


def run_evaluator(metric_cfg, samples, batch_size=3):
    evaluator = Evaluator(metric_cfg)
    for i in range(0, len(samples), batch_size):
        evaluator.process(data_samples=samples[i:i + batch_size], data_batch=None)
    return evaluator.evaluate(len(samples))


def test_end_to_end_perfect_with_mmengine_evaluator(ann_file, two_video_ann, tmp_path):
    samples = to_data_samples(clips_from_gt(two_video_ann))
    metrics = run_evaluator(
        dict(type='mmaction.TubeMetric', ann_file=ann_file, dump_dir=str(tmp_path)), samples)
    assert list(metrics) == [f'tube/{k}' for k in KEYS]
    for value in metrics.values():
        assert value == pytest.approx(1.0)
    dump = json.loads((tmp_path / 'tube_eval_results.json').read_text())
    assert dump['metrics']['video_mAP@0.5'] == pytest.approx(1.0)
    assert dump['skipped_classes'] == ['jump'] and dump['frame']['ap']['jump'] is None
    assert set(
        dump['video']) == {'0.2', '0.5', '0.55', '0.6', '0.65', '0.7', '0.75', '0.8', '0.85', '0.9', '0.95'}
    assert set(dump['video']['0.5']['pr_curves']) == {'walk', 'run'
                                                      } and 'pr_curves' not in dump['video']['0.6']
    assert dump['frame']['pr_curves']['walk']['recall'][-1] == pytest.approx(1.0)


def test_shuffled_clips_give_identical_metrics(ann_file, two_video_ann):
    clips = clips_from_gt(two_video_ann, jitter=4.0, seed=1)
    # add clutter so that the numbers are not trivially 1
    rng = np.random.default_rng(2)
    for video_clips in clips.values():
        for c in video_clips:
            c['scores'] = (c['scores'] * rng.uniform(0.3, 1, len(c['scores']))).astype(np.float32)
    samples = to_data_samples(clips)
    ref = run_evaluator(dict(type='mmaction.TubeMetric', ann_file=ann_file, dump_dir=None), samples)
    assert 0 < ref['tube/video_mAP@0.5:0.95'] < 1
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(len(samples))
        out = run_evaluator(
            dict(type='mmaction.TubeMetric', ann_file=ann_file, dump_dir=None), [samples[i] for i in perm],
            batch_size=4)
        assert out == ref  # bit-identical


def test_videos_without_predictions_count_and_empty_predictions(two_video_ann):
    clips = clips_from_gt(two_video_ann, videos=['a/v1'])
    metric = TubeMetric(ann_file=two_video_ann, dump_dir=None)
    metric.process(None, [s.to_dict() for s in to_data_samples(clips)])
    res = metric.compute_metrics(metric.results)
    # walk: 1 of 2 tubes found (AP 0.5), run: found (AP 1) -> video-mAP 0.75; frame-mAP likewise by boxes
    assert res['video_mAP@0.5'] == pytest.approx(0.75)
    assert metric.last_report['frame']['ap'][0] == pytest.approx(40 / 66)  # 40 of 66 walk boxes
    empty = {
        v: [
            dict(
                c,
                tubes=c['tubes'][:0],
                tube_masks=c['tube_masks'][:0],
                scores=c['scores'][:0],
                labels=c['labels'][:0],
                frame_scores=c['frame_scores'][:0]) for c in cs
        ]
        for v, cs in clips_from_gt(two_video_ann).items()
    }
    metric.results.clear()
    metric.process(None, to_data_samples(empty))
    assert all(v == 0.0 for v in metric.compute_metrics(metric.results).values())


def test_voc_protocol_and_custom_thresholds(two_video_ann):
    clips = clips_from_gt(two_video_ann)
    metric = TubeMetric(
        ann_file=two_video_ann, protocol='voc', video_iou_thrs=(0.3, ), frame_iou_thr=0.6, dump_dir=None)
    metric.process(None, to_data_samples(clips))
    res = metric.compute_metrics(metric.results)
    assert list(res) == ['frame_mAP@0.6', 'video_mAP@0.3', 'video_mAP@0.5:0.95']
    assert all(v == pytest.approx(1.0) for v in res.values())


def test_data_samples_to_clip_predictions():
    ds = dict(
        video_id='v',
        frame_numbers=torch.arange(1, 5),
        pred_instances=dict(
            tubes=torch.zeros(2, 4, 4),
            tube_masks=torch.ones(2, 4, dtype=torch.bool),
            scores=torch.tensor([0.5, 0.2]),
            labels=torch.tensor([1, 0])))
    (clip, ) = data_samples_to_clip_predictions([ds])
    assert clip['frame_valid'].tolist() == [True] * 4 and clip['frame_scores'] is None
    assert clip['tubes'].dtype == np.float32 and isinstance(clip['scores'], np.ndarray)
    pickle.loads(pickle.dumps(clip))
    with pytest.raises(KeyError, match="metainfo key 'video_id' missing"):
        data_samples_to_clip_predictions([{k: v for k, v in ds.items() if k != 'video_id'}])
    with pytest.raises(KeyError, match='no pred_instances'):
        data_samples_to_clip_predictions([dict(video_id='v', frame_numbers=[1])])
    with pytest.raises(KeyError, match=r"lacks \['labels'\]"):
        data_samples_to_clip_predictions(
            [dict(ds, pred_instances={
                k: v
                for k, v in ds['pred_instances'].items() if k != 'labels'
            })])


def test_metric_argument_errors(tmp_path, two_video_ann):
    with pytest.raises(FileNotFoundError, match='not found'):
        TubeMetric(ann_file=str(tmp_path / 'missing.pkl'))
    with pytest.raises(ValueError, match=r'split must be an integer in 0..0'):
        TubeMetric(ann_file=two_video_ann, split=1)
    with pytest.raises(ValueError, match='protocol must be one of'):
        TubeMetric(ann_file=two_video_ann, protocol='coco')
    with pytest.raises(ValueError, match='link_iou'):
        TubeMetric(ann_file=two_video_ann, link_iou=0)


def test_evaluate_tubes_errors_and_report(two_video_ann):
    clips = clips_from_gt(two_video_ann)
    with pytest.raises(ValueError, match=r'not in test_videos\[0\]'):
        evaluate_tubes({'c/v3': clips['a/v1']}, two_video_ann)
    no_gt = make_ann({'v': (10, {})})
    with pytest.raises(ValueError, match='has no ground-truth tube'):
        evaluate_tubes({}, no_gt)
    report = evaluate_tubes(clips, two_video_ann, return_tubes=True)
    assert report['num_videos'] == 2 and report['num_linked_tubes'] == 3
    assert report['video_tubes']['b/v2']['tube_masks'].sum() == 26
    assert report['frame']['num_gt'].tolist() == [66, 26, 0]


def test_trimmed_split_subset(two_video_ann):
    ann = dict(two_video_ann, test_videos=[['b/v2']])
    clips = clips_from_gt(two_video_ann, videos=['b/v2'])
    report = evaluate_tubes(clips, ann)
    assert report['metrics']['frame_mAP@0.5'] == pytest.approx(1.0)
    assert report['skipped_classes'] == ['run', 'jump']
    ann = make_ann({'v': (20, {0: [tube(range(1, 11), (0, 0, 9, 9))]})})
    assert evaluate_tubes({}, ann)['metrics']['video_mAP@0.5'] == 0.0
