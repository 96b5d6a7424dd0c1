import numpy as np
import pytest
from tube_eval_data import make_ann, tube

from cfad_mm.evaluation.functional import frame_map, resolve_annotations

GT_BOX = (0, 0, 9, 9)  # 10 x 10 pixels with the inclusive convention, 9 x 9 without


def det(video_idx, frame, label, score, box):
    return [video_idx, frame, label, score, *box]


@pytest.fixture
def one_tube_ann():
    """One test video of 20 frames, a static 'walk' tube annotated on frames 1..10."""
    return resolve_annotations(make_ann({'v': (20, {0: [tube(range(1, 11), GT_BOX)]})}))


def ap_of(dets, ann, cls=0, **kwargs):
    res = frame_map(np.array(dets, dtype=float).reshape(-1, 8), ann, ann['test_videos'][0], **kwargs)
    return res['ap'][cls], res


def test_perfect_detections(one_tube_ann):
    ap, res = ap_of([det(0, f, 0, 0.9, GT_BOX) for f in range(1, 11)], one_tube_ann)
    assert ap == pytest.approx(1.0)
    assert res['mAP'] == pytest.approx(1.0)
    assert res['num_gt'].tolist() == [10, 0, 0] and res['num_dets'].tolist() == [10, 0, 0]


@pytest.mark.parametrize(
    'x2, expected',
    [
        (4, 1.0),  # ACT IoU = 5*10 / 100 = 0.5 exactly -> TP (>=)
        (3.9, 0.0),  # IoU = 4.9*10 / 100 = 0.49 -> FP
    ])
def test_single_detection_around_threshold(one_tube_ann, x2, expected):
    box = (0, 0, x2, 9)
    ann = resolve_annotations(make_ann({'v': (20, {0: [tube([1], GT_BOX)]})}))
    ap, _ = ap_of([det(0, 1, 0, 0.9, box)], ann)
    assert ap == pytest.approx(expected)


def test_plus_one_convention_changes_the_result():
    # GT (0,0,9,9), detection (0,0,9,4): inclusive IoU 50/100 = 0.5 (TP); continuous IoU 36/81 = 0.444 (FP)
    ann = resolve_annotations(make_ann({'v': (20, {0: [tube([1], GT_BOX)]})}))
    dets = [det(0, 1, 0, 0.9, (0, 0, 9, 4))]
    assert ap_of(dets, ann, protocol='act')[0] == pytest.approx(1.0)
    assert ap_of(dets, ann, protocol='voc')[0] == pytest.approx(0.0)


def test_duplicate_is_false_positive_without_nms_and_suppressed_with(one_tube_ann):
    # frame 1: TP (0.9) then a duplicate (0.8); frame 2: TP (0.7). GT only on frames 1 and 2.
    ann = resolve_annotations(make_ann({'v': (20, {0: [tube([1, 2], GT_BOX)]})}))
    dets = [det(0, 1, 0, 0.9, GT_BOX), det(0, 1, 0, 0.8, (0, 0, 9, 8)), det(0, 2, 0, 0.7, GT_BOX)]
    # tp = [1, 0, 1] of 2 GT: p = [1, 1, 1/2, 2/3], r = [0, 1/2, 1/2, 1]
    ap, _ = ap_of(dets, ann, nms_thr=None)
    assert ap == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    ap, res = ap_of(dets, ann)  # NMS at 0.3 removes the duplicate (IoU 0.9)
    assert ap == pytest.approx(1.0)
    assert res['num_dets'][0] == 2


def test_nms_is_per_class_and_per_frame():
    ann = resolve_annotations(make_ann({'v': (20, {0: [tube([1, 2], GT_BOX)], 1: [tube([1], GT_BOX)]})}))
    # same box, two classes on frame 1, and class 0 again on frame 2: nothing is suppressed
    dets = [det(0, 1, 0, 0.9, GT_BOX), det(0, 1, 1, 0.8, GT_BOX), det(0, 2, 0, 0.7, GT_BOX)]
    _, res = ap_of(dets, ann)
    assert res['num_dets'].tolist() == [2, 1, 0]
    np.testing.assert_allclose(res['ap'][:2], [1.0, 1.0])


def test_remaining_gt_matching_differs_between_protocols():
    # two GT boxes in one frame; both detections overlap A best; the second still matches B under ACT
    a, b = (0, 0, 19, 19), (6, 0, 25, 19)
    ann = resolve_annotations(make_ann({'v': (20, {0: [tube([1], a), tube([1], b)]})}))
    d1, d2 = (0, 0, 19, 19), (2, 0, 21, 19)  # d2: IoU 0.82 with A, 0.67 with B
    dets = [det(0, 1, 0, 0.9, d1), det(0, 1, 0, 0.8, d2)]
    assert ap_of(dets, ann, nms_thr=None, protocol='act')[0] == pytest.approx(1.0)
    # VOC: d2's best GT (A) is already matched -> FP; p = [1, 1/2], r = [1/2, 1/2] -> 0.5
    assert ap_of(dets, ann, nms_thr=None, protocol='voc')[0] == pytest.approx(0.5)


def test_wrong_class_and_unannotated_frames_are_false_positives(one_tube_ann):
    # right box, wrong class 1 (which has no GT: skipped), and a class-0 box on frame 15 (no GT there)
    dets = [det(0, f, 1, 0.9, GT_BOX) for f in range(1, 11)] + [det(0, 15, 0, 0.95, GT_BOX)]
    ap, res = ap_of(dets, one_tube_ann)
    assert ap == pytest.approx(0.0)
    assert res['evaluated'].tolist() == [True, False, False]
    assert np.isnan(res['ap'][1]) and res['mAP'] == pytest.approx(0.0)


def test_missing_frames_halve_the_recall(one_tube_ann):
    ap, res = ap_of([det(0, f, 0, 0.9 - 0.01 * f, GT_BOX) for f in range(1, 6)], one_tube_ann)
    assert ap == pytest.approx(0.5)
    assert res['recall'][0][-1] == pytest.approx(0.5)


def test_empty_predictions_give_zero(one_tube_ann):
    ap, res = ap_of([], one_tube_ann)
    assert ap == 0.0 and res['mAP'] == 0.0
    res = frame_map(
        dict(video_idx=[], frame=[], label=[], score=[], boxes=np.zeros((0, 4))), one_tube_ann, ['v'])
    assert res['mAP'] == 0.0


def test_input_errors(one_tube_ann):
    with pytest.raises(ValueError, match=r'frame 21 of video .v. is outside 1..20'):
        ap_of([det(0, 21, 0, 0.9, GT_BOX)], one_tube_ann)
    with pytest.raises(ValueError, match='video_idx must index'):
        ap_of([det(1, 1, 0, 0.9, GT_BOX)], one_tube_ann)
    with pytest.raises(ValueError, match=r'labels must be in 0..2'):
        ap_of([det(0, 1, 3, 0.9, GT_BOX)], one_tube_ann)
    with pytest.raises(ValueError, match=r'\(N, 8\)'):
        frame_map(np.zeros((2, 7)), one_tube_ann, ['v'])
    with pytest.raises(KeyError, match='missing keys'):
        frame_map(dict(frame=[1]), one_tube_ann, ['v'])


# ---------------------------------------------------------------- a transcription of ACT's frameAP loops
def _act_iou2d(gt, box):
    ix = np.maximum(0, np.minimum(gt[:, 2], box[2]) - np.maximum(gt[:, 0], box[0]) + 1)
    iy = np.maximum(0, np.minimum(gt[:, 3], box[3]) - np.maximum(gt[:, 1], box[1]) + 1)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)  # noqa: E731
    return inter / (area(gt) + area(box) - inter)


def _act_hard_nms(boxes, scores, thr):
    order = list(np.argsort(-scores, kind='stable'))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if _act_iou2d(boxes[[j]], boxes[i])[0] <= thr]
    return keep


def _act_frame_ap(alldets, ann, videos, th=0.5):
    aps = []
    for ilabel in range(len(ann['labels'])):
        rows = alldets[alldets[:, 2] == ilabel]
        kept = []
        for key in {(int(r[0]), int(r[1])) for r in rows}:
            sel = rows[(rows[:, 0] == key[0]) & (rows[:, 1] == key[1])]
            kept.append(sel[_act_hard_nms(sel[:, 4:8], sel[:, 3], 0.3)])
        detections = np.concatenate(kept) if kept else np.zeros((0, 8))
        gt = {}
        for iv, v in enumerate(videos):
            for t in ann['gttubes'][v].get(ilabel, []):
                for row in t:
                    gt.setdefault((iv, int(row[0])), []).append(row[1:5].tolist())
        gt = {k: np.array(v) for k, v in gt.items()}
        fn = sum(g.shape[0] for g in gt.values())
        if fn == 0:
            aps.append(np.nan)
            continue
        pr = np.empty((detections.shape[0] + 1, 2))
        pr[0] = (1.0, 0.0)
        tp = fp = 0
        for i, j in enumerate(np.argsort(-detections[:, 3])):
            k = (int(detections[j, 0]), int(detections[j, 1]))
            positive = False
            if k in gt:
                ious = _act_iou2d(gt[k], detections[j, 4:8])
                amax = np.argmax(ious)
                if ious[amax] >= th:
                    positive = True
                    gt[k] = np.delete(gt[k], amax, 0)
                    if gt[k].size == 0:
                        del gt[k]
            tp, fn, fp = (tp + 1, fn - 1, fp) if positive else (tp, fn, fp + 1)
            pr[i + 1] = (tp / (tp + fp), tp / (tp + fn))
        aps.append(np.sum((pr[1:, 1] - pr[:-1, 1]) * (pr[1:, 0] + pr[:-1, 0]) / 2))
    return np.array(aps)


def test_matches_act_reference_on_random_data():
    rng = np.random.default_rng(0)
    videos = {}
    for v in range(4):
        per_label = {}
        for _ in range(3):
            label = int(rng.integers(0, 3))
            start = int(rng.integers(1, 15))
            xy = rng.uniform(0, 60, 2)
            per_label.setdefault(label, []).append(
                tube(range(start, start + 12), (*xy, *(xy + rng.uniform(20, 50, 2))), rng.uniform(-1, 1, 2)))
        videos[f'v{v}'] = (30, per_label)
    ann = resolve_annotations(make_ann(videos))
    names = ann['test_videos'][0]
    rows = []
    for iv, v in enumerate(names):
        for label, tubes in ann['gttubes'][v].items():
            for t in tubes:
                for r in t:
                    for _ in range(int(rng.integers(0, 3))):  # 0-2 noisy copies, sometimes with a wrong label
                        lab = label if rng.random() < 0.8 else int(rng.integers(0, 3))
                        rows.append([iv, r[0], lab, rng.random(), *(r[1:5] + rng.normal(0, 4, 4))])
        for _ in range(30):  # clutter anywhere
            xy = rng.uniform(0, 100, 2)
            rows.append([iv, rng.integers(1, 31), rng.integers(0, 3), rng.random(), *xy, *(xy + 30)])
    alldets = np.array(rows)
    ours = frame_map(alldets, ann, names, 0.5, 0.3, 'act')
    reference = _act_frame_ap(alldets, ann, names)
    assert 0.1 < np.nanmean(reference) < 0.95  # a non-trivial case
    np.testing.assert_allclose(ours['ap'], reference, rtol=1e-9, atol=1e-12)
