"""tools/dist_train.sh: 2 processes (torchrun, gloo on CPU) train a few iterations and save a checkpoint."""
import math
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason='torch built without the gloo backend')
def test_two_process_gloo_training(tiny_synth, tmp_path):
    from mmaction.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    root, ann = tiny_synth
    opts = [f'train_dataloader.dataset.ann_file={ann}',
            f'train_dataloader.dataset.data_prefix.video={root}/videos', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'train_dataloader.batch_size=1',
            'train_dataloader.dataset.pipeline.2.scale=(-1,48)',
            'train_dataloader.dataset.pipeline.3.size=(48,48)', 'train_cfg.max_epochs=1',
            'param_scheduler.1.T_max=1', 'param_scheduler.1.end=1', 'default_hooks.logger.interval=1']
    work = str(tmp_path / 'work')
    env = dict(os.environ, PORT=str(free_port()),
               PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'], OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/dist_train.sh'), CONFIG, '2', '--work-dir', work,
                           '--seed', '0', '--no-validate', '--cfg-options'] + opts,
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    assert 'Distributed training: True' in log
    # both ranks ran and split the data: one epoch is ceil(clips / 2) iterations of batch 1 (one process alone
    # would run `clips` iterations; the DistributedSampler gives each of the 2 ranks half of them)
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(dict(o.split('=', 1) for o in opts[:2]))
    DefaultScope.get_instance('test_dist_train', scope_name='mmaction')
    num_clips = len(DATASETS.build(cfg.train_dataloader.dataset))
    assert num_clips >= 4
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == math.ceil(num_clips / 2)
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])  # saved unwrapped, loadable alone
