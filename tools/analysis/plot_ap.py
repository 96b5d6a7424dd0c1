"""Per-class AP bars and PR curves (PNG) from the JSON written by ``TubeMetric`` or ``eval_results.py --out``.

Usage::

    python tools/analysis/plot_ap.py work_dirs/cfad/20250101_120000/tube_eval_results.json --out-dir plots/

Writes ``ap_per_class.png`` (frame-AP and the reported video-AP thresholds, one bar group per class),
``pr_frame.png`` and ``pr_video@<thr>.png`` (one curve per class; the curves in the JSON are subsampled).
"""
import argparse
import json
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot per-class AP and PR curves of a tube evaluation')
    parser.add_argument('results_json', help='JSON dump of TubeMetric / tools/analysis/eval_results.py --out')
    parser.add_argument('--out-dir', default=None, help='output directory (default: next to the JSON)')
    parser.add_argument('--dpi', type=int, default=120)
    return parser.parse_args(argv)


def load_results(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'results JSON not found: {path}')
    with open(path) as f:
        data = json.load(f)
    missing = [k for k in ('classes', 'frame', 'video', 'video_iou_thrs', 'metrics') if k not in data]
    if missing:
        raise ValueError(f'{path}: not a tube evaluation dump (missing {missing})')
    return data


def plot_ap_bars(data: dict, out_file: str, dpi: int = 120) -> None:
    """Grouped bars: per evaluated class, frame-AP and video-AP at each reported threshold (in %)."""
    classes = data['evaluated_classes']
    series = [(f"frame@{data['frame']['iou_thr']:g}", data['frame']['ap'])]
    series += [(f'video@{t:g}', data['video'][f'{t:g}']['ap']) for t in data['video_iou_thrs']]
    width = 0.8 / len(series)
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(classes) + 2), 4.5))
    for i, (name, ap) in enumerate(series):
        values = [100 * (ap[c] or 0.0) for c in classes]
        ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            values,
            width,
            label=f"{name} (mAP "
            f"{100 * np.mean(values) if values else 0:.1f})")
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=60, ha='right')
    ax.set_ylabel('AP (%)')
    ax.set_ylim(0, 100)
    settings = data.get('settings', {})
    ax.set_title(f"Per-class AP ({settings.get('protocol', '?')} protocol)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=dpi)
    plt.close(fig)


def plot_pr_curves(block: dict, title: str, out_file: str, dpi: int = 120) -> None:
    """One PR curve per class of an evaluation block (frame or one video threshold)."""
    fig, ax = plt.subplots(figsize=(6.5, 5))
    cmap = plt.get_cmap('tab20')
    for i, (name, curve) in enumerate(sorted(block['pr_curves'].items())):
        ap = block['ap'].get(name)
        ax.plot(
            curve['recall'],
            curve['precision'],
            color=cmap(i % 20),
            lw=1.2,
            label=f'{name} ({100 * (ap or 0):.1f})')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel('recall')
    ax.set_ylabel('precision')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc='lower left')
    fig.tight_layout()
    fig.savefig(out_file, dpi=dpi)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    data = load_results(args.results_json)
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.results_json))
    os.makedirs(out_dir, exist_ok=True)
    written = [osp.join(out_dir, 'ap_per_class.png')]
    plot_ap_bars(data, written[0], args.dpi)
    written.append(osp.join(out_dir, 'pr_frame.png'))
    plot_pr_curves(data['frame'], f"frame PR curves (IoU {data['frame']['iou_thr']:g})", written[-1],
                   args.dpi)
    for thr in data['video_iou_thrs']:
        written.append(osp.join(out_dir, f'pr_video@{thr:g}.png'))
        plot_pr_curves(data['video'][f'{thr:g}'], f'video PR curves (st-IoU {thr:g})', written[-1], args.dpi)
    for path in written:
        print(path)
    return written


if __name__ == '__main__':
    main()
