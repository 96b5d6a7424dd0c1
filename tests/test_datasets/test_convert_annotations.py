import json
import os
import os.path as osp
import pickle
import re
import runpy
import shutil

import numpy as np
import pytest
from tiny_tube_data import assert_same_annotations, tiny_annotations

from cfad_mm.datasets.annotation import AnnotationError, load_annotations, to_json_dict, validate_annotations

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


# ------------------------------------------------------------------------------------------- JSON copies


def _unround_annotations() -> dict:
    """tiny_annotations with coordinates that 3 decimals cannot represent (float64 in the pickle)."""
    ann = tiny_annotations()
    rng = np.random.default_rng(0)
    for per_label in ann['gttubes'].values():
        for label, tubes in per_label.items():
            per_label[label] = [
                np.concatenate([t[:, :1], t[:, 1:] + rng.uniform(0, 0.5, (len(t), 4))], axis=1) for t in tubes
            ]
    ann['resolution']['walk/v_002'] = [48, 64]  # a list in the pickle, a tuple once loaded
    return ann


def test_json_copy_round_trips_exactly_and_is_read_back(tool, tmp_path, capsys):
    pkl = tmp_path / 'ann.pkl'
    pkl.write_bytes(pickle.dumps(_unround_annotations(), protocol=2))
    out = tmp_path / 'copy.json'
    assert tool['main']([str(pkl), '--json', str(out)]) == 0
    from_pkl = load_annotations(str(pkl))
    from_json = load_annotations(str(out))
    assert_same_annotations(from_json, from_pkl)
    assert from_json['resolution']['walk/v_002'] == (48, 64)
    assert isinstance(next(iter(from_json['gttubes']['jump/v_001'])), int)
    # the tool reads its own output and prints the same statistics
    printed_pkl = capsys.readouterr().out
    assert tool['main']([str(out), '--json', str(tmp_path / 'copy2.json')]) == 0
    printed_json = capsys.readouterr().out
    lines_json = printed_json.replace(str(out), 'X').split('\n')
    assert lines_json[:-2] == printed_pkl.replace(str(pkl), 'X').split('\n')[:-2]
    assert (tmp_path / 'copy2.json').read_text() == out.read_text()


def test_json_names_are_kept_exactly(tmp_path):
    ann = tiny_annotations()
    ann['labels'] = ['café', '日本']
    path = tmp_path / 'ann.JSON'  # the extension decides, in any case
    path.write_text(json.dumps(to_json_dict(validate_annotations(ann))), encoding='utf-8')
    assert load_annotations(str(path))['labels'] == ['café', '日本']


@pytest.mark.parametrize('key,message', [
    ('x', 'label keys must be integers written as strings ("0", "1", ...), got \'x\''),
    ('00', "label keys '0' and '00' are the same label 0"),
])
def test_json_label_keys(tmp_path, key, message):
    data = to_json_dict(validate_annotations(tiny_annotations()))
    data['gttubes']['walk/v_002'][key] = []
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as info:
        load_annotations(str(path))
    assert str(info.value) == f"Invalid tube annotation ({path}, video 'walk/v_002'): {message}"


def test_json_repeated_key_broken_file_and_non_object(tmp_path):
    text = json.dumps(to_json_dict(validate_annotations(tiny_annotations())))
    path = tmp_path / 'ann.json'
    path.write_text(text.replace('"walk/v_002": 12', '"walk/v_002": 12, "walk/v_002": 13'))
    with pytest.raises(AnnotationError) as info:
        load_annotations(str(path))
    assert str(info.value) == (f"Invalid tube annotation ({path}): a JSON object has the key 'walk/v_002' "
                               'twice (one of the values would be lost)')
    path.write_text('{"labels": [')  # truncated
    with pytest.raises(AnnotationError) as info:
        load_annotations(str(path))
    expected = 'cannot parse JSON: Expecting value: line 1 column 13 (char 12)'
    assert str(info.value) == f'Invalid tube annotation ({path}): {expected}'
    path.write_text('[1, 2]')
    with pytest.raises(AnnotationError) as info:
        load_annotations(str(path))
    assert str(info.value) == (f'Invalid tube annotation ({path}): the JSON file must hold an object (dict), '
                               'got list')
    # a JSON copy is validated like a pickle
    data = json.loads(text)
    data['nframes']['walk/v_002'] = 10
    path.write_text(json.dumps(data))
    message = f"({path}, video 'walk/v_002'): tube 0 of label 0 has frame numbers outside 1..10"
    with pytest.raises(AnnotationError, match=re.escape(message)):
        load_annotations(str(path))


def _refused(tool, capsys, args, ann_file):
    with pytest.raises(SystemExit) as info:
        tool['main'](args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('usage: ')
    assert f': error: --json {args[-1]} would overwrite the input annotation file {args[0]} (same file ' \
        f'{os.path.realpath(ann_file)}); choose another output path, nothing was written' in err


def test_json_never_overwrites_the_input(tool, tmp_path, capsys):
    pkl = tmp_path / 'ann.pkl'
    payload = pickle.dumps(tiny_annotations(), protocol=2)
    pkl.write_bytes(payload)
    _refused(tool, capsys, [str(pkl), '--json', str(pkl)], pkl)
    _refused(tool, capsys, [str(pkl), '--json', str(tmp_path / '.' / 'ann.pkl')], pkl)
    link = tmp_path / 'link.json'
    link.symlink_to(pkl)
    _refused(tool, capsys, [str(pkl), '--json', str(link)], pkl)
    _refused(tool, capsys, [str(link), '--json', str(pkl)], pkl)
    os.link(pkl, tmp_path / 'hard.json')
    _refused(tool, capsys, [str(pkl), '--json', str(tmp_path / 'hard.json')], pkl)
    assert pkl.read_bytes() == payload and not os.path.islink(pkl)
    # a JSON input is protected the same way
    js = tmp_path / 'ann.json'
    assert tool['main']([str(pkl), '--json', str(js)]) == 0
    text = js.read_text()
    _refused(tool, capsys, [str(js), '--json', str(js)], js)
    assert js.read_text() == text


def test_json_output_that_cannot_be_written(tool, tiny_data, tmp_path, capsys):
    out = tmp_path / 'no_such_dir' / 'ann.json'
    assert tool['main']([tiny_data['ann_file'], '--json', str(out)]) == 1
    assert f'ERROR: cannot write the JSON copy {out}: ' in capsys.readouterr().err


def test_size_limits_can_be_raised(tool, tmp_path, capsys):
    ann = tiny_annotations()
    ann['nframes']['walk/v_002'] = 2_000_000
    ann['resolution']['walk/v_002'] = (48, 20000)
    path = tmp_path / 'big.pkl'
    path.write_bytes(pickle.dumps(ann, protocol=2))
    assert tool['main']([str(path)]) == 1
    assert 'nframes 2000000 exceeds the limit max_nframes=1000000' in capsys.readouterr().err
    assert tool['main']([str(path), '--max-nframes', '2000000']) == 1
    err = capsys.readouterr().err
    assert 'resolution width 20000 px (HxW (48, 20000)) exceeds the limit max_side=16384' in err
    assert tool['main']([str(path), '--max-nframes', '2000000', '--max-side', '20000']) == 0
    assert 'video length (frames): min 20, mean 500022.5, max 2000000' in capsys.readouterr().out


def test_json_output_name_must_end_with_json(tool, tiny_data, tmp_path, capsys):
    out = tmp_path / 'ann.txt'
    with pytest.raises(SystemExit) as info:
        tool['main']([tiny_data['ann_file'], '--json', str(out)])
    assert info.value.code == 2 and not out.exists()
    message = (f': error: --json {out}: the name of the JSON copy must end with .json (annotation files are '
               'read as JSON by that extension, as pickles otherwise); nothing was written')
    assert message in capsys.readouterr().err


def test_json_file_without_json_extension_gets_a_hint(tmp_path):
    path = tmp_path / 'ann.dat'
    path.write_text(json.dumps(to_json_dict(validate_annotations(tiny_annotations()))))
    with pytest.raises(AnnotationError) as info:
        load_annotations(str(path))
    hint = ' (the file looks like JSON: it is read as JSON only if its name ends with .json)'
    assert str(info.value).startswith(f'Invalid tube annotation ({path}): cannot unpickle: ')
    assert str(info.value).endswith(hint)
