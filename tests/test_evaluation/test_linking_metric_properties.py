"""Property-based tests of the linking and the metric (hypothesis), and degenerate model outputs: random clip
predictions (empty, single-frame, zero-size, overlapping, out-of-frame, NaN) never crash the linking, the
metric or the detector's post-processing; metrics stay in [0, 1] and do not depend on the input order."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tube_eval_data import make_ann, tube

from cfad_mm.evaluation.functional import evaluate_tubes
from cfad_mm.evaluation.linking import drop_nonfinite_tubes, link_video_tubes

NFRAMES = {'a': 14, 'b': 9}
ANN = make_ann({
    'a': (14, {0: [tube(range(2, 12), (20, 20, 60, 80), step=(2, 0))],
               1: [tube(range(5, 15), (90, 10, 130, 50))]}),
    'b': (9, {2: [tube(range(1, 10), (10, 30, 50, 90))]}),
})
KEYS = ('frame_mAP@0.5', 'video_mAP@0.2', 'video_mAP@0.5', 'video_mAP@0.75', 'video_mAP@0.5:0.95')


@st.composite
def clip(draw, nframes, clip_len=6):
    start = draw(st.integers(1, max(1, nframes - clip_len + 1)))
    frame_numbers = np.minimum(np.arange(start, start + clip_len), nframes)
    valid = np.arange(start, start + clip_len) <= nframes
    n = draw(st.integers(0, 3))
    xy = draw(arrays(np.float32, (n, clip_len, 2), elements=st.floats(-30, 170, width=32)))
    wh = draw(arrays(np.float32, (n, clip_len, 2), elements=st.sampled_from([0.0, 2.0, 40.0])))
    return dict(frame_numbers=frame_numbers, frame_valid=valid, tubes=np.concatenate([xy, xy + wh], -1),
                tube_masks=draw(arrays(np.bool_, (n, clip_len))),
                scores=draw(arrays(np.float32, (n, ), elements=st.floats(0, 1, width=32))),
                labels=draw(arrays(np.int64, (n, ), elements=st.integers(0, 2))),
                frame_scores=draw(arrays(np.float32, (n, clip_len), elements=st.floats(0, 1, width=32))))


def video_clips(video):
    return st.lists(clip(NFRAMES[video]), max_size=4)


@settings(max_examples=50, deadline=None)
@given(video_clips('a'))
def test_linking_random_clips(clips):
    out = link_video_tubes(clips, NFRAMES['a'], video='a')
    k = len(out['scores'])
    assert out['tubes'].shape == (k, NFRAMES['a'], 4) and out['tube_masks'].shape == (k, NFRAMES['a'])
    assert np.all(np.isfinite(out['tubes'])) and np.all(out['tube_masks'].any(1))
    assert np.all((out['scores'] >= 0) & (out['scores'] <= 1))
    assert set(out['labels'].tolist()) <= {0, 1, 2}


@settings(max_examples=40, deadline=None)
@given(video_clips('a'), video_clips('b'), st.randoms(use_true_random=False))
def test_metric_in_unit_interval_and_permutation_invariant(clips_a, clips_b, rnd):
    dets = {'a': clips_a, 'b': clips_b}
    metrics = evaluate_tubes(dets, ANN)['metrics']
    for key in KEYS:
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    # shuffle the videos, the clips of each video and the tubes inside every clip
    shuffled = {}
    for video in rnd.sample(list(dets), len(dets)):
        clips = []
        for c in rnd.sample(dets[video], len(dets[video])):
            order = np.array(rnd.sample(range(len(c['scores'])), len(c['scores'])), dtype=np.int64)
            clips.append({k: (v[order] if k not in ('frame_numbers', 'frame_valid') else v)
                          for k, v in c.items()})
        shuffled[video] = clips
    again = evaluate_tubes(shuffled, ANN)['metrics']
    for key in KEYS:
        assert again[key] == pytest.approx(metrics[key], abs=1e-12), key


@settings(max_examples=30, deadline=None)
@given(video_clips('a'), st.data())
def test_nonfinite_predictions_are_dropped_not_fatal(clips, data):
    broken = []
    expected = 0
    for c in clips:
        c = {k: np.array(v, copy=True) for k, v in c.items()}
        if len(c['scores']) and data.draw(st.booleans()):
            i = data.draw(st.integers(0, len(c['scores']) - 1))
            c['scores'][i] = np.nan
            expected += 1
        broken.append(c)
    kept, dropped = drop_nonfinite_tubes(broken, 'a', warn=False)
    assert dropped == expected
    link_video_tubes(kept, NFRAMES['a'], video='a')
    metrics = evaluate_tubes({'a': kept}, ANN)['metrics']
    assert all(0.0 <= metrics[key] <= 1.0 for key in KEYS)


def test_degenerate_clip_predictions_in_the_metric_and_linking():
    """Zero-size boxes, tubes without any frame, clips without tubes and boxes far outside the frame."""
    t = 6
    zero = np.tile(np.array([30, 30, 30, 30], np.float32), (2, t, 1))
    masks = np.array([[True] * t, [False] * t])
    clips = [
        dict(frame_numbers=np.arange(1, 7), tubes=zero, tube_masks=masks,
             scores=np.array([0.9, 0.8], np.float32), labels=np.array([0, 0])),
        dict(frame_numbers=np.arange(5, 11), tubes=np.zeros((0, t, 4), np.float32),
             tube_masks=np.zeros((0, t), bool), scores=np.zeros(0, np.float32), labels=np.zeros(0, np.int64)),
        dict(frame_numbers=np.arange(9, 15),
             tubes=np.tile(np.array([-500, -500, -400, -400], np.float32), (1, t, 1)),
             tube_masks=np.ones((1, t), bool), scores=np.array([0.5], np.float32), labels=np.array([1])),
    ]
    linked = link_video_tubes(clips, 14, video='a')
    assert len(linked['scores']) == 2  # the empty tube and the empty clip contribute nothing
    metrics = evaluate_tubes({'a': clips, 'b': []}, ANN)['metrics']
    assert all(metrics[key] == 0.0 for key in KEYS)


class GivenTubes:
    """A stand-in tube coder whose ``decode`` returns given dense tubes (the post-processing decodes
    first)."""

    def __init__(self, tubes, masks):
        self.tubes, self.masks = tubes, masks

    def decode(self, coeffs, extents, img_shape, num_frames):
        return self.tubes, self.masks


def postprocess(tubes, masks, scores, labels, img_shape, max_per_clip=10, score_thr=0.05, nms_iou=0.5):
    """The detector's post-processing (:func:`outputs_to_clip_tubes`, coarse-only scores) of dense tubes."""
    from cfad_mm.models.utils.tube_postprocessing import outputs_to_clip_tubes
    n = len(scores)
    return outputs_to_clip_tubes(GivenTubes(tubes, masks), scores, labels, torch.zeros(n, 4, 4),
                                 torch.zeros(n, 2), None, img_shape, tubes.shape[1], score_thr, nms_iou,
                                 max_per_clip)


def test_detector_postprocess_with_degenerate_tubes():
    """CFAD's post-processing (score threshold, tube NMS) on zero-size boxes, empty tubes and identical tubes,
    then the metric's conversion and linking."""
    from mmaction.structures import ActionDataSample

    from cfad_mm.evaluation.metrics.tube_metric import data_samples_to_clip_predictions
    t = 8
    tubes = torch.zeros((4, t, 4))
    tubes[1] = torch.tensor([10., 10., 10., 10.])  # zero-size
    tubes[2:] = torch.tensor([5., 5., 40., 30.])  # two identical tubes
    masks = torch.ones((4, t), dtype=torch.bool)
    masks[0] = False  # an empty tube
    ds = ActionDataSample()
    ds.set_metainfo(dict(video_id='a', frame_numbers=np.arange(1, t + 1), frame_valid=np.ones(t, bool),
                         img_shape=(48, 64), ori_shape=(48, 64)))
    out = postprocess(tubes, masks, torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.zeros(4, dtype=torch.long),
                      (48, 64))
    assert len(out.scores) == 2  # empty tube dropped, the duplicate suppressed, the zero-size one kept (1 px)
    assert torch.isfinite(out.tubes).all()
    torch.testing.assert_close(out.tubes[0, 0], torch.tensor([10., 10., 11., 11.]))
    out.frame_scores = torch.zeros(len(out), t)
    ds.pred_instances = out
    clips = data_samples_to_clip_predictions([ds])
    link_video_tubes(clips, 14, video='a')
    empty = postprocess(tubes[:0], masks[:0], torch.zeros(0), torch.zeros(0, dtype=torch.long), (48, 64))
    assert len(empty.scores) == 0 and empty.tubes.shape == (0, t, 4)


def test_detector_postprocess_nms_is_class_wise_and_ordered_by_score():
    """One NMS call for all classes: overlapping tubes of different classes both survive, a same-class
    duplicate is suppressed, the output is sorted by score and capped at max_per_clip."""
    t = 6
    box = torch.tensor([5., 5., 40., 30.])
    tubes = box.repeat(5, t, 1)
    tubes[4] += 20  # class 1, far from the others
    labels = torch.tensor([0, 1, 0, 2, 1])
    scores = torch.tensor([0.5, 0.9, 0.8, 0.3, 0.4])
    masks = torch.ones((5, t), dtype=torch.bool)
    out = postprocess(tubes, masks, scores, labels, (96, 128))
    # class 0: 0.8 suppresses 0.5; class 1: 0.9 and the far 0.4; class 2: 0.3
    assert out.scores.tolist() == pytest.approx([0.9, 0.8, 0.4, 0.3])
    assert out.labels.tolist() == [1, 0, 1, 2]
    torch.testing.assert_close(out.tubes[0], box.repeat(t, 1))
    assert postprocess(tubes, masks, scores, labels, (96, 128), max_per_clip=2).scores.tolist() == \
        pytest.approx([0.9, 0.8])


def test_tubes_of_a_clip_are_put_in_one_order_by_content():
    """prepare_clips orders the tubes of each clip by content (descending score, then label, then boxes), so
    that two clips over the same frames sort, and link, the same whatever the order of their tubes (a case
    the property test above found: tied scores broke the permutation invariance)."""
    from cfad_mm.evaluation.linking import prepare_clips
    boxes = np.array([[[10, 10, 50, 50]] * 3, [[60, 10, 90, 50]] * 3, [[5, 5, 20, 20]] * 3], dtype=np.float32)
    clip = dict(frame_numbers=np.array([1, 2, 3]), tubes=boxes, tube_masks=np.ones((3, 3), bool),
                scores=np.array([0.5, 0.75, 0.5], np.float32), labels=np.array([1, 0, 0]),
                frame_scores=np.array([[0.5] * 3, [0.75] * 3, [0.5] * 3], np.float32))
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        permuted = {k: (v[order] if k != 'frame_numbers' else v) for k, v in clip.items()}
        out = prepare_clips([permuted], nframes=5)[0]
        # 0.75 first; the two 0.5 tubes by label: tube 2 (label 0) before tube 0 (label 1)
        assert out['scores'].tolist() == [0.75, 0.5, 0.5] and out['labels'].tolist() == [0, 0, 1]
        assert np.array_equal(out['tubes'], boxes[[1, 2, 0]].astype(np.float64))
