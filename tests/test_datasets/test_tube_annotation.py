import copy
import io
import pickle
import pickletools
import re

import numpy as np
import pytest
from tiny_tube_data import tiny_annotations

from cfad_mm.datasets.annotation import (
    AnnotationError,
    load_annotations,
    tube_statistics,
    validate_annotations,
)


def _dump(tmp_path, data, name='ann.pkl'):
    path = tmp_path / name
    with open(path, 'wb') as f:
        pickle.dump(data, f, protocol=2)
    return str(path)


class _Py2StylePickler(pickle._Pickler):
    """Writes str and bytes like Python 2 pickles its ``str``: (SHORT_)BINSTRING opcodes of latin1 bytes."""

    def _save_py2_string(self, raw: bytes):
        n = len(raw)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + raw)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, 'little') + raw)
        self.memoize(raw)

    def save_str(self, obj):
        self._save_py2_string(obj.encode('latin1'))

    def save_bytes(self, obj):
        self._save_py2_string(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = save_str
    dispatch[bytes] = save_bytes


def test_load_valid_file_normalises(tmp_path):
    raw = tiny_annotations()
    raw['gttubes']['walk/v_000'][0][0] = raw['gttubes']['walk/v_000'][0][0][::-1].astype(
        np.float64)  # unsorted
    ann = load_annotations(_dump(tmp_path, raw))
    tube = ann['gttubes']['walk/v_000'][0][0]
    assert tube.dtype == np.float32 and tube.shape == (18, 5)
    np.testing.assert_array_equal(tube[:, 0], np.arange(3, 21))
    np.testing.assert_allclose(tube[0, 1:], [4, 14, 18, 34])
    assert ann['labels'] == ['walk', 'jump']
    assert ann['resolution']['walk/v_002'] == (48, 64)
    assert ann['train_videos'] == [['walk/v_000', 'jump/v_001', 'jump/v_003']]


def test_python2_style_pickle_with_latin1_bytes_loads(tmp_path):
    raw = tiny_annotations()
    raw['labels'] = ['caf\xe9', 'jump']  # a non-ASCII class name, stored as latin1 bytes
    buf = io.BytesIO()
    _Py2StylePickler(buf, protocol=2).dump(raw)
    payload = buf.getvalue()
    opcodes = {op.name for op, _, _ in pickletools.genops(payload)}
    assert 'SHORT_BINSTRING' in opcodes and 'BINUNICODE' not in opcodes and 'SHORT_BINUNICODE' not in opcodes
    assert payload[:2] == b'\x80\x02'  # protocol 2
    with pytest.raises(UnicodeDecodeError):  # the default ASCII decoding of Python 3 fails on such files
        pickle.loads(payload)
    path = tmp_path / 'py2.pkl'
    path.write_bytes(payload)
    ann = load_annotations(str(path))
    assert ann['labels'] == ['caf\xe9', 'jump']
    np.testing.assert_allclose(ann['gttubes']['jump/v_001'][1][0][:, 2], 20 + 0.5 * np.arange(20))
    assert ann['nframes']['jump/v_003'] == 40


def _set(path, value):

    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _tube_row(video, label, row, values):

    def mutate(data):
        tube = data['gttubes'][video][label][0].copy()
        tube[row, :len(values)] = values
        data['gttubes'][video][label][0] = tube

    return mutate


def _delete(path):

    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


MALFORMED = {
    'video in split without nframes': (_delete(['nframes',
                                                'walk/v_002']), 'walk/v_002', "no entry in 'nframes'"),
    'video in split without resolution': (_delete(['resolution',
                                                   'walk/v_002']), 'walk/v_002', "no entry in 'resolution'"),
    'frame number 0': (_tube_row('walk/v_000', 0, 0, [0]), 'walk/v_000', r'outside 1\.\.30'),
    'frame number past the end': (_tube_row('jump/v_003', 1, -1, [41]), 'jump/v_003', r'outside 1\.\.40'),
    'x2 <= x1': (_tube_row('jump/v_001', 1, 3, [4, 30, 20, 30, 40]), 'jump/v_001', 'x2 <= x1'),
    'y2 <= y1': (_tube_row('jump/v_001', 1, 3, [4, 30, 20, 40, 19]), 'jump/v_001', 'y2 <= y1'),
    'NaN box': (_tube_row('walk/v_002', 0, 5, [6, np.nan]), 'walk/v_002', 'NaN'),
    'box far outside': (_tube_row('walk/v_002', 0, 5,
                                  [6, 20, 16, 90, 40]), 'walk/v_002', 'outside the 64x48'),
    'box left of the frame': (_tube_row('walk/v_002', 0, 5, [6, -30, 16, -5, 40]), 'walk/v_002', 'outside'),
    'label out of range':
    (_set(['gttubes', 'walk/v_002', 2],
          [tiny_annotations()['gttubes']['walk/v_002'][0][0]]), 'walk/v_002', 'label index 2 out of range'),
    'empty tube': (_set(['gttubes', 'jump/v_003', 1], [np.zeros((0, 5), np.float32)]), 'jump/v_003', 'empty'),
    'wrong tube shape': (_set(['gttubes', 'jump/v_003', 1], [np.zeros(
        (3, 4), np.float32)]), 'jump/v_003', r'shape \(n, 5\)'),
    'repeated frame': (_tube_row('walk/v_000', 0, 1, [3]), 'walk/v_000', 'repeats frame'),
    'tubes without nframes': (_set(['gttubes', 'ghost'], {0: []}), 'ghost', "no entry in 'nframes'"),
}


@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_malformed_annotation_names_file_and_video(tmp_path, case):
    mutate, video, message = MALFORMED[case]
    data = copy.deepcopy(tiny_annotations())
    mutate(data)
    path = _dump(tmp_path, data)
    with pytest.raises(
            AnnotationError, match=re.escape(path) + '.*' + re.escape(repr(video)) + '.*' + message):
        load_annotations(path)


@pytest.mark.parametrize('key', ['labels', 'gttubes', 'nframes', 'resolution', 'train_videos', 'test_videos'])
def test_missing_key(tmp_path, key):
    data = tiny_annotations()
    del data[key]
    path = _dump(tmp_path, data)
    with pytest.raises(AnnotationError, match=re.escape(path) + f".*missing keys \\['{key}'\\]"):
        load_annotations(path)


@pytest.mark.parametrize('key', ['train_videos', 'test_videos'])
def test_empty_split(tmp_path, key):
    data = tiny_annotations()
    data[key] = [[]]
    with pytest.raises(AnnotationError, match=f"split 0 of '{key}' is empty"):
        load_annotations(_dump(tmp_path, data))


def test_boxes_slightly_outside_are_tolerated_and_tolerance_is_configurable():
    data = tiny_annotations()
    tube = data['gttubes']['walk/v_002'][0][0]
    tube[0, 1:] = [-7, -7, 70, 54]  # 8 px tolerance (5 % of 64 = 3.2 px is smaller)
    ann = validate_annotations(copy.deepcopy(data))
    np.testing.assert_allclose(ann['gttubes']['walk/v_002'][0][0][0, 1:], [-7, -7, 70, 54])
    with pytest.raises(AnnotationError, match="'walk/v_002'.*outside"):
        validate_annotations(data, box_tolerance=0.0, box_tolerance_px=2.0)


def test_missing_file_and_garbage_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        load_annotations(str(tmp_path / 'nope.pkl'))
    garbage = tmp_path / 'garbage.pkl'
    garbage.write_bytes(b'not a pickle')
    with pytest.raises(AnnotationError, match='garbage.pkl.*cannot unpickle'):
        load_annotations(str(garbage))


def test_statistics():
    stats = tube_statistics(validate_annotations(tiny_annotations()))
    assert stats['num_videos'] == 4 and stats['num_tubes'] == 5
    assert stats['tubes_per_class'] == {'walk': 3, 'jump': 2}
    assert stats['tube_length'] == dict(min=8, mean=14.8, max=20)  # 18, 20, 8, 12, 16
    assert stats['nframes'] == dict(min=12, mean=25.5, max=40)
    assert stats['splits'] == [dict(train=3, test=3)]
    assert stats['resolutions'] == {'48x64': 4}
