import json
import os
import os.path as osp
import pickle
import runpy
import shutil

import pytest
from tiny_tube_data import tiny_annotations

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'data', 'convert_annotations.py')


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(TOOL)


def test_statistics_json_and_media_check(tool, tiny_data, tmp_path, capsys):
    out = tmp_path / 'ann.json'
    status = tool['main']([tiny_data['ann_file'], '--json', str(out), '--check-media', tiny_data['videos']])
    printed = capsys.readouterr().out
    assert status == 0
    assert 'videos: 4, classes: 2, tubes: 5' in printed
    assert 'split 0: 3 train videos, 3 test videos' in printed
    assert 'tube length (annotated frames): min 8, mean 14.8, max 20' in printed
    assert 'resolutions (HxW: videos): 48x64: 4' in printed
    assert 'media check: all videos found' in printed
    data = json.loads(out.read_text())
    assert data['labels'] == ['walk', 'jump']
    assert data['resolution']['walk/v_002'] == [48, 64]
    tube = data['gttubes']['jump/v_001']['0'][0]
    assert len(tube) == 8 and tube[0] == [8, 6.0, 12.0, 16.0, 26.0]
    assert data['test_videos'] == tiny_annotations()['test_videos']


def test_frame_folders_are_checked(tool, tiny_data, tmp_path, capsys):
    frames = tmp_path / 'frames'
    shutil.copytree(tiny_data['frames'], frames)
    args = [tiny_data['ann_file'], '--check-media', str(frames), '--filename-tmpl', '{:05d}.png']
    assert tool['main'](args) == 0
    os.remove(frames / 'walk' / 'v_002' / '00012.png')
    capsys.readouterr()
    assert tool['main'](args) == 1
    err = capsys.readouterr().err
    assert 'walk/v_002: 1 of 12 frame files missing' in err and '00012.png' in err


def test_missing_video_and_too_short_video(tool, tiny_data, tmp_path, capsys):
    ann = tiny_annotations()
    ann['nframes']['jump/v_001'] = 25  # the file has 20 frames
    path = tmp_path / 'ann.pkl'
    path.write_bytes(pickle.dumps(ann, protocol=2))
    videos = tmp_path / 'videos'
    shutil.copytree(tiny_data['videos'], videos)
    os.remove(videos / 'walk' / 'v_002.mp4')
    assert tool['main']([str(path), '--check-media', str(videos), '--source', 'video']) == 1
    err = capsys.readouterr().err
    assert 'jump/v_001: ' in err and 'has 20 frames but the annotation says nframes=25' in err
    assert 'walk/v_002: video file not found' in err


def test_invalid_file_exit_status(tool, tmp_path, capsys):
    ann = tiny_annotations()
    ann['train_videos'] = [[]]
    path = tmp_path / 'bad.pkl'
    path.write_bytes(pickle.dumps(ann, protocol=2))
    assert tool['main']([str(path)]) == 1
    assert "split 0 of 'train_videos' is empty" in capsys.readouterr().err
