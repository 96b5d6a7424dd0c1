"""One evaluation path online (TubeMetric) and offline (eval_results.py on a DumpResults pickle): non-finite
tubes, the restricted dump loader and the settings taken from a config's test_evaluator."""
import fractions
import logging
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from mmengine.evaluator import DumpResults
from mmengine.logging import MMLogger
from tool_scripts import load_tool
from tube_eval_data import clips_from_gt, to_data_samples

from cfad_mm.evaluation import TubeMetric, evaluate_clip_predictions, group_clips_by_video, load_dump
from cfad_mm.evaluation.predictions import config_tube_metric

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TINY_CONFIG = osp.join(ROOT, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


def eval_results_tool():
    return load_tool('tools/analysis/eval_results.py', 'eval_results')


class Records(logging.Handler):
    """Collects the messages of the current mmengine logger."""

    def __enter__(self):
        self.messages = []
        self.logger = MMLogger.get_current_instance()
        self.logger.addHandler(self)
        return self

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


def broken_clips(ann):
    """Jittered predictions of the two test videos with one NaN score (a/v1) and one inf box (b/v2)."""
    clips = clips_from_gt(ann, jitter=2.0)
    first = clips['a/v1'][1]
    first['scores'] = first['scores'].copy()
    first['scores'][0] = np.nan
    second = clips['b/v2'][0]
    second['tubes'] = second['tubes'].copy()
    second['tubes'][0, np.nonzero(second['tube_masks'][0])[0][0], 2] = np.inf
    return clips


def write_dump(samples, path):
    dump = DumpResults(out_file_path=str(path))
    dump.process(None, [s.to_dict() for s in samples])
    dump.compute_metrics(dump.results)
    return str(path)


@pytest.fixture
def ann_file(tmp_path, two_video_ann):
    path = tmp_path / 'ann.pkl'
    with open(path, 'wb') as f:
        pickle.dump(two_video_ann, f)
    return str(path)


def test_nonfinite_dump_gives_the_online_metrics_offline(tmp_path, ann_file, two_video_ann):
    samples = to_data_samples(broken_clips(two_video_ann))
    metric = TubeMetric(ann_file, dump_dir=None)
    metric.process(None, [s.to_dict() for s in samples])
    with Records() as online_log:
        online = metric.compute_metrics(metric.results)
    results = write_dump(samples, tmp_path / 'results.pkl')
    with Records() as offline_log:
        report = eval_results_tool().main([results, ann_file])
    assert report['num_nonfinite_tubes'] == 2
    assert {k: report['metrics'][k] for k in online} == online
    assert 0 < online['frame_mAP@0.5'] < 1
    warnings = [m for level, m in offline_log.messages if level == logging.WARNING]
    assert warnings == [m for level, m in online_log.messages if level == logging.WARNING]
    assert warnings == [
        f'video {v!r}: 1 predicted clip tube(s) with a NaN/inf score or box were left out of the linking and '
        'the evaluation (the model output is numerically broken)' for v in ('a/v1', 'b/v2')
    ]
    # evaluate_tubes itself still rejects such hand-made input; the shared entry point drops them
    with pytest.raises(ValueError, match='a/v1'):
        from cfad_mm.evaluation import evaluate_tubes
        evaluate_tubes(load_dump(results), ann_file)
    report2 = evaluate_clip_predictions(sum(load_dump(results).values(), []), ann_file)
    assert report2['metrics'] == report['metrics']


def test_load_dump_groups_by_video_and_keeps_tensors_exact(tmp_path, two_video_ann):
    clips = clips_from_gt(two_video_ann, jitter=2.0)
    by_video = load_dump(write_dump(to_data_samples(clips), tmp_path / 'r.pkl'))
    assert sorted(by_video) == ['a/v1', 'b/v2']
    for video, expected in clips.items():
        assert len(by_video[video]) == len(expected)
        for got, want in zip(by_video[video], expected):
            for key in ('frame_numbers', 'frame_valid', 'tubes', 'tube_masks', 'scores', 'labels',
                        'frame_scores'):
                np.testing.assert_array_equal(got[key], want[key])
    with pytest.raises(KeyError, match='clip prediction 0: no video_id'):
        group_clips_by_video([dict(scores=[])])


def test_old_style_dump_loads_and_evaluates_as_the_new_one(tmp_path, ann_file, two_video_ann):
    """A dump written before the rename (1-based frame numbers under the metainfo key 'frame_inds') still
    loads, with the same clips and the same metrics as a dump with 'frame_numbers'."""
    samples = [s.to_dict() for s in to_data_samples(clips_from_gt(two_video_ann, jitter=2.0))]
    assert all('frame_numbers' in s and 'frame_inds' not in s for s in samples)
    old_samples = [{('frame_inds' if k == 'frame_numbers' else k): v for k, v in s.items()} for s in samples]
    new, old = str(tmp_path / 'new.pkl'), str(tmp_path / 'old.pkl')
    for path, dumped in ((new, samples), (old, old_samples)):
        dump = DumpResults(out_file_path=path)
        dump.process(None, dumped)
        dump.compute_metrics(dump.results)
    by_video_new, by_video_old = load_dump(new), load_dump(old)
    assert sorted(by_video_old) == sorted(by_video_new) == ['a/v1', 'b/v2']
    for video, clips in by_video_new.items():
        assert len(by_video_old[video]) == len(clips)
        for got, want in zip(by_video_old[video], clips):
            assert sorted(got) == sorted(want) and 'frame_inds' not in got
            for key in want:
                if key != 'video_id':
                    np.testing.assert_array_equal(got[key], want[key])
    report_new = evaluate_clip_predictions(by_video_new, ann_file)
    report_old = evaluate_clip_predictions(by_video_old, ann_file)
    assert report_old['metrics'] == report_new['metrics']
    assert 0 < report_new['metrics']['frame_mAP@0.5'] <= 1
    assert eval_results_tool().main([old, ann_file])['metrics'] == report_new['metrics']
    # the 'frame_inds' of an old dump are 1-based frame numbers, never the 0-based decoder indices
    assert min(int(c['frame_numbers'].min()) for clips in by_video_old.values() for c in clips) == 1


def test_dump_without_frame_numbers_names_the_key(tmp_path, two_video_ann):
    path = tmp_path / 'bad.pkl'
    sample = {k: v for k, v in to_data_samples(clips_from_gt(two_video_ann))[0].to_dict().items()
              if k != 'frame_numbers'}
    with open(path, 'wb') as f:
        pickle.dump([sample], f)
    with pytest.raises(ValueError, match="metainfo key 'frame_numbers' missing"):
        load_dump(str(path))


class Payload:
    """Creates a directory when unpickled (stands for any code a crafted pickle could run)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


def test_malicious_dump_is_refused_and_its_payload_does_not_run(tmp_path, ann_file, two_video_ann):
    marker = str(tmp_path / 'pwned')
    samples = [s.to_dict() for s in to_data_samples(clips_from_gt(two_video_ann))]
    samples[0]['video_id'] = Payload(marker)
    bad = tmp_path / 'evil.pkl'
    with open(bad, 'wb') as f:
        pickle.dump(samples, f, protocol=2)
    with pytest.raises(ValueError, match=r'evil.pkl: refusing to load posix.mkdir: a results dump only '):
        eval_results_tool().main([str(bad), ann_file])
    assert not osp.exists(marker)
    load_dump(str(bad), restricted=False)  # control: plain pickle runs the payload
    assert osp.isdir(marker)
    with open(bad, 'wb') as f:  # any class, even a harmless one, is refused
        pickle.dump([{'x': fractions.Fraction(1, 3)}], f)
    with pytest.raises(ValueError, match='refusing to load fractions.Fraction'):
        load_dump(str(bad))
    bad.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='evil.pkl: not a readable results pickle'):
        load_dump(str(bad))


def test_eval_results_settings_from_config(tmp_path, ann_file, two_video_ann, capsys):
    tool = eval_results_tool()
    results = write_dump(to_data_samples(clips_from_gt(two_video_ann, jitter=2.0)), tmp_path / 'r.pkl')
    evaluators = [dict(type='Dump'), dict(type='mmaction.TubeMetric', a=1)]
    assert config_tube_metric({'test_evaluator': evaluators}) == dict(type='mmaction.TubeMetric', a=1)
    # the tiny config's test_evaluator links at 0.3 (TubeMetric's default: 0.5)
    assert tool.main([results, ann_file])['settings']['link_iou'] == 0.5
    assert tool.main([results, ann_file, '--config', TINY_CONFIG])['settings']['link_iou'] == 0.3
    report = tool.main([results, ann_file, '--config', TINY_CONFIG, '--link-iou', '0.6'])
    assert report['settings']['link_iou'] == 0.6
    # every setting and the annotation file from a config; explicit flags (even 'none') still win
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"test_evaluator = dict(type='TubeMetric', ann_file={ann_file!r}, protocol='voc', "
                   'link_iou=0.4, trim_thr=None, nms_thr=0.5, max_gap=2, video_iou_thrs=(0.3, ))\n')
    report = tool.main([results, '--config', str(cfg)])
    assert report['settings'] == dict(protocol='voc', split=0, subset='test', frame_iou_thr=0.5,
                                      video_iou_thrs=[0.3], nms_thr=0.5, link_iou=0.4, trim_thr=None,
                                      max_gap=2, link_method='greedy', vel_weight=2.0)
    online = TubeMetric(ann_file, protocol='voc', link_iou=0.4, trim_thr=None, nms_thr=0.5, max_gap=2,
                        video_iou_thrs=(0.3, ), dump_dir=None)
    online.process(None, [s.to_dict() for s in to_data_samples(clips_from_gt(two_video_ann, jitter=2.0))])
    assert online.compute_metrics(online.results) == report['metrics']
    report = tool.main([results, '--config', str(cfg), '--protocol', 'act', '--nms-thr', 'none', '--trim-thr',
                        '0.2', '--max-gap', '0'])
    assert {k: report['settings'][k] for k in ('protocol', 'nms_thr', 'trim_thr', 'max_gap', 'link_iou')} == \
        dict(protocol='act', nms_thr=None, trim_thr=0.2, max_gap=0, link_iou=0.4)
    with pytest.raises(SystemExit, match='error: config not found: .*nope.py'):
        tool.main([results, '--config', str(tmp_path / 'nope.py')])
    with pytest.raises(SystemExit, match='error: no annotation file: give ANN_FILE, or --config with a '):
        tool.main([results])
