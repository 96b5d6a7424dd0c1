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


def test_ava_style_clip_is_centred_and_padded():
    import torch
    frames = torch.arange(10).view(1, 10, 1, 1)
    assert speed_compare.centred_clip(frames, 0, 4).flatten().tolist() == [0, 0, 0, 1]
    assert speed_compare.centred_clip(frames, 5, 4).flatten().tolist() == [3, 4, 5, 6]
    assert speed_compare.centred_clip(frames, 9, 4).flatten().tolist() == [7, 8, 9, 9]


def test_outside_backbone_is_measured_inside_the_runs_and_ava_head_fits_the_backbone():
    import torch
    from mmengine.config import Config
    # the AVA-style head reads the BACKBONE output: with a neck that is the neck's input, not feat_channels
    r50 = Config.fromfile(osp.join(speed_compare.REPO, speed_compare.SETTINGS['r50'][0]))
    assert r50.model.feat_channels == 256 and speed_compare.backbone_channels(r50) == 1024
    tiny = Config.fromfile(osp.join(speed_compare.REPO, speed_compare.SETTINGS['tiny'][0]))
    assert speed_compare.backbone_channels(tiny) == tiny.model.feat_channels == 64
    # the backbone timer accumulates the wall clock of the wrapped calls only
    layer = torch.nn.Linear(3, 3)
    acc = speed_compare.time_backbone_calls(layer, torch.device('cpu'))
    layer(torch.zeros(2, 3))
    layer(torch.zeros(2, 3))
    assert 0 < acc['s'] < 1
