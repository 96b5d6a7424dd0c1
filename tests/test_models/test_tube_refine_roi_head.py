"""TubeRefineRoIHead: targets by hand, losses, inference passes; the detector's older config and checkpoint
layouts; the one post-processing function (hand-computed scores, NMS, frame masks)."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import cfad_mm  # noqa: F401
from cfad_mm.models.task_modules.tube_coder import PolyTubeCoder
from cfad_mm.models.utils.clip_geometry import ClipGeometry
from cfad_mm.models.utils.tube_postprocessing import combine_scores, outputs_to_clip_tubes
from cfad_mm.structures import clamp_boxes_to_image

DefaultScope.get_instance('test_tube_refine_roi_head', scope_name='mmaction')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
T, H, W = 8, 64, 64
GEOM = ClipGeometry(num_frames=T, img_shape=(H, W), stride_t=2.0, spatial_scale=1 / 8)
NUM_CLASSES = 3


def roi_head(**kw):
    cfg = dict(type='TubeRefineRoIHead', in_channels=16, num_classes=NUM_CLASSES,
               tube_coder=dict(type='PolyTubeCoder', degree=2),
               key_selector=dict(type='KeyTimestampSelector', num_keys=2, hidden_channels=16),
               refine_head=dict(type='RefineTubeHead', roi_size=3, hidden_channels=16))
    cfg.update(kw)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def gt_clip():
    """One GT tube: a 20x20 box moving right on frames 1..6, label 2."""
    tubes = torch.zeros(1, T, 4)
    masks = torch.zeros(1, T, dtype=torch.bool)
    for t in range(1, 7):
        tubes[0, t] = torch.tensor([10. + 3 * t, 20., 30. + 3 * t, 40.])
        masks[0, t] = True
    return InstanceData(tubes=tubes, tube_masks=masks, labels=torch.tensor([2]))


def test_get_targets_by_hand():
    """The GT tube itself -> positive of its class with its GT; a tube elsewhere -> background; a tube in
    clip 1 (which has no GT) -> background."""
    head = roi_head()
    gt = gt_clip()
    coeffs, extents = head.coder.encode(gt.tubes, gt.tube_masks, GEOM.img_shape)
    far = coeffs.clone()
    far[:, 0, 0] += 0.5  # half the image to the right: no overlap
    targets = head.get_targets(torch.tensor([0, 0, 1]), torch.cat([coeffs, far, coeffs]),
                               torch.cat([extents] * 3),
                               [gt, InstanceData(tubes=torch.zeros(0, T, 4),
                                                 tube_masks=torch.zeros(0, T, dtype=bool),
                                                 labels=torch.zeros(0, dtype=torch.long))], GEOM)
    assert targets['labels'].tolist() == [2, NUM_CLASSES, NUM_CLASSES]
    assert targets['positive'].tolist() == [True, False, False]
    torch.testing.assert_close(targets['gt_tubes'][0], gt.tubes[0])
    assert torch.equal(targets['gt_masks'][0], gt.tube_masks[0]) and not targets['gt_masks'][1:].any()


def test_loss_keys_finite_and_reach_both_modules():
    head = roi_head()
    gt = gt_clip()
    feats = torch.randn(1, 16, T // 2, H // 8, W // 8)
    coeffs, extents = head.coder.encode(gt.tubes, gt.tube_masks, GEOM.img_shape)
    losses = head.loss(feats, torch.tensor([0, 0]), torch.cat([coeffs, coeffs + 0.05]),
                       torch.cat([extents] * 2), [gt], GEOM)
    assert set(losses) == {'loss_refine_cls', 'loss_key_error', 'loss_refine_key_box', 'loss_refine_key_giou',
                           'loss_refine_tube_box', 'loss_refine_tube_giou'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name in ('key_selector', 'refine_head'):
        grads = [p.grad.abs().sum() for p in getattr(head, name).parameters() if p.grad is not None]
        assert grads and float(sum(grads)) > 0, name


def test_predict_passes_and_cfg_checks():
    feats = torch.randn(1, 16, T // 2, H // 8, W // 8)
    gt = gt_clip()
    one, two = roi_head(test_cfg=dict(refine_iters=1)), roi_head(test_cfg=dict(refine_iters=2))
    coeffs, extents = one.coder.encode(gt.tubes, gt.tube_masks, GEOM.img_shape)
    with torch.no_grad():
        c1, l1 = one.predict(feats, torch.tensor([0]), coeffs, extents, GEOM)
        c2, l2 = two.predict(feats, torch.tensor([0]), coeffs, extents, GEOM)
        again = one.refine(feats, torch.tensor([0]), c1, extents, GEOM)
    assert c1.shape == coeffs.shape and l1.shape == (1, NUM_CLASSES + 1)
    # the second pass refines the output of the first with the same weights
    torch.testing.assert_close(c2, again['coeffs'])
    # the key boxes entering the refine head are the pass's input tubes at the key frames
    at_keys = one.coder.decode(c1, extents, GEOM.img_shape, times=again['key_frames'])[0]
    torch.testing.assert_close(again['key_boxes'], clamp_boxes_to_image(at_keys, GEOM.img_shape))
    assert again['refined'].shape == again['key_boxes'].shape == (1, again['key_frames'].shape[1], 4)
    torch.testing.assert_close(l2, again['cls_logits'])
    with pytest.raises(ValueError, match='test_cfg.refine_iters must be >= 1'):
        roi_head(test_cfg=dict(refine_iters=0))
    with pytest.raises(KeyError, match='refine_iter'):
        roi_head(train_cfg=dict(refine_iter=2))


# ------------------------------------------------------------------------------------- the detector's layouts
def detector_cfg(**model):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py'))
    cfg.model.update(model)
    return cfg.model


def test_older_config_layout_builds_the_same_model_with_a_warning():
    new = detector_cfg()
    old = dict(new)
    roi = old.pop('roi_head')
    old.update(key_selector=roi['key_selector'], refine_head=roi['refine_head'], assigner=roi['assigner'])
    with pytest.warns(DeprecationWarning, match='inside model.roi_head'):
        model_old = MODELS.build(old)
    model_new = MODELS.build(new)
    assert list(model_old.state_dict()) == list(model_new.state_dict())
    both = dict(new, key_selector=roi['key_selector'])
    with pytest.raises(ValueError, match='model.key_selector moved into model.roi_head'):
        MODELS.build(both)
    with pytest.raises(ValueError, match='model.roi_head.train_cfg is set by the detector'):
        MODELS.build(dict(new, roi_head=dict(roi, train_cfg=dict(refine_iters=2))))


def test_checkpoint_with_the_older_layout_loads_into_the_roi_head():
    """A state dict of the pre-RoI-head layout (top-level key_selector / refine_head) loads with torch's
    strict loader and gives the same weights."""
    torch.manual_seed(0)
    model = MODELS.build(detector_cfg())
    state = model.state_dict()
    legacy = {k.replace('roi_head.', '', 1) if k.startswith('roi_head.') else k: v.clone() + 1
              for k, v in state.items() if v.is_floating_point()}
    legacy.update({k: v for k, v in state.items() if not v.is_floating_point()})
    assert (any(k.startswith('key_selector.') for k in legacy)
            and not any(k.startswith('roi_head.') for k in legacy))
    fresh = MODELS.build(detector_cfg())
    fresh.load_state_dict(dict(legacy), strict=True)
    torch.testing.assert_close(fresh.roi_head.refine_head.box_branch[0].weight,
                               state['roi_head.refine_head.box_branch.0.weight'] + 1)


# ---------------------------------------------------------------------------------------- post-processing
def test_combine_scores_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0), 0.0]])  # softmax: 0.2, 0.6, 0.2
    assert combine_scores(torch.tensor([0.6]), logits, torch.tensor([1])).item() == pytest.approx(0.6)
    assert combine_scores(torch.tensor([0.8]), logits, torch.tensor([0])).item() == pytest.approx(0.4)
    assert combine_scores(torch.tensor([-0.1]), logits, torch.tensor([0])).item() == 0.0


def test_outputs_to_clip_tubes_scores_frames_and_coarse_only():
    coder = PolyTubeCoder(degree=1)
    gt = gt_clip()
    coeffs, extents = coder.encode(gt.tubes, gt.tube_masks, (H, W))
    coeffs, extents = coeffs.repeat(2, 1, 1), extents.repeat(2, 1)
    coeffs[1, 0, 0] += 0.5  # a second, far tube
    scores, labels = torch.tensor([0.6, 0.8]), torch.tensor([1, 0])
    logits = torch.tensor([[0.0, math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # p = 0.5, 0.25
    out = outputs_to_clip_tubes(coder, scores, labels, coeffs, extents, logits, (H, W), T, 0.05, 0.5, 10)
    assert out.labels.tolist() == [1, 0]
    assert out.scores.tolist() == pytest.approx([math.sqrt(0.6 * 0.5), math.sqrt(0.8 * 0.25)])
    torch.testing.assert_close(out.tubes[0][gt.tube_masks[0]], gt.tubes[0][gt.tube_masks[0]], atol=1e-3,
                               rtol=0)
    assert torch.equal(out.tube_masks[0], gt.tube_masks[0])
    # coarse only: the coarse scores rank the tubes
    coarse = outputs_to_clip_tubes(coder, scores, labels, coeffs, extents, None, (H, W), T, 0.05, 0.5, 10)
    assert coarse.scores.tolist() == pytest.approx([0.8, 0.6]) and coarse.labels.tolist() == [0, 1]
    # frames after the end of the video are masked; a tube left without frames is dropped
    valid = np.zeros(T, bool)
    valid[:4] = True
    masked = outputs_to_clip_tubes(coder, scores, labels, coeffs, extents, None, (H, W), T, 0.05, 0.5, 10,
                                   frame_valid=valid)
    assert masked.tube_masks.sum(1).tolist() == [3, 3]
    valid[:] = False
    valid[7] = True
    assert len(outputs_to_clip_tubes(coder, scores, labels, coeffs, extents, None, (H, W), T, 0.05, 0.5, 10,
                                     frame_valid=valid)) == 0
    # score threshold and max_per_clip
    assert outputs_to_clip_tubes(coder, scores, labels, coeffs, extents, None, (H, W), T, 0.7, 0.5,
                                 10).scores.tolist() == pytest.approx([0.8])
    assert len(outputs_to_clip_tubes(coder, scores, labels, coeffs, extents, None, (H, W), T, 0.0, 0.5,
                                     1)) == 1


def test_load_model_checkpoint_renames_the_older_layout(tmp_path):
    from cfad_mm.engine.checkpoint import load_model_checkpoint
    torch.manual_seed(0)
    model = MODELS.build(detector_cfg())
    legacy = {k.replace('roi_head.', '', 1): v.clone() for k, v in model.state_dict().items()}
    path = str(tmp_path / 'legacy.pth')
    torch.save({'state_dict': legacy, 'meta': {}}, path)
    torch.manual_seed(1)
    fresh = MODELS.build(detector_cfg())
    load_model_checkpoint(fresh, path, strict=True)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)


def test_checkpoint_saved_before_the_roi_head_predicts_as_before():
    """The legacy checkpoint of ``tests/data`` (written with the top-level key_selector / refine_head layout)
    loads unchanged and gives the predictions the code before the RoI head gave on the same clip
    (``..._predictions_3af715f.npz``: this function's computation, run at commit 3af715f)."""
    from mmaction.structures import ActionDataSample

    from cfad_mm.apis import init_detector
    small = {'model.backbone.base_channels': 4, 'model.feat_channels': 16,
             'model.proposal_head.feat_channels': 16, 'model.coarse_head.feat_channels': 16,
             'model.roi_head.refine_head.hidden_channels': 16, 'model.test_cfg.score_thr': 0.0}
    model = init_detector(osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py'),
                          osp.join(REPO, 'tests/data/cfad_tiny-small_mmengine-0.10.7_legacy.pth'), 'cpu',
                          small)
    g = torch.Generator().manual_seed(0)
    clip = torch.randint(0, 256, (3, 16, 96, 128), generator=g, dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ActionDataSample()]), False)
    with torch.no_grad():
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
    ref = np.load(osp.join(REPO, 'tests/data/cfad_tiny-small_legacy_predictions_3af715f.npz'))
    assert len(pred) == len(ref['scores']) == 9
    np.testing.assert_array_equal(pred.labels.numpy(), ref['labels'])
    np.testing.assert_array_equal(pred.tube_masks.numpy(), ref['tube_masks'])
    # float kernels differ between CPUs: equal here, within rounding elsewhere
    np.testing.assert_allclose(pred.scores.numpy(), ref['scores'], atol=1e-4)
    np.testing.assert_allclose(pred.tubes.numpy(), ref['tubes'], atol=0.05)
