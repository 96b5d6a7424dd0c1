"""TubeAssigner: hand-made tubes with known spatio-temporal IoUs -> positives / ignored / negatives,
class-aware matching, ties, empty inputs and error cases."""
import pytest
import torch
from mmaction.registry import TASK_UTILS
from mmdet.models.task_modules.assigners import AssignResult
from mmengine.structures import InstanceData

import cfad_mm  # noqa: F401
from cfad_mm.models.task_modules.tube_assigner import TubeAssigner
from cfad_mm.structures.tube_ops import tube_st_iou

T = 4


def tube(box, frames):
    """A constant-box tube ``(T, 4)`` present on ``frames``, and its mask ``(T,)``."""
    mask = torch.zeros(T, dtype=torch.bool)
    mask[list(frames)] = True
    return torch.tensor(box, dtype=torch.float32).expand(T, 4).clone(), mask


def stack(*tubes):
    return torch.stack([t for t, _ in tubes]), torch.stack([m for _, m in tubes])


# GT 0: a 10x10 box on all 4 frames (label 3); GT 1: a 10x10 box further right on frames 0..1 (label 5)
GT_TUBES, GT_MASKS = stack(tube([0, 0, 10, 10], range(4)), tube([20, 0, 30, 10], range(2)))
GT_LABELS = torch.tensor([3, 5])
# st-IoU = temporal IoU x mean frame IoU, by hand:
PREDS = [
    (tube([0, 0, 10, 10], range(4)), 1.0, 0),  # GT 0 itself
    (tube([0, 0, 10, 5], range(4)), 0.5, 0),  # half of GT 0's box on every frame (== pos_iou_thr)
    (tube([0, 0, 10, 4.5], range(4)), 0.45, 0),  # in [neg_iou_thr, pos_iou_thr): ignored
    (tube([0, 0, 10, 3], range(4)), 0.3, 0),  # below neg_iou_thr
    (tube([20, 0, 30, 10], range(3)), 2 / 3, 1),  # GT 1's box over 3 frames: tIoU 2/3 x frame IoU 1
    (tube([100, 100, 110, 110], range(4)), 0.0, 0),  # overlaps nothing
    (tube([0, 0, 10, 10], [3]), 0.25, 0),  # GT 0's box on one frame: tIoU 1/4
]
PRED_TUBES, PRED_MASKS = stack(*[p for p, _, _ in PREDS])
MAX_IOUS = torch.tensor([iou for _, iou, _ in PREDS])


def assign(assigner, pred_tubes, pred_masks, gt_tubes, gt_masks, gt_labels, pred_labels=None):
    """``assigner.assign`` on InstanceData built from the tensors (mmdet's assigner interface)."""
    pred = InstanceData(tubes=pred_tubes, tube_masks=pred_masks)
    if pred_labels is not None:
        pred.labels = pred_labels
    return assigner.assign(pred, InstanceData(tubes=gt_tubes, tube_masks=gt_masks, labels=gt_labels))


def test_build_from_registry():
    assigner = TASK_UTILS.build(dict(type='TubeAssigner', pos_iou_thr=0.6, neg_iou_thr=0.3, class_aware=True))
    assert isinstance(assigner, TubeAssigner)
    assert (assigner.pos_iou_thr, assigner.neg_iou_thr, assigner.class_aware) == (0.6, 0.3, True)


def test_hand_made_ious_match_tube_ops():
    ious = tube_st_iou(PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS)
    expected = torch.zeros(len(PREDS), 2)
    for i, (_, iou, g) in enumerate(PREDS):
        expected[i, g] = iou
    assert torch.allclose(ious, expected, atol=1e-6)


def test_assign_positive_ignored_negative():
    res = assign(TubeAssigner(pos_iou_thr=0.5, neg_iou_thr=0.4), PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS,
                                                                GT_LABELS)
    assert isinstance(res, AssignResult)
    assert res.num_gts == 2
    assert res.gt_inds.tolist() == [1, 1, -1, 0, 2, 0, 0]
    assert res.labels.tolist() == [3, 3, -1, -1, 5, -1, -1]
    assert res.gt_inds.dtype == torch.long and res.labels.dtype == torch.long
    assert torch.allclose(res.max_overlaps, MAX_IOUS, atol=1e-6)


def test_thresholds_move_the_boundaries():
    # neg == pos: nothing ignored
    res = assign(TubeAssigner(pos_iou_thr=0.45, neg_iou_thr=0.45), PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS,
                                                                  GT_LABELS)
    assert res.gt_inds.tolist() == [1, 1, 1, 0, 2, 0, 0]
    # a wide ignore band
    res = assign(TubeAssigner(pos_iou_thr=0.9, neg_iou_thr=0.2), PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS,
                                                                GT_LABELS)
    assert res.gt_inds.tolist() == [1, -1, -1, -1, -1, 0, -1]
    assert res.labels.tolist() == [3, -1, -1, -1, -1, -1, -1]


def test_single_prediction_equals_its_row_of_the_batch():
    assigner = TubeAssigner()
    full = assign(assigner, PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS, GT_LABELS)
    for i in range(len(PREDS)):
        one = assign(assigner, PRED_TUBES[i:i + 1], PRED_MASKS[i:i + 1], GT_TUBES, GT_MASKS, GT_LABELS)
        assert one.gt_inds.tolist() == full.gt_inds[i:i + 1].tolist()
        assert one.labels.tolist() == full.labels[i:i + 1].tolist()


def test_prediction_overlapping_two_gts_takes_the_larger_iou():
    # GT 0 on frames 0..3, GT 1 == GT 0's box on frames 0..1: a prediction on frames 0..1 has IoU 1/2 vs 1
    gt_tubes, gt_masks = stack(tube([0, 0, 10, 10], range(4)), tube([0, 0, 10, 10], range(2)))
    pred_tubes, pred_masks = stack(tube([0, 0, 10, 10], range(2)))
    res = assign(TubeAssigner(), pred_tubes, pred_masks, gt_tubes, gt_masks, torch.tensor([0, 1]))
    assert res.gt_inds.tolist() == [2] and res.labels.tolist() == [1]
    assert torch.allclose(res.max_overlaps, torch.tensor([1.0]))


def test_ties_go_to_the_first_gt():
    gt_tubes, gt_masks = stack(tube([0, 0, 10, 10], range(4)), tube([0, 0, 10, 10], range(4)))
    res = assign(TubeAssigner(), gt_tubes[:1], gt_masks[:1], gt_tubes, gt_masks, torch.tensor([7, 8]))
    assert res.gt_inds.tolist() == [1] and res.labels.tolist() == [7]


def test_class_aware():
    assigner = TubeAssigner(class_aware=True)
    # predictions 0 and 4 with the wrong label lose their match; prediction 1 keeps it
    pred_labels = torch.tensor([5, 3, 3, 3, 3, 3, 3])
    res = assign(assigner, PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS, GT_LABELS, pred_labels=pred_labels)
    assert res.gt_inds.tolist() == [0, 1, -1, 0, 0, 0, 0]
    assert res.labels.tolist() == [-1, 3, -1, -1, -1, -1, -1]
    assert torch.allclose(res.max_overlaps, torch.tensor([0., 0.5, 0.45, 0.3, 0., 0., 0.25]), atol=1e-6)
    # class-agnostic ignores pred_labels
    agnostic = assign(TubeAssigner(), PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS, GT_LABELS,
                                     pred_labels=pred_labels)
    assert agnostic.gt_inds.tolist() == [1, 1, -1, 0, 2, 0, 0]


def test_class_aware_needs_pred_labels():
    with pytest.raises(ValueError, match='needs pred_instances.labels'):
        assign(TubeAssigner(class_aware=True), PRED_TUBES, PRED_MASKS, GT_TUBES, GT_MASKS, GT_LABELS)


def test_no_gt():
    no_masks = torch.zeros(0, T, dtype=torch.bool)
    res = assign(TubeAssigner(), PRED_TUBES, PRED_MASKS, torch.zeros(0, T, 4), no_masks,
                                torch.zeros(0, dtype=torch.long))
    assert res.num_gts == 0
    assert res.gt_inds.tolist() == [0] * len(PREDS)
    assert res.labels.tolist() == [-1] * len(PREDS)
    assert res.max_overlaps.tolist() == [0.0] * len(PREDS)


def test_no_prediction():
    res = assign(TubeAssigner(), torch.zeros(0, T, 4), torch.zeros(0, T, dtype=torch.bool), GT_TUBES,
                 GT_MASKS, GT_LABELS)
    assert res.num_gts == 2
    assert res.gt_inds.shape == (0, ) and res.labels.shape == (0, ) and res.max_overlaps.shape == (0, )


def test_empty_prediction_mask_is_negative():
    pred_tubes, pred_masks = stack(tube([0, 0, 10, 10], []))
    res = assign(TubeAssigner(), pred_tubes, pred_masks, GT_TUBES, GT_MASKS, GT_LABELS)
    assert res.gt_inds.tolist() == [0] and res.max_overlaps.tolist() == [0.0]


@pytest.mark.parametrize('pos, neg', [(0.4, 0.5), (1.1, 0.5), (0.5, -0.1)])
def test_bad_thresholds(pos, neg):
    with pytest.raises(ValueError, match='neg_iou_thr <= pos_iou_thr'):
        TubeAssigner(pos_iou_thr=pos, neg_iou_thr=neg)


def test_mismatched_time_axes_raise():
    with pytest.raises(ValueError, match='time axis'):
        assign(TubeAssigner(), PRED_TUBES[:, :3], PRED_MASKS[:, :3], GT_TUBES, GT_MASKS, GT_LABELS)
