import numpy as np
import pytest
import torch
from mmaction.datasets.transforms import ColorJitter, FormatShape

from cfad_mm.datasets.transforms import (
    PackTubeInputs,
    TubeFlip,
    TubeRandomCrop,
    TubeResize,
    boxes_to_input,
    boxes_to_original,
)


def _results(num_frames=4, height=48, width=64, tubes=None, masks=None, labels=None, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    if tubes is None:
        tubes = np.array([[[10, 5, 20, 15]] * num_frames], dtype=np.float32)
    tubes = np.asarray(tubes, dtype=np.float32)
    masks = np.ones(tubes.shape[:2], bool) if masks is None else np.asarray(masks, bool)
    labels = np.zeros(len(tubes), np.int64) if labels is None else np.asarray(labels, np.int64)
    return dict(
        imgs=list(imgs),
        img_shape=(height, width),
        original_shape=(height, width),
        gt_tubes=tubes,
        gt_tube_masks=masks,
        gt_labels=labels,
        video_id='v',
        frame_numbers=np.arange(1, num_frames + 1),
        frame_valid=np.ones(num_frames, bool),
        clip_len=num_frames,
        num_clips=1)


def test_resize_short_side_hand_computed():
    res = TubeResize(scale=(-1, 96))(_results())
    assert res['img_shape'] == (96, 128) and res['imgs'][0].shape == (96, 128, 3)
    np.testing.assert_allclose(res['gt_tubes'][0, 0], [20, 10, 40, 30])
    np.testing.assert_allclose(res['scale_factor'], [2, 2])
    assert res['ori_shape'] == (48, 64)


def test_resize_fixed_size_and_ratio():
    res = TubeResize(scale=(32, 32), keep_ratio=False)(_results())
    assert res['img_shape'] == (32, 32)
    np.testing.assert_allclose(res['gt_tubes'][0, 0], [5, 5 * 32 / 48, 10, 15 * 32 / 48], rtol=1e-6)
    res = TubeResize(scale=0.5)(_results())
    assert res['img_shape'] == (24, 32)
    np.testing.assert_allclose(res['scale_factor'], [0.5, 0.5])
    with pytest.raises(ValueError, match='positive'):
        TubeResize(scale=-2.0)


def test_flip_hand_computed():
    results = _results(masks=[[True, True, False, True]])
    imgs = [img.copy() for img in results['imgs']]
    res = TubeFlip(flip_ratio=1.0)(results)
    np.testing.assert_allclose(res['gt_tubes'][0, 0], [44, 5, 54, 15])
    np.testing.assert_array_equal(res['gt_tubes'][0, 2], 0)  # absent box stays 0
    np.testing.assert_array_equal(res['imgs'][1], imgs[1][:, ::-1])
    assert res['flip'] is True and res['flip_direction'] == 'horizontal'
    res = TubeFlip(flip_ratio=1.0)(res)  # flipping twice restores everything
    np.testing.assert_allclose(res['gt_tubes'][0, 0], [10, 5, 20, 15])
    assert res['flip'] is False
    res = TubeFlip(flip_ratio=0.0)(_results())
    assert res['flip'] is False and res['flip_direction'] == 'horizontal'
    with pytest.raises(ValueError, match="only direction='horizontal'"):
        TubeFlip(direction='vertical')


def test_crop_keeps_the_tubes_when_they_fit():
    tubes = np.array([[[10, 5, 20, 15], [12, 6, 30, 20]], [[40, 30, 50, 40], [0, 0, 0, 0]]], np.float32)
    masks = np.array([[True, True], [True, False]])
    for seed in range(20):
        np.random.seed(seed)
        res = TubeRandomCrop(size=(44, 40))(_results(2, tubes=tubes, masks=masks, labels=[1, 0]))
        x1, y1, x2, y2 = res['crop_bbox']
        assert x2 - x1 == 44 and y2 - y1 == 40
        # union of the boxes: x 10..50, y 5..40 -> x1 in [6, 10], y1 in [0, 5]
        assert 6 <= x1 <= 10 and 0 <= y1 <= 5
        np.testing.assert_allclose(res['gt_tubes'][masks], tubes[masks] - [x1, y1, x1, y1])
        np.testing.assert_array_equal(res['gt_labels'], [1, 0])
        assert res['img_shape'] == (40, 44) and res['imgs'][0].shape == (40, 44, 3)


def test_crop_exact_position_and_image_content():
    tubes = np.array([[[10, 8, 50, 20]]], np.float32)  # union width 40 = crop width: x offset must be 10
    results = _results(1, tubes=tubes)
    img = results['imgs'][0].copy()
    res = TubeRandomCrop(size=(40, 48))(results)
    np.testing.assert_array_equal(res['crop_bbox'], [10, 0, 50, 48])
    np.testing.assert_allclose(res['gt_tubes'][0, 0], [0, 8, 40, 20])
    np.testing.assert_array_equal(res['imgs'][0], img[:, 10:50])


def test_crop_drops_boxes_and_tubes_cut_away():
    tubes = np.array([[[0, 0, 10, 10]] * 2, [[54, 0, 64, 10]] * 2], np.float32)
    np.random.seed(3)
    seen = set()
    for _ in range(30):
        res = TubeRandomCrop(size=(40, 48))(_results(2, tubes=tubes, labels=[0, 1]))
        x1 = int(res['crop_bbox'][0])
        assert 0 <= x1 <= 24  # the union (0..64) is wider than the crop: the crop lies inside it
        kept = set(res['gt_labels'].tolist())
        assert kept == ({0} if x1 < 10 else set()) | ({1} if x1 + 40 > 54 else set())
        assert res['gt_tubes'].shape == (len(kept), 2, 4) and res['gt_tube_masks'].all()
        boxes = res['gt_tubes'].reshape(-1, 4)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 2] <= 40)
        seen.add(len(kept))
    assert seen == {0, 1}


def test_crop_larger_than_frame_raises():
    with pytest.raises(
            ValueError, match=r"crop \(w, h\)=\(80, 40\) is larger than the frames \(64, 48\) of video 'v'"):
        TubeRandomCrop(size=(80, 40))(_results())


def _random_boxes(rng, n, width, height):
    x1 = rng.uniform(0, width * 0.3, n)
    y1 = rng.uniform(0, height * 0.3, n)
    return np.stack([x1, y1, x1 + rng.uniform(2, width * 0.3, n), y1 + rng.uniform(2, height * 0.3, n)], -1)


@pytest.mark.parametrize('seed', range(5))
def test_round_trip_resize_crop_flip(seed):
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    boxes = _random_boxes(rng, 6, 64, 48).reshape(2, 3, 4).astype(np.float32) + [16, 12, 16, 12]
    pipeline = [TubeResize(scale=(-1, 96)), TubeRandomCrop(size=(112, 80)), TubeFlip(flip_ratio=0.5)]
    res = _results(3, tubes=boxes, labels=[0, 1])
    for t in pipeline:
        res = t(res)
    assert res['gt_tube_masks'].all()  # the tubes fit in the crop, nothing was cut
    back = boxes_to_original(res['gt_tubes'], res)
    np.testing.assert_allclose(back, boxes, atol=1e-4)
    back_t = boxes_to_original(torch.from_numpy(res['gt_tubes']), res)
    assert isinstance(back_t, torch.Tensor) and back_t.dtype == torch.float32
    np.testing.assert_allclose(back_t.numpy(), boxes, atol=1e-4)
    np.testing.assert_allclose(boxes_to_input(boxes, res), res['gt_tubes'], atol=1e-4)
    # the named keys alone (canonical order resize -> crop -> flip) give the same mapping
    named = {k: res[k] for k in ('scale_factor', 'crop_bbox', 'flip', 'flip_direction', 'img_shape')}
    np.testing.assert_allclose(boxes_to_original(res['gt_tubes'], named), boxes, atol=1e-4)


def test_round_trip_any_order_via_affine():
    np.random.seed(1)
    boxes = np.array([[[20, 14, 30, 30], [22, 15, 34, 31]]], np.float32)
    pipeline = [
        TubeFlip(flip_ratio=1.0),
        TubeRandomCrop(size=(48, 40)),
        TubeResize(scale=(96, 60), keep_ratio=False),
        TubeFlip(flip_ratio=1.0),
        TubeRandomCrop(size=(80, 56))
    ]
    res = _results(2, tubes=boxes)
    for t in pipeline:
        res = t(res)
    assert res['gt_tube_masks'].all()
    np.testing.assert_allclose(boxes_to_original(res['gt_tubes'], res), boxes, atol=1e-4)
    np.testing.assert_allclose(boxes_to_input(boxes, res), res['gt_tubes'], atol=1e-4)


def test_boxes_to_original_hand_computed_and_clip():
    meta = dict(
        scale_factor=np.array([2.0, 2.0]),
        crop_bbox=np.array([8, 4, 120, 92]),
        flip=True,
        flip_direction='horizontal',
        img_shape=(88, 112),
        ori_shape=(48, 64))
    # input box (2, 6, 12, 16): unflip -> (100, 6, 110, 16); uncrop -> (108, 10, 118, 20); unscale
    np.testing.assert_allclose(boxes_to_original(np.array([2.0, 6, 12, 16]), meta), [54, 5, 59, 10])
    clipped = boxes_to_original(torch.tensor([[-20.0, -20, 12, 16]]), meta, clip=True)
    np.testing.assert_allclose(clipped.numpy(), [[54, 0, 64, 10]])
    np.testing.assert_allclose(boxes_to_original(np.zeros((0, 4)), meta), np.zeros((0, 4)))
    with pytest.raises(KeyError, match='img_shape'):
        boxes_to_original(np.zeros((1, 4)), dict(flip=True))
    with pytest.raises(ValueError, match=r'\(\.\.\., 4\)'):
        boxes_to_original(np.zeros((2, 5)), meta)


def test_annotation_resolution_mismatch_raises():
    results = _results()
    results['ann_shape'] = (240, 320)
    with pytest.raises(ValueError, match=r"video 'v': decoded frames are 64x48 \(WxH\) but the annotation"):
        TubeResize(scale=(-1, 96))(results)


def test_color_jitter_on_uint8_clip():
    np.random.seed(0)
    results = _results()
    before = np.stack(results['imgs']).copy()
    res = ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)(results)
    after = np.stack(res['imgs'])
    assert after.dtype == np.uint8 and after.shape == before.shape
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 0.5


def test_pack_tube_inputs():
    results = _results(
        4, tubes=np.array([[[10, 5, 20, 15]] * 4], np.float32), masks=[[True, True, False, True]], labels=[1])
    results['frame_numbers'] = np.array([7, 8, 9, 9])
    results['frame_valid'] = np.array([True, True, True, False])
    results['frame_inds'] = np.array([6, 7, 8, 8])  # decoder indices, 0-based
    results = TubeFlip(flip_ratio=1.0)(TubeResize(scale=(-1, 96))(results))
    frame2 = results['imgs'][2].copy()
    packed = PackTubeInputs()(FormatShape(input_format='NCTHW', collapse=True)(results))
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and tuple(inputs.shape) == (3, 4, 96, 128)
    np.testing.assert_array_equal(inputs[:, 2].permute(1, 2, 0).numpy(), frame2)
    gt = sample.gt_instances
    assert gt.tubes.dtype == torch.float32 and tuple(gt.tubes.shape) == (1, 4, 4)
    assert gt.tube_masks.dtype == torch.bool and gt.labels.dtype == torch.int64
    np.testing.assert_allclose(gt.tubes[0, 0].numpy(), [88, 10, 108, 30])
    meta = sample.metainfo
    np.testing.assert_array_equal(meta['frame_numbers'], [7, 8, 9, 9])
    assert meta['frame_numbers'].dtype == np.int64
    assert 'frame_inds' not in meta  # the 0-based decoder indices are not packed
    np.testing.assert_array_equal(meta['frame_valid'], [True, True, True, False])
    assert meta['ori_shape'] == (48, 64) and meta['img_shape'] == (96, 128) and meta['flip'] is True
    assert meta['video_id'] == 'v'
    np.testing.assert_allclose(boxes_to_original(gt.tubes[0, 0], meta).numpy(), [10, 5, 20, 15], atol=1e-5)


def test_pack_requires_format_shape():
    with pytest.raises(ValueError, match=r'\(C, T, H, W\) from FormatShape'):
        PackTubeInputs()(_results())


def test_pack_tube_inputs_refuses_the_old_meta_key():
    """The packed 1-based numbers are 'frame_numbers'; listing 'frame_inds' (their old name) in meta_keys
    would pack the 0-based decoder indices instead, so it is refused with the new name."""
    with pytest.raises(ValueError, match="replace 'frame_inds' by 'frame_numbers'"):
        PackTubeInputs(meta_keys=('video_id', 'frame_inds', 'frame_valid'))
