"""Accuracy on the synthetic test split: refine vs coarse-only, learned vs uniform vs random key timestamps.

Two kinds of comparison, both printed and written as a markdown table (``--out docs/results.md``):

* **test-time** variants of ONE trained checkpoint (``--checkpoint``): the refine stage switched off
  (``model.refine=False``) and the key-timestamp selection switched between learned / uniform / random. The
  refine head was trained on learned key timestamps, so this measures what the selection and the refinement
  add to the very same network.
* **trained** variants (``--train-variants coarse uniform``): each is trained from scratch with the same seed
  and schedule as the main config (``tools/train.py``), then tested. Each run takes as long as the main
  training.
* **error breakdown** of the full model: its test predictions are dumped and
  ``tools/analysis/analyze_errors.py`` breaks the video-mAP@0.5 gap down by error type (class, spatial,
  temporal, duplicate, background, missed; ``docs/analysis.md``); the table and the figure
  (``docs/figures/synthetic_errors.png``) go into the report.
* **linking threshold on a validation set** (``--val-seed 1``): the generator writes an independent set with
  another seed (120 of its 240 videos in its test split, none of them seen in training); the checkpoint is
  tested on it and on the test split once (predictions dumped), and the video-level linking threshold
  ``TubeMetric.link_iou`` is swept on both dumps (``--link-ious``). The config's value is the one chosen on
  the validation set; the test column shows what that choice gives.

With ``--out docs/results.md`` the whole file is written by this tool (a "Reading" section states what the
numbers say, computed from them), and ``--update-zoo`` writes the full model's numbers into the synthetic
entry of ``configs/cfad/metafile.yml`` and the synthetic row of the README's model zoo.

Example:
    python tools/analysis/synthetic_results.py --checkpoint work_dirs/synthetic_demo/epoch_16.pth \\
        --work-dir work_dirs/synthetic_results --val-seed 1 --train-variants coarse --out docs/results.md \\
        --update-zoo
"""
import argparse
import json
import os
import os.path as osp
import platform
import re
import shutil
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.utils.markdown import block_markers, replace_block, write_keeping_blocks  # noqa: E402

CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
TEST_VARIANTS = {
    'coarse + refine, learned keys (full CFAD)': [],
    'coarse + refine, uniform keys': ['model.roi_head.key_selector.mode=uniform'],
    'coarse + refine, random keys': ['model.roi_head.key_selector.mode=random'],
    'one refine pass at test time instead of two': ['model.test_cfg.refine_iters=1'],
    'coarse only (refine switched off at test time)': ['model.refine=False'],
}
TRAIN_VARIANTS = {
    'coarse': ['model.refine=False'],
    'uniform': ['model.roi_head.key_selector.mode=uniform'],
    'random': ['model.roi_head.key_selector.mode=random'],
    'two_pass_training': ['model.train_cfg.refine_iters=2'],
    'mean_cls': ['model.roi_head.refine_head.cls_convs=0'],
}
KEYS = ['tube/frame_mAP@0.5', 'tube/video_mAP@0.2', 'tube/video_mAP@0.5', 'tube/video_mAP@0.75',
        'tube/video_mAP@0.5:0.95']


FULL = 'coarse + refine, learned keys (full CFAD)'
README_BLOCK = 'synthetic-zoo'  # the generated block of the README's model zoo (cfad_mm.utils.markdown)


def evaluate(checkpoint, work_dir, options, dump=None):
    from cfad_mm.apis import parse_cfg_options, run_test
    metrics = run_test(CONFIG, checkpoint, work_dir=work_dir, cfg_options=parse_cfg_options(options) or None,
                       dump=dump)
    return {k: float(v) for k, v in metrics.items()}


def error_breakdown(dump: str, work_dir: str) -> dict:
    """``tools/analysis/analyze_errors.py`` on the full model's dumped test predictions (the config's
    evaluation settings); returns its ``errors.json`` (the figure is ``<work_dir>/errors/errors.png``)."""
    out = osp.join(work_dir, 'errors')
    subprocess.run([sys.executable, osp.join(REPO, 'tools/analysis/analyze_errors.py'), dump, '--config',
                    CONFIG, '--out', out, '--no-timelines'], check=True, cwd=REPO)
    with open(osp.join(out, 'errors.json')) as f:
        return json.load(f)


def reading(test_rows: dict, train_rows: dict, link_rows: list, chosen_link: float, errors: dict,
            seed_rows: list) -> list:
    """Sentences stating what the tables say, each computed from them (nothing in this section is typed by
    hand, so a re-run with other numbers states the other numbers)."""
    f, v = KEYS[0], KEYS[2]
    full = test_rows[FULL]
    runs = len(seed_rows)
    lines = ['## Reading', '', 'Computed from the tables above by this tool. '
             + ('Everything but the seed table comes from one training run.' if runs > 1 else
                'One training run: the spread between runs is not measured here (--extra-seeds).'), '']
    if runs > 1:
        lo = {k: min(r[k] for _, r in seed_rows) for k in (f, v)}
        hi = {k: max(r[k] for _, r in seed_rows) for k in (f, v)}
        lines.append(f'- **Spread over {runs} training runs** (seeds): frame-mAP@0.5 '
                     f'{lo[f]:.3f}-{hi[f]:.3f}, video-mAP@0.5 {lo[v]:.3f}-{hi[v]:.3f}; differences between '
                     'variants smaller than this spread are not evidence.')
    off = test_rows.get('coarse only (refine switched off at test time)')
    if off:
        lines.append(f'- **Refine stage at test time**: frame-mAP@0.5 {off[f]:.3f} -> {full[f]:.3f} '
                     f'({100 * (full[f] - off[f]):+.1f} points), video-mAP@0.5 {off[v]:.3f} -> {full[v]:.3f} '
                     f'({100 * (full[v] - off[v]):+.1f}) when the same checkpoint refines its coarse tubes.')
    for name, row in train_rows.items():
        lines.append(f'- **Trained variant "{name}"** vs the full model: frame-mAP@0.5 {row[f]:.3f} vs '
                     f'{full[f]:.3f}, video-mAP@0.5 {row[v]:.3f} vs {full[v]:.3f}.')
    one = test_rows.get('one refine pass at test time instead of two')
    if one:
        lines.append(f'- **Two refine passes at test time** vs one: frame-mAP@0.5 {one[f]:.3f} -> '
                     f'{full[f]:.3f}, video-mAP@0.5 {one[v]:.3f} -> {full[v]:.3f}.')
    for mode in ('uniform', 'random'):
        row = test_rows.get(f'coarse + refine, {mode} keys')
        if row:
            better = 'above' if full[f] > row[f] else 'below'
            lines.append(f'- **Learned vs {mode} key timestamps**: frame-mAP@0.5 {full[f]:.3f} vs '
                         f'{row[f]:.3f} (learned {better}), video-mAP@0.5 {full[v]:.3f} vs {row[v]:.3f}.')
    if link_rows:
        best = max(link_rows, key=lambda r: r[1][v])
        lines.append(f'- **Linking threshold**: on the validation set video-mAP@0.5 is highest at link_iou '
                     f'{best[0]:g} ({best[1][v]:.3f}); the config uses {chosen_link:g}.')
    if errors:
        gains = sorted(((errors['dAP'][t], t) for t in errors['dAP'] if t != 'all'), reverse=True)
        lines.append(f'- **Errors** (video-mAP@0.5 {100 * errors["mAP"]:.1f}): fixing '
                     + ', '.join(f'{t} errors would add {100 * g:.1f}' for g, t in gains[:3])
                     + ' AP points (largest first); all errors fixed: '
                     f'{100 * errors["dAP"]["all"]:+.1f}.')
    return lines + ['']


def update_zoo(metrics: dict, train_seconds) -> list:
    """Write the full model's numbers into the synthetic entry of ``configs/cfad/metafile.yml`` and the
    synthetic row of the README model zoo (its generated block ``README_BLOCK``). Returns the files."""
    names = {'frame-mAP@0.5': KEYS[0], 'video-mAP@0.2': KEYS[1], 'video-mAP@0.5': KEYS[2],
             'video-mAP@0.75': KEYS[3], 'video-mAP@0.5:0.95': KEYS[4]}
    meta = osp.join(REPO, 'configs/cfad/metafile.yml')
    with open(meta) as fh:
        text = fh.read()
    start = text.index('  - Name: cfad_r3d-18-tiny_synthetic')
    end = text.index('\n  - Name:', start)
    entry = text[start:end]
    for name, key in names.items():
        entry, n = re.subn(rf'(\n {{10}}{re.escape(name)}: )[0-9.]+', rf'\g<1>{metrics[key]:.4f}', entry)
        if n != 1:
            raise SystemExit(f'error: {meta}: no line "{name}: ..." in the synthetic entry')
    if train_seconds:
        entry = re.sub(r'Training Time: [^\n]*', f'Training Time: {train_seconds / 60:.1f} min on '
                       f'{os.cpu_count()} CPU cores', entry)
    with open(meta, 'w') as fh:
        fh.write(text[:start] + entry + text[end:])
    readme = osp.join(REPO, 'README.md')
    with open(readme) as fh:
        text = fh.read()
    start, end = block_markers(README_BLOCK)
    if start not in text or end not in text:
        raise SystemExit(f'error: {readme}: no {start} ... {end} block')
    row = ('| `configs/cfad/cfad_r3d-18-tiny_synthetic.py` | ResNet3d-18, width 16 | '
           f'{metrics[KEYS[0]]:.3f} | {metrics[KEYS[2]]:.3f} |')
    body = '\n'.join(['| config | backbone | frame-mAP@0.5 | video-mAP@0.5 |', '|---|---|---|---|', row])
    with open(readme, 'w') as fh:
        fh.write(replace_block(text, README_BLOCK, body))
    return [meta, readme]


def train(work_dir, options, seed):
    """Train the main config (with ``options``) into ``work_dir``; returns the final checkpoint and the
    training time in seconds, or None when the run was resumed or had already finished (then the time of the
    whole run is not known)."""
    cfg = Config.fromfile(CONFIG)
    final = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    if osp.isfile(final):
        return final, None
    resumed = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    t0 = time.time()
    # --resume: an interrupted study continues the run from the last checkpoint in work_dir
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), CONFIG, '--work-dir', work_dir, '--seed',
           str(seed), '--resume']
    subprocess.run(cmd + (['--cfg-options'] + options if options else []), check=True, cwd=REPO)
    return final, None if resumed else time.time() - t0


def linking_sweep(checkpoint: str, work_dir: str, val_seed: int, link_ious) -> list:
    """Rows ``(link_iou, val metrics, test metrics)`` of the video-level linking threshold sweep (see
    above)."""
    from cfad_mm.apis import parse_cfg_options, run_test
    from cfad_mm.datasets.synthetic_generator import make_synthetic_dataset
    from cfad_mm.evaluation import load_dump
    from cfad_mm.evaluation.functional import evaluate_tubes
    val_root = osp.join(work_dir, f'val_seed{val_seed}')
    val_ann = osp.join(val_root, 'annotations.pkl')
    if not osp.isfile(val_ann):
        print(f'==== writing the validation set {val_root} (seed {val_seed})', flush=True)
        make_synthetic_dataset(val_root, seed=val_seed, test_ratio=0.5, log_interval=0)
    cfg = Config.fromfile(CONFIG)
    dumps = {}
    for name, ann, videos in (('val', val_ann, osp.join(val_root, 'videos')),
                              ('test', osp.join(REPO, cfg.ann_file), osp.join(REPO, cfg.video_prefix))):
        dumps[name] = (osp.join(work_dir, f'linking_{name}.pkl'), ann)
        print(f'==== {name}: predictions for the linking sweep', flush=True)
        run_test(CONFIG, checkpoint, work_dir=osp.join(work_dir, f'linking_{name}'), dump=dumps[name][0],
                 cfg_options=parse_cfg_options([f'test_dataloader.dataset.ann_file={ann}',
                                                f'test_dataloader.dataset.data_prefix.video={videos}',
                                                f'test_evaluator.ann_file={ann}']))
    clips = {k: (load_dump(path), ann) for k, (path, ann) in dumps.items()}
    rows = []
    for thr in link_ious:
        res = [{f'tube/{k}': v for k, v in evaluate_tubes(c, ann, link_iou=thr)['metrics'].items()}
               for c, ann in (clips['val'], clips['test'])]
        rows.append((thr, res[0], res[1]))
        print(f'link_iou {thr:g}: val {res[0]}  test {res[1]}', flush=True)
    return rows


def linking_table(rows, chosen) -> str:
    lines = ['| link_iou | val frame-mAP@0.5 | val video-mAP@0.5 | val video-mAP@0.5:0.95 | test '
             'video-mAP@0.5 | test video-mAP@0.5:0.95 |', '|' + '---|' * 6]
    for thr, val, test in rows:
        mark = ' (config)' if abs(thr - chosen) < 1e-9 else ''
        lines.append(f'| {thr:g}{mark} | {val[KEYS[0]]:.4f} | {val[KEYS[2]]:.4f} | {val[KEYS[4]]:.4f} | '
                     f'{test[KEYS[2]]:.4f} | {test[KEYS[4]]:.4f} |')
    return '\n'.join(lines)


def dataset_summary(ann_file: str) -> str:
    """One line on the annotation file of the config (relative paths are relative to the repository)."""
    from cfad_mm.datasets.annotation import annotation_summary
    path = osp.join(REPO, ann_file)  # an absolute ann_file stays as it is
    return annotation_summary(path, osp.relpath(path, REPO))


def table(rows):
    head = '| variant | frame-mAP@0.5 | video-mAP@0.2 | video-mAP@0.5 | video-mAP@0.75 | video-mAP@0.5:0.95 |'
    lines = [head, '|' + '---|' * 6]
    for name, m in rows:
        lines.append(f'| {name} | ' + ' | '.join(f'{m.get(k, float("nan")):.4f}' for k in KEYS) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--checkpoint', required=True, help='trained checkpoint of the main config')
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs/synthetic_results'))
    p.add_argument('--train-variants', nargs='*', default=[], choices=sorted(TRAIN_VARIANTS))
    p.add_argument('--train-seconds', type=float, default=None,
                   help='training time of the checkpoint (report)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--extra-seeds', nargs='*', type=int, default=[],
                   help='train the main config again with these seeds (same schedule) and report the spread '
                   'of the full model over the runs (the checkpoint counts as the run of --seed)')
    p.add_argument('--val-seed', type=int, default=None,
                   help='sweep the linking threshold on an independent validation set of this generator seed')
    p.add_argument('--link-ious', nargs='+', type=float, default=[0.2, 0.3, 0.4, 0.5])
    p.add_argument('--out', default=None, help='markdown file to write (all of it)')
    p.add_argument('--no-errors', action='store_true', help='skip the error breakdown of the full model')
    p.add_argument('--update-zoo', action='store_true',
                   help="write the full model's numbers into configs/cfad/metafile.yml and the README "
                   'model zoo')
    args = p.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    os.makedirs(args.work_dir, exist_ok=True)
    cfg = Config.fromfile(CONFIG)
    test_rows = []
    dump = osp.join(args.work_dir, 'full_cfad_test.pkl')
    for name, opts in TEST_VARIANTS.items():
        print(f'==== test-time variant: {name}', flush=True)
        test_rows.append((name, evaluate(args.checkpoint, osp.join(args.work_dir, 'test_variants'), opts,
                                         dump=dump if name == FULL else None)))
    errors = {} if args.no_errors else error_breakdown(dump, args.work_dir)
    link_rows = [] if args.val_seed is None else linking_sweep(args.checkpoint, args.work_dir, args.val_seed,
                                                                args.link_ious)
    seed_rows = [(f'seed {args.seed} (the checkpoint)', dict(test_rows)[FULL])]
    for seed in args.extra_seeds:
        print(f'==== the main config trained with seed {seed}', flush=True)
        ckpt, secs = train(osp.join(args.work_dir, f'train_seed{seed}'), [], seed)
        seed_rows.append((f'seed {seed}' + (f' (trained {secs / 60:.1f} min)' if secs else ''),
                          evaluate(ckpt, osp.join(args.work_dir, f'seed{seed}'), [])))
    train_rows = []
    for v in args.train_variants:
        print(f'==== trained variant: {v}', flush=True)
        ckpt, secs = train(osp.join(args.work_dir, f'train_{v}'), TRAIN_VARIANTS[v], args.seed)
        label = v + (f' (trained {secs / 60:.1f} min)' if secs else '')
        train_rows.append((label, evaluate(ckpt, osp.join(args.work_dir, v), TRAIN_VARIANTS[v])))
    text = ['# Results on the synthetic dataset', '',
            f'Produced by `python tools/analysis/synthetic_results.py` ({time.strftime("%Y-%m-%d")}, '
            f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch CPU).',
            f'Checkpoint: `{osp.relpath(args.checkpoint, REPO)}`'
            + (f', trained in {args.train_seconds / 60:.1f} min' if args.train_seconds else '') + '.',
            f'Dataset: {dataset_summary(cfg.ann_file)}. Metrics: ACT protocol (`TubeMetric`, '
            'docs/evaluation.md).', '',
            '## Test-time variants of the trained model', '', table(test_rows), '']
    if train_rows:
        text += ['## Variants trained from scratch (same seed and schedule)', '', table(train_rows), '']
    if len(seed_rows) > 1:
        spread = [(name, {k: fn(r[k] for _, r in seed_rows) for k in KEYS})
                  for name, fn in (('min over the runs', min), ('max over the runs', max))]
        text += ['## The full model trained with other seeds (same config and schedule)', '',
                 table(seed_rows + spread), '']
    if link_rows:
        text += ['## Linking threshold (`TubeMetric.link_iou`) on a validation set (generator seed '
                 f'{args.val_seed}, 120 unseen videos) and on the test split', '',
                 linking_table(link_rows, cfg.val_evaluator.get('link_iou', 0.5)), '']
    figure = osp.join(REPO, 'docs/figures/synthetic_errors.png')
    if errors:
        from cfad_mm.analysis import format_breakdown_table
        text += ['## Error breakdown of the full model (video-mAP@0.5, test split)', '',
                 'What each error type costs, in AP points (`tools/analysis/analyze_errors.py` on the '
                 'dumped test predictions, with the config\'s evaluation settings; definitions in '
                 'docs/analysis.md). `dX` is the mAP gained if every error of type X were fixed; `dall` '
                 'fixes all of them at once.', '',
                 format_breakdown_table(errors, markdown=True), '']
        if args.out:
            text += ['![error breakdown](figures/synthetic_errors.png)', '']
    text += reading(dict(test_rows), dict(train_rows), link_rows, cfg.val_evaluator.get('link_iou', 0.5),
                    errors, seed_rows)
    out = '\n'.join(text)
    print(out)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(test_variants=dict(test_rows), trained_variants=dict(train_rows),
                       linking=[dict(link_iou=t, val=v, test=te) for t, v, te in link_rows]), f, indent=2)
    if args.out:
        write_keeping_blocks(args.out, out)  # the blocks of other tools (span_sweep.py) stay
        print(f'written {args.out}')
        if errors:
            shutil.copyfile(osp.join(args.work_dir, 'errors', 'errors.png'), figure)
            print(f'written {figure}')
    if args.update_zoo:
        print('written ' + ', '.join(update_zoo(dict(test_rows)[FULL], args.train_seconds)))


if __name__ == '__main__':
    main()
