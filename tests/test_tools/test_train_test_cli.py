"""tools/train.py and tools/test.py drive the stock mmengine Runner end to end on a tiny synthetic set."""
import os.path as osp
import pickle
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))


def data_options(root, ann):
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.ann_file={ann}', f'{loader}.dataset.data_prefix.video={root}/videos',
                 f'{loader}.num_workers=0', f'{loader}.persistent_workers=False', f'{loader}.batch_size=2']
    # 64x48 frames: resize the short side to 48 and crop 48x48 in training
    opts += ['train_dataloader.dataset.pipeline.2.scale=(-1,48)',
             'train_dataloader.dataset.pipeline.3.size=(48,48)',
             'test_dataloader.dataset.pipeline.2.scale=(-1,48)',
             'val_dataloader.dataset.pipeline.2.scale=(-1,48)', f'val_evaluator.ann_file={ann}',
             f'test_evaluator.ann_file={ann}']
    return opts


def test_train_resume_and_test_with_dump(tiny_synth, tmp_path):
    import test as test_tool
    import train as train_tool
    root, ann = tiny_synth
    work = str(tmp_path / 'work')
    opts = data_options(root, ann) + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                                      'param_scheduler.1.T_max=1', 'param_scheduler.1.end=1',
                                      'default_hooks.checkpoint.interval=1']
    train_tool.main([CONFIG, '--work-dir', work, '--seed', '0', '--cfg-options'] + opts)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    # --resume auto with a finished schedule extended by one epoch continues from epoch 1
    opts2 = [o for o in opts if not o.startswith(('train_cfg.max_epochs', 'param_scheduler'))]
    train_tool.main([CONFIG, '--work-dir', work, '--resume', '--seed', '0', '--cfg-options'] + opts2 +
                    ['train_cfg.max_epochs=2', 'param_scheduler.1.T_max=2', 'param_scheduler.1.end=2'])
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    dump = str(tmp_path / 'results.pkl')
    metrics = test_tool.main([CONFIG, osp.join(work, 'epoch_2.pth'), '--work-dir', work, '--dump', dump,
                              '--cfg-options'] + data_options(root, ann))
    for key in ('tube/frame_mAP@0.5', 'tube/video_mAP@0.2', 'tube/video_mAP@0.5', 'tube/video_mAP@0.75',
                'tube/video_mAP@0.5:0.95'):
        assert 0.0 <= metrics[key] <= 1.0
    with open(dump, 'rb') as f:
        results = pickle.load(f)
    assert len(results) > 0 and 'pred_instances' in results[0]
    assert results[0]['pred_instances']['tubes'].shape[1:] == (16, 4)


def test_config_typo_is_reported(tmp_path):
    import train as train_tool
    with pytest.raises(KeyError, match='NoSuchHead'):
        train_tool.main([CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                         'model.coarse_head.type=NoSuchHead',
                         'train_dataloader.dataset.ann_file=' + str(tmp_path / 'missing.pkl')])
