"""Box losses of decoded trajectories against their GT tubes (coarse tubes and re-fitted tubes)."""
from typing import Tuple

from torch import Tensor, nn


def tube_box_losses(coder, coeffs: Tensor, extents: Tensor, gt_tubes: Tensor, gt_masks: Tensor,
                    img_shape: Tuple[int, int], loss_box: nn.Module, loss_giou: nn.Module):
    """L1 (on boxes normalised by the clip size) + GIoU of decoded tubes against GT, on every GT frame.

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
    sel = gt_masks.reshape(-1)
    pred = boxes.reshape(-1, 4)[sel]
    target = gt_tubes.reshape(-1, 4)[sel]
    scale = pred.new_tensor([img_shape[1], img_shape[0], img_shape[1], img_shape[0]])
    n = max(1, int(sel.sum()))
    return (loss_box(pred / scale, target / scale, avg_factor=n * 4),
            loss_giou(pred, target, avg_factor=n))
