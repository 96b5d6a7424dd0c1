"""Importers of CVAT / MOT / AVA-style CSV annotations (cfad_mm.datasets.importers) and their CLI."""
import json
import os
import os.path as osp
import runpy
from pathlib import Path

import cv2
import numpy as np
import pytest

from cfad_mm.datasets import AnnotationImportError as ExportedError
from cfad_mm.datasets.annotation import load_annotations, validate_annotations
from cfad_mm.datasets.importers import (
    AnnotationImportError,
    export_ava_csv,
    export_cvat,
    export_mot,
    import_annotations,
    import_ava_csv,
    import_cvat,
    import_mot,
    read_media_info,
    split_videos,
)

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'data', 'import_annotations.py')
WIDTH, HEIGHT, FPS = 64, 48, 25
NFRAMES = {'walk/v1': 40, 'run_02': 30, 'v3': 24}
LABELS = ['walk', 'jump', 'run']  # not sorted: the label order must survive the round trips


def _tube(frames, x0, y0, w, h, dx=0.0):
    return np.array([[f, x0 + dx * k, y0, x0 + dx * k + w, y0 + h] for k, f in enumerate(frames)],
                    dtype=np.float32)


def original_annotations() -> dict:
    gap = list(range(20, 26)) + list(range(30, 35))  # one tube with a gap (frames 26..29 missing)
    return validate_annotations(
        dict(
            labels=list(LABELS),
            gttubes={
                'walk/v1': {
                    0: [
                        _tube(range(1, 13), 2.25, 4.5, 12.5, 20.75, dx=0.25),
                        _tube(gap, 30.5, 10.25, 14.0, 22.5, dx=-0.5)
                    ],
                    2: [_tube(range(5, 11), 40.0, 20.0, 10.25, 12.5)]
                },
                'run_02': {
                    2: [_tube(range(3, 31), 1.0, 2.0, 20.0, 30.0, dx=0.75)]
                },
                'v3': {
                    1: [_tube(range(1, 11), 10.75, 5.5, 8.0, 16.25)]
                },
            },
            nframes=dict(NFRAMES),
            resolution={v: (HEIGHT, WIDTH)
                        for v in NFRAMES},
            train_videos=[['run_02', 'walk/v1']],
            test_videos=[['v3']]))


def canonical(ann: dict) -> dict:
    """{video: {label name: tubes sorted by first frame and x1}} for comparisons."""
    out = {}
    for video, per_label in ann['gttubes'].items():
        out[video] = {
            ann['labels'][label]:
            sorted((np.asarray(t, np.float64) for t in tubes), key=lambda t: (t[0, 0], t[0, 1]))
            for label, tubes in per_label.items() if len(tubes)
        }
    return out


def split_at_gaps(ann: dict) -> dict:
    """The annotation with every tube cut into runs of consecutive frames (CVAT / MOT imports by default)."""
    out = dict(ann, gttubes={})
    for video, per_label in ann['gttubes'].items():
        out['gttubes'][video] = {}
        for label, tubes in per_label.items():
            pieces = []
            for tube in tubes:
                cuts = np.nonzero(np.diff(tube[:, 0]) > 1)[0] + 1
                pieces.extend(np.split(tube, cuts))
            out['gttubes'][video][label] = pieces
    return out


def assert_same_tubes(got: dict, expected: dict):
    assert got['labels'] == expected['labels']
    assert got['nframes'] == expected['nframes']
    assert got['resolution'] == expected['resolution']
    a, b = canonical(got), canonical(expected)
    assert a.keys() == b.keys()
    for video in a:
        assert a[video].keys() == b[video].keys(), video
        for name in a[video]:
            assert len(a[video][name]) == len(b[video][name]), (video, name)
            for x, y in zip(a[video][name], b[video][name]):
                assert x.shape == y.shape and np.allclose(x, y, atol=1e-3), (video, name, x, y)


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    """Tiny real mp4v videos (decord reads them) named like the annotation's videos."""
    root = str(tmp_path_factory.mktemp('media'))
    for video, n in NFRAMES.items():
        path = osp.join(root, video + '.mp4')
        os.makedirs(osp.dirname(path), exist_ok=True)
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), float(FPS), (WIDTH, HEIGHT))
        assert writer.isOpened()
        for i in range(n):
            frame = np.full((HEIGHT, WIDTH, 3), 20 + 5 * i, np.uint8)
            writer.write(frame)
        writer.release()
    return root


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(TOOL)


SPLIT = dict(train_list=['run_02', 'walk/v1'], test_list=['v3'])


# ----------------------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------------------
def test_cvat_round_trip(media, tmp_path):
    ann = original_annotations()
    files = export_cvat(ann, str(tmp_path / 'cvat'))
    assert len(files) == 3
    got, summary = import_cvat(str(tmp_path / 'cvat'), media, **SPLIT)
    # outside="1" boxes / gaps split a track: the tube with a gap comes back as two tubes
    assert_same_tubes(got, split_at_gaps(ann))
    assert summary['tubes'] == 6 and summary['videos'] == 3
    assert got['train_videos'] == ann['train_videos'] and got['test_videos'] == ann['test_videos']
    got, _ = import_cvat(str(tmp_path / 'cvat'), media, keep_gaps=True, **SPLIT)
    assert_same_tubes(got, ann)
    # one file: the video name from the flag instead of <meta><source>
    one = dict(ann, gttubes={'x': ann['gttubes']['v3']}, nframes={'x': 24}, resolution={'x': (HEIGHT, WIDTH)})
    export_cvat(one, str(tmp_path / 'single.xml'))
    with pytest.raises(AnnotationImportError, match=r"needs at least 2 videos, got 1 \(\['v3'\]\)"):
        import_cvat(str(tmp_path / 'single.xml'), media, video_name='v3')


def test_mot_round_trip(media, tmp_path):
    ann = original_annotations()
    class_map = export_mot(ann, str(tmp_path / 'mot'))
    assert json.loads(Path(class_map).read_text()) == {'1': 'walk', '2': 'jump', '3': 'run'}
    got, summary = import_mot(str(tmp_path / 'mot'), media, class_map=class_map, **SPLIT)
    assert_same_tubes(got, split_at_gaps(ann))
    assert summary['skipped'] == []
    got, _ = import_mot(
        str(tmp_path / 'mot'), media, class_map='1:walk,2:jump,3:run', keep_gaps=True, **SPLIT)
    assert_same_tubes(got, ann)
    # labels per track instead of per class (sorted by name), a track mapped to null is skipped
    labels = {'walk/v1': {'1': 'walk', '2': 'walk', '3': 'run'}, 'run_02': {'1': 'run'}, 'v3': {'1': None}}
    path = tmp_path / 'tracks.json'
    path.write_text(json.dumps(labels))
    got, summary = import_mot(str(tmp_path / 'mot'), media, track_labels=str(path), keep_gaps=True, **SPLIT)
    assert got['labels'] == ['run', 'walk'] and got['gttubes']['v3'] == {}
    assert any('10 rows of tracks mapped to null' in s for s in summary['skipped'])


def test_ava_round_trip(media, tmp_path):
    ann = original_annotations()
    export_ava_csv(ann, str(tmp_path / 'ava.csv'), fps=FPS, label_map_file=str(tmp_path / 'labels.pbtxt'))
    # fps read from the videos; the 4-frame gap (0.16 s) is below max_gap_seconds: one tube
    got, summary = import_ava_csv(
        str(tmp_path / 'ava.csv'), media, label_map=str(tmp_path / 'labels.pbtxt'), **SPLIT)
    assert_same_tubes(got, ann)
    assert summary['notes'] == ['fps: read from each video']
    got, _ = import_ava_csv(
        str(tmp_path / 'ava.csv'),
        media,
        label_map=str(tmp_path / 'labels.pbtxt'),
        max_gap_seconds=0.1,
        fps=FPS,
        **SPLIT)
    assert_same_tubes(got, split_at_gaps(ann))
    # no label map: the action ids are the names; id,name CSV label map in id order
    got, _ = import_ava_csv(str(tmp_path / 'ava.csv'), media, **SPLIT)
    assert got['labels'] == ['1', '2', '3']
    (tmp_path / 'labels.csv').write_text('id,name\n3,run\n1,walk\n2,jump\n')
    got, _ = import_ava_csv(str(tmp_path / 'ava.csv'), media, label_map=str(tmp_path / 'labels.csv'), **SPLIT)
    assert_same_tubes(got, ann)


def test_ava_rules(media, tmp_path):
    """timestamp -> frame floor(t * fps + 0.5) + 1; one tube per (video, person, action); 1 fps keyframes."""
    rows = ['video_id,timestamp,x1,y1,x2,y2,action_id,person_id']
    for t in (0, 1, 2, 4):  # 4 - 2 > 1.5 s: a new tube; at 5 fps: frames 1, 6, 11, 21
        rows.append(f'v3,{t}.0,0.25,0.25,0.5,0.75,1,7')
        rows.append(f'v3,{t}.0,0.25,0.25,0.5,0.75,2,7')  # another action of the same person
    rows.append('run_02,0.5,0.0,0.0,0.5,0.5,2,1')
    (tmp_path / 'a.csv').write_text('\n'.join(rows) + '\n')
    got, _ = import_ava_csv(str(tmp_path / 'a.csv'), media, fps=5.0, test_list=['v3'])
    tubes = got['gttubes']['v3']
    assert sorted(got['labels']) == ['1', '2'] and len(tubes[0]) == 2 and len(tubes[1]) == 2
    assert tubes[0][0][:, 0].tolist() == [1, 6, 11] and tubes[0][1][:, 0].tolist() == [21]
    assert tubes[0][0][0, 1:].tolist() == [16.0, 12.0, 32.0, 36.0]
    assert got['gttubes']['run_02'][1][0][0, 0] == 4  # 0.5 s * 5 fps = 2.5, rounded half up: 3 -> frame 4


# ----------------------------------------------------------------------------------------------------------
# CLI and splits
# ----------------------------------------------------------------------------------------------------------
def test_cli(media, tmp_path, tool, capsys):
    ann = original_annotations()
    export_mot(ann, str(tmp_path / 'mot'))
    gt = tmp_path / 'mot' / 'v3' / 'gt' / 'gt.txt'
    gt.write_text(gt.read_text() + '5,9,1,1,5,5,0,1,1\n6,9,1,1,5,5,0,1,1\n')  # ignore regions
    (tmp_path / 'test.txt').write_text('# test videos\nv3\n')
    out = tmp_path / 'ann.pkl'
    status = tool['main']([
        '--format', 'mot',
        str(tmp_path / 'mot'), '--videos', media, '--out',
        str(out), '--class-map',
        str(tmp_path / 'mot' / 'class_map.json'), '--test-list',
        str(tmp_path / 'test.txt'), '--keep-gaps'
    ])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert 'imported 3 videos, 3 labels, 5 tubes from 3 mot file(s)' in printed
    assert f'skipped: {gt}: 2 rows with conf == 0 (ignore regions) skipped' in printed
    assert 'split: 2 train videos, 1 test videos' in printed
    assert_same_tubes(load_annotations(str(out)), ann)

    status = tool['main']([
        '--format', 'cvat',
        str(tmp_path / 'nothing.xml'), '--videos', media, '--out',
        str(tmp_path / 'x.pkl')
    ])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith('error: CVAT XML not found: ') and not (tmp_path / 'x.pkl').exists()
    with pytest.raises(SystemExit) as exc:
        tool['main'](['--format', 'cvat', 'a.xml', '--videos', media, '--out', 'b.pkl', '--fps', '25'])
    assert exc.value.code == 2
    assert '--fps does not apply to --format cvat' in capsys.readouterr().err


def test_deterministic_split(media, tmp_path):
    names = [f'video_{i:02d}' for i in range(10)]
    train, test = split_videos(list(reversed(names)), test_ratio=0.3, seed=5)
    assert (train, test) == split_videos(names, test_ratio=0.3, seed=5)  # input order does not matter
    assert len(test[0]) == 3 and sorted(train[0] + test[0]) == names and test[0] == sorted(test[0])
    assert split_videos(names, test_ratio=0.01, seed=5)[1][0] != []  # at least one test video
    assert any(split_videos(names, test_ratio=0.3, seed=s)[1] != test for s in range(6, 10))
    export_cvat(original_annotations(), str(tmp_path / 'cvat'))
    a, _ = import_cvat(str(tmp_path / 'cvat'), media, test_ratio=0.34, seed=3)
    b, _ = import_cvat(str(tmp_path / 'cvat'), media, test_ratio=0.34, seed=3)
    assert a['test_videos'] == b['test_videos'] and len(a['test_videos'][0]) == 1
    assert a['train_videos'] == b['train_videos'] and len(a['train_videos'][0]) == 2
    (tmp_path / 'train.txt').write_text('v3\nnope\n')
    with pytest.raises(AnnotationImportError, match=r"train.txt, line 2: video 'nope' is not among"):
        import_cvat(str(tmp_path / 'cvat'), media, train_list=str(tmp_path / 'train.txt'))


def test_frame_folder_media(tmp_path):
    folder = tmp_path / 'clip' / 'img1'  # the MOT layout
    folder.mkdir(parents=True)
    for i in range(1, 6):
        cv2.imwrite(str(folder / f'{i:06d}.jpg'), np.zeros((30, 40, 3), np.uint8))
    info = read_media_info(str(tmp_path), 'clip')
    assert (info['kind'], info['nframes'], info['resolution']) == ('frames', 5, (30, 40))
    assert ExportedError is AnnotationImportError


# ----------------------------------------------------------------------------------------------------------
# Malformed input
# ----------------------------------------------------------------------------------------------------------
def _cvat(boxes: str, labels=('walk', ), task_extra='', track_label='walk') -> str:
    decl = ''.join(f'<label><name>{n}</name></label>' for n in labels)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n<meta><task>'
            f'<name>v3</name><size>24</size><mode>interpolation</mode>{task_extra}<labels>{decl}</labels>'
            f'</task></meta>\n<track id="4" label="{track_label}" source="manual">\n{boxes}</track>\n'
            '</annotations>\n')


def _box(frame, x1=1, y1=2, x2=10, y2=12, outside=0, occluded=0):
    return (
        f'<box frame="{frame}" outside="{outside}" occluded="{occluded}" keyframe="1" xtl="{x1}" ytl="{y1}" '
        f'xbr="{x2}" ybr="{y2}" z_order="0"></box>\n')


CVAT_CASES = [
    ('unknown_label', _cvat(_box(0), track_label='swim'),
     r"a.xml, line 5, track 4: unknown label 'swim' \(not declared in <meta><labels>: \['walk'\]\)"),
    ('box_outside', _cvat(_box(0) + _box(1, 60, 2, 90, 12)),
     r"a.xml, track 4 \(label 'walk'\), line 7, CVAT frame 1: box \(60, 2, 90, 12\) lies outside the 64x48 "
     r"\(WxH\) frame of video 'v3' beyond the tolerance \(8.0, 8.0\) px"),
    ('beyond_nframes', _cvat(_box(23) + _box(24)),
     r"a.xml, track 4 \(label 'walk'\), line 7, CVAT frame 24: frame 25 is beyond the video 'v3' "
     r"\(frames 1..24 in .*v3.mp4\)"),
    ('empty_track', _cvat(_box(3, outside=1)),
     r"a.xml, track 4 \(label 'walk'\), line 5: empty track: no visible box \(every box has outside=\"1\"\)"),
    ('duplicated_frame', _cvat(_box(2) + _box(3) + _box(2, outside=1)),
     r"a.xml, track 4 \(label 'walk'\), line 8, CVAT frame 2: frame 3 is annotated twice in the track "
     r"\(also line 6\)"),
    ('not_a_number', _cvat(_box(2, x1='abc')), r"a.xml, line 6, track 4: xtl = 'abc' is not a number"),
    ('not_xml', _cvat(_box(2)).replace('</track>', ''), r'a.xml: not well-formed XML \(line 8, column 2\)'),
    ('start_frame', _cvat(_box(2), task_extra='<start_frame>10</start_frame>'),
     r"a.xml: the task starts at frame 10 \(<start_frame>\) or has the frame filter ''"),
    ('original_size',
     _cvat(_box(2), task_extra='<original_size><width>640</width><height>480</height>'
           '</original_size>'),
     r"a.xml: <original_size> of the task is 640x480 \(WxH\) but the media of video 'v3' .* is 64x48"),
]


@pytest.mark.parametrize('name,text,message', CVAT_CASES, ids=[c[0] for c in CVAT_CASES])
def test_cvat_errors(media, tmp_path, name, text, message):
    (tmp_path / 'a.xml').write_text(text)
    with pytest.raises(AnnotationImportError, match=message):
        import_cvat(str(tmp_path / 'a.xml'), media)


def test_cvat_occluded_kept_and_outside_splits(media, tmp_path):
    boxes = (
        _box(0) + _box(1, occluded=1) + _box(2, outside=1) + _box(5) + _box(6, occluded=1) +
        _box(7, outside=1))
    (tmp_path / 'a.xml').write_text(_cvat(boxes))
    (tmp_path / 'b.xml').write_text(_cvat(_box(0)).replace('<name>v3</name>', '<name>run_02</name>'))
    got, _ = import_cvat(str(tmp_path), media, test_list=['v3'])
    assert [t[:, 0].tolist() for t in got['gttubes']['v3'][0]] == [[1, 2], [6, 7]]


MOT_CASES = [
    ('column_count', '1,1,2,3,4\n', r'gt.txt, line 1: malformed row: expected 7 to 9 comma-separated values '
     r'\(frame, id, x, y, w, h, conf\[, class\[, visibility\]\]\), got 5 values'),
    ('not_a_number', '1,1,2,3,4,5,1,1,1\n2,1,x,3,4,5,1,1,1\n', r"gt.txt, line 2: x = 'x' is not a number"),
    ('frame_not_integer', '1.5,1,2,3,4,5,1,1,1\n', r"gt.txt, line 1: frame = '1.5' is not an integer"),
    ('unknown_class', '1,1,2,3,4,5,1,1,1\n2,3,2,3,4,5,1,4,1\n',
     r'gt.txt, line 2, track 3: unknown label: class 4 is not in the class map \{1: \'walk\'\}'),
    ('duplicated_frame', '1,1,2,3,4,5,1,1,1\n2,1,2,3,4,5,1,1,1\n2,1,2,3,4,5,1,1,1\n',
     r"gt.txt, track 1 \(label 'walk'\), line 3: frame 2 is annotated twice in the track \(also line 2\)"),
    ('box_outside', '1,1,-30,3,4,5,1,1,1\n',
     r"gt.txt, track 1 \(label 'walk'\), line 1: box \(-30, 3, -26, 8\) lies outside the 64x48 \(WxH\) frame"
     ),
    ('beyond_nframes', '25,1,2,3,4,5,1,1,1\n',
     r"gt.txt, track 1 \(label 'walk'\), line 1: frame 25 is beyond the video 'v3' \(frames 1..24"),
    ('empty_box', '3,1,2,3,0,5,1,1,1\n', r"gt.txt, track 1 \(label 'walk'\), line 1: empty box"),
]


@pytest.mark.parametrize('name,text,message', MOT_CASES, ids=[c[0] for c in MOT_CASES])
def test_mot_errors(media, tmp_path, name, text, message):
    path = tmp_path / 'v3' / 'gt' / 'gt.txt'
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(AnnotationImportError, match=message):
        import_mot(str(path), media, class_map={1: 'walk'})


AVA_CASES = [
    ('unknown_label', 'v3,0,0.1,0.1,0.5,0.5,1,1\nv3,1,0.1,0.1,0.5,0.5,9,1\n',
     r'a.csv, line 2: unknown label: action id 9 is not in the label map'),
    ('column_count', 'v3,0,0.1,0.1,0.5,0.5,1\n', r'a.csv, line 1: malformed row: expected 8 comma-separated'),
    ('not_a_number', 'v3,zero,0.1,0.1,0.5,0.5,1,1\n', r"a.csv, line 1: timestamp = 'zero' is not a number"),
    ('duplicated_frame', 'v3,0.00,0.1,0.1,0.5,0.5,1,1\nv3,0.01,0.1,0.1,0.5,0.5,1,1\n',
     r"a.csv, video 'v3', person 1, action 1 \(label 'walk'\), line 2, timestamp 0.01 s = frame 1 at 25 fps: "
     r'frame 1 is annotated twice in the track \(also line 1, timestamp 0 s = frame 1 at 25 fps\)'),
    ('beyond_nframes', 'v3,5,0.1,0.1,0.5,0.5,1,1\n',
     r"a.csv, video 'v3', person 1, action 1 \(label 'walk'\), line 1, timestamp 5 s = frame 126 at 25 fps: "
     r"frame 126 is beyond the video 'v3'"),
    ('box_outside', 'v3,0,1.5,0.1,1.9,0.5,1,1\n',
     r'line 1, timestamp 0 s = frame 1 at 25 fps: box \(96, 4.8, '
     r'121.6, 24\) lies outside the 64x48'),
    ('missing_media', 'nowhere,0,0.1,0.1,0.5,0.5,1,1\n',
     r"no media for video 'nowhere' under .*: none of .*nowhere.mp4, .*nowhere.avi, .*nowhere.mkv, "
     r'.*nowhere/ \(frame folder with images\) exists'),
]


@pytest.mark.parametrize('name,text,message', AVA_CASES, ids=[c[0] for c in AVA_CASES])
def test_ava_errors(media, tmp_path, name, text, message):
    (tmp_path / 'a.csv').write_text(text)
    (tmp_path / 'map.pbtxt').write_text('item {\n  name: "walk"\n  id: 1\n}\n')
    with pytest.raises(AnnotationImportError, match=message):
        import_annotations(
            'ava-csv',
            str(tmp_path / 'a.csv'),
            media,
            label_map=str(tmp_path / 'map.pbtxt'),
            train_list=['v3'],
            test_list=['run_02'])
