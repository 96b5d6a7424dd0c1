"""Span sweep: train and test CFAD with windows of 16, 32, 64 and 128 frames at the same training budget, time
whole-video inference, and write the tables into docs/results.md and docs/benchmarks.md.

Every run starts from one base config (the 16-frame baseline of the long synthetic preset by default) and
changes only what its span needs (``cfad_mm.analysis.span_sweep.sweep_config``): windows ``TxK`` (``T``
frames sampled every ``K``), half-span training and test strides, a B-spline tube coder for spans over 16
frames, and the same iteration-based schedule for all (``--iters`` iterations of the base config's batch:
the same number of ``T``-frame clips through the backbone). Per run, in ``WORK_DIR/<TxK>/``:

1. ``tools/train.py`` on the written config ``WORK_DIR/<TxK>.py`` (skipped when its final checkpoint exists;
   a run directory whose config differs from the sweep's settings is refused, not reused);
2. test of the final checkpoint on the test split (``metrics.json``, predictions in ``test_dump.pkl``) and the
   error breakdown of its video-mAP@0.5 (``tools/analysis/analyze_errors.py``, in ``errors/``);
3. whole-video speed on the first ``--speed-videos`` test videos (``speed.json``), after all trainings so that
   nothing else runs meanwhile: CFAD frames/s with decoding excluded and included, and the backbone alone run
   once over every frame (``cfad_mm.analysis.span_sweep.whole_video_speed``).

Then the tables (accuracy, speed, and every longer span checked against the first one) are printed and, with
``--out-results`` / ``--out-benchmarks``, written into the ``span-sweep`` block of those files (the rest of
each file is left as it is). A run that was done before is read back, so an interrupted sweep continues.

The long preset is written first if its annotation file is missing
(``tools/data/make_synthetic.py --preset long --seed 0``).

Example (about an hour on 2 CPU cores with the defaults)::

    python tools/analysis/span_sweep.py --work-dir work_dirs/span_sweep \\
        --out-results docs/results.md --out-benchmarks docs/benchmarks.md
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config, DictAction  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.analysis.span_sweep import (  # noqa: E402
    SpanSpec,
    acceptance_lines,
    accuracy_table,
    error_table,
    speed_table,
    stage_table,
    sweep_config,
)
from cfad_mm.utils.markdown import block_markers, cited_command  # noqa: E402

BASE = 'configs/cfad/cfad_r3d-18-tiny_synthetic-long_16x1.py'
BLOCK = 'span-sweep'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train and test CFAD at several window spans with the same '
                                'training budget; write accuracy and speed tables.', allow_abbrev=False)
    p.add_argument('--config', default=BASE, help=f'base config [{BASE}]')
    p.add_argument('--spans', nargs='+', type=span_arg, default=['16x1', '16x2', '16x4', '16x8'],
                   help='windows TxK (T frames sampled every K frames); the first is the baseline the others '
                   'are checked against [16x1 16x2 16x4 16x8]')
    p.add_argument('--iters', type=int, default=2500, help='training iterations of every run [2500]')
    p.add_argument('--seed', type=int, default=0, help='training seed [0]')
    p.add_argument('--knot-interval', type=int, default=16,
                   help='most frames between two knots of the spline coder (spans over 16 frames) [16]')
    p.add_argument('--work-dir', default='work_dirs/span_sweep', help='[work_dirs/span_sweep]')
    p.add_argument('--speed-videos', type=int, default=3, help='test videos timed per run [3]; 0: no timing')
    p.add_argument('--speed-repeats', type=int, default=3, help='timed rounds (after one warm-up) [3]')
    p.add_argument('--out-results', default=None, help='markdown file for the accuracy tables, e.g. '
                   'docs/results.md (its span-sweep block)')
    p.add_argument('--out-benchmarks', default=None, help='markdown file for the speed table, e.g. '
                   'docs/benchmarks.md (its span-sweep block)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='settings of every run, key=value (applied to the base config)')
    p.add_argument('--label', default=None,
                   help='name of a variant sweep (e.g. with --cfg-options): its tables go into the block '
                   'span-sweep-LABEL of the output files, beside those of the plain sweep')
    p.add_argument('--baseline-run', default=None,
                   help='a finished run directory of another sweep (e.g. work_dirs/span_sweep/16x1) to use '
                   'as '
                   'the first row instead of training one here; named by its directory (TxK)')
    p.add_argument('--weights-from', default=None,
                   help='a finished sweep work dir (e.g. work_dirs/span_sweep) whose trained checkpoints are '
                   'tested here with this sweep\'s settings instead of training: for settings used only at '
                   'test time, or to measure one at test time before training with it')
    args = p.parse_args(argv)
    if args.weights_from and args.baseline_run:
        p.error('--weights-from and --baseline-run do not go together')
    args.spans = [s if isinstance(s, SpanSpec) else SpanSpec.parse(s) for s in args.spans]
    if args.label is not None:
        try:
            block_markers(f'{BLOCK}-{args.label}')
        except ValueError as err:
            p.error(f'--label {args.label!r}: {err}')
    # paths are the caller's; the runs work from the repository (relative data paths of the configs)
    for key in ('work_dir', 'baseline_run', 'out_results', 'out_benchmarks', 'weights_from'):
        if getattr(args, key):
            setattr(args, key, osp.abspath(getattr(args, key)))
    return args


def span_arg(text: str) -> SpanSpec:
    try:
        return SpanSpec.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def shown_command(argv) -> str:
    """The command line of this run as the tables cite it (without the output and work-dir options)."""
    where = ('--out-results', '--out-benchmarks', '--work-dir', '--speed-videos', '--speed-repeats')
    return cited_command('tools/analysis/span_sweep.py', argv, where)


def ensure_data(cfg: Config) -> str:
    ann = osp.join(REPO, cfg.train_dataloader.dataset.ann_file)
    if not osp.isfile(ann):
        root = osp.dirname(ann)
        print(f'==== {ann} is missing: writing the long synthetic preset into {root}', flush=True)
        subprocess.run([sys.executable, osp.join(REPO, 'tools/data/make_synthetic.py'), '--preset', 'long',
                        '--out', root, '--seed', '0'], check=True, cwd=REPO)
    return ann


def read_json(path):
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return None


def write_json(path, data):
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)


def train(cfg_path: str, run_dir: str, iters: int) -> dict:
    """Train unless the final checkpoint is there; returns ``dict(checkpoint, train_seconds)``."""
    info_path = osp.join(run_dir, 'train.json')
    ckpt = osp.join(run_dir, f'iter_{iters}.pth')
    info = read_json(info_path)
    if info and osp.isfile(ckpt):
        return info
    resumed = osp.isfile(osp.join(run_dir, 'last_checkpoint'))
    t0 = time.time()
    subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), cfg_path, '--work-dir', run_dir,
                    '--resume'], check=True, cwd=REPO)
    info = dict(checkpoint=ckpt, train_seconds=None if resumed else time.time() - t0)
    write_json(info_path, info)
    return info


def test(cfg_path: str, run_dir: str, ckpt: str) -> dict:
    from cfad_mm.apis import run_test
    path = osp.join(run_dir, 'metrics.json')
    metrics = read_json(path)
    if metrics is None:
        metrics = {k: float(v) for k, v in run_test(cfg_path, ckpt, work_dir=osp.join(run_dir, 'test'),
                                                       dump=osp.join(run_dir, 'test_dump.pkl')).items()}
        write_json(path, metrics)
    return metrics


def errors(cfg_path: str, run_dir: str) -> dict:
    """The video-mAP@0.5 error breakdown of the run's test predictions (``tools/analysis/analyze_errors.py``
    with the run's evaluation settings)."""
    out = osp.join(run_dir, 'errors')
    if not osp.isfile(osp.join(out, 'errors.json')):
        subprocess.run([sys.executable, osp.join(REPO, 'tools/analysis/analyze_errors.py'),
                        osp.join(run_dir, 'test_dump.pkl'), '--config', cfg_path, '--out', out,
                        '--no-timelines'],
                       check=True, cwd=REPO)
    return read_json(osp.join(out, 'errors.json'))


def speed(cfg: Config, cfg_path: str, run_dir: str, ckpt: str, spec: SpanSpec, args) -> dict:
    from cfad_mm.analysis.span_sweep import whole_video_speed
    from cfad_mm.apis import init_detector
    path = osp.join(run_dir, 'speed.json')
    result = read_json(path)
    if result is None:
        from mmaction.registry import DATASETS
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        names = sorted(dataset.videos)[:args.speed_videos]
        videos = [dataset.media_path(v) for v in names]
        model = init_detector(cfg_path, ckpt, device='cpu')
        print(f'==== {spec.name}: timing whole-video inference on {len(videos)} test videos', flush=True)
        result = whole_video_speed(model, videos, spec.clip_len, spec.frame_interval, spec.stride,
                                   repeats=args.speed_repeats)
        result['videos'] = names
        write_json(path, result)
    return result


def report(rows, args, cfg, ann_file, cmd) -> tuple:
    import torch

    from cfad_mm.datasets.annotation import annotation_summary
    data = annotation_summary(ann_file, osp.relpath(ann_file, REPO))
    batch = cfg.train_dataloader.batch_size
    base = rows[0]['name']
    title = f': {args.label}' if args.label else ''
    settings = ', '.join(f'`{k}={v}`' for k, v in args.cfg_options.items())
    if settings:
        title += f' ({settings})'
    if args.baseline_run:
        title += f'; the {base} row is the run of `{osp.relpath(args.baseline_run, REPO)}`'  # (absolute path)
    if args.weights_from:
        title += (f'; weights trained by the sweep in `{osp.relpath(args.weights_from, REPO)}` (its config, '
                  'without these settings), tested with them')
    results = [
        f'## Window span at the same training budget (long synthetic preset){title}', '',
        f'Produced by `{cmd}` on {time.strftime("%Y-%m-%d")} '
        f'({platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}). Base config '
        f'`{args.config}`; dataset {data}; test split, ACT protocol (`TubeMetric` with the base config\'s '
        f'settings). Every run: {args.iters} iterations of {batch} clips of T frames (the same backbone '
        f'work), linear warm-up then cosine decay, seed {args.seed}, windows every half span in training '
        'and at test time; spans over 16 frames use a cubic '
        f'B-spline tube coder with a knot at most every {args.knot_interval} frames. One training run per '
        'span: the spread between runs is not measured here.', '',
        *accuracy_table(rows), '',
        *((f'Each longer span against {base} (frames/s with decoding excluded, from docs/benchmarks.md; '
           f'against {base} as the ratio of the two runs\' CFAD / backbone-once ratios, each backbone-once '
           'pass timed in the same rounds as its run, so that how fast the machine was when each run was '
           'timed cancels out):', '',
           *acceptance_lines(rows, base), '') if len(rows) > 1 else
          ('No baseline row in this sweep (one span, no `--baseline-run`): the acceptance checks against the '
           '16-frame windows are not computed here.', '')),
        'Where the video-mAP@0.5 of each run is lost (`tools/analysis/analyze_errors.py` on its test '
        'predictions; docs/analysis.md): AP points gained if every error of a type were fixed, with the '
        'number of detections of that type in brackets (cls: wrong class, loc_spatial / loc_temporal: right '
        'class, boxes or extent off, miss: ground truth never detected).', '',
        *error_table(rows), '']
    speed_rows = [r for r in rows if r.get('speed')]
    bench = []
    if speed_rows:
        s0 = speed_rows[0]['speed']
        bench = [
            f'## Whole-video frames/s at each window span (long synthetic preset){title}', '',
            f'Produced by `{cmd} --speed-videos {args.speed_videos} --speed-repeats {args.speed_repeats}` '
            f'(the trained checkpoints; {time.strftime("%Y-%m-%d")}, {platform.machine()}, {os.cpu_count()} '
            f'CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads). Video: '
            f'{len(s0["videos"])} test videos, {s0["frames"]} frames, network input '
            f'{s0["input_hw"][1]}x{s0["input_hw"][0]}; median (min-max) of {args.speed_repeats} rounds after '
            'one warm-up, the three ways interleaved in each round, batches of 4 windows. CFAD: sliding '
            'windows every half span, coarse + refine, linking; decoding excluded = frames decoded into '
            'memory '
            'beforehand, included = read from the file. Backbone once = the backbone alone over every frame '
            'once (windows of T consecutive frames, T apart): the floor of any detector that looks at every '
            'frame.', '', *speed_table(rows), '',
            'Milliseconds per video frame in each stage of CFAD (one more run per span, decoding excluded; '
            'stages nest: the backbone and the heads are inside "predict", the rest of "all of CFAD" is the '
            'sliding-window pipeline and the linking; stages a model lacks are "-"):', '', *stage_table(rows),
            '']
    return results, bench


def check_run_dir(run_dir: str, cfg_path: str, cfg: Config) -> None:
    """Refuse a run directory that holds a run of another config (a finished run is only reused for the
    same config)."""
    if not osp.isfile(cfg_path):
        return
    tmp = cfg_path + '.new.py'
    cfg.dump(tmp)
    with open(cfg_path) as a, open(tmp) as b:
        same = a.read() == b.read()
    os.remove(tmp)
    if not same:
        raise SystemExit(f'error: {run_dir} holds a run of another config ({cfg_path} differs from this '
                         'sweep\'s settings): use another --work-dir, or remove both')


def trained_unlike(cfg: Config, args) -> list:
    """How the run of config ``cfg`` was trained unlike this sweep's runs (iterations, seed, dataset)."""
    base = Config.fromfile(osp.join(REPO, args.config))
    differs = []
    if cfg.train_cfg.get('max_iters') != args.iters:
        differs.append(f"{cfg.train_cfg.get('max_iters')} iterations, not {args.iters}")
    if cfg.get('randomness', {}).get('seed') != args.seed:
        differs.append(f"seed {cfg.get('randomness', {}).get('seed')}, not {args.seed}")
    if cfg.test_dataloader.dataset.ann_file != base.test_dataloader.dataset.ann_file:
        differs.append(f'dataset {cfg.test_dataloader.dataset.ann_file}, not '
                       f'{base.test_dataloader.dataset.ann_file}')
    return differs


def baseline_row(run_dir: str, args) -> tuple:
    """``(row, run)`` of a finished run of another sweep, checked to have been trained like this sweep's
    runs (iterations, seed, dataset)."""
    run_dir = osp.abspath(run_dir.rstrip('/'))
    where = f'error: --baseline-run {run_dir}'
    try:
        spec = SpanSpec.parse(osp.basename(run_dir))
    except ValueError:
        raise SystemExit(f'{where}: the run directory of a sweep is named by its span TxK (e.g. '
                         'work_dirs/span_sweep/16x1)') from None
    cfg_path = osp.join(osp.dirname(run_dir), f'{spec.name}.py')
    info, metrics = read_json(osp.join(run_dir, 'train.json')), read_json(osp.join(run_dir, 'metrics.json'))
    missing = [p for p in (cfg_path, osp.join(run_dir, 'train.json'), osp.join(run_dir, 'metrics.json'),
                           osp.join(run_dir, 'test_dump.pkl')) if not osp.isfile(p)]
    if not missing and not osp.isfile(info['checkpoint']):
        missing.append(info['checkpoint'])
    if missing:
        raise SystemExit(f'{where}: not a finished run of span_sweep.py; missing: {", ".join(missing)}')
    cfg = Config.fromfile(cfg_path)
    differs = trained_unlike(cfg, args)
    if differs:
        raise SystemExit(f'{where}: trained unlike this sweep (' + '; '.join(differs) + ')')
    return make_row(spec, cfg, info, metrics), (spec, cfg, cfg_path, run_dir, info['checkpoint'])


def weights_of(sweep_dir: str, spec: SpanSpec, args) -> dict:
    """``train.json`` of the run ``spec`` of the finished sweep ``sweep_dir`` (``--weights-from``), checked to
    have been trained with this sweep's iterations, seed and dataset."""
    run_dir = osp.join(sweep_dir, spec.name)
    where = f'error: --weights-from {sweep_dir}'
    info = read_json(osp.join(run_dir, 'train.json'))
    cfg_path = osp.join(sweep_dir, f'{spec.name}.py')
    if info is None or not osp.isfile(info['checkpoint']) or not osp.isfile(cfg_path):
        raise SystemExit(f'{where}: no finished training of {spec.name} there (train.json, its checkpoint '
                         f'and {spec.name}.py are needed)')
    cfg = Config.fromfile(cfg_path)
    differs = trained_unlike(cfg, args)
    if differs:
        raise SystemExit(f'{where}: trained unlike this sweep (' + '; '.join(differs) + ')')
    print(f'==== {spec.name}: the weights of {info["checkpoint"]}, not trained here', flush=True)
    return info


def make_row(spec: SpanSpec, cfg: Config, info: dict, metrics: dict) -> dict:
    coder = cfg.model.coarse_head.tube_coder
    return dict(name=spec.name, span=spec.span, nominal=spec.nominal, metrics=metrics,
                train_seconds=info['train_seconds'],
                coder=f"{coder['type']}" + (f"(knots every <= {coder['knot_interval']})"
                                            if 'knot_interval' in coder else
                                            f"(degree {coder.get('degree', 3)})"))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    specs = list(args.spans)
    os.chdir(REPO)
    base_cfg = Config.fromfile(osp.join(REPO, args.config))
    if args.cfg_options:
        base_cfg.merge_from_dict(args.cfg_options)
    ann_file = ensure_data(base_cfg)
    os.makedirs(args.work_dir, exist_ok=True)
    rows, runs = [], []
    if args.baseline_run:
        row, run = baseline_row(args.baseline_run, args)
        rows.append(row)
        runs.append(run)
        if run[0] in specs:
            print(f'==== {run[0].name}: the run of --baseline-run, not trained again here', flush=True)
            specs = [s for s in specs if s != run[0]]
    for spec in specs:
        run_dir = osp.abspath(osp.join(args.work_dir, spec.name))
        os.makedirs(run_dir, exist_ok=True)
        cfg = sweep_config(base_cfg, spec, args.iters, args.seed, args.knot_interval)
        # beside the run directory: the runner writes its own copy of the config into the run directory
        cfg_path = osp.join(osp.dirname(run_dir), f'{spec.name}.py')
        check_run_dir(run_dir, cfg_path, cfg)
        cfg.dump(cfg_path)
        print(f'==== {spec.name}: windows of {spec.span} frames, {args.iters} iterations', flush=True)
        info = weights_of(args.weights_from, spec, args) if args.weights_from else train(cfg_path, run_dir,
                                                                                         args.iters)
        metrics = test(cfg_path, run_dir, info['checkpoint'])
        print(f'==== {spec.name}: ' + ', '.join(f'{k} {v:.4f}' for k, v in metrics.items()), flush=True)
        rows.append(make_row(spec, cfg, info, metrics))
        runs.append((spec, cfg, cfg_path, run_dir, info['checkpoint']))
    for row, (spec, cfg, cfg_path, run_dir, ckpt) in zip(rows, runs):
        row['errors'] = errors(cfg_path, run_dir)
    if args.speed_videos > 0:
        for row, (spec, cfg, cfg_path, run_dir, ckpt) in zip(rows, runs):
            row['speed'] = speed(cfg, cfg_path, run_dir, ckpt, spec, args)
    results, bench = report(rows, args, base_cfg, ann_file, shown_command(argv))
    write_json(osp.join(args.work_dir, 'sweep.json'), rows)
    print('\n'.join(results + bench))
    from cfad_mm.utils.markdown import write_block
    block = f'{BLOCK}-{args.label}' if args.label else BLOCK
    if args.out_results:
        write_block(args.out_results, block, '\n'.join(results))
        print(f'written {args.out_results}')
    if args.out_benchmarks and bench:
        write_block(args.out_benchmarks, block, '\n'.join(bench))
        print(f'written {args.out_benchmarks}')


if __name__ == '__main__':
    main()
