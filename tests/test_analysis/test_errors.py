"""TIDE-style video-mAP error breakdown on hand-made tubes; the expected numbers are computed by hand below.

Scene (ACT protocol, inclusive-pixel boxes, st-IoU threshold t = 0.5, tube NMS 0.3), classes walk (0),
run (1):

video v1 (20 frames), GT walk A: frames 1-10, box [0, 0, 9, 9]; GT walk B: frames 11-20, box [40, 0, 49, 9]
video v2 (10 frames), GT walk C: frames 1-10, box [0, 0, 9, 9]; GT walk D: frames 1-10, box [60, 60, 69, 69]
"run" has no GT tube in the split: only walk is evaluated (mAP = AP(walk)), 4 GT tubes.

detections                                 st-IoU with GT               matching / type
d1 walk 0.9  A's box, frames 1-6           A: tIoU 6/10 * 1 = 0.6       TP (A)
d2 run  0.8  B exactly                     B (other class): 1.0         cls (target B, unmatched)
d3 walk 0.7  A's box, frames 5-10          A: 0.6, but A is taken       dup
d4 walk 0.6  B's box, frames 11-14         B: tIoU 0.4, spatial 1.0     loc_temporal (target B)
d5 walk 0.5  [100,100,109,109], 1-20       0 everywhere                 bkg
d6 walk 0.4  B shifted 5 px, frames 11-20  B: tIoU 1, IoU 50/150 = 1/3  loc_spatial (target B)
d7 walk 0.3  C exactly                     C: 1.0                       TP (C)
GT D: no detection, nobody targets it -> miss.
NMS 0.3 keeps everything: st(d1, d3) = 2/10 = 0.2, st(d4, d6) = 0.4 * 1/3 = 0.133, the others are disjoint.

walk ranking: d1 TP, d3 FP, d4 FP, d5 FP, d6 FP, d7 TP (num_gt 4). ACT AP (trapezoid, PR starts at (0, 1)):
  base: 1/4 * (1 + 1)/2 + 1/4 * (1/5 + 2/6)/2 = 1/4 + 1/15 = 19/60
  cls fixed (d2 -> walk on B, 0.8, TP): TP TP FP FP FP FP TP: precisions 1, 1, .., 1/3 then 3/7
      1/4 + 1/4 + 1/4 * (1/3 + 3/7)/2 = 1/2 + 2/21 = 25/42               dAP = 25/42 - 19/60 = 39/140
  dup fixed (d3 dropped): TP FP FP FP TP: 1/4 + 1/4 * (1/4 + 2/5)/2 = 53/160   dAP = 7/480
  bkg fixed (d5 dropped): same ranks as dup                                   dAP = 7/480
  loc_temporal fixed (d4 -> B, TP at 0.6): TP FP TP FP FP TP
      1/4 + 1/4 * (1/2 + 2/3)/2 + 1/4 * (2/5 + 1/2)/2 = 1/4 + 7/48 + 9/80 = 61/120   dAP = 23/120
  loc_spatial fixed (d6 -> B, TP at 0.4): TP FP FP FP TP TP
      1/4 + 1/4 * (1/4 + 2/5)/2 + 1/4 * (2/5 + 1/2)/2 = 71/160                   dAP = 61/480
  miss fixed (D added below everything, 7th in the walk ranking: tp 3, fp 4, precision 3/7, recall 1):
      19/60 + 1/4 * (1/3 + 3/7)/2 = 19/60 + 2/21                                dAP = 2/21
  loc_both / both: none                                                        dAP = 0
  all fixed: d2 -> B at 0.8 (the first FP targeting B), d4 and d6 then dropped (B taken), d3 and d5
      dropped, D added: every detection a TP, recall 1 -> AP 1                  dAP = 1 - 19/60 = 41/60
"""
import numpy as np
import pytest

from cfad_mm.analysis import ERROR_TYPES, format_breakdown_table, video_error_breakdown
from cfad_mm.evaluation.functional import video_map


def rows(frames, box):
    return np.array([[f] + list(box) for f in frames], dtype=np.float64)


def dense(frames, box, nframes):
    boxes = np.zeros((nframes, 4))
    mask = np.zeros(nframes, bool)
    for f in frames:
        boxes[f - 1] = box
        mask[f - 1] = True
    return boxes, mask


A, B = [0, 0, 9, 9], [40, 0, 49, 9]
C, D = [0, 0, 9, 9], [60, 60, 69, 69]


def make_ann():
    return dict(
        labels=['walk', 'run'],
        gttubes={
            'v1': {
                0: [rows(range(1, 11), A), rows(range(11, 21), B)]
            },
            'v2': {
                0: [rows(range(1, 11), C), rows(range(1, 11), D)]
            }
        },
        nframes={
            'v1': 20,
            'v2': 10
        },
        resolution={
            'v1': (120, 160),
            'v2': (120, 160)
        },
        train_videos=[['v1', 'v2']],
        test_videos=[['v1', 'v2']])


def make_tubes(dets, nframes):
    tubes, masks = zip(*[dense(frames, box, nframes) for _, _, frames, box in dets])
    return dict(
        tubes=np.stack(tubes),
        tube_masks=np.stack(masks),
        scores=np.array([d[1] for d in dets]),
        labels=np.array([d[0] for d in dets]))


def scene():
    v1 = [
        (0, 0.9, range(1, 7), A),  # d1 TP
        (1, 0.8, range(11, 21), B),  # d2 cls
        (0, 0.7, range(5, 11), A),  # d3 dup
        (0, 0.6, range(11, 15), B),  # d4 loc_temporal
        (0, 0.5, range(1, 21), [100, 100, 109, 109]),  # d5 bkg
        (0, 0.4, range(11, 21), [45, 0, 54, 9])
    ]  # d6 loc_spatial
    v2 = [(0, 0.3, range(1, 11), C)]  # d7 TP
    return {'v1': make_tubes(v1, 20), 'v2': make_tubes(v2, 10)}


EXPECTED_DAP = dict(
    cls=39 / 140,
    dup=7 / 480,
    bkg=7 / 480,
    loc_temporal=23 / 120,
    loc_spatial=61 / 480,
    miss=2 / 21,
    loc_both=0.0,
    both=0.0)


def test_hand_made_breakdown():
    ann, tubes = make_ann(), scene()
    res = video_error_breakdown(tubes, ann)
    # the base mAP is video_map's (NMS 0.3 inside), 19/60
    assert res['mAP'] == pytest.approx(video_map(tubes, ann, ['v1', 'v2'], (0.5, ))[0.5]['mAP'], abs=1e-6)
    assert res['mAP'] == pytest.approx(19 / 60, abs=1e-6)
    assert res['evaluated_classes'] == ['walk'] and res['ap']['run'] is None
    # each detection's type, in the evaluated order (NMS kept all 6 of v1: walk by score, then run)
    v1 = res['videos']['v1']
    types = dict(zip(v1['det_index'], v1['det_type']))
    assert types == {0: 'tp', 1: 'cls', 2: 'dup', 3: 'loc_temporal', 4: 'bkg', 5: 'loc_spatial'}
    targets = dict(zip(v1['det_index'], v1['det_target']))
    assert targets[1] == targets[3] == targets[5] == 1 and targets[0] == 0  # GT B is index 1, A index 0
    assert res['videos']['v2']['det_type'] == ['tp'] and res['videos']['v2']['miss'] == [1]  # GT D
    assert v1['miss'] == []  # B is targeted by the cls / loc FPs, not a miss
    assert res['counts'] == dict(
        dup=1, cls=1, loc_spatial=1, loc_temporal=1, loc_both=0, both=0, bkg=1, miss=1)
    assert res['counts_per_class']['cls'] == {'walk': 0, 'run': 1}  # FPs are counted under their own class
    assert (res['num_tp'], res['num_fp'], res['num_gt']) == (2, 5, 4)
    for name, value in EXPECTED_DAP.items():
        assert res['dAP'][name] == pytest.approx(value, abs=1e-6), name
        assert res['dAP_per_class'][name]['walk'] == pytest.approx(value, abs=1e-6), name
        assert res['dAP_per_class'][name]['run'] is None
    # invariant: fixing every error at once gives mAP exactly 1
    assert res['dAP']['all'] == pytest.approx(41 / 60, abs=1e-6)
    assert res['mAP'] + res['dAP']['all'] == pytest.approx(1.0, abs=1e-6)
    table = format_breakdown_table(res)
    assert 'dloc_temporal' in table and '31.67' in table
    md = format_breakdown_table(res, markdown=True)
    assert md.splitlines()[1].startswith('|---|') and md.count('\n') == 4  # head, rule, mAP, walk, count


def test_single_error_type_per_class_is_additive():
    """Exact additivity when every class has errors of one type only: per class dAP_type = 1 - AP, so the
    overall dAPs of the types sum to 1 - mAP.

    walk (v1: GT A frames 1-10): d walk 0.9 [100,...] background, then A exactly at 0.8:
        ranks FP TP, PR points (r, p) = (0, 1), (0, 0), (1, 1/2) -> AP = 1 * (0 + 1/2)/2 = 1/4;
        dropping the bkg FP -> 1; dAP_bkg(walk) = 3/4.
    run (v2: GT R frames 1-10 [0,0,9,9]): nothing detected -> AP 0; miss oracle -> 1; dAP_miss(run) = 1.
    mAP = (1/4 + 0)/2 = 1/8; dAP bkg = 3/8, miss = 1/2; sum 7/8 = 1 - 1/8.
    """
    ann = make_ann()
    ann['gttubes'] = {'v1': {0: [rows(range(1, 11), A)]}, 'v2': {1: [rows(range(1, 11), C)]}}
    tubes = {'v1': make_tubes([(0, 0.9, range(1, 11), [100, 100, 109, 109]), (0, 0.8, range(1, 11), A)], 20)}
    res = video_error_breakdown(tubes, ann)
    assert res['mAP'] == pytest.approx(1 / 8)
    assert res['dAP']['bkg'] == pytest.approx(3 / 8) and res['dAP']['miss'] == pytest.approx(1 / 2)
    assert res['dAP_per_class']['bkg'] == {'walk': pytest.approx(0.75), 'run': pytest.approx(0.0)}
    assert res['dAP_per_class']['miss'] == {'walk': pytest.approx(0.0), 'run': pytest.approx(1.0)}
    assert sum(res['dAP'][t] for t in ERROR_TYPES) == pytest.approx(1 - res['mAP'], abs=1e-6)
    assert res['dAP']['all'] == pytest.approx(1 - res['mAP'], abs=1e-6)


def test_loc_both_and_both():
    """loc_both: walk, frames 1-4 of GT A (frames 1-10), box of IoU 1/3 with A: tIoU 0.4 < 0.5, spatial
    1/3 < 0.5, st-IoU 0.4 * 1/3 = 0.133 in [0.1, 0.5).
    both: the same tube labelled run (no run GT): st-IoU 0.133 in [0.1, 0.5) with a GT of another class
    only."""
    ann = make_ann()
    ann['gttubes'] = {'v1': {0: [rows(range(1, 11), A)]}, 'v2': {}}
    shifted = [5, 0, 14, 9]  # IoU with A: 50 / 150 = 1/3 (inclusive pixels)
    tubes = {'v1': make_tubes([(0, 0.9, range(1, 5), shifted), (1, 0.8, range(1, 5), shifted)], 20)}
    res = video_error_breakdown(tubes, ann)
    assert res['videos']['v1']['det_type'] == ['loc_both', 'both']
    assert res['mAP'] == 0.0
    # loc_both fix: walk detection re-localised to A -> AP 1; both fix: the run FP dropped -> nothing changes
    assert res['dAP']['loc_both'] == pytest.approx(1.0) and res['dAP']['both'] == 0.0


def test_validation_and_empty():
    ann = make_ann()
    with pytest.raises(ValueError):
        video_error_breakdown({'nope': scene()['v1']}, ann)
    res = video_error_breakdown({}, ann)  # nothing detected: every GT is a miss, AP 0, miss oracle gives 1
    assert res['mAP'] == 0.0 and res['counts']['miss'] == 4 and res['dAP']['miss'] == pytest.approx(1.0)


def test_voc_protocol_base_equals_video_map_and_all_fixed_is_one():
    ann, tubes = make_ann(), scene()
    res = video_error_breakdown(tubes, ann, protocol='voc', nms_thr=None)
    assert res['mAP'] == pytest.approx(
        video_map(tubes, ann, ['v1', 'v2'], (0.5, ), nms_thr=None, protocol='voc')[0.5]['mAP'], abs=1e-6)
    assert res['mAP'] + res['dAP']['all'] == pytest.approx(1.0, abs=1e-6)
    assert res['settings']['protocol'] == 'voc'


def test_other_protocols_base_equals_video_map():
    """Every registered protocol: the breakdown's base mAP is video_map's, and fixing everything gives 1 (the
    scene has no one-frame GT tube)."""
    from cfad_mm.evaluation.functional import PROTOCOLS
    ann, tubes = make_ann(), scene()
    for name in sorted(PROTOCOLS):
        res = video_error_breakdown(tubes, ann, protocol=name)
        assert res['mAP'] == pytest.approx(
            video_map(tubes, ann, ['v1', 'v2'], (0.5, ), protocol=name)[0.5]['mAP'], abs=1e-6), name
        assert res['mAP'] + res['dAP']['all'] == pytest.approx(1.0, abs=1e-6), name
