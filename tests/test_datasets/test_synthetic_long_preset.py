"""Tests of the synthetic generator's presets: the unchanged default, long videos, and the long preset."""
import hashlib
import inspect
import os.path as osp
import pickle
import runpy

import numpy as np
import pytest
from tiny_tube_data import assert_same_annotations

from cfad_mm.datasets.annotation import load_annotations
from cfad_mm.datasets.synthetic_generator import (
    LONG_SCENE,
    MOTION_CLASSES,
    OCCLUDED_FRACTION,
    PRESETS,
    _fit_boxes,
    _runs,
    _texture_family,
    count_crossings,
    make_synthetic_dataset,
    motion_trajectory,
    segmented_trajectory,
    synthesize_long_video,
    tube_crossings,
    video_rng,
)

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'data', 'make_synthetic.py')
LONG_VIDEOS, LONG_SEED = 8, 0  # 8 videos of 5 classes: 3 of them have 2 videos, so 3 test videos
# Annotation digest (see _digest) of the tiny default dataset below, computed with the generator before the
# presets were added: the default outputs must not change.
TINY_DEFAULT = dict(num_videos=6, frames=24, size=(64, 48), seed=0)
TINY_DEFAULT_DIGEST = 'f1973ec332c8e14506622780a3bc543090108b26b71e84e2f4f97786d0171a9d'


def _load(path):
    with open(path, 'rb') as f:
        return pickle.load(f, encoding='latin1')


def _digest(ann):
    """sha256 of the names, lengths, resolutions, split and every tube array (float32 bytes) of ``ann``."""
    h = hashlib.sha256()
    h.update(repr((ann['labels'], sorted(ann['nframes'].items()), sorted(ann['resolution'].items()),
                   ann['train_videos'], ann['test_videos'])).encode())
    for video in sorted(ann['gttubes']):
        for label, tubes in sorted(ann['gttubes'][video].items()):
            for tube in tubes:
                h.update(f'{video}/{label}'.encode())
                h.update(np.ascontiguousarray(tube, '<f4').tobytes())
    return h.hexdigest()


def _tubes(ann, video):
    return [tube for tubes in ann['gttubes'][video].values() for tube in tubes]


# ----------------------------------------------------------------------------------------------------------
# The default preset is unchanged; long videos no longer fail
# ----------------------------------------------------------------------------------------------------------
def test_default_preset_values_and_outputs_unchanged(tmp_path):
    historic = dict(num_videos=240, frames=(40, 64), size=(128, 96), num_classes=5, test_ratio=0.25, fps=10.0,
                    max_actors=3, min_action_len=12, occluder_prob=0.5)
    assert PRESETS['default'] == historic
    # the signature keeps them (tools/run_synthetic_demo.py reads num_videos from it)
    parameters = inspect.signature(make_synthetic_dataset).parameters
    assert {key: parameters[key].default for key in historic} == historic
    assert parameters['seed'].default == 0 and parameters['preset'].default == 'default'
    ann = _load(make_synthetic_dataset(str(tmp_path / 'a'), log_interval=0, **TINY_DEFAULT))
    assert _digest(ann) == TINY_DEFAULT_DIGEST
    explicit = dict(PRESETS['default'], **TINY_DEFAULT)
    again = _load(make_synthetic_dataset(str(tmp_path / 'b'), log_interval=0, preset='default', **explicit))
    assert_same_annotations(ann, again)
    for video in ann['nframes']:  # identical mp4 files
        with open(tmp_path / 'a' / 'videos' / f'{video}.mp4', 'rb') as fa, \
                open(tmp_path / 'b' / 'videos' / f'{video}.mp4', 'rb') as fb:
            assert fa.read() == fb.read()


@pytest.mark.parametrize('motion', MOTION_CLASSES)
def test_fit_boxes_places_long_paths(motion):
    # A path longer than the frame is shrunk to span the room exactly; rounding made the offset range
    # (negatively) empty and Generator.uniform failed with 'high - low < 0' on ~8 % of 170-frame paths.
    for seed in range(40):
        rng = np.random.default_rng(seed)
        dx, dy, w, h = motion_trajectory(motion, rng, 170, 128, 96)
        boxes = _fit_boxes(rng, dx, dy, w, h, 128, 96)
        assert boxes.shape == (170, 4)
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 128).all() and (boxes[:, 0] < boxes[:, 2]).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= 96).all() and (boxes[:, 1] < boxes[:, 3]).all()


def test_default_preset_with_long_frames(tmp_path):
    # seed 8 stopped with 'high - low < 0' before the fix
    ann_file = make_synthetic_dataset(str(tmp_path), num_videos=6, frames=(150, 200), size=(64, 48), seed=8,
                                      num_classes=2, log_interval=0)
    ann = load_annotations(ann_file)
    assert all(150 <= n <= 200 for n in ann['nframes'].values())


# ----------------------------------------------------------------------------------------------------------
# The long preset
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def long_set(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('long'))
    ann_file = make_synthetic_dataset(out, num_videos=LONG_VIDEOS, seed=LONG_SEED, preset='long', logger=None)
    return dict(out=out, ann_file=ann_file, ann=_load(ann_file))


def _render(ann, video):
    """Render ``video`` of the long set again, as ``make_synthetic_dataset`` did."""
    preset = PRESETS['long']
    return synthesize_long_video(
        video_rng(LONG_SEED, int(video.rsplit('_', 1)[1])), ann['labels'].index(video.split('/')[0]),
        ann['nframes'][video], preset['size'], preset['num_classes'], preset['max_actors'],
        preset['min_action_len'], preset['occluder_prob'])


def test_long_preset_ranges_and_loading(long_set):
    ann = load_annotations(long_set['ann_file'])
    assert len(ann['nframes']) == LONG_VIDEOS and len(ann['test_videos'][0]) == 3
    assert set(ann['resolution'].values()) == {(120, 160)}
    for video, nframes in ann['nframes'].items():
        assert 150 <= nframes <= 300
        tubes = _tubes(ann, video)
        assert 2 <= len(tubes) <= 8
        for tube in tubes:
            assert 40 <= len(tube) <= min(250, round(0.85 * nframes))
            assert np.array_equal(tube[:, 0], np.arange(tube[0, 0], tube[0, 0] + len(tube)))
            assert 1 <= tube[0, 0] and tube[-1, 0] <= nframes
            x1, y1, x2, y2 = tube[:, 1:].T
            assert (0 <= x1).all() and (x1 < x2).all() and (x2 <= 160).all()
            assert (0 <= y1).all() and (y1 < y2).all() and (y2 <= 120).all()
            assert np.array_equal(tube[:, 1:], np.round(tube[:, 1:]))


def test_long_preset_is_deterministic(long_set, tmp_path):
    again = _load(make_synthetic_dataset(str(tmp_path), num_videos=LONG_VIDEOS, seed=LONG_SEED, preset='long',
                                         logger=None))
    assert_same_annotations(long_set['ann'], again)
    video = sorted(again['nframes'])[0]
    first, second = _render(again, video), _render(again, video)
    assert np.array_equal(first.frames, second.frames)
    other = synthesize_long_video(video_rng(LONG_SEED + 1, 0), 0, 150, (160, 120))
    assert not np.array_equal(first.frames[:150], other.frames)


def test_long_preset_paths_cross(long_set):
    ann = long_set['ann']
    counts = [count_crossings(_tubes(ann, video)) for video in sorted(ann['nframes'])]
    assert sum(c > 0 for c in counts) >= LONG_VIDEOS // 2
    placed = 0
    for video in sorted(ann['nframes'])[:3]:
        rendered = _render(ann, video)
        for a, b, frame in rendered.crossings:
            placed += 1
            ta, tb = rendered.tubes[a], rendered.tubes[b]
            assert tube_crossings(ta, tb) >= 1
            # both present around the meeting frame; the x-difference changes sign across it
            window = LONG_SCENE['crossing_window']
            diff = []
            for t in (frame - window, frame + window):
                ra, rb = ta[ta[:, 0] == t + 1][0], tb[tb[:, 0] == t + 1][0]
                diff.append((ra[1] + ra[3]) / 2 - (rb[1] + rb[3]) / 2)
            assert diff[0] * diff[1] < 0
    assert placed >= 2


def test_long_preset_occlusions_keep_the_gt(long_set):
    ann = long_set['ann']
    lo, hi = LONG_SCENE['occlusion_len']
    aimed = 0
    for video in sorted(ann['nframes'])[:4]:
        rendered = _render(ann, video)
        for k, tube in enumerate(rendered.tubes):
            start = int(tube[0, 0]) - 1
            covered = np.array([
                rendered.occluder_masks[start + i, int(y1):int(y2), int(x1):int(x2)].mean()
                for i, (x1, y1, x2, y2) in enumerate(tube[:, 1:])
            ])
            hidden = covered >= OCCLUDED_FRACTION
            assert np.array_equal(hidden, rendered.hidden[k])
            starts, ends = _runs(hidden)
            assert (ends - starts <= hi).all()  # never hidden for longer than 30 frames in a row
            # an occlusion of 10-30 frames inside the tube: the GT boxes go on through it
            aimed += sum(lo <= e - s <= hi and s > 0 and e < len(tube) for s, e in zip(starts, ends))
            # the occluded actor is (mostly) invisible: the occluder covers its drawn pixels
            for t in np.flatnonzero(hidden):
                drawn = rendered.sprite_masks[k, start + t]
                assert rendered.occluder_masks[start + t][drawn].mean() >= 0.6
    assert aimed >= 2


def test_long_preset_pan_moves_background_and_actors():
    video = synthesize_long_video(video_rng(3, 1), 0, 160, (160, 120), scene=dict(pan_prob=1.0))
    cam = video.camera
    assert cam.shape == (160, 2) and np.ptp(cam[:, 0]) >= 0.1 * 160 - 1
    steps = np.abs(np.diff(cam, axis=0))
    assert steps.max() <= 2  # slow
    for k, tube in enumerate(video.tubes):  # the GT box is the exact extent of the drawn actor, in the frame
        for t, x1, y1, x2, y2 in tube[::7].astype(int):
            ys, xs = np.nonzero(video.sprite_masks[k, t - 1])
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
            assert 0 <= x1 and x2 <= 160 and 0 <= y1 and y2 <= 120


def test_long_preset_actors_look_alike():
    textures = _texture_family(np.random.default_rng(4), 6)
    colours = [np.unique(t.reshape(-1, 3), axis=0) for t in textures]
    means = np.array([c.mean(axis=0) for c in colours])
    assert len({len(c) for c in colours}) == 1  # the same colour set, shifted by at most 8 grey levels
    assert np.abs(means - means[0]).max() <= 16


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_segmented_motion_keeps_the_class(seed):
    width, height, length = 160, 120, 200
    unit = min(width, height) / 96
    dx, dy = segmented_trajectory('walk_line', np.random.default_rng(seed), length, width, height, (110, 60))
    velocity = np.stack([np.diff(dx), np.diff(dy)], axis=1)
    speed = np.hypot(*velocity.T)
    assert (speed >= 0.8 * unit - 1e-6).all() and (speed <= 1.8 * unit + 1e-6).all()  # the class's speeds
    changes = np.flatnonzero(np.abs(np.diff(velocity, axis=0)).max(axis=1) > 1e-6)
    assert len(changes) >= 3  # several segments, each a straight line
    assert np.ptp(dx) <= 110 + 1.8 * unit * 45  # kept (nearly) within the room
    dx, dy = segmented_trajectory('sway', np.random.default_rng(seed), length, width, height, (110, 60))
    assert np.all(dy == 0) and np.ptp(dx) <= 60
    dx, dy = segmented_trajectory('jump', np.random.default_rng(seed), length, width, height, (110, 60))
    assert dy.max() <= 0 and np.sum(np.diff(np.sign(np.diff(dy))) != 0) >= 20  # many hops


def test_cli_long_preset(tmp_path, capsys):
    tool = runpy.run_path(TOOL)
    out = tmp_path / 'cli'
    assert tool['main']([
        '--out', str(out), '--preset', 'long', '--num-videos', '6', '--frames', '150', '--test-ratio', '0.34',
        '--seed', '2', '--no-progress', '--log-interval', '6'
    ]) == 0
    printed = capsys.readouterr().out
    assert '160x120 WxH, 150-150 frames' in printed
    assert 'long preset: ' in printed and 'crossings placed' in printed
    assert 'actors per video: ' in printed and 'crossings: ' in printed and 'elapsed: ' in printed
    assert tool['main'](['--out', str(tmp_path / 'bad'), '--preset', 'long', '--min-action-len', '260']) == 2
    assert "long preset's longest action" in capsys.readouterr().err


def test_preset_fills_only_what_the_call_leaves_out(tmp_path):
    # positional and None arguments, an explicit value equal to the default preset's, and an unknown preset
    ann = _load(make_synthetic_dataset(str(tmp_path / 'a'), 6, None, (96, 72), 1, 5, 0.34, None, 3, 150,
                                       preset='long', logger=None))
    assert len(ann['nframes']) == 6 and set(ann['resolution'].values()) == {(72, 96)}
    assert all(150 <= n <= 300 for n in ann['nframes'].values())  # the long preset's frames
    tubes = [t for video in ann['gttubes'] for t in _tubes(ann, video)]
    assert all(len(t) >= 150 for t in tubes) and all(len(_tubes(ann, v)) <= 3 for v in ann['gttubes'])
    with pytest.raises(ValueError, match='preset must be one of'):
        make_synthetic_dataset(str(tmp_path / 'b'), preset='longer')
