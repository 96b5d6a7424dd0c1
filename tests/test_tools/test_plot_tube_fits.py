"""tools/analysis/plot_tube_fits.py --window-table: the best fit of each tube coder to the tubes of an
annotation file inside sliding windows, on hand-made tubes whose fits are known."""
import pickle

import numpy as np
import pytest
from tool_scripts import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis/plot_tube_fits.py')


def write_ann(path, tubes, nframes=61, size=(96, 128)):
    """One training video 'v' with the given ``{label: [rows (n, 5)]}`` tubes (and a test video, not read)."""
    still = {0: [rows(np.arange(8.0), 60 + 0 * np.arange(8.0), 48 + 0 * np.arange(8.0))]}
    ann = dict(labels=['walk', 'zigzag'], gttubes={'v': tubes, 'w': still}, nframes={'v': nframes, 'w': 8},
               resolution={'v': size, 'w': size}, train_videos=[['v']], test_videos=[['w']])
    with open(path, 'wb') as f:
        pickle.dump(ann, f)
    return str(path)


def rows(frames, cx, cy, w=16.0, h=24.0):
    return np.stack([frames + 1.0, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def table_rows(lines):
    """``{(window, coder): cells}`` of the table lines."""
    out = {}
    for line in lines:
        cells = [c.strip() for c in line.strip('|').split('|')]
        if line.startswith('|') and cells[0][:1].isdigit():
            out[cells[0], cells[2]] = cells
    return out


def test_a_straight_walk_is_fitted_exactly_by_every_coder(tool, tmp_path):
    t = np.arange(61, dtype=np.float64)
    ann = write_ann(tmp_path / 'a.pkl', {0: [rows(t, 20 + 1.0 * t, 40 + 0.3 * t)]})
    spans = [tool.SpanSpec.parse('16x1'), tool.SpanSpec.parse('16x4')]
    table = table_rows(tool.window_fit_table(ann, 0, spans, [16, 8, 4]))
    # 16x1: PolyTubeCoder + knots 8 and 4 (16 is one segment over a 16-frame span, the cubic itself)
    spline = 'SplineTubeCoder(knot_interval={})'.format
    assert sorted(table) == [('16x1', 'PolyTubeCoder(degree=3)'), ('16x1', spline(4)), ('16x1', spline(8)),
                             ('16x1', 'static (middle box)'),
                             ('16x4', 'PolyTubeCoder(degree=3)'), ('16x4', spline(16)), ('16x4', spline(4)),
                             ('16x4', spline(8)), ('16x4', 'static (middle box)')]
    static = table.pop(('16x4', 'static (middle box)'))
    # held at frame 30 (x 50, y 49): IoU with the box at frame t is (16 - |t - 30|) / (16 + |t - 30|) in x
    # (for |t - 30| < 16, zero beyond) times the overlap in y (0.3 px/frame against 24 px)
    d = np.abs(np.arange(61) - 30.0)
    ix = np.clip(16 - d, 0, None)
    iy = 24 - 0.3 * d
    expected = ix * iy / (2 * 16 * 24 - ix * iy)
    assert float(static[4]) == pytest.approx(expected.mean(), abs=1e-3) and static[3] == '1'
    assert float(static[6]) == pytest.approx(np.mean(expected >= 0.5), abs=1e-3)
    # 16x1 windows start every 8 frames; the 16-frame window from 0 holds frame 7 (x 27, IoU (16 - d)/(16 + d)
    # in x); every window has the same offsets, so its mean is the 16x1 row's mean
    d1 = np.abs(np.arange(16) - 7.0)
    ix1, iy1 = 16 - d1, 24 - 0.3 * d1
    static1 = table.pop(('16x1', 'static (middle box)'))
    assert float(static1[4]) == pytest.approx(np.mean(ix1 * iy1 / (2 * 16 * 24 - ix1 * iy1)), abs=1e-3)
    for cells in table.values():
        mean_iou, p5, at_half = (float(c) for c in cells[4:7])
        assert mean_iou == pytest.approx(1.0, abs=1e-3) and p5 == pytest.approx(1.0, abs=1e-3)
        assert at_half == 1.0
    assert table['16x4', 'SplineTubeCoder(knot_interval=4)'][3] == '18'  # D = 15 segments + 3
    assert table['16x4', 'PolyTubeCoder(degree=3)'][1] == '61'


def test_a_fast_zigzag_needs_dense_knots_on_a_long_window(tool, tmp_path):
    t = np.arange(61, dtype=np.float64)
    zig = 40 + 20 * np.abs(((t / 8) % 2) - 1)  # a turn every 8 frames, 20 px apart (about a box width)
    ann = write_ann(tmp_path / 'z.pkl', {1: [rows(t, zig + 30, 48 + 0 * t)]})
    table = table_rows(tool.window_fit_table(ann, 0, [tool.SpanSpec.parse('16x4')], [16, 4]))
    iou = {coder: float(cells[4]) for (_, coder), cells in table.items()}
    assert iou['static (middle box)'] < iou['PolyTubeCoder(degree=3)'] < 0.65
    assert iou['PolyTubeCoder(degree=3)'] < iou['SplineTubeCoder(knot_interval=16)'] \
        < iou['SplineTubeCoder(knot_interval=4)']
    assert iou['SplineTubeCoder(knot_interval=4)'] > 0.9
    # the class columns: no walk tube (nan), the zigzag's mean is the row's mean
    cells = table['16x4', 'SplineTubeCoder(knot_interval=4)']
    assert cells[7] == 'nan' and float(cells[8]) == pytest.approx(float(cells[4]), abs=1e-3)


def test_window_options_are_checked(tool, capsys):
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(['--window-table', '--windows', '16y4'])
    assert exc.value.code == 2 and "span '16y4'" in capsys.readouterr().err
    for bad in ('0', 'nan', 'inf'):
        with pytest.raises(SystemExit) as exc:
            tool.parse_args(['--window-table', '--knot-intervals', '8', bad])
        assert exc.value.code == 2 and '--knot-intervals must be finite and > 0' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(['--window-table', '--coder-table'])
    assert exc.value.code == 2 and 'give one of them' in capsys.readouterr().err
    args = tool.parse_args(['--window-table', '--windows', '16x8'])
    assert args.windows[0].span == 121


def test_the_static_row_holds_the_middle_annotated_frame_of_a_tube_with_holes(tool):
    # annotated frames 0-3 and 9 (a hole of 5 frames): the middle annotated frame is 2 (of 0, 1, 2, 3, 9),
    # not the middle of the extent (4.5); masked-out frames keep their values
    boxes = np.zeros((1, 10, 4))
    boxes[0, :, 0] = np.arange(10.0)
    boxes[0, :, 2] = np.arange(10.0) + 10
    boxes[0, :, 3] = 10
    mask = np.zeros((1, 10), dtype=bool)
    mask[0, [0, 1, 2, 3, 9]] = True
    out = tool.static_middle_fit(boxes, mask)
    np.testing.assert_array_equal(out[0, mask[0]], np.repeat(boxes[0, 2:3], 5, axis=0))
    np.testing.assert_array_equal(out[0, ~mask[0]], np.repeat(boxes[0, 2:3], 5, axis=0))
    assert boxes[0, 9, 0] == 9  # the input is not changed


def test_doc_writes_its_own_block_and_leaves_the_coder_table_alone(tool, tmp_path, capsys):
    t = np.arange(61, dtype=np.float64)
    ann = write_ann(tmp_path / 'a.pkl', {0: [rows(t, 20 + 1.0 * t, 40 + 0.3 * t)]})
    doc = tmp_path / 'doc.md'
    doc.write_text('intro\n<!-- coder-table:start -->\nKEEP\n<!-- coder-table:end -->\n'
                   '<!-- window-fit-table:start -->\nOLD\n<!-- window-fit-table:end -->\noutro\n')
    tool.main(['--window-table', '--ann', ann, '--windows', '16x4', '--knot-intervals', '4', '60',
               '--doc', str(doc)])
    text = doc.read_text()
    assert 'KEEP' in text and 'OLD' not in text and text.startswith('intro') and text.endswith('outro\n')
    block = text[text.index('<!-- window-fit-table:start -->'):text.index('<!-- window-fit-table:end -->')]
    assert '--window-table --ann' in block
    assert '| 16x4 | 61 | SplineTubeCoder(knot_interval=4) | 18 |' in block
    assert '16x4: knot interval 60 skipped' in block and 'knot_interval=60' not in block
    assert 'wrote the tables into' in capsys.readouterr().out
