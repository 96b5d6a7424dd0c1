"""Sparse long windows end to end: clip_len 8 every 2 frames (span 15) through tools/train.py, tools/test.py
(the metric links and scores every frame) and inference_video (every frame of the video covered)."""
import os.path as osp
import pickle
import sys

import numpy as np
from test_train_test_cli import data_options

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))
T, K = 8, 2
SPAN = (T - 1) * K + 1


def span_options():
    opts = ['model.frame_interval=2']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.clip_len={T}', f'{loader}.dataset.frame_interval={K}']
    return opts


def test_train_test_and_inference_on_sparse_long_windows(tiny_synth, tmp_path):
    import test as test_tool
    import train as train_tool

    from cfad_mm.apis import inference_video, init_detector
    from cfad_mm.evaluation import load_dump
    root, ann = tiny_synth
    work = str(tmp_path / 'work')
    opts = data_options(root, ann) + span_options() + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=5', 'param_scheduler.1.T_max=1',
        'param_scheduler.1.end=1', 'model.test_cfg.score_thr=0.0']
    train_tool.main([CONFIG, '--work-dir', work, '--seed', '0', '--cfg-options'] + opts)
    ckpt = osp.join(work, 'epoch_1.pth')
    dump = str(tmp_path / 'dump.pkl')
    metrics = test_tool.main([CONFIG, ckpt, '--work-dir', work, '--dump', dump, '--cfg-options'] + opts)
    assert 'tube/frame_mAP@0.5' in metrics
    clips = [c for video in load_dump(dump).values() for c in video]
    # every clip prediction covers the 15 frames of its span, the decoded frames being every second one
    assert clips
    assert all(len(c['frame_numbers']) == SPAN and c['tube_masks'].shape[1] == SPAN for c in clips)
    model = init_detector(CONFIG, ckpt, cfg_options={
        'model.frame_interval': K, 'model.test_cfg.score_thr': 0.0, 'test_dataloader.dataset.clip_len': T,
        'test_dataloader.dataset.frame_interval': K})
    with open(ann, 'rb') as f:
        video = sorted(pickle.load(f)['nframes'])[0]
    res = inference_video(model, osp.join(root, 'videos', video + '.mp4'), progress=False)
    covered = np.zeros(res['nframes'], bool)
    for c in res['clips']:
        assert len(c['frame_numbers']) == SPAN
        covered[np.asarray(c['frame_numbers'])[c['frame_valid']] - 1] = True
    assert covered.all()
    tubes = res['tubes']
    if len(tubes['scores']):  # linked tubes are dense on the video's frames, odd and even alike
        assert tubes['tube_masks'].shape[1] == res['nframes']
        assert tubes['tube_masks'][:, 1::2].any() and tubes['tube_masks'][:, 0::2].any()
