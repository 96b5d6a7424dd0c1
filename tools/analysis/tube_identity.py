"""Identity switches and fragments of the linked tubes of dumped predictions, for each linking method.

The dump is what ``tools/test.py CONFIG CKPT --dump results.pkl`` writes; it is read with
:func:`cfad_mm.evaluation.load_dump`, the clip tubes with a NaN/inf score or box are left out (as
``TubeMetric`` does), and the clips of every evaluated video are linked into video tubes with
:func:`cfad_mm.evaluation.link_prepared_clips` once per ``--link-method`` (other linking settings: the flags
given, else the ``--config``'s ``test_evaluator``, else ``TubeMetric``'s defaults, as ``eval_results.py``).
The video tubes are then compared with the ground-truth tubes by :func:`cfad_mm.analysis.video_identity`
(class-agnostic, per-frame IoU >= ``--iou``; definitions in ``docs/analysis.md``).

Usage::

    python tools/analysis/tube_identity.py results.pkl data/synth/annotations.pkl
    python tools/analysis/tube_identity.py results.pkl --config configs/cfad/cfad_r3d-18-tiny_synthetic.py \
        --link-method greedy hungarian --out work_dirs/identity.json --markdown

Prints one row per method: GT tubes, GT tubes covered on at least one frame, coverage (% of GT frames),
identity switches (IDSW), fragmentations (Frag), fragments per covered GT tube, predicted tubes, jumps between
actors and predicted tubes that jump; per GT tube its best tube by st-IoU (mean st-IoU, % at >= 0.5, mean
temporal and spatial factor; :func:`cfad_mm.analysis.best_tube_overlap`); then frame-mAP and video-mAP@0.5
(``--no-map`` skips them):
frame-mAP of :func:`cfad_mm.evaluation.evaluate_clip_predictions` (it does not depend on the linking, so it is
the same on every row), video-mAP of :func:`cfad_mm.evaluation.video_map` on each method's tubes. ``--out``
writes the summaries, the settings and the per-video counts (per GT tube and per predicted tube) as JSON.
"""
import argparse
import datetime
import inspect
import json
import math
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.analysis import format_identity_table, video_identity  # noqa: E402
from cfad_mm.evaluation import (  # noqa: E402
    evaluate_clip_predictions,
    link_prepared_clips,
    load_dump,
    prepare_clips,
)
from cfad_mm.evaluation.functional import (  # noqa: E402
    PROTOCOLS,
    get_protocol,
    resolve_annotations,
    split_videos,
    video_map,
)
from cfad_mm.evaluation.linking import LINK_METHODS, drop_nonfinite_tubes  # noqa: E402
from cfad_mm.evaluation.predictions import add_dump_input_args, eval_settings, optional_float  # noqa: E402
from cfad_mm.utils.markdown import cited_command, write_block  # noqa: E402

#: Linking settings used here, with ``TubeMetric``'s defaults (those of ``evaluate_clip_predictions``).
LINK_SETTINGS = ('split', 'subset', 'protocol', 'nms_thr', 'link_iou', 'trim_thr', 'max_gap')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Identity switches, fragments and jumps of the video tubes linked from dumped clip '
        "predictions, per linking method. Linking settings: the flags given, else the --config's "
        "test_evaluator, else TubeMetric's defaults (in brackets).",
        argument_default=argparse.SUPPRESS)
    add_dump_input_args(parser)
    parser.add_argument(
        '--link-method',
        dest='link_methods',
        nargs='+',
        choices=LINK_METHODS,
        default=list(LINK_METHODS),
        help=f'linking methods to compare [{" ".join(LINK_METHODS)}]')
    parser.add_argument('--vel-weight', type=float, help="velocity weight of the 'hungarian' method [2.0]")
    parser.add_argument('--iou', type=float, default=0.5, help='per-frame IoU of a covered GT frame [0.5]')
    parser.add_argument(
        '--score-thr',
        type=optional_float,
        default=None,
        help='only predicted tubes with a score >= this '
        "count, or 'none' [none]")
    parser.add_argument('--split', type=int, help='0-based split index [0]')
    parser.add_argument('--subset', choices=['test', 'train'], help='[test]')
    parser.add_argument('--protocol', choices=sorted(PROTOCOLS), help='[act]')
    parser.add_argument('--nms-thr', type=optional_float, help="hard-NMS threshold or 'none' [0.3]")
    parser.add_argument('--link-iou', type=float, help='[0.5]')
    parser.add_argument('--trim-thr', type=optional_float, help="trimming threshold or 'none' [0.5]")
    parser.add_argument('--max-gap', type=int, help='[0]')
    parser.add_argument('--no-map', action='store_true', default=False, help='skip frame-/video-mAP')
    parser.add_argument('--out', default=None, help='write the results to this JSON file')
    parser.add_argument('--markdown', action='store_true', default=False, help='print a markdown table')
    parser.add_argument('--doc', default=None, help='markdown file to write the table into (block --block)')
    parser.add_argument('--block', default='tube-identity', help='block name in --doc [tube-identity]')
    parser.add_argument('--title', default=None, help="the block's heading [the results file]")
    parser.add_argument(
        '--no-progress', action='store_true', default=False, help='no progress bars (on stderr)')
    return parser.parse_args(argv)


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit='video')


def _json_safe(obj):
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def main(argv=None):
    args = parse_args(argv)
    ann_file, settings = eval_settings(args)
    defaults = inspect.signature(evaluate_clip_predictions).parameters
    link = {k: settings.get(k, defaults[k].default) for k in LINK_SETTINGS}
    vel_weight = settings.get('vel_weight', getattr(args, 'vel_weight', None))
    if vel_weight is None:
        vel_weight = inspect.signature(link_prepared_clips).parameters['vel_weight'].default
    if not 0 < args.iou <= 1:
        raise SystemExit(f'error: --iou must be in (0, 1], got {args.iou}')
    if not vel_weight >= 0:
        raise SystemExit(f'error: --vel-weight must be >= 0, got {vel_weight}')
    if args.doc and not osp.isfile(args.doc):
        raise SystemExit(f'error: --doc {args.doc}: no such file')
    progress = not args.no_progress
    try:
        ann = resolve_annotations(ann_file)
        videos = split_videos(ann, link['split'], link['subset'])
        by_video = load_dump(args.results)
        unknown = sorted(set(by_video) - set(videos))
        if unknown:
            raise ValueError(f'{args.results}: predictions for {len(unknown)} video(s) that are not in '
                             f"{link['subset']}_videos[{link['split']}] of {ann_file}, e.g. {unknown[:3]}; "
                             'wrong annotation file or split?')
        prot = get_protocol(link['protocol'])
        prepared = {}
        order = {v: i for i, v in enumerate(videos)}
        for v in sorted(by_video, key=order.get):
            clips, _ = drop_nonfinite_tubes(by_video[v], v)
            prepared[v] = prepare_clips(clips, ann['nframes'][v], v)
        report = None if args.no_map else evaluate_clip_predictions(by_video, ann, **settings)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        # missing / malformed inputs (AnnotationError is a ValueError)
        raise SystemExit(f'error: {err}') from None

    summaries, results = {}, {}
    for method in args.link_methods:
        tubes = {
            v:
            link_prepared_clips(
                clips,
                ann['nframes'][v],
                link_iou=link['link_iou'],
                trim_thr=link['trim_thr'],
                nms_thr=link['nms_thr'],
                max_gap=link['max_gap'],
                plus_one=prot.plus_one,
                link_method=method,
                vel_weight=vel_weight)
            for v, clips in _progress(list(prepared.items()), progress, f'link ({method})')
        }
        res = video_identity(
            tubes,
            ann,
            videos,
            iou_thr=args.iou,
            score_thr=args.score_thr,
            plus_one=prot.plus_one,
            progress=progress,
            temporal_plus_one=prot.temporal_plus_one)
        summary = dict(res['summary'])
        if report is not None:
            frame_key = next(iter(report['metrics']))
            summary[frame_key] = report['metrics'][frame_key]
            video_res = video_map(tubes, ann, videos, (0.5, ), link['nms_thr'], prot)
            summary['video_mAP@0.5'] = video_res[0.5]['mAP']
        summary['num_linked_tubes'] = int(sum(len(t['scores']) for t in tubes.values()))
        summaries[method] = summary
        results[method] = dict(summary=summary, videos=res['videos'])

    extra = [k for k in next(iter(summaries.values())) if 'mAP' in k]
    print(format_identity_table(summaries, extra_keys=extra, markdown=args.markdown))
    out = dict(
        settings=dict(
            link,
            ann_file=ann_file,
            results=args.results,
            vel_weight=vel_weight,
            iou=args.iou,
            score_thr=args.score_thr,
            link_methods=list(args.link_methods)),
        methods=results)
    if args.doc:
        command = cited_command('tools/analysis/tube_identity.py', sys.argv[1:] if argv is None else argv,
                                drop=('--doc', '--block', '--out'))
        settings = ', '.join(f'{k}={link[k]}' for k in LINK_SETTINGS if k not in ('split', 'subset'))
        body = (f'## Identity and best tubes: {args.title or args.results}\n\n'
                f'Produced by `{command}` on {datetime.date.today()}: {len(videos)} '
                f"{link['subset']} videos of `{ann_file}` (split {link['split']}), linking settings "
                f'{settings}; per-frame IoU >= {args.iou} for a covered frame; definitions in '
                'docs/analysis.md (coverage and best_st_iou>=0.5 in %).\n\n'
                + format_identity_table(summaries, extra_keys=extra, markdown=True) + '\n')
        write_block(args.doc, args.block, body)
        print(f'wrote block {args.block} of {args.doc}')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(_json_safe(out), f, indent=1)
        print(f'written: {args.out}')
    return out


if __name__ == '__main__':
    main()
