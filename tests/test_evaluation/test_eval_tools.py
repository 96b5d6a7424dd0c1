"""tools/analysis/eval_results.py, plot_ap.py and eval_speed.py, run in-process on small inputs."""
import json
import os.path as osp
import pickle

import pytest
from mmengine.evaluator import DumpResults
from tool_scripts import load_tool
from tube_eval_data import clips_from_gt, to_data_samples


def analysis_tool(name):
    return load_tool(f'tools/analysis/{name}.py', name)


@pytest.fixture
def dumped(tmp_path, two_video_ann):
    """A DumpResults pickle of jittered predictions and the annotation pickle."""
    ann_file = tmp_path / 'ann.pkl'
    with open(ann_file, 'wb') as f:
        pickle.dump(two_video_ann, f)
    results = tmp_path / 'results.pkl'
    dump = DumpResults(out_file_path=str(results))
    dump.process(None, [s.to_dict() for s in to_data_samples(clips_from_gt(two_video_ann, jitter=2.0))])
    dump.compute_metrics(dump.results)
    return str(results), str(ann_file)


def test_eval_results_and_plot_ap(dumped, tmp_path, capsys):
    results, ann_file = dumped
    out_json = str(tmp_path / 'eval' / 'res.json')
    report = analysis_tool('eval_results').main([results, ann_file, '--out', out_json, '--protocol', 'act'])
    printed = capsys.readouterr().out
    assert 'mAP (2 classes)' in printed and 'walk' in printed
    assert report['metrics']['frame_mAP@0.5'] == pytest.approx(1.0)
    with open(out_json) as f:
        data = json.load(f)
    assert data['metrics']['video_mAP@0.2'] == pytest.approx(1.0)
    assert data['settings']['protocol'] == 'act'

    written = analysis_tool('plot_ap').main([out_json, '--out-dir', str(tmp_path / 'plots'), '--dpi', '50'])
    names = sorted(osp.basename(p) for p in written)
    assert names == [
        'ap_per_class.png', 'pr_frame.png', 'pr_video@0.2.png', 'pr_video@0.5.png', 'pr_video@0.75.png'
    ]
    for path in written:
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_eval_results_errors(dumped, tmp_path):
    results, ann_file = dumped
    tool = analysis_tool('eval_results')
    with pytest.raises(FileNotFoundError, match='results file not found'):
        tool.main([str(tmp_path / 'nope.pkl'), ann_file])
    bad = tmp_path / 'bad.pkl'
    with open(bad, 'wb') as f:
        pickle.dump([{'video_id': 'a/v1'}], f)
    with pytest.raises(ValueError, match='bad.pkl: .*no pred_instances'):
        tool.main([str(bad), ann_file])
    assert tool.optional_float('none') is None and tool.optional_float('0.4') == 0.4
    with pytest.raises(ValueError, match='not a tube evaluation dump'):
        not_dump = tmp_path / 'x.json'
        not_dump.write_text('{}')
        analysis_tool('plot_ap').main([str(not_dump)])


def test_eval_speed_small(capsys):
    total, report = analysis_tool('eval_speed').main(['--videos', '6', '--classes', '3',
                                                      '--frames', '30', '50'])
    assert total > 0 and report['num_videos'] == 6
    assert 0 < report['metrics']['video_mAP@0.5'] <= 1
    assert 'total evaluate_tubes' in capsys.readouterr().out
