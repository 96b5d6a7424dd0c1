"""From CFAD's raw per-tube outputs to the final tubes of one clip: the one post-processing path.

:meth:`CFAD.predict`, the ONNX post-processing (:func:`cfad_mm.apis.export.tensor_outputs_to_tubes`) and
through ``predict`` the demo and the inferencer all call :func:`outputs_to_clip_tubes`::

    coarse scores (k,), labels (k,), coefficients (k, 4, D+1), extents (k, 2)[, refined class logits (k, K+1)]
      -> final score sqrt(coarse score * refined class probability)       (combine_scores)
      -> boxes at every clip frame (the tube coder), clipped to the clip  (clamp_boxes_to_image)
      -> score threshold, class-wise tube NMS, the best max_per_clip      (tube_nms)
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from cfad_mm.structures.tube_ops import clamp_boxes_to_image, tube_nms


def combine_scores(coarse_scores: Tensor, cls_logits: Tensor, labels: Tensor) -> Tensor:
    """Final tube score: geometric mean of the coarse heatmap score and the refined class probability.

    Args:
        coarse_scores (Tensor): ``(...,)`` coarse (heatmap) scores.
        cls_logits (Tensor): ``(..., K+1)`` refined class logits (last = background).
        labels (Tensor): ``(...,)`` int64 class of each tube (its coarse label).

    Returns:
        Tensor: ``(...,)`` scores in ``[0, 1]``.
    """
    prob = F.softmax(cls_logits, dim=-1).gather(-1, labels[..., None]).squeeze(-1)
    return (coarse_scores.clamp(min=0) * prob).sqrt()


def outputs_to_clip_tubes(coder, scores: Tensor, labels: Tensor, coeffs: Tensor, extents: Tensor,
                          cls_logits: Optional[Tensor], img_shape: Tuple[int, int], num_frames: int,
                          score_thr: float, nms_iou: float, max_per_clip: int,
                          frame_valid: Optional[Tensor] = None) -> InstanceData:
    """Final tubes of one clip, in network-input pixels.

    Args:
        coder: The tube coder of the model (``decode(coeffs, extents, img_shape, num_frames=T)``).
        scores (Tensor): ``(k,)`` coarse scores.
        labels (Tensor): ``(k,)`` int64 classes.
        coeffs (Tensor): ``(k, 4, D+1)`` trajectory coefficients (the refined ones when the model refines).
        extents (Tensor): ``(k, 2)`` ``(t_start, t_end)`` in clip frames.
        cls_logits (Tensor, optional): ``(k, K+1)`` refined class logits; None for a coarse-only model (the
            coarse score is then the final score).
        img_shape (tuple[int, int]): ``(H, W)`` of the network input.
        num_frames (int): ``T``, frames of the clip.
        score_thr (float): Tubes scoring below are dropped.
        nms_iou (float): Spatio-temporal IoU above which the lower-scoring tube of a class is suppressed.
        max_per_clip (int): Most tubes kept.
        frame_valid (Tensor, optional): ``(T,)`` bool, frames of the clip that hold video (False on padding
            after the end of a video); tubes are masked to them.

    Returns:
        InstanceData: ``tubes (n, T, 4)`` xyxy, ``tube_masks (n, T)`` bool, ``scores (n,)``, ``labels (n,)``,
        sorted by score, ``n <= max_per_clip`` (detached).
    """
    if cls_logits is not None:
        scores = combine_scores(scores, cls_logits, labels)
    tubes, masks = coder.decode(coeffs, extents, img_shape, num_frames=num_frames)
    tubes = clamp_boxes_to_image(tubes, img_shape)
    if frame_valid is not None:
        masks = masks & torch.as_tensor(frame_valid, device=masks.device, dtype=torch.bool)[None]
    keep = (scores >= score_thr) & masks.any(1)
    tubes, masks, scores, labels = tubes[keep].detach(), masks[keep], scores[keep].detach(), labels[keep]
    # class-wise NMS in one call: tubes of different classes are moved apart so that they never overlap
    # (float64, so that the offset does not round the boxes)
    boxes64 = tubes.double()
    span = 2 * float(boxes64.abs().max()) + 1 if boxes64.numel() else 1.0
    kept = tube_nms(boxes64 + labels.double()[:, None, None] * span, masks, scores, nms_iou)
    order = torch.as_tensor(kept, device=labels.device, dtype=torch.long)[:int(max_per_clip)]
    return InstanceData(tubes=tubes[order], tube_masks=masks[order], scores=scores[order],
                        labels=labels[order])
