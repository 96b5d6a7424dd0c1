"""The span sweep's pieces: span specs, the config of one run, the acceptance check and tables on hand-made
rows, generated markdown blocks, and the whole-video timing on a real video file."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from cfad_mm.analysis.span_sweep import (
    SpanSpec,
    acceptance,
    acceptance_lines,
    accuracy_table,
    error_table,
    speed_table,
    stage_table,
    sweep_config,
)
from cfad_mm.utils.markdown import (
    carry_blocks,
    cited_command,
    find_blocks,
    replace_block,
    write_block,
    write_keeping_blocks,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic-long_16x1.py')


def test_span_specs():
    s = SpanSpec.parse('16x4')
    assert (s.clip_len, s.frame_interval, s.span, s.nominal, s.stride, s.name) == (16, 4, 61, 64, 30, '16x4')
    assert SpanSpec.parse(' 32 X 4 ').span == 125
    for bad in ('16', '16x0', '1x4', 'ax4', '16x4x2'):
        with pytest.raises(ValueError, match='write it TxK'):
            SpanSpec.parse(bad)


def test_sweep_config_changes_only_what_the_span_needs():
    base = Config.fromfile(BASE)
    cfg = sweep_config(base, SpanSpec(16, 8), iters=300, seed=3)
    train, test = cfg.train_dataloader.dataset, cfg.test_dataloader.dataset
    assert (train.clip_len, train.frame_interval, train.train_stride) == (16, 8, 60)
    assert train.temporal_jitter == 121 // 8
    assert (test.clip_len, test.frame_interval, test.test_stride) == (16, 8, 60)
    assert cfg.model.frame_interval == 8
    assert cfg.model.coarse_head.tube_coder == dict(type='SplineTubeCoder', max_frames=121, knot_interval=16)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=300, val_interval=301)
    assert cfg.val_dataloader is None and cfg.val_cfg is None and cfg.val_evaluator is None
    assert [s['end'] for s in cfg.param_scheduler] == [50, 300]
    assert all(not s['by_epoch'] for s in cfg.param_scheduler)
    assert cfg.default_hooks.checkpoint.interval == 300 and cfg.randomness.seed == 3
    # the rest is the base config's, which is not changed
    assert cfg.model.roi_head == base.model.roi_head and cfg.optim_wrapper == base.optim_wrapper
    assert cfg.test_evaluator == base.test_evaluator
    assert base.model.get('frame_interval', 1) == 1 and base.train_dataloader.dataset.clip_len == 16
    short = sweep_config(base, SpanSpec(16, 1), iters=10)
    assert short.model.coarse_head.tube_coder == base.model.coarse_head.tube_coder  # 16 frames: base coder
    assert [s['end'] for s in short.param_scheduler] == [10, 10]
    with pytest.raises(ValueError, match='iters must be >= 1'):
        sweep_config(base, SpanSpec(16, 1), iters=0)


def row(name, frame, video, fps=None, floor=None):
    spec = SpanSpec.parse(name)
    r = dict(name=name, span=spec.span, nominal=spec.nominal, coder='c', train_seconds=120.0,
             metrics={'tube/frame_mAP@0.5': frame, 'tube/video_mAP@0.5': video})
    if fps:
        r['speed'] = dict(decode_excluded_fps=fps, decode_excluded_fps_min=fps - 1,
                          decode_excluded_fps_max=fps + 1, decode_included_fps=fps / 2,
                          decode_included_fps_min=fps / 2, decode_included_fps_max=fps / 2,
                          backbone_once_fps=floor, backbone_once_fps_min=floor, backbone_once_fps_max=floor,
                          backbone_frames_per_frame=0.5)
    return r


def test_acceptance_on_hand_made_rows():
    base = row('16x1', 0.60, 0.20, fps=100.0, floor=150.0)
    good = row('16x4', 0.59, 0.26, fps=240.0, floor=150.0)
    acc = acceptance(good, base)
    assert acc['video-mAP@0.5 gain']['value'] == pytest.approx(0.06) and acc['video-mAP@0.5 gain']['met']
    assert acc['frame-mAP@0.5 drop']['value'] == pytest.approx(0.01) and acc['frame-mAP@0.5 drop']['met']
    assert acc['frames/s vs baseline']['value'] == pytest.approx(2.4) and acc['frames/s vs baseline']['met']
    assert acc['frames/s vs backbone once']['value'] == pytest.approx(1.6)
    bad = acceptance(row('16x8', 0.55, 0.24, fps=180.0, floor=150.0), base)
    assert not bad['video-mAP@0.5 gain']['met'] and not bad['frame-mAP@0.5 drop']['met']
    assert not bad['frames/s vs baseline']['met'] and not bad['frames/s vs backbone once']['met']
    assert set(acceptance(row('16x2', 0.6, 0.3), base)) == {'video-mAP@0.5 gain', 'frame-mAP@0.5 drop'}
    # timed on a machine twice as fast (its backbone-once pass too): the speed-up is measured against it
    faster = acceptance(row('16x4', 0.59, 0.26, fps=240.0, floor=300.0), base)
    assert faster['frames/s vs baseline']['value'] == pytest.approx((240 / 300) / (100 / 150))
    assert not faster['frames/s vs baseline']['met']
    lines = acceptance_lines([base, good], '16x1')
    assert lines[2] == '| 64 (16x4) | +0.060 met | +0.010 met | 2.40x met | 1.60x met |'
    assert acceptance_lines([good], '16x1') == []


def test_tables():
    rows = [row('16x1', 0.6, 0.2, fps=100.0, floor=150.0), row('16x2', 0.5, 0.25)]
    acc = accuracy_table(rows)
    assert acc[2] == '| 16 (16x1) | 16 | c | 2.0 min | 0.600 | - | 0.200 | - | - |'
    assert len(acc) == 4
    rows[0]['speed']['stage_ms_per_frame'] = {'backbone': 1.5, 'all of CFAD': 4.0}
    rows[1]['speed'] = {'stage_ms_per_frame': {'backbone': 1.0, 'tube following (track head)': 0.25,
                                               'all of CFAD': 3.0}}
    assert stage_table(rows) == ['| stage | 16 (16x1) | 32 (16x2) |', '|---|---|---|',
                                 '| backbone | 1.50 | 1.00 |', '| all of CFAD | 4.00 | 3.00 |',
                                 '| tube following (track head) | - | 0.25 |']
    del rows[1]['speed']
    rows[0]['errors'] = dict(mAP=0.2, num_tp=3, num_fp=40, dAP=dict(dup=0, cls=0.01, loc_spatial=0.1,
                                                                     loc_temporal=0.3, loc_both=0, both=0,
                                                                     bkg=0, miss=0.02, all=0.8),
                             counts=dict(dup=0, cls=1, loc_spatial=5, loc_temporal=9, loc_both=0, both=2,
                                         bkg=20, miss=4))
    err = error_table(rows)
    assert len(err) == 3
    assert err[2] == ('| 16 (16x1) | 20.0 | 0.0 (0) | 1.0 (1) | 10.0 (5) | 30.0 (9) | 0.0 (0) | 0.0 (2) | '
                      '0.0 (20) | 2.0 (4) | 80.0 | 3 / 40 |')
    speed = speed_table(rows)
    assert len(speed) == 3  # the row without timing is left out
    assert speed[2] == ('| 16 (16x1) | 16 | 100.0 (99.0-101.0) | 50.0 (50.0-50.0) | 150.0 (150.0-150.0) | '
                        '0.67 | 0.50 |')


def test_markdown_blocks(tmp_path):
    text = replace_block('# Title\n\nhand text\n', 'a', 'body A')
    assert text == '# Title\n\nhand text\n\n<!-- a:start -->\nbody A\n<!-- a:end -->\n'
    text = replace_block(text, 'a', 'new A\n')
    assert text.count('<!-- a:start -->') == 1 and 'new A' in text and 'body A' not in text
    text = replace_block(text, 'b', 'body B')
    assert list(find_blocks(text)) == ['a', 'b']
    with pytest.raises(ValueError, match='not paired'):
        replace_block('<!-- a:start -->\nx\n', 'a', 'y')
    with pytest.raises(ValueError, match='block name'):
        replace_block('', 'a b', 'y')
    # a tool rewriting the whole file keeps the other tools' blocks, and its own text wins
    merged = carry_blocks(text, '# Rewritten\n\n' + replace_block('', 'b', 'B by the rewriter'))
    assert merged.startswith('# Rewritten') and 'B by the rewriter' in merged and 'body B' not in merged
    assert 'new A' in merged and 'hand text' not in merged
    path = str(tmp_path / 'doc.md')
    write_block(path, 'span-sweep', 'table 1')
    write_keeping_blocks(path, '# Results\n\nother tool\n')
    write_block(path, 'span-sweep', 'table 2')
    with open(path) as f:
        out = f.read()
    assert out.startswith('# Results\n\nother tool\n') and 'table 2' in out and 'table 1' not in out


def test_cited_command_drops_the_output_options_and_their_values():
    argv = ['cfg.py', '--doc', 'docs/b.md', '--block=x', '--cfg-options', "a.b=(1, 2)", '--repeats', '3']
    assert cited_command('tools/t.py', argv) == \
        "python tools/t.py cfg.py --cfg-options 'a.b=(1, 2)' --repeats 3"
    assert cited_command('tools/t.py', argv, ('--repeats',)) == \
        "python tools/t.py cfg.py --doc docs/b.md --block=x --cfg-options 'a.b=(1, 2)'"


def test_whole_video_speed_on_a_video_file(tiny_synth):
    import torch
    from mmengine.registry import DefaultScope

    from cfad_mm.analysis.span_sweep import whole_video_speed
    from cfad_mm.analysis.speed import build_cfad
    DefaultScope.get_instance('test_span_sweep_speed', scope_name='mmaction')
    root, ann = tiny_synth
    cfg = Config.fromfile(osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py'))
    cfg.model.frame_interval = 2
    cfg.test_dataloader.dataset.update(clip_len=8, frame_interval=2)
    torch.manual_seed(0)
    model = build_cfad(cfg, (48, 64))
    video = sorted(glob.glob(osp.join(root, 'videos', '*', '*.mp4')))[0]
    res = whole_video_speed(model, [video], clip_len=8, frame_interval=2, stride=7, repeats=1, warmup=0,
                            batch_size=2)
    assert res['frames'] == 24 and res['input_hw'] == [48, 64]
    for way in ('decode_excluded', 'decode_included', 'backbone_once'):
        assert res[f'{way}_fps'] > 0 and res[f'{way}_fps_min'] <= res[f'{way}_fps'] <= res[f'{way}_fps_max']
    stages = res['stage_ms_per_frame']
    assert stages['all of CFAD'] >= stages['predict (all of the model)'] >= stages['backbone'] > 0
    assert 'tube following (track head)' not in stages  # not in this model
    # windows of 15 frames every 7 over 24 frames: starts 0, 7, 9 -> 3 windows x 8 frames / 24 frames
    assert res['backbone_frames_per_frame'] == pytest.approx(1.0)


def test_weights_from_takes_a_finished_run_trained_like_this_sweep(tmp_path, capsys):
    """``--weights-from``: the checkpoint of the finished run of the same span in another sweep, refused with
    the reason when it is missing or was trained with another seed or number of iterations."""
    import json

    from tool_scripts import load_tool
    tool = load_tool('tools/analysis/span_sweep.py')
    spec = SpanSpec.parse('16x4')
    sweep = tmp_path / 'sweep'
    (sweep / '16x4').mkdir(parents=True)
    args = tool.parse_args(['--spans', '16x4', '--iters', '20', '--seed', '1', '--weights-from', str(sweep)])
    with pytest.raises(SystemExit, match='no finished training of 16x4 there'):
        tool.weights_of(args.weights_from, spec, args)
    ckpt = sweep / '16x4' / 'iter_20.pth'
    ckpt.write_bytes(b'')
    info = dict(checkpoint=str(ckpt), train_seconds=61.0)
    (sweep / '16x4' / 'train.json').write_text(json.dumps(info))
    sweep_config(Config.fromfile(BASE), spec, iters=20, seed=1).dump(str(sweep / '16x4.py'))
    assert tool.weights_of(args.weights_from, spec, args) == info
    assert 'the weights of' in capsys.readouterr().out
    other = tool.parse_args(['--spans', '16x4', '--iters', '30', '--seed', '0', '--weights-from', str(sweep)])
    with pytest.raises(SystemExit, match='trained unlike this sweep .20 iterations, not 30; seed 1, not 0'):
        tool.weights_of(other.weights_from, spec, other)
    with pytest.raises(SystemExit):
        tool.parse_args(['--weights-from', str(sweep), '--baseline-run', str(sweep / '16x4')])
