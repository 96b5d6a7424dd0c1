"""Where does the video-mAP go? A TIDE-style error breakdown and per-video tube timelines of dumped
predictions.

The dump is what ``tools/test.py CONFIG CKPT --dump results.pkl`` writes; it is read with
:func:`cfad_mm.evaluation.load_dump` and the clips are linked into video tubes exactly as ``TubeMetric`` does
(:func:`cfad_mm.evaluation.evaluate_clip_predictions`, with the linking / NMS settings of the flags, else of
the ``--config``'s ``test_evaluator``, else ``TubeMetric``'s defaults, as ``eval_results.py``). The evaluated
tubes are then broken down by :func:`cfad_mm.analysis.video_error_breakdown` at st-IoU ``--iou`` (error types
and oracle rules: ``docs/analysis.md``).

Usage::

    python tools/analysis/analyze_errors.py results.pkl data/synth/annotations.pkl --out work_dirs/errors
    python tools/analysis/analyze_errors.py results.pkl --config configs/cfad/cfad_r3d-18-tiny_synthetic.py \
        --out work_dirs/errors --iou 0.5 --markdown

Writes ``DIR/errors.json`` (the breakdown: base mAP, dAP per error type overall and per class, counts, and per
video the type of every evaluated tube), ``DIR/errors.png`` (dAP bars, overall and per class) and
``DIR/timelines/<video>.png`` (GT and predicted tubes of each evaluated video, matched pairs joined, each
evaluated tube annotated with its score and type), and prints a table (``--markdown``: as a markdown table).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cfad_mm.analysis import (  # noqa: E402
    ERROR_TYPES,
    dense_tubes_to_dicts,
    format_breakdown_table,
    plot_tube_timeline,
    video_error_breakdown,
)
from cfad_mm.evaluation import evaluate_clip_predictions, load_dump  # noqa: E402
from cfad_mm.evaluation.functional import resolve_annotations  # noqa: E402
from cfad_mm.evaluation.predictions import add_dump_input_args, add_eval_setting_args, eval_settings  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='TIDE-style video-mAP error breakdown and tube timelines of dumped predictions. Linking '
        "settings: the flags given, else the --config's test_evaluator, else TubeMetric's defaults.",
        argument_default=argparse.SUPPRESS)
    add_dump_input_args(parser)
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--iou', type=float, default=0.5, help='st-IoU threshold of the breakdown [0.5]')
    parser.add_argument(
        '--bkg-thr', type=float, default=0.1, help='st-IoU below which an FP is background [0.1]')
    add_eval_setting_args(parser, frame_map=False)  # --split, --subset, --protocol, linking settings
    parser.add_argument('--no-timelines', action='store_true', default=False, help='skip the per-video PNGs')
    parser.add_argument('--markdown', action='store_true', default=False, help='print a markdown table')
    return parser.parse_args(argv)


def plot_breakdown(result: dict, out_file: str, dpi: int = 120) -> None:
    """Bars of the dAP (AP points) of each error type: overall (left) and per evaluated class (right)."""
    classes = result['evaluated_classes']
    fig, axes = plt.subplots(
        1,
        2,
        figsize=(max(11.0, 5 + 0.45 * len(classes)), 4.5),
        gridspec_kw=dict(width_ratios=[1, max(1.0,
                                              len(classes) / 3)]))
    cmap = plt.get_cmap('tab10')
    overall = [100 * result['dAP'][t] for t in ERROR_TYPES]
    axes[0].bar(np.arange(len(ERROR_TYPES)), overall, color=[cmap(i) for i in range(len(ERROR_TYPES))])
    for i, (v, t) in enumerate(zip(overall, ERROR_TYPES)):
        axes[0].text(i, v, f"{v:.1f}\n({result['counts'][t]})", ha='center', va='bottom', fontsize=7)
    axes[0].set_xticks(np.arange(len(ERROR_TYPES)))
    axes[0].set_xticklabels(ERROR_TYPES, rotation=45, ha='right')
    axes[0].set_ylabel('dAP (AP points)')
    axes[0].set_title(
        f"video-mAP@{result['settings']['iou_thr']:g} = {100 * result['mAP']:.1f}; "
        f"all fixed: +{100 * result['dAP']['all']:.1f}",
        fontsize=9)
    top = max(overall + [1.0])
    axes[0].set_ylim(0, top * 1.25)
    width = 0.8 / len(ERROR_TYPES)
    x = np.arange(len(classes))
    for i, t in enumerate(ERROR_TYPES):
        values = [100 * (result['dAP_per_class'][t][c] or 0.0) for c in classes]
        axes[1].bar(x + (i - (len(ERROR_TYPES) - 1) / 2) * width, values, width, color=cmap(i), label=t)
    axes[1].set_xticks(x)
    axes[1].set_xticklabels([f"{c}\n(AP {100 * result['ap'][c]:.0f})" for c in classes],
                            rotation=45,
                            ha='right',
                            fontsize=8)
    axes[1].set_ylabel('dAP (AP points)')
    axes[1].set_title('per class', fontsize=9)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_file, dpi=dpi)
    plt.close(fig)


def timeline_path(out_dir: str, video: str) -> str:
    """``out_dir/timelines/<video>.png``; a video name with ``/`` gives sub-directories (no ``..``)."""
    parts = [p for p in str(video).replace('\\', '/').split('/') if p not in ('', '.', '..')] or ['video']
    return osp.join(out_dir, 'timelines', *parts) + '.png'


def write_timelines(result: dict, ann: dict, video_tubes: dict, out_dir: str) -> list:
    """One timeline per evaluated video: its GT tubes, the evaluated (post-NMS) tubes, the matched pairs."""
    classes = result['classes']
    written = []
    for video, info in result['videos'].items():
        gt = [
            dict(label=int(label), label_name=classes[label], boxes=np.asarray(t)[:, :5].tolist())
            for label in sorted(ann['gttubes'].get(video, {})) for t in ann['gttubes'][video][label]
        ]
        preds = dense_tubes_to_dicts(video_tubes[video], classes, info['det_index']) if video in video_tubes \
            else []
        for tube, kind in zip(preds, info['det_type']):
            tube['note'] = kind
        counts = {}
        for t in info['det_type']:
            counts[t] = counts.get(t, 0) + 1
        if info['miss']:
            counts['miss'] = len(info['miss'])
        title = f'{video}: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts.items()))
        written.append(
            plot_tube_timeline(
                preds,
                ann['nframes'][video],
                timeline_path(out_dir, video),
                classes,
                gt_tubes=gt,
                matches=info['matches'],
                title=title))
    return written


def main(argv=None):
    args = parse_args(argv)
    ann_file, settings = eval_settings(args)
    try:
        ann = resolve_annotations(ann_file)
        report = evaluate_clip_predictions(load_dump(args.results), ann, return_tubes=True, **settings)
    except (FileNotFoundError, ValueError) as err:
        # missing / malformed inputs (AnnotationError is a ValueError)
        raise SystemExit(f'error: {err}') from None
    s = report['settings']
    result = video_error_breakdown(
        report['video_tubes'],
        ann,
        split=s['split'],
        subset=s['subset'],
        iou_thr=args.iou,
        nms_thr=s['nms_thr'],
        protocol=s['protocol'],
        bkg_thr=args.bkg_thr)
    result['settings'].update(
        link_iou=s['link_iou'],
        trim_thr=s['trim_thr'],
        max_gap=s['max_gap'],
        split=s['split'],
        subset=s['subset'],
        ann_file=ann_file,
        num_nonfinite_tubes=report['num_nonfinite_tubes'])
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'errors.json'), 'w') as f:
        json.dump(result, f, indent=1)
    plot_breakdown(result, osp.join(args.out, 'errors.png'))
    if not args.no_timelines:
        write_timelines(result, ann, report['video_tubes'], args.out)
    print(format_breakdown_table(result, markdown=args.markdown))
    print(f'written: {osp.join(args.out, "errors.json")}, errors.png' +
          ('' if args.no_timelines else f', timelines/ ({len(result["videos"])} videos)'))
    return result


if __name__ == '__main__':
    main()
