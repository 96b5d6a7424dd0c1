"""tools/analysis/benchmark.py: throughput and peak-memory report (tiny shapes, few repeats)."""
import json
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))


@pytest.mark.parametrize('mode', ['predict', 'tensor'])
def test_benchmark_reports_consistent_numbers(tmp_path, capsys, mode):
    import benchmark
    out = tmp_path / 'bench.json'
    res = benchmark.main([CONFIG, '--clip-len', '8', '--shape', '48', '64', '--batch-size', '2', '--repeats',
                          '3', '--warmup', '1', '--mode', mode, '--out-json', str(out)])
    assert len(res['times_s']) == 3 and all(t > 0 for t in res['times_s'])
    assert res['min_s'] <= res['median_s'] <= res['max_s']
    assert res['clips_per_s'] == pytest.approx(2 / res['median_s'])
    assert res['frames_per_s'] == pytest.approx(8 * res['clips_per_s'])
    assert res['peak_mem_mib'] > 50 and res['peak_mem_increase_mib'] >= 0  # a torch process is > 50 MiB
    assert json.loads(out.read_text())['clip_len'] == 8
    printed = capsys.readouterr().out
    assert 'clips/s' in printed and 'frames/s' in printed and 'peak memory' in printed


def test_benchmark_argument_errors(tmp_path):
    import benchmark
    with pytest.raises(SystemExit):
        benchmark.main([CONFIG, '--repeats', '0'])
    with pytest.raises(SystemExit, match='checkpoint not found'):
        benchmark.main([CONFIG, '--checkpoint', str(tmp_path / 'missing.pth')])
