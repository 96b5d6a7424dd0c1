"""Long runs: a training process killed with SIGKILL resumes with ``--resume`` (auto) and ends with the same
number of iterations and every checkpoint; same seed + ``--deterministic`` gives the same loss curve; a NaN
loss in the middle of a real training is skipped, naming the batch's videos."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))


def options(root, ann, epochs, clips=4):
    """Options of a tiny run: ``clips`` training clips (batch 2), ``epochs`` epochs, a checkpoint per
    epoch."""
    opts = [f'train_dataloader.dataset.indices={clips}', f'train_dataloader.dataset.ann_file={ann}',
            f'train_dataloader.dataset.data_prefix.video={root}/videos', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'train_dataloader.batch_size=2',
            'train_dataloader.dataset.pipeline.2.scale=(-1,48)',
            'train_dataloader.dataset.pipeline.3.size=(48,48)', f'train_cfg.max_epochs={epochs}',
            f'param_scheduler.1.T_max={epochs}', f'param_scheduler.1.end={epochs}',
            'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=-1',
            'default_hooks.checkpoint.save_best=None', 'default_hooks.logger.interval=1']
    return opts


def _iters(path):
    return torch.load(path, map_location='cpu', weights_only=False)['meta']['iter']


def test_sigkill_then_resume_auto_finishes_the_schedule(tiny_synth, tmp_path):
    root, ann = tiny_synth
    work = str(tmp_path / 'work')
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), CONFIG, '--work-dir', work, '--seed', '0',
           '--no-validate', '--cfg-options'] + options(root, ann, 3, clips=2)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not osp.isfile(osp.join(work, 'epoch_1.pth')):
            assert proc.poll() is None, 'the training ended before it could be killed'
            assert time.time() < deadline, 'no checkpoint after 120 s'
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not osp.isfile(osp.join(work, 'epoch_3.pth'))
    per_epoch = _iters(osp.join(work, 'epoch_1.pth'))
    assert per_epoch > 0
    resumed = subprocess.run(cmd[:3] + ['--resume', 'auto'] + cmd[3:], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Auto resumed from the latest checkpoint' in resumed.stdout + resumed.stderr
    for epoch in (1, 2, 3):  # nothing lost, every checkpoint loads and has its iteration count
        assert _iters(osp.join(work, f'epoch_{epoch}.pth')) == epoch * per_epoch
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'epoch_3.pth')
    assert not glob.glob(osp.join(work, '*.cfad-*'))


def _loss_curve(work):
    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        rows = [json.loads(line) for line in f]
    return [(r['iter'], r['loss']) for r in rows if 'loss' in r]


def test_same_seed_deterministic_gives_the_same_loss_curve_and_nan_steps_are_skipped(tiny_synth, tmp_path):
    import train as train_tool
    from mmengine.config import Config

    from cfad_mm.apis import build_runner
    root, ann = tiny_synth
    curves = []
    for run in range(2):
        work = str(tmp_path / f'run{run}')
        train_tool.main([CONFIG, '--work-dir', work, '--seed', '7', '--deterministic', '--no-validate',
                         '--cfg-options'] + options(root, ann, 1, clips=6) +
                        ['default_hooks.checkpoint.interval=100'])
        curves.append(_loss_curve(work))
    assert len(curves[0]) >= 3
    assert curves[0] == curves[1]

    # the same run with a NaN loss injected at the second iteration: skipped, logged with its videos
    args = train_tool.parse_args([CONFIG, '--work-dir', str(tmp_path / 'nan'), '--seed', '7',
                                  '--deterministic', '--no-validate', '--cfg-options']
                                 + options(root, ann, 1, clips=6) + ['default_hooks.checkpoint.interval=100'])
    runner = build_runner(train_tool.merge_args(Config.fromfile(CONFIG), args))
    model_loss = runner.model.loss
    calls = []

    def loss_with_a_nan(inputs, data_samples):
        losses = model_loss(inputs, data_samples)
        calls.append([ds.metainfo['video_id'] for ds in data_samples])
        if len(calls) == 2:
            losses['loss_actionness'] = losses['loss_actionness'] * float('nan')
        return losses

    runner.model.loss = loss_with_a_nan
    runner.train()
    skipped = runner.optim_wrapper.skipped
    assert [(s['iter'], s['what'], s['videos']) for s in skipped] == [(1, 'loss', calls[1])]
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    with open(glob.glob(osp.join(str(tmp_path / 'nan'), '*', '*.log'))[0]) as f:
        log = f.read()
    assert f"Non-finite loss (nan) at iteration 2; videos of the batch: [{', '.join(calls[1])}]" in log
    assert 'Epoch 0: 1 optimizer step(s) skipped for a non-finite loss or gradient' in log
    assert 'Skipped in this run: 1 optimizer step(s) skipped' in log
