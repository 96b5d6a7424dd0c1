"""Build the datasets of every config fragment (on the tiny data) and run the full pipelines."""
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
from mmaction.registry import DATASETS
from mmengine.config import Config
from tiny_tube_data import ACTOR_RGB, HEIGHT, WIDTH, tiny_annotations

from cfad_mm.datasets import load_annotations
from cfad_mm.datasets.presets import (
    JHMDB21_CLASSES,
    MULTISPORTS_CLASSES,
    UCF101_24_CLASSES,
    UCFSPORTS_CLASSES,
)
from cfad_mm.datasets.synthetic_generator import (
    MOTION_CLASSES,
    make_synthetic_dataset,
    synthesize_video,
    video_rng,
)
from cfad_mm.datasets.tube_dataset import window_starts

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets')
# fragment -> (classes of its preset or None, media kind of the tiny data, expected test input (H, W))
FRAGMENTS = {
    'synthetic.py': (None, 'videos', (96, 128)),
    'ucf101-24.py': (UCF101_24_CLASSES, 'jpg', (256, 341)),
    'jhmdb-21.py': (JHMDB21_CLASSES, 'png', (256, 341)),
    'ucfsports.py': (UCFSPORTS_CLASSES, 'jpg', (256, 384)),
    'multisports.py': (MULTISPORTS_CLASSES, 'videos', (256, 456)),
}
TRAIN_INPUT = {
    'synthetic.py': (96, 112),
    'ucf101-24.py': (224, 224),
    'jhmdb-21.py': (224, 224),
    'ucfsports.py': (224, 352),
    'multisports.py': (224, 400)
}


def _point_at(dataset_cfg, ann_file, media):
    dataset_cfg.ann_file = ann_file
    dataset_cfg.data_prefix = dict(video=media)


def _check_sample(sample, clip_len, hw, ori=(HEIGHT, WIDTH)):
    inputs, data_sample = sample['inputs'], sample['data_samples']
    assert tuple(inputs.shape) == (3, clip_len) + hw and str(inputs.dtype) == 'torch.uint8'
    gt = data_sample.gt_instances
    n = len(gt.labels)
    assert tuple(gt.tubes.shape) == (n, clip_len, 4) and tuple(gt.tube_masks.shape) == (n, clip_len)
    meta = data_sample.metainfo
    assert len(meta['frame_numbers']) == clip_len and meta['frame_numbers'].min() >= 1
    assert meta['ori_shape'] == ori and tuple(meta['img_shape']) == hw
    return gt


@pytest.mark.parametrize('fragment', sorted(FRAGMENTS))
def test_build_datasets_from_config_fragment(fragment, tiny_data, tiny_data_jpg, tmp_path):
    classes, media, test_hw = FRAGMENTS[fragment]
    cfg = Config.fromfile(osp.join(CONFIG_DIR, fragment))
    assert cfg.custom_imports == dict(imports=['cfad_mm'], allow_failed_imports=False)
    data = tiny_data_jpg if media == 'jpg' else tiny_data
    ann = tiny_annotations()
    if classes is not None:
        ann['labels'] = list(classes)
    ann_file = str(tmp_path / 'ann.pkl')
    with open(ann_file, 'wb') as f:
        pickle.dump(ann, f, protocol=2)
    media_dir = data['videos'] if media == 'videos' else data['frames']

    _point_at(cfg.train_dataloader.dataset, ann_file, media_dir)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert not train.test_mode and len(train) > 0
    clip_len = cfg.train_dataloader.dataset.clip_len
    gt = _check_sample(train[0], clip_len, TRAIN_INPUT[fragment])
    assert len(gt.labels) >= 1 and gt.tube_masks.any()

    _point_at(cfg.test_dataloader.dataset, ann_file, media_dir)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert test.test_mode
    _check_sample(test[len(test) - 1], clip_len, test_hw)
    if classes is not None:
        assert test.metainfo['classes'] == tuple(classes)


SYNTH_KWARGS = dict(
    num_videos=10,
    frames=(24, 32),
    size=(128, 96),
    seed=0,
    num_classes=5,
    max_actors=3,
    min_action_len=12,
    occluder_prob=0.0)


@pytest.fixture(scope='module')
def synth_layout(tmp_path_factory):
    """The generator's output in the layout the synthetic fragment expects: <root>/data/synth/..."""
    root = tmp_path_factory.mktemp('synth_layout')
    make_synthetic_dataset(str(root / 'data' / 'synth'), logger=None, **SYNTH_KWARGS)
    return root


def test_synthetic_fragment_in_the_expected_layout(synth_layout, monkeypatch):
    monkeypatch.chdir(synth_layout)
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'synthetic.py'))
    test = DATASETS.build(cfg.test_dataloader.dataset)
    ann = load_annotations('data/synth/annotations.pkl')
    assert test.metainfo['classes'] == tuple(MOTION_CLASSES[:5])
    expected = sum(len(window_starts(ann['nframes'][v], 16, 8)) for v in ann['test_videos'][0])
    assert len(test) == expected
    _check_sample(test[0], 16, (96, 128), ori=(96, 128))
    train = DATASETS.build(cfg.train_dataloader.dataset)
    gt = _check_sample(train[0], 16, (96, 112), ori=(96, 128))
    assert gt.tube_masks.any()


def test_gt_tubes_cover_the_generated_actors(synth_layout, monkeypatch):
    """On the generator's videos (no occluders), after decode, crop and flip, the pixels inside the GT boxes
    differ from the (equally transformed) static background and the pixels away from them do not."""
    monkeypatch.chdir(synth_layout)
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'synthetic.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.pipeline = [t for t in dataset_cfg.pipeline if t['type'] != 'ColorJitter']
    train = DATASETS.build(dataset_cfg)
    ann = load_annotations('data/synth/annotations.pkl')
    labels = list(ann['labels'])
    np.random.seed(1)
    flips, checked = set(), 0
    for idx in range(len(train)):
        sample = train[idx]
        meta = sample['data_samples'].metainfo
        video = meta['video_id']
        index = int(video.rsplit('_', 1)[1])
        rendered = synthesize_video(
            video_rng(SYNTH_KWARGS['seed'],
                      index), labels.index(video.split('/')[0]), ann['nframes'][video], SYNTH_KWARGS['size'],
            5, SYNTH_KWARGS['max_actors'], SYNTH_KWARGS['min_action_len'], SYNTH_KWARGS['occluder_prob'])
        sx, tx, sy, ty = meta['input_affine']
        # continuous coordinates x_in = sx * x + tx; pixel index i has its centre at i + 0.5
        warp = np.array([[sx, 0, tx + 0.5 * sx - 0.5], [0, sy, ty + 0.5 * sy - 0.5]], dtype=np.float64)
        height, width = meta['img_shape']
        background = cv2.warpAffine(rendered.background, warp, (width, height), flags=cv2.INTER_NEAREST)
        flips.add(bool(meta['flip']))
        inputs = sample['inputs'].numpy().transpose(1, 2, 3, 0).astype(np.int32)  # T, H, W, C
        differs = np.abs(inputs - background[None].astype(np.int32)).max(axis=-1) > 40
        gt = sample['data_samples'].gt_instances
        tubes, masks = gt.tubes.numpy(), gt.tube_masks.numpy()
        for t in range(inputs.shape[0]):
            near = np.zeros((height, width), bool)
            for x1, y1, x2, y2 in tubes[masks[:, t], t]:
                near[max(int(y1) - 2, 0):int(y2) + 2, max(int(x1) - 2, 0):int(x2) + 2] = True
                assert differs[t][int(y1) + 2:int(y2) - 2, int(x1) + 2:int(x2) - 2].mean() > 0.6, (video, t)
                checked += 1
            assert differs[t][~near].sum() <= 3, (video, t)  # 0 measured; a box 3 px off leaves up to 90
    assert checked > 50 and flips == {True, False}


def _redness(frame_chw):
    rgb = frame_chw.astype(np.int32)
    return (rgb[0] - np.maximum(rgb[1], rgb[2])) > 60


def test_gt_tubes_cover_the_actor_after_the_train_pipeline(tiny_data):
    """After decode, resize, crop, flip and colour jitter the red actor is in the GT boxes, nowhere else."""
    assert ACTOR_RGB[0] - max(ACTOR_RGB[1:]) > 150
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'synthetic.py'))
    _point_at(cfg.train_dataloader.dataset, tiny_data['ann_file'], tiny_data['videos'])
    train = DATASETS.build(cfg.train_dataloader.dataset)
    np.random.seed(0)
    flips, checked = set(), 0
    for idx in range(len(train)):
        sample = train[idx]
        inputs = sample['inputs'].numpy()
        gt = sample['data_samples'].gt_instances
        flips.add(bool(sample['data_samples'].metainfo['flip']))
        tubes, masks = gt.tubes.numpy(), gt.tube_masks.numpy()
        for t in range(inputs.shape[1]):
            red = _redness(inputs[:, t])
            inside = np.zeros_like(red)
            near = np.zeros_like(red)
            for box in tubes[masks[:, t], t]:
                x1, y1, x2, y2 = box
                inside[int(np.ceil(y1)) + 5:int(y2) - 5, int(np.ceil(x1)) + 5:int(x2) - 5] = True
                near[max(int(y1) - 5, 0):int(np.ceil(y2)) + 5,
                     max(int(x1) - 5, 0):int(np.ceil(x2)) + 5] = True
            if inside.any():
                assert red[inside].mean() > 0.95, (idx, t)
                checked += 1
            assert red[~near].sum() <= 3, (idx, t)
    assert checked > 60 and flips == {True, False}
