"""Tests of the synthetic dataset generator (cfad_mm/datasets/synthetic_generator.py) and its CLI."""
import os.path as osp
import pickle
import runpy

import decord
import numpy as np
import pytest

from cfad_mm.datasets.annotation import load_annotations
from cfad_mm.datasets.synthetic_generator import (
    MOTION_CLASSES,
    make_synthetic_dataset,
    motion_trajectory,
    sprite_mask,
    synthesize_video,
    video_rng,
)

WIDTH, HEIGHT, FRAMES, NUM_VIDEOS, SEED = 64, 48, 24, 6, 0
TINY = dict(
    num_videos=NUM_VIDEOS,
    frames=FRAMES,
    size=(WIDTH, HEIGHT),
    num_classes=5,
    test_ratio=0.25,
    occluder_prob=0.5,
    log_interval=0)
TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'data', 'make_synthetic.py')


def _load(path):
    with open(path, 'rb') as f:
        return pickle.load(f, encoding='latin1')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('synth'))
    ann_file = make_synthetic_dataset(out, seed=SEED, **TINY)
    return dict(out=out, ann_file=ann_file, ann=_load(ann_file))


def _regenerate(ann, video):
    """Render ``video`` of the tiny dataset again (same arguments as ``make_synthetic_dataset``)."""
    index = int(video.rsplit('_', 1)[1])
    primary = ann['labels'].index(video.split('/')[0])
    return synthesize_video(
        video_rng(SEED, index),
        primary,
        ann['nframes'][video], (WIDTH, HEIGHT),
        num_classes=5,
        max_actors=3,
        min_action_len=12,
        occluder_prob=0.5)


def _all_tubes(ann, video):
    return sorted(((label, tube) for label, tubes in ann['gttubes'][video].items() for tube in tubes),
                  key=lambda x: (x[0], x[1][0, 0]))


def test_files_keys_and_types(tiny):
    ann = tiny['ann']
    assert tiny['ann_file'] == osp.join(tiny['out'], 'annotations.pkl')
    assert set(ann) == {'labels', 'gttubes', 'nframes', 'resolution', 'train_videos', 'test_videos'}
    assert ann['labels'] == list(MOTION_CLASSES[:5])
    videos = sorted(ann['nframes'])
    assert len(videos) == NUM_VIDEOS
    assert sorted(ann['gttubes']) == videos and sorted(ann['resolution']) == videos
    for i, video in enumerate(sorted(videos, key=lambda v: v.rsplit('_', 1)[1])):
        assert video.endswith(f'/v_{i:04d}') and video.split('/')[0] in ann['labels']
        assert osp.isfile(osp.join(tiny['out'], 'videos', video + '.mp4'))
        assert type(ann['nframes'][video]) is int and ann['nframes'][video] == FRAMES
        assert ann['resolution'][video] == (HEIGHT, WIDTH)
        # the video's class folder is the class of one of its tubes (its first actor)
        assert ann['labels'].index(video.split('/')[0]) in ann['gttubes'][video]
        for label, tubes in ann['gttubes'][video].items():
            assert type(label) is int and 0 <= label < 5
            assert isinstance(tubes, list) and tubes
            for tube in tubes:
                assert isinstance(tube, np.ndarray) and tube.dtype == np.float32 and tube.shape[1] == 5
    assert len(ann['train_videos']) == 1 and len(ann['test_videos']) == 1
    train, test = ann['train_videos'][0], ann['test_videos'][0]
    assert set(train) | set(test) == set(videos) and not set(train) & set(test)
    # 2 videos of one class -> floor(2 * 0.25 + 0.5) = 1 test video; single videos stay in train
    assert len(test) == 1 and len(train) == 5
    # the project's validator accepts the file
    assert load_annotations(tiny['ann_file'])['nframes'] == ann['nframes']


def test_decord_reads_every_video(tiny):
    ann = tiny['ann']
    for video, nframes in ann['nframes'].items():
        reader = decord.VideoReader(osp.join(tiny['out'], 'videos', video + '.mp4'), num_threads=1)
        assert len(reader) == nframes
        assert reader[0].shape == (HEIGHT, WIDTH, 3) == ann['resolution'][video] + (3, )


def test_tubes_inside_frame_and_consecutive(tiny):
    ann = tiny['ann']
    max_len = round(0.85 * FRAMES)
    for video, per_label in ann['gttubes'].items():
        num_tubes = sum(len(t) for t in per_label.values())
        assert 1 <= num_tubes <= 3
        for tubes in per_label.values():
            for tube in tubes:
                frames, x1, y1, x2, y2 = tube.T
                assert np.all(np.diff(frames) == 1)
                assert 1 <= frames[0] and frames[-1] <= ann['nframes'][video]
                assert 12 <= len(tube) <= max_len  # partial temporal extent
                assert np.all(x1 >= 0) and np.all(y1 >= 0) and np.all(x2 <= WIDTH) and np.all(y2 <= HEIGHT)
                assert np.all(x2 > x1) and np.all(y2 > y1)
                assert np.array_equal(tube, np.round(tube))  # integer pixel extents


def test_every_class_appears_in_train(tiny):
    ann = tiny['ann']
    in_train = {label for v in ann['train_videos'][0] for label in ann['gttubes'][v]}
    assert in_train == set(range(5))
    first_actor = [ann['labels'].index(v.split('/')[0]) for v in ann['train_videos'][0]]
    assert set(first_actor) == set(range(5))


def test_rendering_matches_annotation_exactly(tiny):
    """Lossless frames: each GT box is the exact extent of its sprite; everything else is background."""
    ann = tiny['ann']
    for video in ann['nframes']:
        rendered = _regenerate(ann, video)
        actors = sorted(
            zip(rendered.labels, rendered.tubes, rendered.sprite_masks), key=lambda x: (x[0], x[1][0, 0]))
        expected = [(lb, t.tolist()) for lb, t in _all_tubes(ann, video)]
        assert [(lb, t.tolist()) for lb, t, _ in actors] == expected
        drawn = rendered.sprite_masks.any(axis=0) | rendered.occluder_masks
        background = np.broadcast_to(rendered.background, rendered.frames.shape)
        assert np.array_equal(rendered.frames[~drawn], background[~drawn])
        for _, tube, masks in actors:
            on = set(tube[:, 0].astype(int) - 1)
            for t in range(ann['nframes'][video]):
                if t not in on:
                    assert not masks[t].any()  # visible only while acting
                    continue
                x1, y1, x2, y2 = tube[tube[:, 0] == t + 1, 1:].astype(int)[0]
                rows, cols = np.flatnonzero(masks[t].any(axis=1)), np.flatnonzero(masks[t].any(axis=0))
                assert (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) == (x1, y1, x2, y2)
                assert masks[t, y1:y2, x1:x2].mean() > 0.9
                assert np.array_equal(masks[t, y1:y2, x1:x2], sprite_mask(y2 - y1, x2 - x1))


def test_decoded_sprites_differ_from_background(tiny):
    """In the (lossy) mp4, visible sprite pixels stand out from the background; far from them none do."""
    ann = tiny['ann']
    for video in ann['nframes']:
        rendered = _regenerate(ann, video)
        decoded = decord.VideoReader(osp.join(tiny['out'], 'videos', video + '.mp4')).get_batch(
            list(range(ann['nframes'][video]))).asnumpy().astype(np.int16)
        diff = np.abs(decoded - rendered.background.astype(np.int16)).max(axis=-1)  # (T, H, W)
        masks = rendered.sprite_masks
        for k in range(len(masks)):
            visible = masks[k] & ~rendered.occluder_masks & ~masks[k + 1:].any(axis=0)
            counts = visible.sum(axis=(1, 2))
            frames = np.flatnonzero(counts >= 20)
            assert len(frames) >= 10
            per_frame = np.array([np.mean(diff[t][visible[t]] > 25) for t in frames])
            assert per_frame.min() > 0.75, (video, k, per_frame.min())
        # 3+ px away from every sprite and occluder the video shows the background, up to mp4v's loss
        # (measured: mean |error| ~6 at 64x48, at most 0.4 % of those pixels of a frame off by > 25, while a
        # misplaced sprite would make >= 1.5 % of them differ)
        drawn = masks.any(axis=0) | rendered.occluder_masks
        far = ~np.stack([_dilate(m, 3) for m in drawn])
        assert np.mean(diff[far]) < 10
        assert max(np.mean(diff[t][far[t]] > 25) for t in range(len(diff))) < 0.01


def _dilate(mask, radius):
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


def _same_annotations(a, b):
    if a.keys() != b.keys() or a['gttubes'].keys() != b['gttubes'].keys():
        return False
    for video in a['gttubes']:
        ta, tb = a['gttubes'][video], b['gttubes'][video]
        if ta.keys() != tb.keys():
            return False
        for k in ta:
            if len(ta[k]) != len(tb[k]) or not all(np.array_equal(x, y) for x, y in zip(ta[k], tb[k])):
                return False
    return all(a[k] == b[k] for k in a if k != 'gttubes')


def test_deterministic_from_seed(tiny, tmp_path):
    again = _load(make_synthetic_dataset(str(tmp_path / 'same'), seed=SEED, **TINY))
    assert _same_annotations(tiny['ann'], again)
    for video in again['nframes']:
        first = osp.join(tiny['out'], 'videos', video + '.mp4')
        second = osp.join(tmp_path, 'same', 'videos', video + '.mp4')
        with open(first, 'rb') as f1, open(second, 'rb') as f2:
            assert f1.read() == f2.read()
    other = _load(make_synthetic_dataset(str(tmp_path / 'other'), seed=SEED + 1, **TINY))
    assert not _same_annotations(tiny['ann'], other)


def test_variable_length_and_square_size(tmp_path):
    ann = _load(
        make_synthetic_dataset(
            str(tmp_path),
            num_videos=4,
            frames=(14, 20),
            size=40,
            num_classes=2,
            min_action_len=8,
            max_actors=1,
            log_interval=0))
    assert ann['labels'] == ['walk_line', 'circle']
    assert all(14 <= n <= 20 for n in ann['nframes'].values())
    assert set(ann['resolution'].values()) == {(40, 40)}
    assert all(sum(len(t) for t in per.values()) == 1 for per in ann['gttubes'].values())
    for video, n in ann['nframes'].items():
        assert len(decord.VideoReader(osp.join(tmp_path, 'videos', video + '.mp4'))) == n


def _velocity(motion, length=30, seed=3):
    dx, dy, w, h = motion_trajectory(motion, np.random.default_rng(seed), length, 128, 96)
    return np.diff(dx), np.diff(dy), w, h


def _sign_changes(v, eps=1e-6):
    s = np.sign(v[np.abs(v) > eps])
    return int(np.sum(s[1:] != s[:-1]))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_motions_have_their_signature(seed):
    vx, vy, _, _ = _velocity('walk_line', seed=seed)  # constant velocity
    assert np.allclose(vx, vx[0]) and np.allclose(vy, vy[0]) and 0.8 <= np.hypot(vx[0], vy[0]) <= 1.8
    vx, vy, _, _ = _velocity('circle', seed=seed)  # both coordinates turn back within a 24-frame period
    assert _sign_changes(vx) >= 1 and _sign_changes(vy) >= 1
    assert np.allclose(np.hypot(vx, vy), np.hypot(vx, vy).mean(), rtol=0.35)  # (nearly) uniform speed
    vx, vy, _, _ = _velocity('jump', seed=seed)  # >= 2 hops: vertical velocity flips up -> down repeatedly
    assert _sign_changes(vy) >= 3 and np.all(np.abs(vx - vx[0]) < 1e-9)
    vx, vy, _, _ = _velocity('stop_and_go', seed=seed)  # moves, pauses, moves
    speed = np.hypot(vx, vy)
    paused = speed < 1e-9
    assert paused.any() and (speed > 1.3).any()
    first_pause = np.argmax(paused)
    assert first_pause > 0 and (speed[first_pause:] > 1.3).any()
    vx, vy, _, _ = _velocity('sway', seed=seed)  # in place, back and forth
    assert _sign_changes(vx) >= 4 and np.all(vy == 0)
    _, _, w, h = _velocity('approach', seed=seed)  # grows
    assert h[-1] / h[0] > 1.45 and np.all(np.diff(h) >= 0)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_zigzag_turns_sharply(seed):
    vx, vy, _, _ = _velocity('zigzag', length=40, seed=seed)
    # mostly horizontal progress with a vertical triangle wave of >= 2 px/frame (4 x amplitude / period):
    # the vertical velocity flips at every corner, >= 2 corners per period of <= 14 frames
    assert _sign_changes(vy) >= 4
    assert abs(vx.sum()) >= 15  # net progress: >= 0.7 px/frame * 39 frames * cos(20 deg) minus the swing
    # between corners the velocity is constant: at most 2 distinct vertical speeds away from the corners
    corner = np.abs(np.diff(vy)) > 1e-9
    steady = ~(np.concatenate([corner, [False]]) | np.concatenate([[False], corner]))
    assert len(np.unique(np.round(np.abs(vy[steady]), 6))) <= 2


def test_sprite_mask_is_tight():
    mask = sprite_mask(20, 10)
    assert mask.shape == (20, 10) and mask.mean() > 0.9
    assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
    assert not mask[0, 0] and not mask[-1, -1]  # rounded corners
    assert sprite_mask(3, 2).all()


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_classes=8), 'num_classes must be in 1..7'),
    (dict(num_videos=3, num_classes=5), r'num_videos \(3\) must be >= num_classes'),
    (dict(frames=10), r'frames must be >= min_action_len \(12\)'),
    (dict(frames=(30, 20)), 'frames must be an int or a'),
    (dict(size=(64, 8)), 'size must be'),
    (dict(test_ratio=1.0), 'test_ratio must be in'),
    (dict(seed=-1), 'seed must be an int >= 0'),
    (dict(num_videos=5, num_classes=5), 'leaves no test video'),
])
def test_bad_arguments_raise(tmp_path, kwargs, match):
    args = dict(num_videos=6, frames=16, size=(32, 24), log_interval=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_synthetic_dataset(str(tmp_path), **args)


def test_cli_prints_summary(tmp_path, capsys):
    tool = runpy.run_path(TOOL)
    out = tmp_path / 'cli'
    assert tool['main']([
        '--out',
        str(out), '--num-videos', '7', '--frames', '16', '--size', '48x32', '--num-classes', '3', '--seed',
        '5', '--log-interval', '7'
    ]) == 0
    printed = capsys.readouterr().out
    ann = load_annotations(str(out / 'annotations.pkl'))
    assert ann['resolution'][ann['train_videos'][0][0]] == (32, 48)
    assert 'synthetic dataset: 7/7 videos written' in printed
    assert 'videos: 7 in ' in printed and '48x32 WxH, 16-16 frames' in printed
    # 3, 2, 2 videos per first-actor class -> 1 + 1 + 1 test videos
    assert 'split: 4 train / 3 test videos' in printed
    for name in ('walk_line', 'circle', 'zigzag'):
        assert name in printed
    assert 'elapsed: ' in printed
    assert tool['parse_size']('40') == (40, 40)
    assert tool['main'](['--out', str(tmp_path / 'bad'), '--num-classes', '9']) == 2
    assert 'num_classes must be in 1..7' in capsys.readouterr().err
