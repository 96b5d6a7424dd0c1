"""Box losses against ground truth: of boxes at chosen frames (:func:`masked_box_losses`; key boxes, followed
boxes) and of decoded trajectories on every GT frame (:func:`tube_box_losses`; coarse and re-fitted tubes)."""
from typing import Tuple

from torch import Tensor, nn


def masked_box_losses(pred: Tensor, target: Tensor, valid: Tensor, img_shape: Tuple[int, int],
                      loss_box: nn.Module, loss_giou: nn.Module):
    """L1 (on boxes normalised by the clip size) + GIoU of boxes ``pred (..., 4)`` against ``target (..., 4)``
    (pixels) where ``valid (...)`` is True.

    Returns:
        tuple[Tensor, Tensor]: the L1 (averaged over the coordinates) and the GIoU loss (averaged over the
        boxes); zero, with a graph, when no box is valid.
    """
    if not bool(valid.any()):
        zero = pred.sum() * 0
        return zero, zero
    pred, target = pred[valid], target[valid]
    scale = pred.new_tensor([img_shape[1], img_shape[0], img_shape[1], img_shape[0]])
    n = pred.shape[0]
    return (loss_box(pred / scale, target / scale, avg_factor=n * 4), loss_giou(pred, target, avg_factor=n))


def tube_box_losses(coder, coeffs: Tensor, extents: Tensor, gt_tubes: Tensor, gt_masks: Tensor,
                    img_shape: Tuple[int, int], loss_box: nn.Module, loss_giou: nn.Module):
    """L1 (on boxes normalised by the clip size) + GIoU of decoded tubes against GT, on every GT frame
    (:func:`masked_box_losses` of the tubes decoded at every frame).

    Args:
        coeffs (Tensor): ``(R, 4, D+1)``. extents (Tensor): ``(R, 2)`` decoding extents.
        gt_tubes (Tensor): ``(R, T, 4)`` pixels. gt_masks (Tensor): ``(R, T)`` bool.

    Returns:
        tuple[Tensor, Tensor]: the L1 and the GIoU loss (zero, with a graph, when there is no positive).
    """
    if coeffs.shape[0] == 0:
        zero = coeffs.sum() * 0
        return zero, zero
    boxes, _ = coder.decode(coeffs, extents, img_shape, num_frames=gt_tubes.shape[1])
    return masked_box_losses(boxes, gt_tubes, gt_masks, img_shape, loss_box, loss_giou)
