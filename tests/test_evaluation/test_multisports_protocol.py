"""``protocol='multisports'`` reproduces mmaction2 1.2.0's ``frameAP`` / ``videoAP`` (multisports_utils.py).

Random ground truth, frame detections and video tubes (fixed seeds, several classes and videos, two of the
six classes mmaction2 skips by name, one class without ground truth) are fed to mmaction2's functions and to
ours in the same order; mAPs and per-class APs must agree to 1e-9. mmaction2 returns only the mAP (in %), so a
per-class AP is obtained by calling it with the ground truth of that single class.
"""
import warnings

import numpy as np
import pytest

from cfad_mm.evaluation.functional import frame_map, get_protocol, video_map
from cfad_mm.evaluation.functional.protocol import MULTISPORTS_SKIPPED_CLASSES

ms = pytest.importorskip('mmaction.evaluation.functional.multisports_utils')

LABELS = [
    'aerobic push up', 'aerobic kick jump', 'volleyball serve', 'football shoot', 'basketball save',
    'basketball pass', 'volleyball spike', 'football cross'
]
NO_GT_CLASS = 7
VIDEO_THRS = (0.2, 0.5, 0.75)


def random_gt(rng, num_videos=6, min_len=3):
    """ACT/MultiSports-style annotation: contiguous tubes ``[frame, x1, y1, x2, y2]``, float pixel boxes."""
    nframes, gttubes, videos = {}, {}, []
    for i in range(num_videos):
        v = f'sport{i % 2}/v_{i:02d}'
        videos.append(v)
        n = int(rng.integers(20, 41))
        nframes[v] = n
        gttubes[v] = {}
        for _ in range(int(rng.integers(1, 4))):
            c = int(rng.integers(0, NO_GT_CLASS))
            s = int(rng.integers(1, n - min_len + 2))
            e = int(rng.integers(s + min_len - 1, n + 1))
            frames = np.arange(s, e + 1)
            x1, y1 = rng.uniform(0, 300), rng.uniform(0, 200)
            w, h = rng.uniform(20, 90), rng.uniform(30, 120)
            drift = rng.normal(0, 1.5, size=(len(frames), 2)).cumsum(0)
            dx, dy = drift[:, 0], drift[:, 1]
            boxes = np.stack([x1 + dx, y1 + dy, x1 + w + dx, y1 + h + dy], 1)
            tube = np.concatenate([frames[:, None], boxes], 1).astype(np.float64)
            gttubes[v].setdefault(c, []).append(tube)
    return dict(
        labels=list(LABELS),
        gttubes=gttubes,
        nframes=nframes,
        resolution={v: (480, 640)
                    for v in videos},
        train_videos=[[]],
        test_videos=[videos])


def jitter(rng, boxes, scale):
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    return boxes + rng.normal(0, scale, size=boxes.shape) * wh


def random_frame_dets(rng, gt, tied=False):
    """``(N, 8)`` rows ``[video_idx, frame, label, score, x1, y1, x2, y2]`` (the layout both sides take)."""
    rows = []
    videos = gt['test_videos'][0]
    for vi, v in enumerate(videos):
        for c, tubes in gt['gttubes'][v].items():
            for t in tubes:
                for r in t:
                    for _ in range(int(rng.integers(0, 3))):  # misses, hits, duplicates
                        label = c if rng.random() < 0.85 else int(rng.integers(0, len(LABELS)))
                        box = jitter(rng, r[None, 1:5], rng.choice([0.03, 0.12, 0.3]))[0]
                        rows.append([vi, r[0], label, rng.random(), *box])
        for _ in range(int(rng.integers(5, 15))):  # background false positives
            f = int(rng.integers(1, gt['nframes'][v] + 1))
            x1, y1 = rng.uniform(0, 400), rng.uniform(0, 300)
            rows.append([vi, f, int(rng.integers(0, len(LABELS))), rng.random(), x1, y1, x1 + 50, y1 + 80])
    dets = np.array(rows, dtype=np.float64)
    if tied:
        dets[:, 3] = np.round(dets[:, 3], 1)  # many exactly tied scores
    return dets[rng.permutation(len(dets))]


def random_video_tubes(rng, gt, tied_score=None):
    """Our dense tubes per video and mmaction2's ``{label: [(video, score, (n, 6) tube)]}`` built from them.

    mmaction2's list of a class holds the tubes of the videos in ``test_videos`` order, and inside a video in
    the order of our arrays: the same input order on both sides."""
    ours = {}
    videos = gt['test_videos'][0]
    for v in videos:
        n = gt['nframes'][v]
        tubes, masks, scores, labels = [], [], [], []

        def add(frames, boxes, label):
            dense = np.zeros((n, 4))
            mask = np.zeros(n, dtype=bool)
            dense[frames - 1] = boxes
            mask[frames - 1] = True
            tubes.append(dense)
            masks.append(mask)
            labels.append(label)
            scores.append(rng.random() if tied_score is None else tied_score)

        for c, gtubes in gt['gttubes'][v].items():
            for t in gtubes:
                for _ in range(int(rng.integers(0, 3))):
                    frames = t[:, 0].astype(int)
                    s, e = frames[0], frames[-1]
                    s2 = int(np.clip(s + rng.integers(-2, 3), 1, n - 1))
                    e2 = int(np.clip(e + rng.integers(-2, 3), s2 + 1, n))
                    f2 = np.arange(s2, e2 + 1)
                    # boxes follow the GT where it exists, else the nearest GT box
                    src = t[np.clip(f2 - s, 0, len(t) - 1), 1:5]
                    label = c if rng.random() < 0.85 else int(rng.integers(0, len(LABELS)))
                    add(f2, jitter(rng, src, rng.choice([0.01, 0.03, 0.1])), label)
        for _ in range(int(rng.integers(1, 4))):  # false positive tubes
            s = int(rng.integers(1, n - 2))
            f = np.arange(s, int(rng.integers(s + 1, n + 1)) + 1)
            x1, y1 = rng.uniform(0, 300), rng.uniform(0, 200)
            add(f, np.tile([x1, y1, x1 + 60, y1 + 90], (len(f), 1)), int(rng.integers(0, len(LABELS))))
        if rng.random() < 0.15:
            continue  # a video without detections
        ours[v] = dict(
            tubes=np.array(tubes),
            tube_masks=np.array(masks),
            scores=np.array(scores),
            labels=np.array(labels))
    theirs = {c: [] for c in range(len(LABELS))}
    for v in videos:
        if v not in ours:
            continue
        d = ours[v]
        for k in range(len(d['scores'])):
            frames = np.nonzero(d['tube_masks'][k])[0]
            arr = np.zeros((len(frames), 6))
            arr[:, 0] = frames + 1
            arr[:, 1:5] = d['tubes'][k, frames]
            arr[:, 5] = d['scores'][k]
            theirs[int(d['labels'][k])].append((v, float(d['scores'][k]), arr))
    return ours, theirs


def only_class(gt, c):
    """The annotation restricted to the ground truth of class ``c``: mmaction2's mAP is then class c's AP."""
    out = dict(gt)
    out['gttubes'] = {v: {k: t for k, t in per.items() if k == c} for v, per in gt['gttubes'].items()}
    return out


def mm_frame(gt, dets, thr=0.5):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return ms.frameAP(gt, dets, thr, print_info=False) / 100


def mm_video(gt, tubes, thr):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # numpy's deprecation of int(array) inside iou3dt_voc
        return ms.videoAP(gt, tubes, thr, print_info=False) / 100


def evaluated_classes(gt):
    with_gt = {c for per in gt['gttubes'].values() for c, t in per.items() if len(t)}
    return sorted(c for c in with_gt if LABELS[c] not in MULTISPORTS_SKIPPED_CLASSES)


@pytest.mark.parametrize('seed,tied', [(0, False), (1, False), (2, True)])
def test_frame_map_equals_mmaction2_frameAP(seed, tied):
    rng = np.random.default_rng(seed)
    gt = random_gt(rng)
    dets = random_frame_dets(rng, gt, tied)
    videos = gt['test_videos'][0]
    for thr in (0.3, 0.5):
        ours = frame_map(dets, gt, videos, iou_thr=thr, nms_thr=0.3, protocol='multisports')  # nms ignored
        assert ours['mAP'] == pytest.approx(mm_frame(gt, dets, thr), abs=1e-9, rel=0)
    ours = frame_map(dets, gt, videos, protocol='multisports')
    classes = evaluated_classes(gt)
    assert len(classes) >= 2
    assert sorted(np.nonzero(ours['evaluated'])[0].tolist()) == classes
    for c in classes:
        assert ours['ap'][c] == pytest.approx(mm_frame(only_class(gt, c), dets), abs=1e-9, rel=0), LABELS[c]
    # the skipped classes have ground truth in these data, and 'voc' differs (it evaluates them, NMS)
    assert any(LABELS[c] in MULTISPORTS_SKIPPED_CLASSES for per in gt['gttubes'].values() for c in per)


@pytest.mark.parametrize('seed', [3, 4])
def test_video_map_equals_mmaction2_videoAP(seed):
    rng = np.random.default_rng(seed)
    gt = random_gt(rng, num_videos=8, min_len=10)
    ours_tubes, their_tubes = random_video_tubes(rng, gt)
    videos = gt['test_videos'][0]
    ours = video_map(ours_tubes, gt, videos, iou_thrs=VIDEO_THRS, protocol='multisports')
    classes = evaluated_classes(gt)
    assert len(classes) >= 2
    for thr in VIDEO_THRS:
        assert ours[thr]['mAP'] == pytest.approx(mm_video(gt, their_tubes, thr), abs=1e-9, rel=0)
        assert sorted(np.nonzero(ours[thr]['evaluated'])[0].tolist()) == classes
        for c in classes:
            expected = mm_video(only_class(gt, c), their_tubes, thr)
            assert ours[thr]['ap'][c] == pytest.approx(expected, abs=1e-9, rel=0), (thr, LABELS[c])


def test_tied_tube_scores_follow_mmaction2_order():
    """All tubes with one score (what mmaction2's link_tubes outputs): the AP depends on the input order, and
    ours reproduces mmaction2 for the same order, in both directions."""
    rng = np.random.default_rng(5)
    gt = random_gt(rng, num_videos=8, min_len=10)
    ours_tubes, their_tubes = random_video_tubes(rng, gt, tied_score=0.5)
    videos = gt['test_videos'][0]
    reversed_ours = {
        v: {k: a[::-1].copy()
            for k, a in d.items()}
        for v, d in ours_tubes.items()
    }
    reversed_theirs = {c: lst[::-1] for c, lst in their_tubes.items()}
    results = []
    for ours_in, videos_in, theirs_in in ((ours_tubes, videos, their_tubes),
                                          (reversed_ours, videos[::-1], reversed_theirs)):
        ours = video_map(ours_in, gt, videos_in, iou_thrs=(0.5, ), protocol='multisports')[0.5]['mAP']
        theirs = mm_video(gt, theirs_in, 0.5)
        assert ours == pytest.approx(theirs, abs=1e-9, rel=0)
        results.append(ours)
    assert results[0] != pytest.approx(results[1], abs=1e-6)  # the order matters with tied scores


def test_mmaction2_link_tubes_gives_every_tube_the_last_detection_score():
    """The bug we do not reproduce: mmaction2's linking scores every frame detection with the last row's."""
    gt = dict(labels=['a', 'b'], nframes={'v': 20}, test_videos=[['v']], gttubes={'v': {}})
    rows = []
    for f in range(1, 21):
        rows.append([0, f, 0, 0.9, 10 + f, 10, 60 + f, 80])  # a confident tube
        rows.append([0, f, 0, 0.2, 200, 100, 260, 180])  # a weak one elsewhere
    rows.append([0, 5, 1, 0.01, 0, 0, 5, 5])  # the last row: a low score of another class
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tubes = ms.link_tubes(gt, np.array(rows, dtype=np.float64), K=1, len_thre=15)
    scores = [s for _, s, _ in tubes[0]]
    assert len(scores) == 2 and np.allclose(scores, 0.01)  # not 0.9 and 0.2


def test_multisports_protocol_settings():
    p = get_protocol('multisports')
    assert (p.plus_one, p.matching, p.ap_mode, p.pr_start_point) == (False, 'voc', 'voc', False)
    assert (p.eval_nms, p.temporal_plus_one, p.tie_order) == (False, False, 'numpy')
    assert set(p.skip_classes) == set(MULTISPORTS_SKIPPED_CLASSES) and len(p.skip_classes) == 6
    # 'voc' is not the same: it applies NMS, counts frames inclusively and evaluates every class
    v = get_protocol('voc')
    assert (v.eval_nms, v.temporal_plus_one, v.skip_classes) == (True, True, ())


def test_evaluate_tubes_with_the_multisports_protocol(two_video_ann):
    """End to end: overlapping clips give each frame two boxes; evaluate_tubes removes the duplicates before
    frame-mAP (which has no NMS of its own under this protocol), so perfect clips score 1."""
    from tube_eval_data import clips_from_gt

    from cfad_mm.evaluation import evaluate_tubes, format_report_table
    report = evaluate_tubes(clips_from_gt(two_video_ann), two_video_ann, protocol='multisports')
    assert report['settings']['protocol'] == 'multisports'
    assert report['metrics']['frame_mAP@0.5'] == pytest.approx(1.0)
    assert report['metrics']['video_mAP@0.5'] == pytest.approx(1.0)
    assert 'protocol=multisports' in format_report_table(report)


def test_docs_protocol_case_is_the_output_of_the_script_and_matches_mmaction2():
    import os.path as osp
    import runpy
    repo = osp.join(osp.dirname(__file__), '..', '..')
    case = runpy.run_path(osp.join(repo, 'tools', 'analysis', 'protocol_cases.py'))
    with open(osp.join(repo, 'docs', 'evaluation.md')) as f:
        assert case['table']() in f.read()
    ann, frame_dets, video_tubes = case['build_case']()
    res = case['compute']()
    assert res['multisports']['frame']['mAP'] == pytest.approx(mm_frame(ann, frame_dets), abs=1e-12)
    tubes = video_tubes['v1']
    theirs = {0: [], 1: []}
    for k in range(len(tubes['scores'])):
        frames = np.nonzero(tubes['tube_masks'][k])[0]
        arr = np.hstack([frames[:, None] + 1.0, tubes['tubes'][k, frames], np.full((len(frames), 1), 0.0)])
        theirs[int(tubes['labels'][k])].append(('v1', float(tubes['scores'][k]), arr))
    assert res['multisports']['video']['mAP'] == pytest.approx(mm_video(ann, theirs, 0.5), abs=1e-12)
    maps = {p: (r['frame']['mAP'], r['video']['mAP']) for p, r in res.items()}
    assert len(set(maps.values())) == 3  # the three protocols disagree


def test_the_multisports_config_evaluates_with_the_multisports_protocol():
    import os.path as osp

    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(osp.dirname(__file__), '..', '..', 'configs', 'cfad',
                 'cfad_i3d-r50_8xb8-16x1x1-10e_multisports.py'))
    assert cfg.test_evaluator['protocol'] == 'multisports' and cfg.model.num_classes == 66
    assert cfg.test_dataloader.dataset.type == 'MultiSportsDataset'
