"""Visual logging: TensorBoard events from a short training, rendered test clips (--show-dir)."""
import glob
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))


def data_options(root, ann):
    opts = []
    for loader in ('train_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.ann_file={ann}', f'{loader}.dataset.data_prefix.video={root}/videos',
                 f'{loader}.num_workers=0', f'{loader}.persistent_workers=False', f'{loader}.batch_size=2']
    return opts + ['train_dataloader.dataset.pipeline.2.scale=(-1,48)',
                   'train_dataloader.dataset.pipeline.3.size=(48,48)',
                   'test_dataloader.dataset.pipeline.2.scale=(-1,48)', f'test_evaluator.ann_file={ann}']


def test_tensorboard_flag_writes_loss_curves(tiny_synth, tmp_path):
    pytest.importorskip('tensorboard')
    import train as train_tool
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    root, ann = tiny_synth
    work = str(tmp_path / 'work')
    train_tool.main([CONFIG, '--work-dir', work, '--seed', '0', '--no-validate', '--tensorboard',
                     '--cfg-options'] +
                    data_options(root, ann) + ['train_cfg.max_epochs=1', 'param_scheduler.1.T_max=1',
                                               'param_scheduler.1.end=1', 'default_hooks.logger.interval=1'])
    events = glob.glob(osp.join(work, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(events[0])
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert {'loss', 'lr', 'loss_heatmap', 'loss_refine_cls'} <= set(tags), tags
    losses = [e.value for e in acc.Scalars('loss')]
    assert len(losses) >= 2 and all(np.isfinite(losses))


def test_add_tensorboard_backend_is_idempotent():
    import train as train_tool
    from mmengine.config import Config
    cfg = Config(dict(visualizer=dict(type='ActionVisualizer', vis_backends=[dict(type='LocalVisBackend')])))
    train_tool.add_tensorboard_backend(cfg)
    train_tool.add_tensorboard_backend(cfg)
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend', 'TensorboardVisBackend']


def test_show_dir_renders_every_test_clip(tiny_synth, tmp_path):
    import test as test_tool

    from cfad_mm.apis import VideoFrames, init_detector
    root, ann = tiny_synth
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'untrained.pth')
    torch.save({'state_dict': init_detector(CONFIG).state_dict(), 'meta': {}}, ckpt)
    show = tmp_path / 'show'
    test_tool.main([CONFIG, ckpt, '--work-dir', str(tmp_path / 'work'), '--show-dir', str(show),
                    '--cfg-options'] +
                   data_options(root, ann) + ['default_hooks.visualization.score_thr=0'])
    files = sorted(glob.glob(str(show / '*.mp4')))
    with open(ann, 'rb') as f:
        test_videos = pickle.load(f)['test_videos'][0]
    # test videos of 24 frames, 16-frame windows with stride 8 -> 2 clips each (first frames 1 and 9)
    expected = sorted(str(show / f"{v.replace('/', '__')}_{s:05d}.mp4") for v in test_videos for s in (1, 9))
    assert files == expected
    clip = VideoFrames(files[0])
    assert clip.num_frames == 16 and clip.shape == (48, 64)


def test_hook_draws_the_predicted_boxes(tmp_path):
    from mmaction.structures import ActionDataSample
    from mmengine.structures import InstanceData

    from cfad_mm.apis import VideoFrames
    from cfad_mm.engine import TubeVisualizationHook
    from cfad_mm.visualization import tube_colour

    class Runner:
        model = torch.nn.Module()
        model.dataset_meta = dict(classes=['run', 'jump'])

    t, h, w = 6, 48, 64
    tubes = torch.zeros(1, t, 4)
    tubes[0, :] = torch.tensor([20., 12., 100., 76.])  # original pixels; the clip is the video at half size
    masks = torch.ones(1, t, dtype=torch.bool)
    masks[0, 0] = False  # no box on the first frame
    ds = ActionDataSample()
    ds.set_metainfo(dict(video_id='cls/v1', frame_numbers=np.arange(11, 11 + t), scale_factor=(0.5, 0.5)))
    ds.pred_instances = InstanceData(tubes=tubes, tube_masks=masks, scores=torch.tensor([0.9]),
                                     labels=torch.tensor([1]))
    hook = TubeVisualizationHook(enable=True, out_dir=str(tmp_path / 'vis'), score_thr=0.5)
    hook.before_test(Runner())
    hook.after_test_iter(Runner(), 0, dict(inputs=[torch.zeros(3, t, h, w, dtype=torch.uint8)]), [ds])
    assert hook.written == [str(tmp_path / 'vis' / 'cls__v1_00011.mp4')]
    frames = VideoFrames(hook.written[0]).get(list(range(t)))
    assert tube_colour(0)[::-1] == (255, 38, 38)  # RGB: tube 0 is red
    # box in the clip: (10, 6) - (50, 38); its left edge (a 1-pixel line at x = 10) is red (blurred by the mp4
    # chroma subsampling), the inside of the box stays black
    for i in range(1, t):
        edge = frames[i][20:30, 8:13].astype(float).mean(0)  # (5 columns, RGB)
        col = int(edge.sum(1).argmax())
        assert 8 + col in (9, 10, 11), (i, edge)
        r, g, b = edge[col]
        assert r > 100 and r > g + 40 and r > b + 40, (i, edge[col])
        assert frames[i][25:32, 25:40].max() < 40
    assert frames[0].max() < 40  # nothing drawn where the tube has no box
    # a tube below score_thr is not drawn
    hook2 = TubeVisualizationHook(enable=True, out_dir=str(tmp_path / 'vis2'), score_thr=0.95)
    hook2.after_test_iter(Runner(), 0, dict(inputs=[torch.zeros(3, t, h, w, dtype=torch.uint8)]), [ds])
    assert VideoFrames(hook2.written[0]).get([3])[0].max() < 40
    with pytest.raises(ValueError, match='needs out_dir'):
        TubeVisualizationHook(enable=True)
