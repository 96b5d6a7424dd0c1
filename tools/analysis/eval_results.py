"""Re-evaluate dumped test predictions (frame-mAP / video-mAP, ACT protocol by default) without a model.

The dump is what ``tools/test.py CONFIG CKPT --dump results.pkl`` writes (mmengine's ``DumpResults``): the
list of data-sample dicts, each with ``pred_instances`` and the metainfo keys ``video_id``, ``frame_numbers``
(``frame_inds`` in dumps written before the rename) and ``frame_valid``. It is read with a restricted
unpickler (containers, numpy arrays and tensors only, see :func:`cfad_mm.evaluation.load_dump`) and evaluated
as ``TubeMetric`` does it
(:func:`cfad_mm.evaluation.evaluate_clip_predictions`: tubes with a NaN/inf score or box are left out with a
warning), so the numbers are those of ``tools/test.py`` with the same settings.

Settings: the flags given; else, with ``--config``, the config's ``test_evaluator`` (``TubeMetric``) settings
(``split``, ``subset``, ``protocol``, IoU thresholds, ``nms_thr``, ``link_iou``, ``trim_thr``, ``max_gap``,
and ``ann_file`` when none is given); else ``TubeMetric``'s defaults.

Usage::

    python tools/analysis/eval_results.py results.pkl data/synth/annotations.pkl
    python tools/analysis/eval_results.py results.pkl --config configs/cfad/cfad_r3d-18-tiny_synthetic.py
    python tools/analysis/eval_results.py results.pkl ANN.pkl --protocol voc --out work_dirs/eval_voc.json
    python tools/analysis/eval_results.py results.pkl ANN.pkl --split 1 --trim-thr none --link-iou 0.3

The JSON written with ``--out`` is the format of ``TubeMetric``'s dump; draw it with
``tools/analysis/plot_ap.py``.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.evaluation import evaluate_clip_predictions, load_dump  # noqa: E402
from cfad_mm.evaluation.functional import format_report_table, report_to_json  # noqa: E402
from cfad_mm.evaluation.predictions import (  # noqa: E402,F401  (optional_float: kept as a name of the tool)
    add_dump_input_args,
    add_eval_setting_args,
    eval_settings,
    optional_float,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate dumped tube predictions (frame-mAP / video-mAP). Settings: the flags given, '
        "else the --config's test_evaluator, else TubeMetric's defaults (in brackets).",
        argument_default=argparse.SUPPRESS)  # settings not given stay absent, so that --config can set them
    add_dump_input_args(parser)
    add_eval_setting_args(parser)  # --split, --subset, --protocol, mAP thresholds, linking settings
    parser.add_argument('--out', default=None, help='write per-class APs and PR curves to this JSON file')
    parser.add_argument('--no-progress', action='store_true', default=False,
                        help='no progress bars over the videos (on stderr)')
    parser.add_argument('--pr-points', type=int, default=1000, help='max points per PR curve in the JSON')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ann_file, settings = eval_settings(args)
    report = evaluate_clip_predictions(load_dump(args.results), ann_file, progress=not args.no_progress,
                                       **settings)
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
