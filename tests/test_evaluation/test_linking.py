import numpy as np
import pytest

from cfad_mm.evaluation import link_tubes, link_video_tubes, prepare_clips


def moving_boxes(frames, x0=10.0, speed=1.0, size=20.0, dx=0.0):
    """Boxes (len(frames), 4) of a square moving right by ``speed`` px per frame (frame 1 at x0)."""
    x = x0 + speed * (np.asarray(frames, dtype=float) - 1) + dx
    return np.stack([x, np.full_like(x, 10), x + size, np.full_like(x, 10 + size)], axis=1)


def clip(frames, tubes, scores, labels, masks=None, valid=None, frame_scores=None):
    frames = np.asarray(frames)
    tubes = np.asarray(tubes, dtype=float).reshape(len(scores), len(frames), 4)
    return dict(
        frame_numbers=frames,
        frame_valid=valid,
        tubes=tubes,
        tube_masks=np.ones(tubes.shape[:2], bool) if masks is None else np.asarray(masks),
        scores=np.asarray(scores, dtype=float),
        labels=np.asarray(labels),
        frame_scores=frame_scores)


def test_two_overlapping_clips_make_one_tube_with_score_weighted_boxes():
    f1, f2 = np.arange(1, 17), np.arange(9, 25)
    c1 = clip(f1, [moving_boxes(f1)], [0.8], [0])
    c2 = clip(f2, [moving_boxes(f2, dx=3.0)], [0.4], [0])  # 3 px to the right of the truth
    out = link_video_tubes([c1, c2], nframes=30, trim_thr=None)
    assert out['scores'].tolist() == pytest.approx([0.6])  # mean of the clip scores
    assert out['labels'].tolist() == [0] and out['num_clips'].tolist() == [2]
    mask = out['tube_masks'][0]
    assert mask[:24].all() and not mask[24:].any()
    expected = np.zeros((30, 4))
    expected[:8] = moving_boxes(np.arange(1, 9))
    expected[8:16] = moving_boxes(np.arange(9, 17), dx=3.0 * 0.4 / 1.2)  # score-weighted average: +1 px
    expected[16:24] = moving_boxes(np.arange(17, 25), dx=3.0)
    np.testing.assert_allclose(out['tubes'][0], expected, atol=1e-9)


def test_two_classes_are_never_linked():
    f1, f2 = np.arange(1, 17), np.arange(9, 25)
    c1 = clip(f1, [moving_boxes(f1)], [0.8], [0])
    c2 = clip(f2, [moving_boxes(f2)], [0.7], [1])
    out = link_video_tubes([c1, c2], nframes=30, trim_thr=None, nms_thr=None)
    assert out['labels'].tolist() == [0, 1] and out['num_clips'].tolist() == [1, 1]


def test_low_iou_starts_a_new_tube_and_best_iou_wins():
    f1, f2 = np.arange(1, 17), np.arange(9, 25)
    c1 = clip(f1, [moving_boxes(f1, x0=10), moving_boxes(f1, x0=100)], [0.9, 0.8], [0, 0])
    # clip 2: a box close to the second tube (IoU ~0.8 with it, 0 with the first) and one far from both
    c2 = clip(f2, [moving_boxes(f2, x0=102), moving_boxes(f2, x0=60)], [0.5, 0.95], [0, 0])
    out = link_video_tubes([c1, c2], nframes=30, trim_thr=None, nms_thr=None)
    assert len(out['scores']) == 3
    assert sorted(out['num_clips'].tolist()) == [1, 1, 2]
    linked = out['num_clips'] == 2
    assert out['scores'][linked] == pytest.approx([0.65])  # (0.8 + 0.5) / 2: the x0=100 tube
    assert out['tubes'][linked][0, 0, 0] == pytest.approx(100)


def test_one_clip_tube_per_clip_and_video_tube():
    f1, f2 = np.arange(1, 17), np.arange(9, 25)
    c1 = clip(f1, [moving_boxes(f1)], [0.9], [0])
    # two near-identical tubes in clip 2: only the best-scored extends the video tube
    c2 = clip(f2, [moving_boxes(f2), moving_boxes(f2, dx=1)], [0.5, 0.6], [0, 0])
    out = link_video_tubes([c1, c2], nframes=30, trim_thr=None, nms_thr=None)
    assert sorted(out['num_clips'].tolist()) == [1, 2]
    assert out['scores'][out['num_clips'] == 2] == pytest.approx([0.75])  # (0.9 + 0.6) / 2
    # with tube NMS the leftover duplicate (st-IoU > 0.3) disappears
    assert len(link_video_tubes([c1, c2], nframes=30, trim_thr=None)['scores']) == 1


def test_order_independence():
    rng = np.random.default_rng(0)
    clips = []
    for s in range(0, 48, 8):
        frames = np.arange(s + 1, s + 17)
        tubes = [moving_boxes(frames, x0=x0) + rng.normal(0, 2, (16, 4)) for x0 in (10, 60, 61)]
        clips.append(clip(frames, tubes, rng.random(3), [0, 1, 1], frame_scores=rng.uniform(0.3, 1, (3, 16))))
    ref = link_video_tubes(clips, nframes=70)
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(len(clips))
        out = link_video_tubes([clips[i] for i in perm], nframes=70)
        for key in ('tubes', 'tube_masks', 'scores', 'labels', 'num_clips', 'frame_scores'):
            np.testing.assert_array_equal(out[key], ref[key])


def test_temporal_trimming_by_frame_scores():
    f1, f2 = np.arange(1, 17), np.arange(9, 25)
    fs1 = np.full((1, 16), 0.9)
    fs1[0, :4] = 0.2  # frames 1..4: low actionness
    fs2 = np.full((1, 16), 0.9)
    fs2[0, -3:] = 0.1  # frames 22..24 low
    c1 = clip(f1, [moving_boxes(f1)], [0.8], [0], frame_scores=fs1)
    c2 = clip(f2, [moving_boxes(f2)], [0.6], [0], frame_scores=fs2)
    out = link_video_tubes([c1, c2], nframes=30, trim_thr=0.5)
    assert np.nonzero(out['tube_masks'][0])[0].tolist() == list(range(4, 21))  # frames 5..21
    assert out['tubes'][0, :4].sum() == 0 and out['frame_scores'][0, 4] == pytest.approx(0.9)
    untrimmed = link_video_tubes([c1, c2], nframes=30, trim_thr=None)
    assert untrimmed['tube_masks'][0].sum() == 24
    # a tube whose actionness never reaches the threshold is removed, and counted
    low = clip(f1, [moving_boxes(f1, x0=100)], [0.9], [1], frame_scores=np.full((1, 16), 0.3))
    out = link_video_tubes([c1, c2, low], nframes=30)
    assert out['labels'].tolist() == [0] and out['num_trimmed_away'] == 1


def test_adjacent_clips_link_by_facing_boxes_and_gaps_are_interpolated():
    f1, f2 = np.arange(1, 9), np.arange(9, 17)  # stride == clip length: no shared frame
    c1 = clip(f1, [moving_boxes(f1)], [0.8], [0])
    c2 = clip(f2, [moving_boxes(f2)], [0.6], [0])
    out = link_video_tubes([c1, c2], nframes=20, trim_thr=None)
    assert out['num_clips'].tolist() == [2] and out['tube_masks'][0].sum() == 16
    # a 4-frame gap: bridged only with max_gap >= 4, the hole interpolated linearly
    f3 = np.arange(13, 21)
    c3 = clip(f3, [moving_boxes(f3)], [0.6], [0])
    assert len(link_video_tubes([c1, c3], nframes=20, trim_thr=None, nms_thr=None)['scores']) == 2
    out = link_video_tubes([c1, c3], nframes=20, trim_thr=None, max_gap=4)
    assert out['num_clips'].tolist() == [2] and out['tube_masks'][0].all()
    np.testing.assert_allclose(out['tubes'][0], moving_boxes(np.arange(1, 21)), atol=1e-9)


def test_padding_and_repeated_frames_are_ignored():
    frames = np.array([21, 22, 23, 24, 25, 25, 25, 25])  # a window running past the end of a 25-frame video
    valid = np.array([True] * 5 + [False] * 3)
    boxes = moving_boxes(frames)
    boxes[5:] = 1000  # garbage on padding
    out = link_video_tubes([clip(frames, [boxes], [0.7], [2], valid=valid)], nframes=25, trim_thr=None)
    assert np.nonzero(out['tube_masks'][0])[0].tolist() == [20, 21, 22, 23, 24]
    np.testing.assert_allclose(out['tubes'][0, 20:25], moving_boxes(np.arange(21, 26)))
    # without frame_valid the first occurrence of a repeated frame counts
    out = link_video_tubes([clip(frames, [boxes], [0.7], [2])], nframes=25, trim_thr=None)
    np.testing.assert_allclose(out['tubes'][0, 24], moving_boxes([25])[0])


def test_empty_inputs():
    out = link_video_tubes([], nframes=10)
    assert out['tubes'].shape == (0, 10, 4) and out['scores'].shape == (0, )
    empty = clip(np.arange(1, 9), np.zeros((0, 8, 4)), [], [])
    out = link_video_tubes([empty], nframes=10)
    assert out['tube_masks'].shape == (0, 10)
    # a tube without any valid frame covers nothing
    c = clip(np.arange(1, 9), [moving_boxes(np.arange(1, 9))], [0.9], [0], masks=np.zeros((1, 8), bool))
    assert prepare_clips([c], 10) == []


def test_errors():
    good = clip(np.arange(1, 9), [moving_boxes(np.arange(1, 9))], [0.9], [0])
    with pytest.raises(ValueError, match=r"clip 0 of video 'vid': frame_numbers must be 1-based .* 1..5"):
        link_video_tubes([good], nframes=5, video='vid')
    with pytest.raises(ValueError, match='inconsistent shapes'):
        link_video_tubes([dict(good, tube_masks=np.ones((1, 7), bool))], nframes=10)
    with pytest.raises(KeyError, match='missing keys'):
        link_video_tubes([dict(frame_numbers=np.arange(1, 9))], nframes=10)
    with pytest.raises(ValueError, match='some clip predictions have frame_scores'):
        link_video_tubes([good, dict(good, frame_scores=np.ones((1, 8)))], nframes=10)
    with pytest.raises(ValueError, match='max_gap'):
        link_video_tubes([good], nframes=10, max_gap=-1)
    with pytest.raises(KeyError, match='no frame count'):
        link_tubes({'x': [good]}, {})


def test_link_tubes_per_video():
    f = np.arange(1, 9)
    out = link_tubes({
        'a': [clip(f, [moving_boxes(f)], [0.9], [0])],
        'b': []
    }, {
        'a': 10,
        'b': 12
    },
                     trim_thr=None)
    assert out['a']['tubes'].shape == (1, 10, 4) and out['b']['tubes'].shape == (0, 12, 4)


def test_clips_with_the_old_frame_inds_key_link_as_frame_numbers():
    """Clip predictions written before the rename call the 1-based frame numbers 'frame_inds': the linking
    reads them (through rename_legacy_keys) and gives the same tubes; the caller's dicts are not modified."""
    from cfad_mm.evaluation.linking import rename_legacy_keys
    f1, f2 = np.arange(1, 17), np.arange(9, 25)
    clips = [clip(f1, [moving_boxes(f1)], [0.8], [0]), clip(f2, [moving_boxes(f2, dx=3.0)], [0.4], [0])]
    old = [{('frame_inds' if k == 'frame_numbers' else k): v for k, v in c.items()} for c in clips]
    new_out = link_video_tubes(clips, nframes=30, trim_thr=None)
    old_out = link_video_tubes(old, nframes=30, trim_thr=None)
    assert sorted(old_out) == sorted(new_out)
    for key in new_out:
        np.testing.assert_array_equal(old_out[key], new_out[key])
    assert all('frame_inds' in c and 'frame_numbers' not in c for c in old)
    assert rename_legacy_keys(clips[0]) is clips[0]  # new-style: returned as is
    both = dict(clips[0], frame_inds=np.zeros(16, np.int64))  # frame_numbers wins over a stray frame_inds
    np.testing.assert_array_equal(rename_legacy_keys(both)['frame_numbers'], f1)
    with pytest.raises(KeyError, match=r"missing keys \['frame_numbers'\]"):
        link_video_tubes([{k: v for k, v in clips[0].items() if k != 'frame_numbers'}], nframes=30)
