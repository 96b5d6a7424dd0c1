"""Tube timeline: when each ground-truth and predicted tube of one video is active, as horizontal bars.

Frames run along x; every tube gets its own lane (ground truth above, predictions below, both by start frame),
coloured by class; a predicted bar's opacity is its score; a line joins each matched (GT, prediction) pair.
Tubes are given in the layout of the ``tubes.json`` written by ``tools/demo.py``::

    dict(label=int, label_name=str (optional), score=float (predictions),
         boxes=[[frame, x1, y1, x2, y2], ...])

with 1-based frame numbers. Holes of a tube (frames without a box) are gaps in its bar. A prediction's
optional ``note`` (e.g. its error type) is written after its score.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from cfad_mm.structures.tube_ops import mask_extents, tube_st_iou

__all__ = ['plot_tube_timeline', 'draw_tube_timeline', 'tube_dicts_to_dense', 'match_tube_dicts']


def tube_dicts_to_dense(tubes: Sequence[dict], nframes: int) -> Tuple[np.ndarray, np.ndarray]:
    """``tubes.json``-style tubes as dense arrays on the video's time axis.

    Args:
        tubes (Sequence[dict]): Tubes with ``boxes`` rows ``[frame (1-based), x1, y1, x2, y2]``.
        nframes (int): Number of frames of the video.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``boxes (K, nframes, 4)`` float64 and ``masks (K, nframes)`` bool.
    """
    boxes = np.zeros((len(tubes), nframes, 4), dtype=np.float64)
    masks = np.zeros((len(tubes), nframes), dtype=bool)
    for k, tube in enumerate(tubes):
        rows = np.asarray(tube['boxes'], dtype=np.float64).reshape(-1, 5)
        frames = np.round(rows[:, 0]).astype(np.int64) - 1
        if len(frames) and (frames.min() < 0 or frames.max() >= nframes):
            raise ValueError(f'tube {k}: frames must be in 1..{nframes}, got {frames.min() + 1}..'
                             f'{frames.max() + 1}')
        boxes[k, frames] = rows[:, 1:5]
        masks[k, frames] = True
    return boxes, masks


def match_tube_dicts(pred_tubes: Sequence[dict],
                     gt_tubes: Sequence[dict],
                     nframes: int,
                     iou_thr: float = 0.5,
                     plus_one: bool = True) -> List[Tuple[int, int]]:
    """Greedy matching of predicted to ground-truth tubes of one video (as ACT's video-mAP matching).

    Predictions are visited by descending score (ties: list order); each takes the ground-truth tube of the
    same label with the highest st-IoU (:func:`~cfad_mm.structures.tube_ops.tube_st_iou`) among those not
    taken yet, if that st-IoU is >= ``iou_thr``.

    Returns:
        list[tuple[int, int]]: ``(gt index, pred index)`` pairs.
    """
    if not pred_tubes or not gt_tubes:
        return []
    pb, pm = tube_dicts_to_dense(pred_tubes, nframes)
    gb, gm = tube_dicts_to_dense(gt_tubes, nframes)
    ious = tube_st_iou(pb, pm, gb, gm, plus_one)
    same = np.array([[int(p['label']) == int(g['label']) for g in gt_tubes] for p in pred_tubes])
    ious = np.where(same, ious, -np.inf)
    scores = np.array([float(p.get('score', 1.0)) for p in pred_tubes])
    free = np.ones(len(gt_tubes), dtype=bool)
    matches = []
    for p in np.argsort(-scores, kind='stable'):
        cand = np.where(free, ious[p], -np.inf)
        g = int(np.argmax(cand))
        if cand[g] >= iou_thr:
            free[g] = False
            matches.append((g, int(p)))
    return matches


def _segments(mask: np.ndarray) -> List[Tuple[float, float]]:
    """``(start, width)`` of the runs of True of a mask, in 1-based frame units (frame f spans f +- 0.5)."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.nonzero(padded[1:] != padded[:-1])[0]
    return [(float(s) + 0.5, float(e - s)) for s, e in zip(edges[::2], edges[1::2])]


def _class_name(tube: dict, classes: Optional[Sequence[str]]) -> str:
    label = int(tube['label'])
    if classes is not None and 0 <= label < len(classes):
        return str(classes[label])
    return str(tube.get('label_name', label))


def draw_tube_timeline(ax,
                       pred_tubes: Sequence[dict],
                       nframes: int,
                       classes: Optional[Sequence[str]] = None,
                       gt_tubes: Optional[Sequence[dict]] = None,
                       matches: Optional[Sequence[Tuple[int, int]]] = None,
                       iou_thr: float = 0.5) -> Dict[str, list]:
    """Draw the timeline on a matplotlib axes (see :func:`plot_tube_timeline`).

    Returns:
        dict: The artists: ``gt_bars`` / ``pred_bars`` (one ``BrokenBarHCollection``-like collection per
        tube, in the input order), ``match_lines`` (one line per matched pair) and ``matches`` (the pairs
        drawn).
    """
    from matplotlib.patches import Patch
    gt_tubes = list(gt_tubes or [])
    pred_tubes = list(pred_tubes)
    if matches is None:
        matches = match_tube_dicts(pred_tubes, gt_tubes, nframes, iou_thr) if gt_tubes else []
    matches = [(int(g), int(p)) for g, p in matches]
    names = sorted({_class_name(t, classes)
                    for t in gt_tubes + pred_tubes},
                   key=lambda n: (classes.index(n)
                                  if classes is not None and n in list(classes) else 10**6, n))
    import matplotlib
    cmap = matplotlib.colormaps['tab10']
    colour = {n: cmap(i % 10) for i, n in enumerate(names)}

    gt_dense = tube_dicts_to_dense(gt_tubes, nframes)[1] if gt_tubes else np.zeros((0, nframes), bool)
    pred_dense = tube_dicts_to_dense(pred_tubes, nframes)[1] if pred_tubes else np.zeros((0, nframes), bool)

    gt_start, pred_start = mask_extents(gt_dense)[0], mask_extents(pred_dense)[0]  # empty tube: nframes
    gt_order = sorted(range(len(gt_tubes)), key=lambda i: (int(gt_start[i]), i))
    pred_order = sorted(range(len(pred_tubes)), key=lambda i: (int(pred_start[i]), i))
    n_lanes = len(gt_tubes) + len(pred_tubes)
    # lanes from the top: GT first, then predictions; y = n_lanes - 1 - lane
    gt_y = {i: n_lanes - 1 - lane for lane, i in enumerate(gt_order)}
    pred_y = {i: n_lanes - 1 - len(gt_tubes) - lane for lane, i in enumerate(pred_order)}
    height = 0.6
    gt_bars, pred_bars = [None] * len(gt_tubes), [None] * len(pred_tubes)
    for i, tube in enumerate(gt_tubes):
        gt_bars[i] = ax.broken_barh(
            _segments(gt_dense[i]), (gt_y[i] - height / 2, height),
            facecolors=colour[_class_name(tube, classes)],
            edgecolors='black',
            linewidths=1.2,
            hatch='//')
    for i, tube in enumerate(pred_tubes):
        alpha = float(np.clip(float(tube.get('score', 1.0)), 0.05, 1.0))
        pred_bars[i] = ax.broken_barh(
            _segments(pred_dense[i]), (pred_y[i] - height / 2, height),
            facecolors=colour[_class_name(tube, classes)],
            alpha=alpha,
            edgecolors='none')
        note = f" {tube['note']}" if tube.get('note') else ''
        ax.annotate(
            f"{float(tube.get('score', 1.0)):.2f}{note}",
            xy=(1.0, pred_y[i]),
            xycoords=ax.get_yaxis_transform(),
            xytext=(4, 0),
            textcoords='offset points',
            va='center',
            fontsize=7,
            annotation_clip=False)
    lines = []
    for g, p in matches:
        both = gt_dense[g] & pred_dense[p]
        if both.any():
            x = float(np.mean(np.nonzero(both)[0])) + 1
        else:
            x = float(np.mean(np.nonzero(gt_dense[g] | pred_dense[p])[0])) + 1
        lines.append(
            ax.plot([x, x], [gt_y[g] - height / 2, pred_y[p] + height / 2],
                    color='black',
                    lw=1.0,
                    ls='--',
                    marker='o',
                    ms=3)[0])
    if gt_tubes and pred_tubes:
        ax.axhline(len(pred_tubes) - 0.5, color='grey', lw=0.8)
    ax.set_xlim(0.5, nframes + 0.5)
    ax.set_ylim(-0.7, max(n_lanes, 1) - 0.3)
    ax.set_yticks([gt_y[i] for i in gt_order] + [pred_y[i] for i in pred_order])
    ax.set_yticklabels(
        [f'GT {_class_name(gt_tubes[i], classes)}'
         for i in gt_order] + [f'pred {_class_name(pred_tubes[i], classes)}' for i in pred_order],
        fontsize=7)
    ax.set_xlabel('frame')
    ax.grid(axis='x', alpha=0.3)
    if names:
        ax.legend(
            handles=[Patch(facecolor=colour[n], label=n) for n in names],
            fontsize=7,
            loc='lower right',
            bbox_to_anchor=(1.0, 1.0),
            ncol=min(len(names), 6),
            borderaxespad=0.2)
    return dict(gt_bars=gt_bars, pred_bars=pred_bars, match_lines=lines, matches=matches)


def figure_size(num_tubes: int) -> Tuple[float, float]:
    """Size (inches) of a timeline figure with ``num_tubes`` lanes."""
    return 10.0, max(2.5, 1.2 + 0.3 * num_tubes)


def plot_tube_timeline(pred_tubes: Sequence[dict],
                       nframes: int,
                       out_path: str,
                       classes: Optional[Sequence[str]] = None,
                       gt_tubes: Optional[Sequence[dict]] = None,
                       matches: Optional[Sequence[Tuple[int, int]]] = None,
                       title: Optional[str] = None,
                       dpi: int = 100) -> str:
    """Write the timeline of one video's tubes as a PNG.

    Args:
        pred_tubes (Sequence[dict]): Predicted tubes (``tubes.json`` layout: ``label``, optional
            ``label_name``, ``score``, ``boxes`` rows ``[frame (1-based), x1, y1, x2, y2]``).
        nframes (int): Number of frames of the video.
        out_path (str): The PNG to write (its directory is created).
        classes (Sequence[str], optional): Class names indexed by label (else ``label_name`` or the label).
        gt_tubes (Sequence[dict], optional): Ground-truth tubes, same layout (no score).
        matches (Sequence[tuple[int, int]], optional): ``(gt index, pred index)`` pairs to join. None with
            ground truth: greedy st-IoU >= 0.5 matching with the same label (:func:`match_tube_dicts`).
        title (str, optional): Figure title.
        dpi (int): Resolution; the image is ``figure_size(num tubes) * dpi`` pixels. Defaults to 100.

    Returns:
        str: ``out_path``.
    """
    import os
    import os.path as osp

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # a Figure on an Agg canvas: no pyplot state, the caller's matplotlib backend is left alone
    fig = Figure(figsize=figure_size(len(pred_tubes) + len(gt_tubes or [])))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_tube_timeline(ax, pred_tubes, nframes, classes, gt_tubes, matches)
    if title:
        ax.set_title(title, fontsize=9, loc='left')
    fig.subplots_adjust(
        left=0.14,
        right=0.84,
        bottom=min(0.45, 0.5 / fig.get_figheight() * 1.6),
        top=1 - min(0.4, 0.45 / fig.get_figheight()))
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=dpi)
    return out_path
