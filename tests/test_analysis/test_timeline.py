"""Tube timeline PNG: file, size, bars (one per tube, GT and predictions in separate lanes), match lines."""
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from cfad_mm.analysis import draw_tube_timeline, match_tube_dicts, plot_tube_timeline  # noqa: E402
from cfad_mm.analysis.timeline import figure_size  # noqa: E402

CLASSES = ['walk', 'run']


def tube(label, frames, box, score=None):
    t = dict(label=label, label_name=CLASSES[label], boxes=[[f] + list(box) for f in frames])
    if score is not None:
        t['score'] = score
    return t


GT = [tube(0, range(1, 11), [0, 0, 9, 9]), tube(1, range(15, 31), [40, 0, 49, 9])]
PRED = [
    tube(0,
         list(range(1, 5)) + list(range(7, 11)), [0, 0, 9, 9], 0.9),  # walk with a hole (frames 5-6)
    tube(1, range(15, 31), [40, 0, 49, 9], 0.6),  # run, exact
    tube(0, range(15, 31), [40, 0, 49, 9], 0.3),  # wrong class on the run GT: not matched
]


def test_plot_writes_png_of_the_expected_size(tmp_path):
    out = str(tmp_path / 'sub' / 'v.png')
    assert plot_tube_timeline(PRED, 30, out, classes=CLASSES, gt_tubes=GT, title='v') == out
    assert osp.isfile(out)
    img = plt.imread(out)
    w, h = figure_size(5)
    assert img.shape[:2] == (round(h * 100), round(w * 100))
    # predictions only (e.g. a video without annotation), no classes: label_name is used
    out2 = plot_tube_timeline(PRED, 30, str(tmp_path / 'p.png'))
    assert plt.imread(out2).shape[:2] == (round(figure_size(3)[1] * 100), 1000)
    plot_tube_timeline([], 30, str(tmp_path / 'empty.png'))  # nothing to draw still writes a figure


def test_bars_lanes_alpha_and_matches():
    fig, ax = plt.subplots()
    art = draw_tube_timeline(ax, PRED, 30, classes=CLASSES, gt_tubes=GT)
    # one bar (collection) per tube; the hole splits the first prediction's bar into 2 segments
    assert len(art['gt_bars']) == 2 and len(art['pred_bars']) == 3
    assert len(ax.collections) == 5
    assert len(art['pred_bars'][0].get_paths()) == 2 and len(art['gt_bars'][0].get_paths()) == 1
    # opacity = score
    assert [b.get_alpha() for b in art['pred_bars']] == pytest.approx([0.9, 0.6, 0.3])
    # GT lanes above the prediction lanes
    gt_y = [b.get_paths()[0].vertices[:, 1].mean() for b in art['gt_bars']]
    pred_y = [b.get_paths()[0].vertices[:, 1].mean() for b in art['pred_bars']]
    assert min(gt_y) > max(pred_y)
    # default matching: same label, st-IoU >= 0.5 (prediction 0: tIoU 1 x mean IoU 8/10 = 0.8)
    assert sorted(art['matches']) == [(0, 0), (1, 1)] and len(art['match_lines']) == 2
    # legend: one entry per class
    assert [t.get_text() for t in ax.get_legend().get_texts()] == CLASSES
    plt.close(fig)
    # matches given by the caller are drawn as given
    fig, ax = plt.subplots()
    art = draw_tube_timeline(ax, PRED, 30, classes=CLASSES, gt_tubes=GT, matches=[(1, 2)])
    assert art['matches'] == [(1, 2)] and len(art['match_lines']) == 1
    plt.close(fig)


def test_match_tube_dicts_is_greedy_by_score():
    gt = [tube(0, range(1, 11), [0, 0, 9, 9])]
    preds = [tube(0, range(1, 11), [0, 0, 9, 9], 0.2), tube(0, range(1, 11), [1, 0, 10, 9], 0.8)]
    # the higher-scored one takes the GT (IoU 90/110 = 0.82 >= 0.5), the exact but lower one is left
    assert match_tube_dicts(preds, gt, 10) == [(0, 1)]
    assert match_tube_dicts(preds, gt, 10, iou_thr=0.9) == [(0, 0)]
    with pytest.raises(ValueError):
        match_tube_dicts([tube(0, [11], [0, 0, 1, 1], 0.5)], gt, 10)
