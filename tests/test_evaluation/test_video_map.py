import numpy as np
import pytest
from tube_eval_data import dense, make_ann, tube

from cfad_mm.evaluation.functional import VIDEO_05_095_THRS, resolve_annotations, video_map

BOX = (0, 0, 9, 9)


def tubes_of(items, nframes):
    """Detected video tubes from [(rows (n, 5), score, label), ...]."""
    boxes, masks = zip(*[dense(rows, nframes) for rows, _, _ in items]) if items else ((), ())
    return dict(
        tubes=np.array(boxes).reshape(len(items), nframes, 4),
        tube_masks=np.array(masks, dtype=bool).reshape(len(items), nframes),
        scores=np.array([s for _, s, _ in items], dtype=float),
        labels=np.array([c for _, _, c in items], dtype=np.int64))


def vmap(dets, ann, thrs=(0.2, 0.5, 0.75) + VIDEO_05_095_THRS, **kwargs):
    return video_map(dets, ann, ann['test_videos'][0], thrs, **kwargs)


@pytest.fixture
def ann1():
    """One 30-frame test video with one static 'walk' tube on frames 1..10."""
    return resolve_annotations(make_ann({'v': (30, {0: [tube(range(1, 11), BOX)]})}))


def test_perfect_tubes(ann1):
    res = vmap({'v': tubes_of([(tube(range(1, 11), BOX), 0.9, 0)], 30)}, ann1)
    for thr, r in res.items():
        assert r['ap'][0] == pytest.approx(1.0), thr
        assert r['mAP'] == pytest.approx(1.0)


def test_temporal_iou_at_threshold(ann1):
    # frames 1..5 with exact boxes: st-IoU = 5/10 * 1.0 = 0.5 -> TP up to 0.5 (>=), FP above
    res = vmap({'v': tubes_of([(tube(range(1, 6), BOX), 0.9, 0)], 30)}, ann1)
    assert res[0.2]['ap'][0] == pytest.approx(1.0)
    assert res[0.5]['ap'][0] == pytest.approx(1.0)
    assert res[0.55]['ap'][0] == pytest.approx(0.0)
    assert res[0.75]['ap'][0] == pytest.approx(0.0)
    assert np.mean([res[t]['mAP'] for t in VIDEO_05_095_THRS]) == pytest.approx(0.1)


@pytest.mark.parametrize('num_frames, thr', [(4, 0.2), (10, 0.5), (15, 0.75)])
def test_one_tube_at_each_reported_threshold(num_frames, thr):
    # GT on frames 1..20; detection = the first `num_frames` frames, exact boxes: st-IoU = num_frames / 20
    ann = resolve_annotations(make_ann({'v': (30, {0: [tube(range(1, 21), BOX)]})}))
    dets = {'v': tubes_of([(tube(range(1, num_frames + 1), BOX), 0.9, 0)], 30)}
    res = vmap(dets, ann, thrs=(thr, thr + 0.01))
    assert res[thr]['ap'][0] == pytest.approx(1.0)
    assert res[round(thr + 0.01, 4)]['ap'][0] == 0.0


def test_spatial_iou_and_plus_one(ann1):
    # same extent, box (0,0,9,7): inclusive IoU 80/100 = 0.8, continuous 63/81 = 0.778
    dets = {'v': tubes_of([(tube(range(1, 11), (0, 0, 9, 7)), 0.9, 0)], 30)}
    act = vmap(dets, ann1, protocol='act')
    voc = vmap(dets, ann1, protocol='voc')
    assert act[0.8]['ap'][0] == pytest.approx(1.0)  # 0.8 >= 0.8
    assert voc[0.8]['ap'][0] == pytest.approx(0.0)  # 0.778 < 0.8
    assert act[0.85]['ap'][0] == 0.0 and voc[0.75]['ap'][0] == pytest.approx(1.0)


def test_duplicate_tube_false_positive_without_nms():
    ann = resolve_annotations(
        make_ann({
            'a': (30, {
                0: [tube(range(1, 11), BOX)]
            }),
            'b': (30, {
                0: [tube(range(1, 11), BOX)]
            })
        }))
    dets = {
        'a': tubes_of([(tube(range(1, 11), BOX), 0.9, 0), (tube(range(1, 10), BOX), 0.8, 0)], 30),
        'b': tubes_of([(tube(range(1, 11), BOX), 0.7, 0)], 30)
    }
    # without NMS: TP, FP (duplicate), TP over 2 GT
    res = vmap(dets, ann, thrs=(0.5, ), nms_thr=None)
    assert res[0.5]['ap'][0] == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    # tube NMS at 0.3 (st-IoU 0.9) removes the duplicate
    res = vmap(dets, ann, thrs=(0.5, ))
    assert res[0.5]['ap'][0] == pytest.approx(1.0)
    assert res[0.5]['num_dets'][0] == 2


def test_detection_spanning_two_gt_tubes():
    # GT A on frames 1..10, GT B on 11..20 (same class); one detection on 1..20 with the exact boxes:
    # st-IoU with each = 10/20 * 1.0 = 0.5 -> matches one of them at 0.5, none at 0.55
    a, b = tube(range(1, 11), BOX), tube(range(11, 21), (50, 50, 59, 59))
    ann = resolve_annotations(make_ann({'v': (30, {0: [a, b]})}))
    det = np.concatenate([a, b])
    res = vmap({'v': tubes_of([(det, 0.9, 0)], 30)}, ann, thrs=(0.5, 0.55))
    assert res[0.5]['ap'][0] == pytest.approx(0.5)  # p = [1, 1], r = [0, 0.5]
    assert res[0.55]['ap'][0] == pytest.approx(0.0)


def test_wrong_class_missing_video_and_skipped_class():
    ann = resolve_annotations(
        make_ann({
            'a': (30, {
                0: [tube(range(1, 11), BOX)]
            }),
            'b': (30, {
                0: [tube(range(1, 11), BOX)]
            })
        }))
    # 'a': right tube but class 1 (no GT anywhere: skipped); 'b': no prediction at all
    res = vmap({'a': tubes_of([(tube(range(1, 11), BOX), 0.9, 1)], 30)}, ann, thrs=(0.5, ))[0.5]
    assert res['ap'][0] == 0.0 and np.isnan(res['ap'][1])
    assert res['evaluated'].tolist() == [True, False, False] and res['mAP'] == 0.0
    # 'a' correct, 'b' missing: recall 1/2
    res = vmap({'a': tubes_of([(tube(range(1, 11), BOX), 0.9, 0)], 30)}, ann, thrs=(0.5, ))[0.5]
    assert res['ap'][0] == pytest.approx(0.5) and res['num_gt'][0] == 2


def test_empty_predictions(ann1):
    res = vmap({}, ann1)
    assert all(r['mAP'] == 0.0 for r in res.values())
    res = vmap({'v': tubes_of([], 30)}, ann1)
    assert all(r['mAP'] == 0.0 for r in res.values())


def test_errors(ann1):
    good = tubes_of([(tube(range(1, 11), BOX), 0.9, 0)], 30)
    with pytest.raises(ValueError, match='not evaluated'):
        vmap({'other': good}, ann1)
    with pytest.raises(ValueError, match=r"video tubes of 'v' \(30 frames\)"):
        vmap({'v': dict(good, tubes=good['tubes'][:, :20])}, ann1)
    with pytest.raises(ValueError, match='labels must be in'):
        vmap({'v': dict(good, labels=np.array([5]))}, ann1)
    with pytest.raises(KeyError, match='missing keys'):
        vmap({'v': dict(tubes=good['tubes'])}, ann1)
    with pytest.raises(ValueError, match='iou_thrs must be in'):
        vmap({'v': good}, ann1, thrs=(0.0, ))


# ---------------------------------------------------------------- a transcription of ACT's videoAP loops
def _act_iou3dt(b1, b2):
    tmin, tmax = max(b1[0, 0], b2[0, 0]), min(b1[-1, 0], b2[-1, 0])
    if tmax < tmin:
        return 0.0
    tiou = (tmax - tmin + 1) / (max(b1[-1, 0], b2[-1, 0]) - min(b1[0, 0], b2[0, 0]) + 1)
    t1 = b1[(b1[:, 0] >= tmin) & (b1[:, 0] <= tmax), 1:5]
    t2 = b2[(b2[:, 0] >= tmin) & (b2[:, 0] <= tmax), 1:5]
    ix = np.maximum(0, np.minimum(t1[:, 2], t2[:, 2]) - np.maximum(t1[:, 0], t2[:, 0]) + 1)
    iy = np.maximum(0, np.minimum(t1[:, 3], t2[:, 3]) - np.maximum(t1[:, 1], t2[:, 1]) + 1)
    area = lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)  # noqa: E731
    return np.mean(ix * iy / (area(t1) + area(t2) - ix * iy)) * tiou


def _act_nms3dt(tubes, overlap):
    order = np.argsort([t[1] for t in tubes])
    keep = []
    while order.size > 0:
        i = order[-1]
        keep.append(i)
        ious = np.array([_act_iou3dt(tubes[ii][0], tubes[i][0]) for ii in order[:-1]])
        order = order[np.where(ious <= overlap)[0]]
    return keep


def _act_video_ap(det_rows, ann, videos, th):
    aps = []
    for ilabel in range(len(ann['labels'])):
        detections = []
        for v in videos:
            ltubes = [(t, s) for t, s, c in det_rows.get(v, []) if c == ilabel]
            detections += [(v, ltubes[i][1], ltubes[i][0])
                           for i in _act_nms3dt(ltubes, 0.3)] if ltubes else []
        gt = {v: list(ann['gttubes'][v][ilabel]) for v in videos if ann['gttubes'][v].get(ilabel)}
        fn = sum(len(g) for g in gt.values())
        if fn == 0:
            aps.append(np.nan)
            continue
        pr = np.empty((len(detections) + 1, 2))
        pr[0] = (1.0, 0.0)
        tp = fp = 0
        for i, j in enumerate(np.argsort(-np.array([d[1] for d in detections]))):
            v, _, t = detections[j]
            positive = False
            if v in gt:
                ious = [_act_iou3dt(g, t) for g in gt[v]]
                amax = np.argmax(ious)
                if ious[amax] >= th:
                    positive = True
                    del gt[v][amax]
                    if not gt[v]:
                        del gt[v]
            tp, fn, fp = (tp + 1, fn - 1, fp) if positive else (tp, fn, fp + 1)
            pr[i + 1] = (tp / (tp + fp), tp / (tp + fn))
        aps.append(np.sum((pr[1:, 1] - pr[:-1, 1]) * (pr[1:, 0] + pr[:-1, 0]) / 2))
    return np.array(aps)


def test_matches_act_reference_on_random_data():
    rng = np.random.default_rng(1)
    videos, det_rows = {}, {}
    for v in range(6):
        per_label, dets = {}, []
        for _ in range(3):
            label = int(rng.integers(0, 3))
            start = int(rng.integers(1, 20))
            xy = rng.uniform(0, 60, 2)
            gt = tube(
                range(start, start + int(rng.integers(8, 20))), (*xy, *(xy + rng.uniform(20, 50, 2))),
                rng.uniform(-1, 1, 2))
            per_label.setdefault(label, []).append(gt)
            for _ in range(int(rng.integers(0, 3))):  # noisy, temporally shifted copies
                s, e = int(rng.integers(0, 4)), len(gt) - int(rng.integers(0, 4))
                rows = gt[s:e].astype(np.float64).copy()
                rows[:, 1:] += rng.normal(0, 3, (len(rows), 4))
                dets.append(
                    (rows, float(rng.random()), label if rng.random() < 0.8 else int(rng.integers(0, 3))))
        for _ in range(3):  # clutter tubes
            start = int(rng.integers(1, 30))
            xy = rng.uniform(0, 80, 2)
            dets.append(
                (tube(range(start, min(start + 10, 40)),
                      (*xy, *(xy + 30))).astype(np.float64), float(rng.random()), int(rng.integers(0, 3))))
        videos[f'v{v}'] = (40, per_label)
        det_rows[f'v{v}'] = dets
    ann = resolve_annotations(make_ann(videos))
    names = ann['test_videos'][0]
    dets = {v: tubes_of(det_rows[v], 40) for v in names}
    ours = video_map(dets, ann, names, (0.2, 0.5, 0.75), 0.3, 'act')
    for th in (0.2, 0.5, 0.75):
        reference = _act_video_ap(det_rows, ann, names, th)
        np.testing.assert_allclose(ours[th]['ap'], reference, rtol=1e-9, atol=1e-12)
    assert 0.1 < np.nanmean(_act_video_ap(det_rows, ann, names, 0.5)) < 0.95
