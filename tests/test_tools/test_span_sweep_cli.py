"""tools/analysis/span_sweep.py refuses bad input before any training: a span typo, a label that cannot name a
block, a --baseline-run that is not a finished run or was trained unlike the sweep."""
import json
import os.path as osp

import pytest
from tool_scripts import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis/span_sweep.py')


def test_span_and_label_typos_are_argument_errors(tool, capsys):
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(['--spans', '16x1', '16y4'])
    assert exc.value.code == 2 and "span '16y4': write it TxK" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(['--label', 'track head'])
    assert exc.value.code == 2 and "--label 'track head'" in capsys.readouterr().err
    args = tool.parse_args(['--spans', '16x2', '--work-dir', 'rel/dir'])
    assert args.spans[0].span == 31 and osp.isabs(args.work_dir)


def test_a_bad_baseline_run_is_refused_with_the_reason(tool, tmp_path):
    args = tool.parse_args(['--iters', '100'])
    with pytest.raises(SystemExit, match='named by its span TxK'):
        tool.baseline_row(str(tmp_path / 'notaspan'), args)
    run = tmp_path / 'sweep' / '16x1'
    run.mkdir(parents=True)
    with pytest.raises(SystemExit, match='not a finished run of span_sweep.py; missing: .*16x1.py'):
        tool.baseline_row(str(run), args)
    # a finished run of another budget
    from mmengine.config import Config

    from cfad_mm.analysis.span_sweep import SpanSpec, sweep_config
    base = Config.fromfile(osp.join(REPO, tool.BASE))
    sweep_config(base, SpanSpec(16, 1), iters=50, seed=0).dump(str(tmp_path / 'sweep' / '16x1.py'))
    ckpt = run / 'iter_50.pth'
    ckpt.write_bytes(b'')
    (run / 'train.json').write_text(json.dumps(dict(checkpoint=str(ckpt), train_seconds=1.0)))
    (run / 'metrics.json').write_text(json.dumps({'tube/frame_mAP@0.5': 0.5}))
    (run / 'test_dump.pkl').write_bytes(b'')
    with pytest.raises(SystemExit, match='trained unlike this sweep \\(50 iterations, not 100\\)'):
        tool.baseline_row(str(run), args)
    row, _ = tool.baseline_row(str(run), tool.parse_args(['--iters', '50']))
    assert row['name'] == '16x1' and row['metrics'] == {'tube/frame_mAP@0.5': 0.5}
