"""Re-evaluate dumped test predictions (frame-mAP / video-mAP, ACT protocol by default) without a model.

The dump is what ``tools/test.py CONFIG CKPT --dump results.pkl`` writes (mmengine's ``DumpResults``): the
list of data-sample dicts, each with ``pred_instances`` and the metainfo keys ``video_id``, ``frame_inds`` and
``frame_valid``.

Usage::

    python tools/analysis/eval_results.py results.pkl data/synth/annotations.pkl
    python tools/analysis/eval_results.py results.pkl ANN.pkl --protocol voc --out work_dirs/eval_voc.json
    python tools/analysis/eval_results.py results.pkl ANN.pkl --split 1 --trim-thr none --link-iou 0.3

The JSON written with ``--out`` is the format of ``TubeMetric``'s dump; draw it with
``tools/analysis/plot_ap.py``.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.evaluation import data_samples_to_clip_predictions  # noqa: E402
from cfad_mm.evaluation.functional import evaluate_tubes, format_report_table, report_to_json  # noqa: E402


def optional_float(text: str):
    """A float, or None for 'none'."""
    return None if text.lower() == 'none' else float(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate dumped tube predictions (frame-mAP / video-mAP)')
    parser.add_argument('results', help='pickle written by tools/test.py --dump')
    parser.add_argument('ann_file', help='annotation pickle (ACT format)')
    parser.add_argument('--split', type=int, default=0, help='0-based split index (default 0)')
    parser.add_argument('--subset', default='test', choices=['test', 'train'])
    parser.add_argument('--protocol', default='act', choices=['act', 'voc'])
    parser.add_argument('--frame-iou-thr', type=float, default=0.5)
    parser.add_argument('--video-iou-thrs', type=float, nargs='+', default=[0.2, 0.5, 0.75])
    parser.add_argument('--nms-thr', type=optional_float, default=0.3, help="hard-NMS threshold or 'none'")
    parser.add_argument('--link-iou', type=float, default=0.5)
    parser.add_argument('--trim-thr', type=optional_float, default=0.5, help="trimming threshold or 'none'")
    parser.add_argument('--max-gap', type=int, default=0)
    parser.add_argument('--out', help='write per-class APs and PR curves to this JSON file')
    parser.add_argument('--pr-points', type=int, default=1000, help='max points per PR curve in the JSON')
    return parser.parse_args(argv)


def load_dump(path: str) -> dict:
    """Clip predictions grouped by video from a DumpResults pickle."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'results file not found: {path}')
    with open(path, 'rb') as f:
        samples = pickle.load(f)
    if not isinstance(samples, (list, tuple)):
        raise ValueError(f'{path}: expected the list of data samples written by DumpResults, got '
                         f'{type(samples).__name__}')
    try:
        clips = data_samples_to_clip_predictions(samples)
    except (KeyError, TypeError) as err:
        raise ValueError(f'{path}: {err}') from err
    by_video = {}
    for clip in clips:
        by_video.setdefault(clip['video_id'], []).append(clip)
    return by_video


def main(argv=None):
    args = parse_args(argv)
    clips = load_dump(args.results)
    report = evaluate_tubes(
        clips,
        args.ann_file,
        split=args.split,
        subset=args.subset,
        protocol=args.protocol,
        frame_iou_thr=args.frame_iou_thr,
        video_iou_thrs=args.video_iou_thrs,
        nms_thr=args.nms_thr,
        link_iou=args.link_iou,
        trim_thr=args.trim_thr,
        max_gap=args.max_gap)
    print(format_report_table(report))
    print(json.dumps({k: round(v, 4) for k, v in report['metrics'].items()}))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report_to_json(report, args.pr_points), f)
        print(f'per-class APs and PR curves written to {args.out}')
    return report


if __name__ == '__main__':
    main()
