"""The bad-input matrix of the data side: each defect raises one exact error type whose message names the file
and the problem; with ``on_bad_sample='skip'`` bad videos are left out, counted and reported.

Annotation defects already covered by ``test_tube_annotation.py`` (missing keys, unknown videos, frame numbers
out of range, x2 <= x1, NaN boxes, empty split, label index out of range) are not repeated here.
"""
import logging
import os
import os.path as osp
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
from tiny_tube_data import tiny_annotations

from cfad_mm.datasets import AnnotationError, MediaError, TubeDataset, load_annotations, probe_video
from cfad_mm.datasets.tube_dataset import BAD_SAMPLES_KEY
from cfad_mm.models.task_modules.tube_coder import PolyTubeCoder

PIPELINE = [
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
BAD_VIDEO = 'jump/v_001'  # first video of the test split, in the train split too


@pytest.fixture()
def data(tiny_data, tmp_path):
    """A private copy of the tiny dataset (videos + png frames) that a test may damage."""
    root = tmp_path / 'data'
    shutil.copytree(osp.dirname(tiny_data['ann_file']), root)
    return dict(ann_file=str(root / 'annotations.pkl'), videos=str(root / 'videos'),
                frames=str(root / 'frames'), root=root)


def _empty(path):
    open(path, 'wb').close()


def _truncate(path):
    with open(path, 'rb') as f:
        payload = f.read()
    with open(path, 'wb') as f:
        f.write(payload[:len(payload) // 2])


def _text(path):
    with open(path, 'w') as f:
        f.write('this is not a video\n')


MEDIA_DEFECTS = {
    'missing video': (os.remove, FileNotFoundError, 'video file not found: {path}'),
    'empty video': (_empty, MediaError, r'{path}: the video file is empty \(0 bytes\)'),
    'truncated video': (_truncate, MediaError, '{path}: cannot decode this video file'),
    'not a video': (_text, MediaError, '{path}: cannot decode this video file'),
}


@pytest.mark.parametrize('case', sorted(MEDIA_DEFECTS))
def test_bad_video_file_raises_naming_the_file(data, case):
    damage, error, message = MEDIA_DEFECTS[case]
    path = osp.join(data['videos'], BAD_VIDEO + '.mp4')
    damage(path)
    ds = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['videos']), pipeline=PIPELINE,
                     subset='test')
    assert ds.get_data_info(0)['video_id'] == BAD_VIDEO
    with pytest.raises(error, match='^TubeDataset: ' + message.format(path=re.escape(path))):
        ds[0]
    # the inference API reports the same problem (minus the class name)
    from cfad_mm.apis import VideoFrames
    if case == 'missing video':
        error, message = FileNotFoundError, 'video not found: {path}'
    with pytest.raises(error, match=message.format(path=re.escape(path))):
        VideoFrames(path)


def test_video_shorter_than_annotated_nframes(data, tmp_path):
    ann = tiny_annotations()
    ann['nframes'][BAD_VIDEO] = 25  # the file has 20 frames
    ann_file = str(tmp_path / 'ann.pkl')
    with open(ann_file, 'wb') as f:
        pickle.dump(ann, f)
    ds = TubeDataset(ann_file=ann_file, data_prefix=dict(video=data['videos']), pipeline=PIPELINE,
                     subset='test')
    path = osp.join(data['videos'], BAD_VIDEO + '.mp4')
    with pytest.raises(MediaError, match=re.escape(f'{path}: the video has 20 frames but 25 are expected '
                                                   f"(nframes of video '{BAD_VIDEO}' in {ann_file})")):
        ds[0]
    assert probe_video(path) == (20, (48, 64))


def test_frame_folder_with_gaps(data):
    folder = osp.join(data['frames'], BAD_VIDEO)
    for n in (4, 5, 9):
        os.remove(osp.join(folder, f'{n:05d}.png'))
    ds = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['frames']), source='frames',
                     filename_tmpl='{:05d}.png', pipeline=FRAMES_PIPELINE, subset='test', clip_len=8)
    with pytest.raises(FileNotFoundError, match=re.escape('TubeDataset: frame file not found: '
                                                          f'{folder}/00004.png (2 of the 8 frame files '
                                                          f'needed from {folder} are missing')):
        ds[0]


def test_corrupt_frame_image_names_the_clip(data):
    _text(osp.join(data['frames'], BAD_VIDEO, '00002.png'))
    ds = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['frames']), source='frames',
                     filename_tmpl='{:05d}.png', pipeline=FRAMES_PIPELINE, subset='test', clip_len=8)
    with pytest.raises(RuntimeError, match=re.escape(f"clip 0 of TubeDataset (video '{BAD_VIDEO}', frames "
                                                     f"1..8, {osp.join(data['frames'], BAD_VIDEO)})")):
        ds[0]


def test_on_bad_sample_argument_is_checked(data):
    with pytest.raises(ValueError, match=r"on_bad_sample must be one of \('error', 'skip'\), got 'ignore'"):
        TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['videos']), pipeline=PIPELINE,
                    on_bad_sample='ignore')


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture()
def warnings_log():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def test_skip_in_test_mode_leaves_bad_videos_out_and_reports_them(data, warnings_log):
    _truncate(osp.join(data['videos'], BAD_VIDEO + '.mp4'))
    os.remove(osp.join(data['videos'], 'walk/v_002.mp4'))
    good = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=osp.dirname(data['videos']) + '/x'),
                       pipeline=PIPELINE, subset='test', check_files=False)  # clip list of all videos
    ds = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['videos']), pipeline=PIPELINE,
                     subset='test', on_bad_sample='skip')
    assert set(good.video_clip_indices()) == {'jump/v_001', 'walk/v_002', 'jump/v_003'}
    assert list(ds.video_clip_indices()) == ['jump/v_003']
    assert len(ds) == len(good.video_clip_indices()['jump/v_003'])
    assert [(r['video'], r['clip']) for r in ds.bad_samples] == [(BAD_VIDEO, None), ('walk/v_002', None)]
    assert ds.bad_samples[0]['error'].startswith('MediaError: TubeDataset: ')
    assert ds.bad_samples[1]['error'].startswith('FileNotFoundError: TubeDataset: video file not found')
    assert any('2 of 3 test videos' in m and BAD_VIDEO in m for m in warnings_log)
    for idx in range(len(ds)):
        assert ds[idx]['data_samples'].metainfo['video_id'] == 'jump/v_003'


def test_skip_in_training_draws_another_clip_and_records_the_skip(data, warnings_log):
    _empty(osp.join(data['videos'], BAD_VIDEO + '.mp4'))
    ds = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['videos']), pipeline=PIPELINE,
                     subset='train', clip_len=8, on_bad_sample='skip')
    bad = [i for i in range(len(ds)) if ds.get_data_info(i)['video_id'] == BAD_VIDEO]
    assert len(bad) >= 2
    np.random.seed(0)
    first = ds[bad[0]]  # skipped; mmengine draws other clips until one loads
    assert first['data_samples'].metainfo['video_id'] != BAD_VIDEO
    records = first['data_samples'].metainfo[BAD_SAMPLES_KEY]
    assert records[0]['clip'] == bad[0] and {r['video'] for r in records} == {BAD_VIDEO}
    assert 'the video file is empty' in records[0]['error']
    second = ds[bad[1]]  # the video is known to be bad: skipped at once, reported again, logged once
    records2 = second['data_samples'].metainfo[BAD_SAMPLES_KEY]
    assert records2[0]['clip'] == bad[1] and {r['video'] for r in records2} == {BAD_VIDEO}
    assert len(ds.bad_samples) == len(records) + len(records2)
    good = next(i for i in range(len(ds)) if ds.get_data_info(i)['video_id'] != BAD_VIDEO)
    assert BAD_SAMPLES_KEY not in ds[good]['data_samples'].metainfo  # each skip is reported once
    assert sum(f"skipping video '{BAD_VIDEO}'" in m for m in warnings_log) == 1
    # the default is to raise
    strict = TubeDataset(ann_file=data['ann_file'], data_prefix=dict(video=data['videos']), pipeline=PIPELINE,
                         subset='train', clip_len=8)
    with pytest.raises(MediaError, match='the video file is empty'):
        strict[bad[0]]


# ---------------------------------------------------------------------------------------------- annotations
def _dump(tmp_path, payload: bytes, name='ann.pkl'):
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)


def test_truncated_empty_and_non_dict_pickles(tmp_path):
    full = pickle.dumps(tiny_annotations(), protocol=2)
    for name, payload in (('truncated.pkl', full[:len(full) // 2]), ('empty.pkl', b'')):
        path = _dump(tmp_path, payload, name)
        with pytest.raises(AnnotationError, match=re.escape(f'Invalid tube annotation ({path}): cannot '
                                                            'unpickle')):
            load_annotations(path)
    path = _dump(tmp_path, pickle.dumps([1, 2, 3]), 'list.pkl')
    with pytest.raises(AnnotationError, match=re.escape(f'({path}): the pickle must hold a dict, got list')):
        load_annotations(path)


def test_unknown_video_in_split(tmp_path):
    ann = tiny_annotations()
    ann['test_videos'][0].append('walk/v_999')
    path = _dump(tmp_path, pickle.dumps(ann))
    with pytest.raises(AnnotationError, match=re.escape(f"({path}, video 'walk/v_999'): is in "
                                                        "'test_videos'[0] but has no entry in 'nframes'")):
        load_annotations(path)


def test_label_key_that_is_not_an_integer(tmp_path):
    ann = tiny_annotations()
    ann['gttubes']['walk/v_002'] = {'walk': ann['gttubes']['walk/v_002'][0]}
    path = _dump(tmp_path, pickle.dumps(ann))
    with pytest.raises(AnnotationError, match=re.escape(f"({path}, video 'walk/v_002'): label keys must be "
                                                        "integers, got 'walk'")):
        load_annotations(path)


def test_one_frame_tube_is_accepted_and_stays_finite(tmp_path, tiny_data):
    """A tube annotated on a single frame is valid: it loads, gives a one-frame clip tube, and its trajectory
    fit is finite and reproduces the box."""
    ann = tiny_annotations()
    ann['gttubes']['walk/v_002'][0] = [np.array([[5, 20, 16, 36, 40]], np.float32)]
    path = _dump(tmp_path, pickle.dumps(ann))
    loaded = load_annotations(path)
    assert loaded['gttubes']['walk/v_002'][0][0].shape == (1, 5)
    ds = TubeDataset(ann_file=path, data_prefix=dict(video=tiny_data['videos']), pipeline=[], subset='test',
                     clip_len=8, test_stride=8)
    clip = ds.get_clip(ds.video_clip_indices()['walk/v_002'][0])
    assert clip['gt_tube_masks'].sum() == 1 and clip['gt_tube_masks'][0, 4]
    coder = PolyTubeCoder(degree=3)
    tubes = torch.from_numpy(clip['gt_tubes'])
    masks = torch.from_numpy(clip['gt_tube_masks'])
    coeffs, extents = coder.encode(tubes, masks, (48, 64))
    assert torch.isfinite(coeffs).all() and torch.isfinite(extents).all()
    boxes, present = coder.decode(coeffs, extents, (48, 64), num_frames=8)
    assert present[0].tolist() == masks[0].tolist()
    torch.testing.assert_close(boxes[0, 4], torch.tensor([20., 16., 36., 40.]), atol=1e-3, rtol=0)
