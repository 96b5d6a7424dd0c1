import os
import os.path as osp
import pickle
import shutil

import decord
import numpy as np
import pytest
from tiny_tube_data import HEIGHT, MARKER, WIDTH, marker_level, tiny_annotations

from cfad_mm.datasets import (
    AnnotationError,
    JHMDB21Dataset,
    SyntheticTubeDataset,
    TubeDataset,
    UCF101_24Dataset,
)
from cfad_mm.datasets.tube_dataset import window_positions, window_starts

TEST_PIPELINE = [
    dict(type='DecordInit', num_threads=1),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]
FRAMES_PIPELINE = [
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]


def _dataset(tiny, **kwargs):
    kwargs.setdefault('pipeline', TEST_PIPELINE)
    return TubeDataset(ann_file=tiny['ann_file'], data_prefix=dict(video=tiny['videos']), **kwargs)


def test_window_starts_and_positions():
    assert window_starts(40, 16, 8) == [0, 8, 16, 24]
    assert window_starts(41, 16, 8) == [0, 8, 16, 24, 25]  # last window aligned to the end
    assert window_starts(16, 16, 8) == [0]
    assert window_starts(10, 16, 8) == [0]
    pos, valid = window_positions(0, 4, 2, 6)  # raw positions 0 2 4 6 -> the last one is past the end
    np.testing.assert_array_equal(pos, [0, 2, 4, 5])
    np.testing.assert_array_equal(valid, [True, True, True, False])


def test_sliding_windows_cover_every_test_frame_exactly(tiny_data):
    ds = _dataset(tiny_data, subset='test', clip_len=8, test_stride=5)
    assert ds.test_mode
    ann = tiny_data['ann']
    per_video = ds.video_clip_indices()
    assert list(per_video) == ann['test_videos'][0]
    for video, indices in per_video.items():
        n = ann['nframes'][video]
        covered = set()
        for idx in indices:
            clip = ds.get_clip(idx)
            frames = clip['frame_numbers']
            assert frames.min() >= 1 and frames.max() <= n
            np.testing.assert_array_equal(clip['frame_inds'], frames - 1)  # decoder indices are 0-based
            covered |= set(frames[clip['frame_valid']].tolist())
        assert covered == set(range(1, n + 1)), video
        last = ds.get_clip(indices[-1])
        assert last['frame_numbers'][-1] == n and last['frame_valid'][-1]
    # jump/v_001 has 20 frames: windows 1-8, 6-13, 11-18 and 13-20 (aligned to the end)
    starts = [ds.get_clip(i)['frame_numbers'][0] for i in per_video['jump/v_001']]
    assert starts == [1, 6, 11, 13]


def test_short_video_is_padded_with_invalid_frames(tiny_data):
    ds = _dataset(tiny_data, subset='test', clip_len=16, test_stride=8)
    (idx, ) = ds.video_clip_indices()['walk/v_002']  # 12 frames < 16
    clip = ds.get_clip(idx)
    np.testing.assert_array_equal(clip['frame_numbers'], list(range(1, 13)) + [12] * 4)
    np.testing.assert_array_equal(clip['frame_valid'], [True] * 12 + [False] * 4)
    assert clip['gt_tubes'].shape == (1, 16, 4)
    np.testing.assert_array_equal(clip['gt_tube_masks'][0], [True] * 12 + [False] * 4)
    np.testing.assert_array_equal(clip['gt_tubes'][0, 12:], 0)
    sample = ds[idx]
    assert tuple(sample['inputs'].shape) == (3, 16, HEIGHT, WIDTH)
    np.testing.assert_array_equal(sample['data_samples'].metainfo['frame_valid'], clip['frame_valid'])
    # the padded positions repeat the last frame
    assert np.array_equal(sample['inputs'][:, 11].numpy(), sample['inputs'][:, 15].numpy())


def test_clip_ground_truth_hand_computed(tiny_data):
    ds = _dataset(tiny_data, subset='test', clip_len=8, test_stride=4)
    idx = ds.video_clip_indices()['jump/v_001'][1]  # frames 5..12
    clip = ds.get_clip(idx)
    np.testing.assert_array_equal(clip['frame_numbers'], np.arange(5, 13))
    # tubes in label order: label 0 (frames 8..15, x from 6 + (f - 8)), label 1 (frames 1..20)
    np.testing.assert_array_equal(clip['gt_labels'], [0, 1])
    np.testing.assert_array_equal(clip['gt_tube_masks'][0], [False] * 3 + [True] * 5)
    np.testing.assert_allclose(clip['gt_tubes'][0, 3], [6, 12, 16, 26])
    np.testing.assert_allclose(clip['gt_tubes'][0, 7], [10, 12, 20, 26])
    np.testing.assert_array_equal(clip['gt_tubes'][0, :3], 0)
    assert clip['gt_tube_masks'][1].all()
    np.testing.assert_allclose(clip['gt_tubes'][1, 0], [40, 22, 52, 38])  # frame 5: y = 20 + 0.5 * 4
    # a window without the label-0 tube drops it (it is outside the clip)
    first = ds.get_clip(ds.video_clip_indices()['jump/v_001'][0])  # frames 1..8: label 0 starts at 8
    np.testing.assert_array_equal(first['gt_labels'], [0, 1])
    last = ds.get_clip(ds.video_clip_indices()['jump/v_001'][-1])  # frames 13..20
    np.testing.assert_array_equal(last['gt_labels'], [0, 1])
    ds2 = _dataset(tiny_data, subset='test', clip_len=4, test_stride=4)
    clip = ds2.get_clip(ds2.video_clip_indices()['jump/v_001'][0])  # frames 1..4
    np.testing.assert_array_equal(clip['gt_labels'], [1])
    assert clip['gt_tubes'].shape == (1, 4, 4)


def test_boxes_are_clipped_to_the_frame(tiny_data, tmp_path):
    ann = tiny_annotations()
    ann['gttubes']['walk/v_002'][0][0][0, 1:] = [-5, -3, 70, 50]
    path = tmp_path / 'ann.pkl'
    path.write_bytes(pickle.dumps(ann, protocol=2))
    ds = TubeDataset(
        ann_file=str(path),
        data_prefix=dict(video=tiny_data['videos']),
        pipeline=[],
        subset='test',
        clip_len=4,
        test_stride=4)
    clip = ds.get_clip(ds.video_clip_indices()['walk/v_002'][0])
    np.testing.assert_allclose(clip['gt_tubes'][0, 0], [0, 0, WIDTH, HEIGHT])


@pytest.mark.parametrize('source', ['video', 'frames'])
def test_decoded_frames_match_frame_numbers(tiny_data, source):
    """The frame-number marker of every decoded frame equals the packed 1-based frame_numbers."""
    if source == 'video':
        ds = _dataset(tiny_data, subset='test', clip_len=8, test_stride=1, frame_interval=2)
    else:
        ds = TubeDataset(
            ann_file=tiny_data['ann_file'],
            data_prefix=dict(video=tiny_data['frames']),
            source='frames',
            filename_tmpl='{:05d}.png',
            pipeline=FRAMES_PIPELINE,
            subset='test',
            clip_len=8,
            test_stride=1,
            frame_interval=2)
    video_indices = ds.video_clip_indices()['jump/v_003']
    for idx in (video_indices[0], video_indices[-1]):
        sample = ds[idx]
        span_numbers = sample['data_samples'].metainfo['frame_numbers']
        assert span_numbers.dtype == np.int64
        # every frame of the span (2 * 7 + 1) is numbered; the network input holds every second one
        nframes = sample['data_samples'].metainfo['nframes']
        np.testing.assert_array_equal(span_numbers, np.minimum(span_numbers[0] + np.arange(15), nframes))
        frame_numbers = span_numbers[::2]
        levels = sample['inputs'][:, :, MARKER[0], MARKER[1]].float().mean(dim=(0, 2, 3)).numpy()
        if source == 'frames':  # png: lossless
            np.testing.assert_array_equal(levels, [marker_level(f) for f in frame_numbers])
        else:  # mp4v shifts grey levels by about -3 (less than the step of 6 between frames) ...
            np.testing.assert_allclose(levels, [marker_level(f) - 3 for f in frame_numbers], atol=1.0)
            # ... so compare with frame f - 1 read directly with decord
            reader = decord.VideoReader(osp.join(tiny_data['videos'], 'jump/v_003.mp4'))
            expected = [reader[int(f) - 1].asnumpy()[MARKER].astype(np.float32).mean() for f in frame_numbers]
            np.testing.assert_allclose(levels, expected, atol=1e-4)
    assert frame_numbers[-1] == 40


def test_test_windows_cover_every_frame_with_frame_interval(tiny_data):
    ds = _dataset(tiny_data, subset='test', clip_len=4, frame_interval=2, test_stride=4)  # span 7
    for video, indices in ds.video_clip_indices().items():
        covered = set()
        for idx in indices:
            clip = ds.get_clip(idx)
            covered |= set(clip['frame_numbers'][clip['frame_valid']].tolist())
        assert covered == set(range(1, tiny_data['ann']['nframes'][video] + 1)), video
    # jump/v_001 (20 frames): the spans of the grid starting at 1, 5, 9, 13, 14 cover every frame (the model
    # predicts at every frame of a span), while the decoded frames are every second one of each span
    starts = [int(ds.get_clip(i)['frame_numbers'][0]) for i in ds.video_clip_indices()['jump/v_001']]
    assert starts == [1, 5, 9, 13, 14]
    clip = ds.get_clip(ds.video_clip_indices()['jump/v_001'][0])
    assert clip['frame_numbers'].tolist() == list(range(1, 8)) and clip['frame_inds'].tolist() == [0, 2, 4, 6]


def test_training_clips_overlap_tubes_and_background_fraction(tiny_data):
    ds = _dataset(tiny_data, subset='train', clip_len=8, train_stride=4, pipeline=[])
    assert not ds.test_mode
    for idx in range(len(ds)):
        assert ds.get_clip(idx)['gt_tube_masks'].any()
    # windows of 8 frames every 4: walk/v_000 (tube 3..20) 5 of 7 positive, jump/v_001 4 of 4,
    # jump/v_003 (tube 25..40) 4 of 9 -> 13 positive and 7 background windows
    assert len(ds) == 13
    ds_bg = _dataset(
        tiny_data, subset='train', clip_len=8, train_stride=4, pipeline=[], background_fraction=0.2)
    num_bg = sum(not ds_bg.get_clip(i)['gt_tube_masks'].any() for i in range(len(ds_bg)))
    assert num_bg == 3 and len(ds_bg) == 16  # round(0.2 / 0.8 * 13) background clips


def test_temporal_jitter_keeps_tubes(tiny_data):
    np.random.seed(0)
    ds = _dataset(tiny_data, subset='train', clip_len=8, train_stride=8, pipeline=[], temporal_jitter=3)
    for _ in range(5):
        for idx in range(len(ds)):
            assert ds.get_clip(idx)['gt_tube_masks'].any()
    (idx, ) = [
        i for i in range(len(ds))
        if ds.get_data_info(i)['video_id'] == 'walk/v_000' and ds.get_data_info(i)['clip_start'] == 8
    ]
    starts = {int(ds.get_clip(idx)['frame_numbers'][0]) for _ in range(100)}
    assert starts == set(range(6, 13))  # frame 9 +- 3
    # jitter 9 around the jump/v_003 window at frames 25..32 (tube on 25..40): shifts to starts 15 or 16 would
    # lose the tube and fall back to the anchor; shifts past the video end are clipped to the last start 32
    ds = _dataset(tiny_data, subset='train', clip_len=8, train_stride=8, pipeline=[], temporal_jitter=9)
    (idx, ) = [
        i for i in range(len(ds))
        if ds.get_data_info(i)['video_id'] == 'jump/v_003' and ds.get_data_info(i)['clip_start'] == 24
    ]
    starts = {int(ds.get_clip(idx)['frame_numbers'][0]) for _ in range(300)}
    assert starts == set(range(18, 34))


def test_missing_media_raise_file_not_found(tiny_data, tmp_path):
    ds = TubeDataset(
        ann_file=tiny_data['ann_file'],
        data_prefix=dict(video=str(tmp_path / 'nowhere')),
        pipeline=TEST_PIPELINE,
        subset='test')
    with pytest.raises(FileNotFoundError, match=r'video file not found: .*nowhere/jump/v_001\.mp4'):
        ds[0]
    ds = TubeDataset(
        ann_file=tiny_data['ann_file'],
        data_prefix=dict(video=str(tmp_path / 'nowhere')),
        source='frames',
        pipeline=FRAMES_PIPELINE,
        subset='test')
    with pytest.raises(FileNotFoundError, match=r'frame folder not found: .*nowhere/jump/v_001'):
        ds[0]
    frames = tmp_path / 'frames'
    shutil.copytree(tiny_data['frames'], frames)
    os.remove(frames / 'jump' / 'v_001' / '00003.png')
    ds = TubeDataset(
        ann_file=tiny_data['ann_file'],
        data_prefix=dict(video=str(frames)),
        source='frames',
        filename_tmpl='{:05d}.png',
        pipeline=FRAMES_PIPELINE,
        subset='test')
    with pytest.raises(FileNotFoundError, match=r'frame file not found: .*jump/v_001/00003\.png'):
        ds[0]


def test_pipeline_errors_name_the_clip(tiny_data):
    ds = _dataset(tiny_data, subset='test', pipeline=[dict(type='DecordInit'), dict(type='PackTubeInputs')])
    with pytest.raises(
            RuntimeError, match=r"clip 0 of TubeDataset \(video 'jump/v_001', frames 1\.\.16.*KeyError"):
        ds[0]


def test_decoded_resolution_must_match_annotation(tiny_data, tmp_path):
    ann = tiny_annotations()
    ann['resolution']['jump/v_001'] = (96, 128)
    path = tmp_path / 'ann.pkl'
    path.write_bytes(pickle.dumps(ann, protocol=2))
    ds = TubeDataset(
        ann_file=str(path),
        data_prefix=dict(video=tiny_data['videos']),
        pipeline=TEST_PIPELINE,
        subset='test')
    with pytest.raises(RuntimeError, match='decoded frames are 64x48 .* annotation resolution is 128x96'):
        ds[0]


def test_presets_classes_and_defaults(tiny_data, tmp_path):
    ds = SyntheticTubeDataset(data_root=osp.dirname(tiny_data['ann_file']), pipeline=[], subset='test')
    assert ds.metainfo['classes'] == ('walk', 'jump')
    assert ds.media_path('walk/v_002') == osp.join(tiny_data['videos'], 'walk/v_002.mp4')
    with pytest.raises(
            AnnotationError, match='UCF101_24Dataset expects 24 classes but the file has 2 labels'):
        UCF101_24Dataset(ann_file=tiny_data['ann_file'], pipeline=[])
    ann = tiny_annotations()
    ann['labels'] = ['class_{}'.format(i) for i in range(21)]
    path = tmp_path / 'jhmdb.pkl'
    path.write_bytes(pickle.dumps(ann, protocol=2))
    ds = JHMDB21Dataset(data_root=str(tmp_path), ann_file='jhmdb.pkl', pipeline=[], subset='test')
    assert ds.metainfo['classes'][0] == 'class_0'  # the file's names win (a warning is logged)
    assert ds.media_path('a/b') == osp.join(str(tmp_path), 'Frames', 'a/b')
    assert ds.filename_tmpl == '{:05d}.png' and ds.source == 'frames'


def test_bad_arguments(tiny_data):
    with pytest.raises(ValueError, match="subset must be 'train' or 'test'"):
        _dataset(tiny_data, subset='val')
    with pytest.raises(ValueError, match='source must be one of'):
        _dataset(tiny_data, source='lmdb')
    with pytest.raises(ValueError, match='split 1 requested but .* has 1 split'):
        _dataset(tiny_data, split=1)
    with pytest.raises(ValueError, match=r'background_fraction must be in \[0, 1\)'):
        _dataset(tiny_data, background_fraction=1.0)
