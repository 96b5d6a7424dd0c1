"""RefineTubeHead: refine boxes at key timestamps and update the whole tube (the Refine Module)."""
from typing import Dict, Tuple

import torch
from mmaction.registry import MODELS, TASK_UTILS
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..losses import masked_box_losses, tube_box_losses
from ..utils import sample_tube_rois


@MODELS.register_module()
class RefineTubeHead(BaseModule):
    """Refine a coarse tube at its key timestamps, re-fit its trajectory, re-score its class.

    ::

        key boxes (R, M, 4), enlarged x enlarge -> RoIAlign at the key steps (R, M, C, r, r)
            -> MLP -> deltas (R, M, 4) -> refined key boxes b_k (mmdet DeltaXYWHBBoxCoder)
        theta' = argmin_theta sum_k w_k ||B(t_k; theta) - b_k||^2 + lambda ||theta - theta_coarse||^2
            (PolyTubeCoder.fit_update, closed form, differentiable)
        tube classifier (motion-aware, ours): per feature step, the RoI features along the tube
            (R, T', C*r'*r') + the motion descriptor of the refined boxes (R, T', 4)
            -> [Conv1d(k=3)-ReLU] x cls_convs over time -> masked mean & max over the steps inside the extent
            -> Linear -> class logits (R, num_classes + 1) (last = background)

    Motion descriptor of step ``u`` (ours): ``((cx_u - mean cx) / mean w, (cy_u - mean cy) / mean h,
    log(w_u / mean w), log(h_u / mean h))`` over the steps inside the extent, 0 outside. The classes of
    spatio-temporal detection are actions, i.e. motions: a temporal mean of the RoI features (the plain
    "tube-pooled" feature) discards their order, and the trajectory of the tube itself is the most direct
    evidence of the motion, normalised by the actor's size so that it does not depend on the distance to the
    camera. With ``cls_convs=0`` the classifier falls back to the plain temporal mean of the RoI features.

    Args:
        in_channels (int): Channels of the backbone features.
        num_classes (int): Number of action classes.
        tube_feat_dim (int): Dimension of the per-step RoI features along the tube (from
            :class:`KeyTimestampSelector`).
        roi_size (int): RoIAlign output size at the key timestamps. Defaults to 5.
        hidden_channels (int): MLP width. Defaults to 256.
        enlarge (float): Scale of the coarse box used as the RoI (context). Defaults to 1.3.
        prior_strength (float): ``lambda`` of the re-fit. Defaults to 0.1.
        cls_convs (int): Temporal convolutions of the tube classifier (0: temporal mean of the RoI features,
            no motion descriptor). Defaults to 2.
        bbox_coder (dict): Delta coder for key boxes.
        loss_box, loss_giou, loss_cls (dict): loss configs.
        init_cfg (dict, optional): Initialisation config.
    """

    MOTION_DIM = 4

    def __init__(self, in_channels: int, num_classes: int, tube_feat_dim: int, roi_size: int = 5,
                 hidden_channels: int = 256, enlarge: float = 1.3, prior_strength: float = 0.1,
                 cls_convs: int = 2,
                 bbox_coder: dict = dict(type='mmdet.DeltaXYWHBBoxCoder', target_means=(0., 0., 0., 0.),
                                         target_stds=(0.1, 0.1, 0.2, 0.2)),
                 loss_box: dict = dict(type='mmdet.L1Loss', loss_weight=2.0),
                 loss_giou: dict = dict(type='mmdet.GIoULoss', loss_weight=1.0),
                 loss_cls: dict = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.roi_size = roi_size
        self.enlarge = enlarge
        self.prior_strength = prior_strength
        self.box_branch = nn.Sequential(nn.Linear(in_channels * roi_size * roi_size, hidden_channels),
                                        nn.ReLU(inplace=True), nn.Linear(hidden_channels, 4))
        if cls_convs < 0:
            raise ValueError(f'cls_convs must be >= 0, got {cls_convs}')
        self.cls_convs = cls_convs
        layers, c = [], tube_feat_dim + (self.MOTION_DIM if cls_convs else 0)
        for _ in range(cls_convs):
            layers += [nn.Conv1d(c, hidden_channels, 3, padding=1), nn.ReLU(inplace=True)]
            c = hidden_channels
        self.cls_temporal = nn.Sequential(*layers)
        pooled_dim = 2 * c if cls_convs else c
        self.cls_branch = nn.Sequential(nn.Linear(pooled_dim, hidden_channels), nn.ReLU(inplace=True),
                                        nn.Linear(hidden_channels, num_classes + 1))
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_box = MODELS.build(loss_box)
        self.loss_giou = MODELS.build(loss_giou)
        self.loss_cls = MODELS.build(loss_cls)

    def init_weights(self):
        super().init_weights()
        nn.init.normal_(self.box_branch[-1].weight, std=0.001)
        nn.init.constant_(self.box_branch[-1].bias, 0)

    def enlarge_boxes(self, boxes: Tensor, img_shape: Tuple[int, int]) -> Tensor:
        """Scale boxes ``(..., 4)`` about their centre by ``enlarge``, clipped to the image."""
        c = (boxes[..., :2] + boxes[..., 2:]) / 2
        half = (boxes[..., 2:] - boxes[..., :2]) / 2 * self.enlarge
        out = torch.cat([c - half, c + half], dim=-1)
        h, w = img_shape
        return torch.stack([out[..., 0].clamp(0, w), out[..., 1].clamp(0, h),
                            out[..., 2].clamp(0, w), out[..., 3].clamp(0, h)], dim=-1)

    def refine_key_boxes(self, feats: Tensor, batch_inds: Tensor, key_steps: Tensor, key_boxes: Tensor,
                         spatial_scale: float, img_shape: Tuple[int, int]) -> Tensor:
        """Refined key boxes ``(R, M, 4)`` from coarse key boxes ``(R, M, 4)`` at feature steps ``(R, M)``."""
        rois = self.enlarge_boxes(key_boxes, img_shape)
        feat = sample_tube_rois(feats, batch_inds, key_steps, rois, (self.roi_size, self.roi_size),
                                spatial_scale).flatten(2)
        deltas = self.box_branch(feat)
        r, m = key_steps.shape
        h, w = img_shape
        refined = self.bbox_coder.decode(key_boxes.reshape(-1, 4), deltas.reshape(-1, 4), max_shape=(h, w))
        return refined.reshape(r, m, 4)

    @staticmethod
    def motion_descriptor(step_boxes: Tensor, step_in: Tensor) -> Tensor:
        """Size-normalised trajectory ``(R, T', 4)`` of boxes ``(R, T', 4)`` at the steps ``step_in (R, T')``.

        ``((cx - mean cx) / mean w, (cy - mean cy) / mean h, log(w / mean w), log(h / mean h))`` with means
        over the steps inside the extent; 0 at the other steps.
        """
        w = step_in.to(step_boxes.dtype)[..., None]
        n = w.sum(1, keepdim=True).clamp(min=1)
        wh = (step_boxes[..., 2:] - step_boxes[..., :2]).clamp(min=1e-3)
        ctr = (step_boxes[..., :2] + step_boxes[..., 2:]) / 2
        mean_wh = (wh * w).sum(1, keepdim=True) / n
        mean_ctr = (ctr * w).sum(1, keepdim=True) / n
        mean_wh = torch.where(mean_wh > 0, mean_wh, torch.ones_like(mean_wh))
        desc = torch.cat([(ctr - mean_ctr) / mean_wh, torch.log(wh / mean_wh)], dim=-1)
        return desc * w

    def classify(self, step_feats: Tensor, step_boxes: Tensor, step_in: Tensor) -> Tensor:
        """Class logits ``(R, num_classes + 1)`` of tubes.

        Args:
            step_feats (Tensor): RoI features along each tube at every feature step ``(R, T', D)``.
            step_boxes (Tensor): The tube's boxes at the frame of every step ``(R, T', 4)`` (input pixels).
            step_in (Tensor): Steps inside the tube's extent ``(R, T')`` bool (at least one per tube).
        """
        w = step_in.to(step_feats.dtype)[..., None]
        n = w.sum(1).clamp(min=1)
        if not self.cls_convs:
            return self.cls_branch((step_feats * w).sum(1) / n)
        x = torch.cat([step_feats, self.motion_descriptor(step_boxes, step_in)], dim=-1)
        x = self.cls_temporal((x * w).transpose(1, 2)).transpose(1, 2)  # (R, T', hidden)
        mean = (x * w).sum(1) / n
        peak = x.masked_fill(w == 0, float('-inf')).amax(1)
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        return self.cls_branch(torch.cat([mean, peak], dim=1))

    def refit(self, coder, coeffs: Tensor, extents: Tensor, key_frames: Tensor, refined: Tensor,
              key_valid: Tensor, img_shape: Tuple[int, int]) -> Tensor:
        """Re-fit the trajectories ``coeffs (R, 4, D+1)`` to the refined boxes ``(R, M, 4)`` at ``key_frames
        (R, M)`` (where ``key_valid (R, M)``), with the coarse coefficients as prior of weight
        ``prior_strength`` (the coder's closed-form, differentiable ``fit_update``)."""
        return coder.fit_update(coeffs, extents, key_frames, refined, key_valid.to(coeffs.dtype),
                                self.prior_strength, img_shape)

    def classification_loss(self, cls_logits: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """Cross-entropy ``loss_refine_cls``; ``labels`` (R,) with ``num_classes`` = background and -1 =
        ignored."""
        keep = labels >= 0
        if not bool(keep.any()):
            return dict(loss_refine_cls=cls_logits.sum() * 0)
        return dict(loss_refine_cls=self.loss_cls(cls_logits[keep], labels[keep]))

    def loss_key_boxes(self, refined: Tensor, gt_boxes: Tensor, valid: Tensor,
                       img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """L1 (normalised) + GIoU of refined key boxes against GT boxes at the key frames."""
        l1, giou = masked_box_losses(refined, gt_boxes, valid, img_shape, self.loss_box, self.loss_giou)
        return dict(loss_refine_key_box=l1, loss_refine_key_giou=giou)

    def loss_tube(self, coder, coeffs: Tensor, extents: Tensor, gt_tubes: Tensor, gt_masks: Tensor,
                  img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """L1 (normalised) + GIoU of the re-fitted tubes ``coeffs (R, 4, D+1)``, ``extents (R, 2)`` against
        their GT ``(R, T, 4)`` / ``(R, T)`` on every GT frame (:func:`tube_box_losses`)."""
        l1, giou = tube_box_losses(coder, coeffs, extents, gt_tubes, gt_masks, img_shape, self.loss_box,
                                   self.loss_giou)
        return dict(loss_refine_tube_box=l1, loss_refine_tube_giou=giou)
