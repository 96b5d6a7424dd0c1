"""Untrusted annotation pickles: restricted unpickling, Python-2 UTF-8 names, size limits."""
import builtins
import collections
import copy
import io
import pickle
import pickletools
import re

import numpy as np
import pytest
from tiny_tube_data import assert_same_annotations, tiny_annotations

from cfad_mm.datasets.annotation import AnnotationError, load_annotations, validate_annotations


class _Py2Pickler(pickle._Pickler):
    """Writes ``bytes`` (and ``str``, as latin1) the way Python 2 pickles its ``str``: ``SHORT_BINSTRING`` /
    ``BINSTRING`` opcodes. A Python-2 UTF-8 name is therefore given as the ``bytes`` of its UTF-8 encoding."""

    def _save_py2_string(self, obj, raw: bytes):
        n = len(raw)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + raw)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, 'little') + raw)
        self.memoize(obj)

    def save_str(self, obj):
        self._save_py2_string(obj, obj.encode('latin1'))

    def save_bytes(self, obj):
        self._save_py2_string(obj, obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = save_str
    dispatch[bytes] = save_bytes


class _Unicode(str):
    """A Python-2 ``unicode`` for :class:`_Py2Pickler` (written with ``BINUNICODE``, loads as ``str``)."""


_Py2Pickler.dispatch[_Unicode] = pickle._Pickler.save_str


def _py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    payload = buf.getvalue()
    opcodes = {op.name for op, _, _ in pickletools.genops(payload)}
    assert 'SHORT_BINSTRING' in opcodes
    return payload


def _write(tmp_path, payload: bytes, name='ann.pkl') -> str:
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)




# ------------------------------------------------------------------------------------- restricted unpickling
class _OpenMarker:
    """Unpickling calls open(marker, 'w'): creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')


class _ExecMarker:
    """Unpickling calls exec(code): creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f'open({self.marker!r}, "w").close()', )


@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
@pytest.mark.parametrize('payload_cls,refused', [(_OpenMarker, 'io.open'), (_ExecMarker, 'builtins.exec')])
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, protocol, payload_cls, refused):
    marker = tmp_path / 'marker'
    ann = tiny_annotations()
    ann['nframes']['walk/v_002'] = payload_cls(marker)  # hidden deep inside an otherwise valid file
    # the payload works: plain pickle.loads runs it
    result = pickle.loads(pickle.dumps(payload_cls(tmp_path / 'proof'), protocol=protocol))
    getattr(result, 'close', lambda: None)()
    assert (tmp_path / 'proof').exists()
    path = _write(tmp_path, pickle.dumps(ann, protocol=protocol))
    if protocol < 3:
        refused = refused.replace('builtins.', '__builtin__.')  # how Python 3 writes it for Python 2
    with pytest.raises(AnnotationError) as info:
        load_annotations(path)
    assert str(info.value) == (
        f'Invalid tube annotation ({path}): refused to unpickle the global {refused}: an annotation '
        'pickle holds only lists, dicts, strings, numbers and numpy arrays, so this file is not one or was '
        'crafted to run code when loaded; the global was not called')
    assert not marker.exists()


def test_codecs_encode_is_limited_to_text_encodings(tmp_path):
    # protocol 2 writes bytes as _codecs.encode(text, 'latin1'); another codec is refused
    payload = pickle.dumps({'a': b'\xff\x00'}, protocol=2)
    assert b'latin1' in payload
    path = _write(tmp_path, payload.replace(b'latin1', b'rot_13'))
    message = f"({path}): cannot unpickle: _codecs.encode(str, 'rot_13') is not allowed"
    with pytest.raises(AnnotationError, match=re.escape(message)):
        load_annotations(path)


def _rich_annotations() -> dict:
    """tiny_annotations with numpy scalars, an OrderedDict, a defaultdict and float64 tubes."""
    ann = tiny_annotations()
    ann['nframes'] = collections.OrderedDict((v, np.int64(n)) for v, n in ann['nframes'].items())
    ann['resolution'] = {v: (np.int32(h), np.int32(w)) for v, (h, w) in ann['resolution'].items()}
    gttubes = collections.defaultdict(dict)
    for video, per_label in ann['gttubes'].items():
        gttubes[video] = {np.int64(k): [t.astype(np.float64) for t in v] for k, v in per_label.items()}
    ann['gttubes'] = gttubes
    return ann


@pytest.mark.parametrize('protocol', [0, 1, 2, 3, 4, 5])
def test_python3_pickles_of_every_protocol_still_load(tmp_path, protocol):
    path = _write(tmp_path, pickle.dumps(_rich_annotations(), protocol=protocol))
    assert_same_annotations(load_annotations(path), validate_annotations(tiny_annotations()))


def test_python2_and_numpy2_pickles_still_load(tmp_path):
    expected = validate_annotations(tiny_annotations())
    py2 = _py2_pickle(_rich_annotations())
    assert b'cnumpy.core.multiarray\n_reconstruct' in py2 and b'ccollections\nOrderedDict' in py2
    assert_same_annotations(load_annotations(_write(tmp_path, py2, 'py2.pkl')), expected)
    # files written with numpy 2 name numpy._core instead of numpy.core
    numpy2 = pickle.dumps(_rich_annotations(), protocol=2).replace(b'numpy.core.', b'numpy._core.')
    assert b'numpy._core.multiarray' in numpy2
    assert_same_annotations(load_annotations(_write(tmp_path, numpy2, 'np2.pkl')), expected)
    # sets (a global in protocol 2) are allowed too, e.g. in an extra key
    ann = tiny_annotations()
    ann['extra'] = {1, 2}
    assert_same_annotations(load_annotations(_write(tmp_path, pickle.dumps(ann, protocol=2), 'set.pkl')),
                            expected)


# ------------------------------------------------------------------------------- Python-2 UTF-8 names
def _rename(ann: dict, mapping: dict, labels=None) -> dict:
    ann = copy.deepcopy(ann)
    for key in ('gttubes', 'nframes', 'resolution'):
        ann[key] = {mapping.get(v, v): x for v, x in ann[key].items()}
    for key in ('train_videos', 'test_videos'):
        ann[key] = [[mapping.get(v, v) for v in split] for split in ann[key]]
    if labels is not None:
        ann['labels'] = labels
    return ann


def test_utf8_names_of_a_python2_pickle_are_repaired(tmp_path):
    names = {'walk/v_000': 'walk/vidéo_ü', 'jump/v_001': 'jump/日本'}
    wanted = _rename(tiny_annotations(), names, labels=['marché', 'jump'])
    # Python 2 stores its str as bytes: UTF-8 names are the bytes of their UTF-8 encoding
    utf8 = {v: v.encode('utf-8') for v in names.values()}
    as_py2 = _rename(wanted, utf8, labels=['marché'.encode(), 'jump'])
    path = _write(tmp_path, _py2_pickle(as_py2), 'py2_utf8.pkl')
    # what the latin1 decoding alone gives
    raw = pickle.loads((tmp_path / 'py2_utf8.pkl').read_bytes(), encoding='latin1')
    assert 'walk/vidÃ©o_Ã¼' in raw['nframes'] and raw['labels'][0] == 'marchÃ©'
    ann = load_annotations(path)
    assert ann['labels'] == ['marché', 'jump']
    for key in ('gttubes', 'nframes', 'resolution'):
        assert set(ann[key]) == {'walk/vidéo_ü', 'jump/日本', 'walk/v_002', 'jump/v_003'}, key
    assert ann['train_videos'] == [['walk/vidéo_ü', 'jump/日本', 'jump/v_003']]
    assert ann['test_videos'] == [['jump/日本', 'walk/v_002', 'jump/v_003']]
    assert_same_annotations(ann, validate_annotations(wanted))


@pytest.mark.parametrize('protocol', [0, 2, 4])
def test_python3_names_are_not_changed(tmp_path, protocol):
    # 'vidÃ©o' is what a garbled name looks like, but here it is a genuine Python-3 str
    names = {'walk/v_000': 'walk/café', 'jump/v_001': 'jump/日本'}
    if protocol > 0:  # protocol 0-1 pickles have no header: only the name rule applies to them
        names['walk/v_002'] = 'walk/vidÃ©o'
    ann = _rename(tiny_annotations(), names, labels=['café', 'Ã©tÃ©'] if protocol else ['café', '日本'])
    loaded = load_annotations(_write(tmp_path, pickle.dumps(ann, protocol=protocol)))
    assert loaded['labels'] == ann['labels']
    assert set(loaded['nframes']) == set(ann['nframes'])
    assert loaded['train_videos'] == ann['train_videos'] and loaded['test_videos'] == ann['test_videos']


def test_a_repair_never_merges_two_names(tmp_path):
    # a Python-2 file holding both the str (UTF-8 bytes) 'vidé' and the unicode u'vidé': no repair, no merge
    ann = _rename(tiny_annotations(), {'walk/v_000': 'vidé'.encode(), 'jump/v_001': _Unicode('vidé')})
    loaded = load_annotations(_write(tmp_path, _py2_pickle(ann)))
    assert set(loaded['nframes']) == {'vidÃ©', 'vidé', 'walk/v_002', 'jump/v_003'}
    assert set(loaded['gttubes']) == set(loaded['nframes'])


# ------------------------------------------------------------------------------------------- size limits
def test_absurd_nframes_is_refused_with_its_limit(tmp_path):
    ann = tiny_annotations()
    ann['nframes']['walk/v_002'] = 10**9
    path = _write(tmp_path, pickle.dumps(ann, protocol=2))
    with pytest.raises(AnnotationError) as info:
        load_annotations(path)
    assert str(info.value) == (
        f"Invalid tube annotation ({path}, video 'walk/v_002'): nframes 1000000000 exceeds the limit "
        'max_nframes=1000000; if the video really has that many frames, raise the limit (max_nframes=... of '
        'load_annotations / validate_annotations, --max-nframes of tools/data/convert_annotations.py)')
    ann['nframes']['walk/v_002'] = 2_000_000
    assert validate_annotations(ann, max_nframes=2_000_000)['nframes']['walk/v_002'] == 2_000_000
    with pytest.raises(AnnotationError, match='nframes 2000000 exceeds the limit max_nframes=1999999'):
        validate_annotations(ann, max_nframes=1_999_999)


@pytest.mark.parametrize('res,field,value', [((48, 20000), 'width', 20000), ((17000, 64), 'height', 17000)])
def test_absurd_resolution_is_refused_with_its_limit(tmp_path, res, field, value):
    ann = tiny_annotations()
    ann['resolution']['jump/v_003'] = res
    path = _write(tmp_path, pickle.dumps(ann, protocol=2))
    with pytest.raises(AnnotationError) as info:
        load_annotations(path)
    assert str(info.value) == (
        f"Invalid tube annotation ({path}, video 'jump/v_003'): resolution {field} {value} px (HxW {res!r}) "
        'exceeds the limit max_side=16384; if the frames really are that large, raise the limit '
        '(max_side=... of load_annotations / validate_annotations, --max-side of '
        'tools/data/convert_annotations.py)')
    assert load_annotations(path, max_side=20000)['resolution']['jump/v_003'] == res
