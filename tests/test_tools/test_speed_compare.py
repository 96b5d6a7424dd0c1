"""tools/analysis/speed_compare.py: a minimal run produces a consistent table and plot."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..', 'tools', 'analysis'))
import speed_compare  # noqa: E402


def test_speed_compare_minimal_run(tmp_path):
    md, png = tmp_path / 'bench.md', tmp_path / 'fig' / 'speed.png'
    rows = speed_compare.main(['--settings', 'tiny', '--clip-lens', '8', '--num-frames', '12', '--ava-frames',
                               '2', '--repeats', '1', '--warmup', '0', '--no-train', '--no-profile',
                               '--batch-size', '2', '--out-md', str(md), '--out-png', str(png)])
    assert len(rows) == 1
    r = rows[0]
    assert r['setting'] == 'tiny' and r['T'] == 8
    for k in ('cfad_fps', 'ava_fps', 'backbone_fps'):
        assert r[k] > 0
    assert r['a_over_b'] == pytest.approx(r['cfad_fps'] / r['ava_fps'])
    assert r['a_over_c'] == pytest.approx(r['cfad_fps'] / r['backbone_fps'])
    text = md.read_text()
    assert '| R3D-18 tiny, 96x128 | 8 |' in text and f'{r["a_over_b"]:.2f}x' in text
    assert png.stat().st_size > 1000


def test_speed_compare_rejects_short_video():
    with pytest.raises(SystemExit):
        speed_compare.parse_args(['--clip-lens', '32', '--num-frames', '16'])


def test_speed_compare_full_report_states_measurements_only(tmp_path):
    """Training, per-stage breakdown and profile on: the report holds numbers and the command, no targets."""
    md = tmp_path / 'bench.md'
    speed_compare.main(['--settings', 'tiny', '--clip-lens', '4', '--num-frames', '8', '--ava-frames', '1',
                        '--repeats', '1', '--warmup', '0', '--batch-size', '2', '--out-md', str(md)])
    text = md.read_text()
    assert '## Training throughput (tiny config)' in text and 'clips/s' in text
    assert '| backbone |' in text and '| **all of (a)** |' in text and 'aten::' in text
    assert 'python tools/analysis/speed_compare.py --settings tiny' in text
    for word in ('issue', '#8', 'Target', 'NOT met', '(met', ' aim', 'What makes'):
        assert word not in text, word


def test_speed_compare_uses_the_library():
    """The measurement lives in cfad_mm.analysis.speed; the tool keeps no copy of it."""
    for name in ('PeakRSS', 'PeakMemory', 'centred_clip', 'run_cfad', 'run_ava', 'run_backbone', 'time_calls',
                 'stage_breakdown', 'synthetic_video', 'ArrayFrames', 'build_ava_detector'):
        assert name not in vars(speed_compare), name
