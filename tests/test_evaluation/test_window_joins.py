"""Joining the clip tubes of consecutive windows: the global assignment (``link_method='hungarian'``) against
the greedy, measured with the identity metrics of :mod:`cfad_mm.analysis.identity`; the identity metrics on
hand-made cases; ``tools/analysis/tube_identity.py`` end to end."""
import json
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch
from tube_eval_data import clips_from_gt, make_ann, tube

from cfad_mm.analysis import best_tube_overlap, frame_correspondences, tube_identity, video_identity
from cfad_mm.evaluation import evaluate_clip_predictions, link_video_tubes
from cfad_mm.structures.matching import max_gain_matching

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))

SIZE = 40.0


def actor(frames, x1, speed, y=10.0):
    """``(len(frames), 4)`` boxes of a SIZE x SIZE square moving horizontally (frame 1 at ``x1``)."""
    x = x1 + speed * (np.asarray(frames, dtype=float) - 1)
    return np.stack([x, np.full_like(x, y), x + SIZE, np.full_like(x, y + SIZE)], axis=1)


def clip(frames, tubes, scores, labels=None, valid=None):
    tubes = np.asarray(tubes, dtype=float)
    return dict(
        frame_numbers=np.asarray(frames),
        frame_valid=valid,
        tubes=tubes,
        tube_masks=np.ones(tubes.shape[:2], bool),
        scores=np.asarray(scores, dtype=float),
        labels=np.zeros(len(scores), np.int64) if labels is None else np.asarray(labels))


def overlap_crossing(nframes=64):
    """Actor A moves right, B left (2 px / frame, same height); they cross at frame 32.5. Windows of 16 frames
    every 8; every clip tube follows its actor (A: score 0.9, B: 0.6), but in window 25..40 A's tube is 10 px
    off towards B (IoU 0.6 with A): on the shared frames 25..32 it overlaps B's video tube more (mean IoU
    0.66) than A's. Returns the GT ``(2, F, 4)`` boxes and the clips."""
    frames = np.arange(1, nframes + 1)
    a, b = actor(frames, 10, 2.0), actor(frames, 136, -2.0)
    clips = []
    for s in range(0, nframes - 8, 8):
        f = np.arange(s + 1, s + 17)
        ta = a[f - 1].copy()
        if s == 24:
            ta[:, [0, 2]] += 10
        clips.append(clip(f, [ta, b[f - 1]], [0.9, 0.6]))
    return np.stack([a, b]), clips


def identity_of(gt, out):
    return tube_identity(gt, np.ones(gt.shape[:2], bool), out['tubes'], out['tube_masks'])


@pytest.mark.parametrize('link_iou', [0.5, 0.3])
def test_crossing_in_overlapping_windows_is_joined_without_identity_switch(link_iou):
    gt, clips = overlap_crossing()
    kw = dict(link_iou=link_iou, trim_thr=None, nms_thr=None)
    greedy = identity_of(gt, link_video_tubes(clips, 64, **kw))
    assert greedy['idsw'].sum() >= 1  # the best-scored tube of window 25..40 takes B's video tube
    if link_iou == 0.3:  # and B's tube continues A's: the two video tubes swap actors
        assert greedy['idsw'].tolist() == [1, 1] and greedy['jumps'].tolist() == [1, 1]
    for vel_weight in (0.0, 2.0):
        out = link_video_tubes(clips, 64, link_method='hungarian', vel_weight=vel_weight, **kw)
        assert out['num_clips'].tolist() == [7, 7]
        res = identity_of(gt, out)
        assert res['idsw'].tolist() == [0, 0] and res['frag'].tolist() == [0, 0]
        assert res['fragments'].tolist() == [1, 1] and res['jumps'].tolist() == [0, 0]
        assert res['coverage'].tolist() == [1.0, 1.0]


def test_velocity_separates_a_crossing_at_a_window_boundary():
    """Windows of 16 frames, stride 16 (joined by facing boxes); A and B (3 px / frame) cross exactly at the
    boundary 16 | 17: A's last box of window 1 is B's first box of window 2, so the facing-box IoU prefers the
    swap (1.0 against 0.86) and only the velocity (difference 0.15 box sizes / frame) keeps the actors."""
    frames = np.arange(1, 49)
    a, b = actor(frames, 100 - 3 * 15.5, 3.0), actor(frames, 100 + 3 * 15.5, -3.0)
    gt = np.stack([a, b])
    clips = [clip(np.arange(s + 1, s + 17), [a[s:s + 16], b[s:s + 16]], [0.9, 0.6]) for s in (0, 16, 32)]
    kw = dict(nframes=48, trim_thr=None, nms_thr=None)
    for out in (link_video_tubes(clips, **kw),
                link_video_tubes(clips, link_method='hungarian', vel_weight=0.0, **kw)):
        res = identity_of(gt, out)
        assert res['idsw'].tolist() == [1, 1] and res['jumps'].tolist() == [1, 1]
    res = identity_of(gt, link_video_tubes(clips, link_method='hungarian', **kw))  # default vel_weight 2
    assert res['idsw'].tolist() == [0, 0] and res['fragments'].tolist() == [1, 1]
    assert res['jumps'].tolist() == [0, 0]


def long_ann(nframes=400):
    """Two actors over the whole video that cross near frame 200 (GT tubes of classes 0 and 1)."""
    return make_ann(
        {
            'v': (nframes, {
                0: [tube(range(1, nframes + 1), (10, 40, 70, 120), (1.0, 0.0))],
                1: [tube(range(1, nframes + 1), (420, 44, 480, 124), (-1.0, 0.0))]
            })
        },
        resolution=(240, 520))


@pytest.mark.parametrize('method', ['greedy', 'hungarian'])
def test_long_span_windows_give_one_tube_per_actor(method):
    """125-frame windows every 62 frames (63 shared frames), box noise, actionness; the last window is
    end-aligned. One video tube per actor, no identity switch, whole extent covered."""
    ann = long_ann()
    clips = clips_from_gt(ann, clip_len=125, stride=62, jitter=1.5, seed=3)['v']
    assert len(clips) == 6 and clips[-1]['frame_numbers'][-1] == 400
    out = link_video_tubes(clips, 400, link_method=method)
    assert sorted(out['labels'].tolist()) == [0, 1] and out['num_clips'].tolist() == [6, 6]
    assert out['tube_masks'].all()
    res = video_identity({'v': out}, ann)
    assert res['summary']['idsw'] == 0 and res['summary']['fragments_per_gt'] == 1.0
    assert res['summary']['coverage'] == 1.0 and res['summary']['jumps'] == 0


@pytest.mark.parametrize('method', ['greedy', 'hungarian'])
def test_long_span_windows_with_sparse_and_padded_frames(method):
    """Windows of 63 frames sampled every 2nd video frame (a 125-frame span), stride 62, the last window
    padded past the video end (repeated last frame, frame_valid False): one tube per actor, the skipped frames
    interpolated."""
    nframes = 300
    ann = long_ann(nframes)
    gt = {label: ann['gttubes']['v'][label][0][:, 1:5].astype(float) for label in (0, 1)}
    clips = []
    for s in range(0, nframes, 62):
        raw = s + 1 + 2 * np.arange(63)
        frames, valid = np.minimum(raw, nframes), raw <= nframes
        tubes = [gt[label][frames - 1] for label in (0, 1)]
        clips.append(clip(frames, tubes, [0.8, 0.7], labels=[0, 1], valid=valid))
        if raw[-1] >= nframes:
            break
    out = link_video_tubes(clips, nframes, link_method=method, trim_thr=None)
    assert len(out['scores']) == 2 and out['num_clips'].tolist() == [len(clips)] * 2
    covered = out['tube_masks'].sum(1)
    assert covered.tolist() == [nframes - 1] * 2  # frames 1..299 (odd frames sampled, 300 never)
    res = video_identity({'v': out}, ann)
    assert res['summary']['idsw'] == 0 and res['summary']['fragments_per_gt'] == 1.0
    np.testing.assert_allclose(
        out['tubes'][out['labels'] == 0][0, :nframes - 1], gt[0][:nframes - 1], atol=1e-6)


def test_hungarian_equals_greedy_without_conflicts(two_video_ann):
    clips = clips_from_gt(two_video_ann, jitter=1.0)
    for video, cl in clips.items():
        n = two_video_ann['nframes'][video]
        greedy, hung = link_video_tubes(cl, n), link_video_tubes(cl, n, link_method='hungarian')
        for key in ('tubes', 'tube_masks', 'scores', 'labels', 'num_clips', 'frame_scores'):
            np.testing.assert_array_equal(greedy[key], hung[key])


def test_hungarian_is_order_independent():
    _, clips = overlap_crossing()
    ref = link_video_tubes(clips, 64, link_method='hungarian', trim_thr=None)
    rng = np.random.default_rng(0)
    for _ in range(3):
        perm = rng.permutation(len(clips))
        out = link_video_tubes([clips[i] for i in perm], 64, link_method='hungarian', trim_thr=None)
        np.testing.assert_array_equal(out['tubes'], ref['tubes'])


def test_global_assignment_maximises_the_margins():
    valid = np.ones((2, 2), bool)
    # crossing: x prefers B slightly, y matches B only: the joint optimum gives A to x
    score = np.array([[0.7, 0.75], [0.2, 0.9]])
    assert max_gain_matching(score, valid, 0.5).tolist() == [0, 1]
    # a weak duplicate y of A cannot pull the confident x onto B (margins 0.45 > 0.1 + 0.05)
    score = np.array([[0.95, 0.6], [0.55, 0.1]])
    assert max_gain_matching(score, valid, 0.5).tolist() == [0, -1]
    # invalid pairs and pairs under the threshold are never linked; a pair at the threshold is
    assert max_gain_matching(score, np.array([[False, True], [True, True]]), 0.5).tolist() == [1, 0]
    assert max_gain_matching(np.array([[0.5, 0.2]]), np.ones((1, 2), bool), 0.5).tolist() == [0]
    assert max_gain_matching(np.zeros((2, 0)), np.zeros((2, 0), bool), 0.5).tolist() == [-1, -1]


def test_link_method_errors():
    _, clips = overlap_crossing()
    with pytest.raises(ValueError, match='link_method'):
        link_video_tubes(clips, 64, link_method='optimal')
    with pytest.raises(ValueError, match='vel_weight'):
        link_video_tubes(clips, 64, link_method='hungarian', vel_weight=-1)


# ---------------------------------------------------------------------------------------------------------
# identity metrics on hand-made cases (boxes 10 x 10; a shift of d px gives IoU (10 - d) / (10 + d))


def boxes(x, n=10):
    x = np.broadcast_to(np.asarray(x, dtype=float), (n, ))
    return np.stack([x, np.zeros(n), x + 10, np.full(n, 10.0)], axis=1)


def masks(*ranges, n=10):
    m = np.zeros((len(ranges), n), bool)
    for i, (a, b) in enumerate(ranges):
        m[i, a:b] = True
    return m


def test_identity_of_a_perfect_track():
    res = tube_identity(boxes(0)[None], masks((0, 10)), boxes(1)[None], masks((0, 10)))
    assert res['idsw'].tolist() == [0] and res['frag'].tolist() == [0] and res['fragments'].tolist() == [1]
    assert res['coverage'].tolist() == [1.0] and res['num_pred'].tolist() == [1]
    assert res['jumps'].tolist() == [0] and res['num_gt'].tolist() == [1]
    assert res['cover'].tolist() == [[0] * 10]


def test_identity_of_a_swap():
    """Two GT tubes far apart; prediction 0 follows GT 0 on frames 0..4 and GT 1 on 5..9, prediction 1 the
    reverse."""
    gt = np.stack([boxes(0), boxes(100)])
    p0 = np.concatenate([boxes(0, 5), boxes(100, 5)])
    p1 = np.concatenate([boxes(100, 5), boxes(0, 5)])
    res = tube_identity(gt, masks((0, 10), (0, 10)), np.stack([p0, p1]), masks((0, 10), (0, 10)))
    assert res['idsw'].tolist() == [1, 1] and res['frag'].tolist() == [0, 0]
    assert res['fragments'].tolist() == [2, 2] and res['num_pred'].tolist() == [2, 2]
    assert res['jumps'].tolist() == [1, 1] and res['num_gt'].tolist() == [2, 2]


def test_identity_interruptions_and_switch_across_a_gap():
    gt = boxes(0)[None]
    # one prediction, absent on frames 5 and 6: one interruption, two fragments, no switch
    res = tube_identity(gt, masks((0, 10)), boxes(0)[None], np.array([[1, 1, 1, 1, 1, 0, 0, 1, 1, 1]], bool))
    assert (res['idsw'][0], res['frag'][0], res['fragments'][0]) == (0, 1, 2)
    assert res['covered'].tolist() == [8] and res['coverage'][0] == pytest.approx(0.8)
    # a prediction on 0..4, another on 7..9: the switch across the gap counts, and so does the interruption
    res = tube_identity(gt, masks((0, 10)), np.stack([boxes(0), boxes(0)]), masks((0, 5), (7, 10)))
    assert (res['idsw'][0], res['frag'][0], res['fragments'][0], res['num_pred'][0]) == (1, 1, 2, 2)
    assert res['jumps'].tolist() == [0, 0]
    # a GT tube with a gap in its annotation: consecutive annotated frames are consecutive
    res = tube_identity(gt, masks((0, 3)) | masks((6, 10)), boxes(0)[None], masks((0, 10)))
    assert (res['idsw'][0], res['frag'][0], res['fragments'][0], res['num_frames'][0]) == (0, 0, 1, 7)


def test_identity_keeps_a_correspondence_while_it_holds():
    """Prediction 0 has IoU 0.67 with the GT on every frame; prediction 1 overlaps it better (IoU 1) on frames
    3..5 only: the GT stays with prediction 0 (CLEAR MOT), no switch."""
    two = np.stack([boxes(2), boxes(0)])
    res = tube_identity(boxes(0)[None], masks((0, 10)), two, masks((0, 10), (3, 6)))
    assert res['cover'].tolist() == [[0] * 10]
    assert res['idsw'].tolist() == [0] and res['fragments'].tolist() == [1]
    assert res['num_gt'].tolist() == [1, 0]
    # when the first frame is ambiguous, the better overlap wins there
    res = tube_identity(boxes(0)[None], masks((0, 10)), two, masks((0, 10), (0, 6)))
    assert res['cover'][0].tolist() == [1] * 6 + [0] * 4
    assert res['idsw'].tolist() == [1] and res['fragments'].tolist() == [2]


def test_identity_jump_skips_uncovered_frames_and_low_iou_never_covers():
    gt = np.stack([boxes(0), boxes(100)])
    pred = np.concatenate([boxes(0, 4), boxes(50, 2), boxes(100, 4)])[None]
    res = tube_identity(gt, masks((0, 10), (0, 10)), pred, masks((0, 10)))
    assert res['jumps'].tolist() == [1] and res['num_gt'].tolist() == [2]
    assert res['covered'].tolist() == [4, 4] and res['fragments'].tolist() == [1, 1]
    res = tube_identity(gt, masks((0, 10), (0, 10)), boxes(4)[None], masks((0, 10)))  # IoU 6 / 14 < 0.5
    assert res['covered'].tolist() == [0, 0] and res['fragments'].tolist() == [0, 0]
    assert res['coverage'].tolist() == [0.0, 0.0] and res['jumps'].tolist() == [0]


def test_identity_frame_assignment_maximises_the_matched_pairs():
    """Prediction 0 overlaps GT 0 best (IoU 1) and GT 1 too (IoU 0.67); prediction 1 overlaps only GT 0
    (IoU 0.67): two pairs (GT 0 - pred 1, GT 1 - pred 0) rather than the single best one."""
    gt = np.stack([boxes(0, 1), boxes(2, 1)])
    pred = np.stack([boxes(0, 1), boxes(-2, 1)])
    cover = frame_correspondences(gt, np.ones((2, 1), bool), pred, np.ones((2, 1), bool))
    assert cover.tolist() == [[1], [0]]


def test_best_tube_overlap_splits_the_st_iou_into_time_and_space():
    """GT on frames 0-9. Tube A: frames 0-4, exact boxes; tube B: frames 0-9, shifted by 2 px (IoU 8 / 12).
    A: t = 5 / 10 (ACT, + 1), s = 1 -> st 0.5; B: t = 1, s = 2 / 3 -> st 0.667, the best. Without + 1
    (mmaction2): A: t = 4 / 9, B: t = 1."""
    gt, gm = boxes(0)[None], masks((0, 10))
    pred, pm = np.stack([boxes(0), boxes(2)]), masks((0, 5), (0, 10))
    res = best_tube_overlap(gt, gm, pred, pm)
    assert res['index'].tolist() == [1]
    assert np.allclose([res['st_iou'][0], res['t_iou'][0], res['s_iou'][0]], [2 / 3, 1.0, 2 / 3])
    only_a = best_tube_overlap(gt, gm, pred[:1], pm[:1])
    assert np.allclose([only_a['st_iou'][0], only_a['t_iou'][0], only_a['s_iou'][0]], [0.5, 0.5, 1.0])
    excl = best_tube_overlap(gt, gm, pred[:1], pm[:1], temporal_plus_one=False)
    assert np.allclose([excl['st_iou'][0], excl['t_iou'][0], excl['s_iou'][0]], [4 / 9, 4 / 9, 1.0])
    # no overlap in time: 0 everywhere; no prediction at all: index -1
    late = best_tube_overlap(gt, masks((0, 3)), boxes(0)[None], masks((5, 10)))
    assert (late['st_iou'][0], late['t_iou'][0], late['s_iou'][0]) == (0.0, 0.0, 0.0)
    empty = best_tube_overlap(gt, gm, np.zeros((0, 10, 4)), np.zeros((0, 10), bool))
    assert empty['index'].tolist() == [-1] and empty['st_iou'].tolist() == [0.0]


def test_video_identity_summary_and_errors(two_video_ann):
    clips = clips_from_gt(two_video_ann)
    tubes = {v: link_video_tubes(c, two_video_ann['nframes'][v]) for v, c in clips.items()}
    res = video_identity(tubes, two_video_ann)
    s = res['summary']
    assert (s['num_gt_tubes'], s['num_gt_covered'], s['idsw'], s['frag'], s['jumps']) == (3, 3, 0, 0, 0)
    assert s['coverage'] == 1.0 and s['fragments_per_gt'] == 1.0 and s['num_pred_tubes'] == 3
    # the GT tubes linked back: each is its own best tube
    assert s['best_st_iou'] == pytest.approx(1.0) and s['best_st_iou>=0.5'] == 1.0
    assert s['best_t_iou'] == pytest.approx(1.0) and s['best_s_iou'] == pytest.approx(1.0)
    assert sorted(sum((v['best_index'] for v in res['videos'].values()), [])) == [0, 0, 1]
    json.dumps(res)
    # a video without tubes: its GT tubes are uncovered; a score threshold above every score: same
    part = video_identity({'a/v1': tubes['a/v1']}, two_video_ann)['summary']
    assert (part['num_gt_tubes'], part['num_gt_covered']) == (3, 2)
    none = video_identity(tubes, two_video_ann, score_thr=2.0)
    assert none['summary']['num_gt_covered'] == 0 and np.isnan(none['summary']['fragments_per_gt'])
    assert none['videos']['a/v1']['pred_index'] == []
    with pytest.raises(ValueError, match='not evaluated'):
        video_identity(dict(tubes, other=tubes['a/v1']), two_video_ann)
    with pytest.raises(ValueError, match='iou_thr'):
        video_identity(tubes, two_video_ann, iou_thr=0)
    with pytest.raises(ValueError, match='tube_identity'):
        tube_identity(np.zeros((1, 5, 4)), np.ones((1, 5), bool), np.zeros((1, 4, 4)), np.ones((1, 4), bool))


# ---------------------------------------------------------------------------------------------------------
# tools/analysis/tube_identity.py


def crossing_dump(tmp_path):
    """An annotation file (the crossing video, a one-actor video) and a DumpResults-like pickle of clips."""
    gt, clips = overlap_crossing()
    rows = [np.concatenate([np.arange(1, 65)[:, None], g], axis=1).astype(np.float32) for g in gt]
    ann = make_ann({
        'cross': (64, {
            0: rows
        }),
        'single': (40, {
            1: [tube(range(5, 37), (20, 20, 60, 70))]
        })
    },
                   resolution=(120, 200))
    single = clips_from_gt(ann, videos=['single'])['single']
    samples = []
    for video, cl in (('cross', clips), ('single', single)):
        for c in cl:
            valid = c['frame_valid'] if c['frame_valid'] is not None else \
                np.ones(len(c['frame_numbers']), bool)
            samples.append(
                dict(
                    video_id=video,
                    frame_numbers=np.asarray(c['frame_numbers']),
                    frame_valid=np.asarray(valid),
                    pred_instances=dict(
                        tubes=torch.from_numpy(np.asarray(c['tubes'], np.float32)),
                        tube_masks=torch.from_numpy(np.asarray(c['tube_masks'])),
                        scores=torch.from_numpy(np.asarray(c['scores'], np.float32)),
                        labels=torch.from_numpy(np.asarray(c['labels'])))))
    ann_file, dump = str(tmp_path / 'ann.pkl'), str(tmp_path / 'results.pkl')
    with open(ann_file, 'wb') as f:
        pickle.dump(ann, f)
    with open(dump, 'wb') as f:
        pickle.dump(samples, f)
    return ann_file, dump


def test_tube_identity_tool_end_to_end(tmp_path, capsys):
    import tube_identity as tool
    ann_file, dump = crossing_dump(tmp_path)
    out_json = str(tmp_path / 'identity.json')
    out = tool.main([dump, ann_file, '--out', out_json, '--markdown'])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith('| method | num_gt_tubes | num_gt_covered | coverage | idsw | frag |')
    assert lines[2].startswith('| greedy | 3 | 3 |') and lines[3].startswith('| hungarian | 3 | 3 |')
    assert 'link (hungarian)' in captured.err and 'identity' in captured.err  # progress bars
    with open(out_json) as f:
        saved = json.load(f)
    greedy, hung = saved['methods']['greedy']['summary'], saved['methods']['hungarian']['summary']
    assert greedy['idsw'] >= 1 and hung['idsw'] == 0 and hung['fragments_per_gt'] == 1.0
    assert saved['methods']['hungarian']['videos']['cross']['idsw'] == [0, 0]
    assert saved['settings']['link_iou'] == 0.5
    assert saved['settings']['link_methods'] == ['greedy', 'hungarian']
    # the greedy row's mAPs are those of the evaluation (TubeMetric's path)
    from cfad_mm.evaluation import load_dump
    report = evaluate_clip_predictions(load_dump(dump), ann_file)
    assert greedy['video_mAP@0.5'] == pytest.approx(report['metrics']['video_mAP@0.5'], abs=1e-12)
    assert greedy['frame_mAP@0.5'] == hung['frame_mAP@0.5'] == report['metrics']['frame_mAP@0.5']
    assert out['methods']['greedy']['summary'] == greedy
    # one method, no mAP, no progress bar, the linking settings of a config (link_iou=0.3: greedy swaps)
    config = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
    out = tool.main(
        [dump, ann_file, '--config', config, '--link-method', 'greedy', '--no-map', '--no-progress'])
    captured = capsys.readouterr()
    assert 'mAP' not in captured.out and 'hungarian' not in captured.out and captured.err == ''
    assert out['settings']['link_iou'] == 0.3 and out['settings']['vel_weight'] == 2.0
    assert out['methods']['greedy']['videos']['cross']['idsw'] == [1, 1]
    assert out['methods']['greedy']['videos']['cross']['jumps'] == [1, 1]
    out = tool.main([dump, ann_file, '--link-method', 'hungarian', '--vel-weight', '0', '--no-progress'])
    assert out['settings']['vel_weight'] == 0.0 and out['methods']['hungarian']['summary']['idsw'] == 0
    # the table as a block of a markdown file, citing the command without where the output went
    doc = tmp_path / 'doc.md'
    doc.write_text('# Doc\n')
    tool.main([dump, ann_file, '--link-method', 'hungarian', '--no-progress', '--out', out_json, '--doc',
               str(doc), '--block', 'ident', '--title', 'crossing'])
    text = doc.read_text()
    assert text.startswith('# Doc\n') and '<!-- ident:start -->' in text
    assert '## Identity and best tubes: crossing' in text
    assert '--doc' not in text and '--out' not in text and '| hungarian | 3 | 3 |' in text
    assert '| best_st_iou | best_st_iou>=0.5 | best_t_iou | best_s_iou |' in text
    with pytest.raises(SystemExit, match='error: --doc'):
        tool.main([dump, ann_file, '--doc', str(tmp_path / 'nope.md')])


def test_tube_identity_tool_bad_inputs(tmp_path):
    import tube_identity as tool
    ann_file, dump = crossing_dump(tmp_path)
    with pytest.raises(SystemExit, match='error: --iou'):
        tool.main([dump, ann_file, '--iou', '0'])
    with pytest.raises(SystemExit, match='error: --vel-weight'):
        tool.main([dump, ann_file, '--vel-weight', '-1'])
    with pytest.raises(SystemExit, match='error: results file not found'):
        tool.main([str(tmp_path / 'missing.pkl'), ann_file, '--no-progress'])
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'not a pickle')
    with pytest.raises(SystemExit, match='error: .*not a readable results pickle'):
        tool.main([str(bad), ann_file, '--no-progress'])
    with open(bad, 'wb') as f:
        pickle.dump({'video_id': 'cross'}, f)
    with pytest.raises(SystemExit, match='error: .*expected the list of data samples'):
        tool.main([str(bad), ann_file, '--no-progress'])
    with open(bad, 'wb') as f:
        pickle.dump([dict(video_id='cross', frame_numbers=np.arange(1, 5))], f)
    with pytest.raises(SystemExit, match='error: .*pred_instances'):
        tool.main([str(bad), ann_file, '--no-progress'])
    with pytest.raises(SystemExit, match='error:'):
        tool.main([dump, str(tmp_path / 'missing_ann.pkl'), '--no-progress'])
    with pytest.raises(SystemExit, match=r'error: .*not in test_videos\[0\]'):
        tool.main([dump, _other_ann(tmp_path), '--no-progress'])


def _other_ann(tmp_path):
    """An annotation file without the dump's videos."""
    ann = make_ann({'elsewhere': (20, {0: [tube(range(1, 21), (10, 10, 50, 50))]})})
    path = str(tmp_path / 'other.pkl')
    with open(path, 'wb') as f:
        pickle.dump(ann, f)
    return path
