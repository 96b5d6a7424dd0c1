"""The main job on the embedded default (``make demo``): data -> train -> evaluate -> render a demo.

1. Generate the synthetic tube dataset into ``data/synth`` (skipped if ``annotations.pkl`` exists).
2. Train ``configs/cfad/cfad_r3d-18-tiny_synthetic.py`` with ``tools/train.py`` (resumes an interrupted run;
   skipped when the work dir already holds the final checkpoint, unless ``--retrain``).
3. Evaluate the final checkpoint on the test split (ACT frame-mAP / video-mAP) -> ``metrics.json``.
4. Run ``tools/demo.py`` on a test video -> ``demo/tubes.json`` + a rendered mp4 and GIF.

Usage: python tools/run_synthetic_demo.py [--work-dir work_dirs/synthetic_demo] [--retrain] [--cfg-options
...]
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmengine.config import Config, DictAction  # noqa: E402

import cfad_mm  # noqa: E402,F401

CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


def step(msg):
    print(f'\n==== [{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run(cmd):
    print('$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def final_checkpoint(work_dir: str, max_epochs: int):
    path = osp.join(work_dir, f'epoch_{max_epochs}.pth')
    return path if osp.isfile(path) else None


def made_with_defaults(ann_file: str) -> bool:
    """Whether an existing annotation file has the generator defaults' number of videos and a single split."""
    import inspect

    from cfad_mm.datasets.annotation import load_annotations
    from cfad_mm.datasets.synthetic_generator import make_synthetic_dataset
    defaults = inspect.signature(make_synthetic_dataset).parameters
    num_videos = defaults['num_videos'].default
    ann = load_annotations(ann_file)
    return len(ann['nframes']) == num_videos and len(ann['train_videos']) == 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs/synthetic_demo'))
    p.add_argument('--data-root', default=osp.join(REPO, 'data/synth'))
    p.add_argument('--seed', type=int, default=0, help='dataset and training seed')
    p.add_argument('--retrain', action='store_true', help='train even if the final checkpoint exists')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='config overrides passed to training, testing and the demo')
    args = p.parse_args(argv)
    t0 = time.time()
    python = sys.executable
    ann = osp.join(args.data_root, 'annotations.pkl')

    step('1/4 synthetic dataset')
    if osp.isfile(ann) and made_with_defaults(ann):
        print(f'{ann} exists: reusing it (delete {args.data_root} to regenerate)')
    else:
        if osp.isfile(ann):
            print(f'{ann} was not written with the generator defaults (e.g. by an older version): '
                  'regenerating it')
        run([python, 'tools/data/make_synthetic.py', '--out', args.data_root, '--seed', str(args.seed)])

    cfg = Config.fromfile(CONFIG)
    max_epochs = int(args.cfg_options.get('train_cfg.max_epochs', cfg.train_cfg.max_epochs))
    overrides = [f'{k}={v}' for k, v in args.cfg_options.items()]
    data_opts = [f'{loader}.dataset.{key}={val}'
                 for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
                 for key, val in (('ann_file', ann),
                                  ('data_prefix.video', osp.join(args.data_root, 'videos')))]
    data_opts += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    cfg_opts = ['--cfg-options'] + data_opts + overrides

    step(f'2/4 training {osp.relpath(CONFIG, REPO)} for {max_epochs} epochs')
    ckpt = final_checkpoint(args.work_dir, max_epochs)
    if ckpt and not args.retrain:
        print(f'{ckpt} exists: skipping training (use --retrain to train again)')
    else:
        resume = ['--resume'] if osp.isfile(osp.join(args.work_dir, 'last_checkpoint')) and \
            not args.retrain else []
        run([python, 'tools/train.py', CONFIG, '--work-dir', args.work_dir, '--seed', str(args.seed)] + resume
            + cfg_opts)
        ckpt = final_checkpoint(args.work_dir, max_epochs)
        if ckpt is None:
            raise SystemExit(f'error: training finished without {args.work_dir}/epoch_{max_epochs}.pth')

    step(f'3/4 evaluating {osp.relpath(ckpt, REPO)} on the test split')
    from cfad_mm.apis import parse_cfg_options, run_test
    # the same overrides as training, parsed as tools/test.py's --cfg-options parses them
    metrics = run_test(CONFIG, ckpt, work_dir=args.work_dir, cfg_options=parse_cfg_options(cfg_opts[1:]))
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics_path = osp.join(args.work_dir, 'metrics.json')
    with open(metrics_path, 'w') as f:
        json.dump(dict(checkpoint=ckpt, metrics=metrics), f, indent=2)

    step('4/4 demo on a test video')
    from cfad_mm.datasets.annotation import load_annotations
    annotations = load_annotations(ann)
    # the test video with the most actors (deterministic; shows linking of several tubes)
    video = max(annotations['test_videos'][0],
                key=lambda v: (sum(len(t) for t in annotations['gttubes'][v].values()), v))
    video_path = osp.join(args.data_root, 'videos', video + '.mp4')
    demo_dir = osp.join(args.work_dir, 'demo')
    # the same model overrides as training and testing (the checkpoint must fit the model the demo builds);
    # absolute paths: tools/demo.py runs in the repository, this process may run elsewhere
    run([python, 'tools/demo.py', osp.abspath(video_path), CONFIG, osp.abspath(ckpt), '--out',
         osp.abspath(demo_dir), '--gif'] + (['--cfg-options'] + overrides if overrides else []))
    with open(osp.join(demo_dir, 'tubes.json')) as f:
        tubes = json.load(f)

    print('\n==== results (ACT protocol, synthetic test split)')
    for k, v in metrics.items():
        print(f'  {k:<28} {v:.4f}')
    print(f'  metrics: {metrics_path}')
    print(f'  demo:    {demo_dir} ({len(tubes["tubes"])} tubes in {video})')
    print('SUCCESS: trained, evaluated and rendered CFAD on the synthetic dataset in '
          f'{time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
