"""TubeAssigner: match predicted tubes to ground-truth tubes by spatio-temporal IoU."""
import torch
from mmaction.registry import TASK_UTILS
from mmdet.models.task_modules.assigners import AssignResult
from mmengine.structures import InstanceData

from cfad_mm.structures.tube_ops import tube_st_iou


@TASK_UTILS.register_module()
class TubeAssigner:
    """Assign each predicted tube to the ground-truth tube of highest spatio-temporal IoU.

    Follows mmdet's ``MaxIoUAssigner`` conventions, with the spatio-temporal tube IoU of
    :func:`cfad_mm.structures.tube_ops.tube_st_iou` (temporal IoU x mean per-frame IoU) instead of box IoU.

    Args:
        pos_iou_thr (float): Predictions with max IoU >= this are positives. Defaults to 0.5.
        neg_iou_thr (float): Predictions with max IoU < this are negatives; in between they are ignored
            (``gt_inds == -1``). Defaults to 0.4.
        class_aware (bool): Only match a prediction to ground truths of its own label. Defaults to False.
    """

    def __init__(self, pos_iou_thr: float = 0.5, neg_iou_thr: float = 0.4, class_aware: bool = False):
        if not 0 <= neg_iou_thr <= pos_iou_thr <= 1:
            raise ValueError(f'TubeAssigner needs 0 <= neg_iou_thr <= pos_iou_thr <= 1, '
                             f'got neg_iou_thr={neg_iou_thr}, pos_iou_thr={pos_iou_thr}')
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.class_aware = class_aware

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData) -> AssignResult:
        """Assign predicted tubes to ground-truth tubes (mmdet's assigner interface).

        Args:
            pred_instances (InstanceData): ``tubes (R, T, 4)`` xyxy boxes, ``tube_masks (R, T)`` bool and,
                when ``class_aware``, ``labels (R,)``.
            gt_instances (InstanceData): ``tubes (G, T, 4)``, ``tube_masks (G, T)`` bool, ``labels (G,)``.

        Returns:
            AssignResult: ``gt_inds`` (R,) with 0 = negative, -1 = ignored, i+1 = matched to GT i;
            ``max_overlaps`` (R,); ``labels`` (R,) the matched GT label or -1.
        """
        pred_tubes, pred_masks = pred_instances.tubes, pred_instances.tube_masks
        gt_tubes, gt_masks, gt_labels = gt_instances.tubes, gt_instances.tube_masks, gt_instances.labels
        num_preds, num_gts = pred_tubes.shape[0], gt_tubes.shape[0]
        gt_inds = pred_tubes.new_zeros((num_preds, ), dtype=torch.long)
        labels = pred_tubes.new_full((num_preds, ), -1, dtype=torch.long)
        if num_gts == 0 or num_preds == 0:
            return AssignResult(num_gts, gt_inds, pred_tubes.new_zeros((num_preds, )), labels)
        ious = tube_st_iou(pred_tubes, pred_masks, gt_tubes, gt_masks)  # (R, G)
        if self.class_aware:
            if 'labels' not in pred_instances:
                raise ValueError('TubeAssigner(class_aware=True) needs pred_instances.labels')
            ious = ious * (pred_instances.labels[:, None] == gt_labels[None, :]).to(ious.dtype)
        max_ious, argmax = ious.max(dim=1)
        pos = max_ious >= self.pos_iou_thr
        ignore = (max_ious >= self.neg_iou_thr) & ~pos
        gt_inds[pos] = argmax[pos] + 1
        gt_inds[ignore] = -1
        labels[pos] = gt_labels[argmax[pos]]
        return AssignResult(num_gts, gt_inds, max_ious, labels)
