"""A frame folder holding images of different sizes: the tube transforms refuse the clip instead of resizing
every frame with the first frame's geometry (which would put the boxes at wrong places on the others)."""
import re
import shutil

import cv2
import numpy as np
import pytest

from cfad_mm.datasets import TubeDataset
from cfad_mm.datasets.transforms import TubeFlip

PIPELINE = [
    dict(type='RawFrameDecode'),
    dict(type='TubeResize', scale=(-1, 96)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackTubeInputs')
]


def test_frame_folder_with_mixed_sizes_is_refused(tiny_data, tmp_path):
    frames = tmp_path / 'frames'
    shutil.copytree(tiny_data['frames'], frames)
    odd = frames / 'walk' / 'v_002' / '00005.png'
    assert cv2.imwrite(str(odd), np.zeros((60, 80, 3), np.uint8))
    ds = TubeDataset(
        ann_file=tiny_data['ann_file'],
        data_prefix=dict(video=str(frames)),
        pipeline=PIPELINE,
        subset='test',
        source='frames',
        filename_tmpl='{:05d}.png',
        clip_len=8,
        test_stride=4)
    first, second = ds.video_clip_indices()['walk/v_002'][:2]  # frames 1..8 and 5..12
    message = (f"video 'walk/v_002': the decoded frames have different sizes: frame 5 ({odd}) is 80x60 (WxH) "
               'but the first frame of the clip is 64x48; all frames of a video must have one size')
    with pytest.raises(RuntimeError, match=re.escape(message)):
        ds[first]
    # the odd frame first in the clip: the annotated resolution check names it
    message = "video 'walk/v_002': decoded frames are 80x60 (WxH) but the annotation resolution is 64x48"
    with pytest.raises(RuntimeError, match=re.escape(message)):
        ds[second]
    # the other videos are unaffected
    assert tuple(ds[ds.video_clip_indices()['jump/v_003'][0]]['inputs'].shape) == (3, 8, 96, 128)


def test_tube_transform_refuses_a_frame_list_of_mixed_sizes():
    imgs = [np.zeros((48, 64, 3), np.uint8)] * 2 + [np.zeros((48, 60, 3), np.uint8)]
    results = dict(
        imgs=imgs,
        img_shape=(48, 64),
        video_id='v',
        gt_tubes=np.zeros((0, 3, 4), np.float32),
        gt_tube_masks=np.zeros((0, 3), bool),
        gt_labels=np.zeros((0, ), np.int64))
    with pytest.raises(ValueError) as info:
        TubeFlip(flip_ratio=1.0)(results)
    assert str(info.value) == (
        "video 'v': the decoded frames have different sizes: clip frame 2 is 60x48 (WxH) but the first "
        'frame of the clip is 64x48; all frames of a video must have one size (the tube boxes would not '
        'match the other frames); re-extract the frames at one size')
