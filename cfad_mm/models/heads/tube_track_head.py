"""TubeTrackHead: follow a coarse tube through the feature steps of a long window, outwards from its
anchor."""
import math
from typing import Dict, Optional, Tuple

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from cfad_mm.structures.tube_ops import clamp_boxes_to_image
from ..losses import masked_box_losses
from ..utils import sample_tube_rois


@MODELS.register_module()
class TubeTrackHead(BaseModule):
    """Follow each coarse tube from its anchor step to both ends of the window on the 3-D feature map, one
    feature step at a time, then re-fit its trajectory to the followed boxes.

    A coarse trajectory regressed from one temporally pooled cell is right near the tube's anchor (the cell
    of its centre at the middle of its extent) but drifts away from the actor over a long window, where the
    actor moves several box widths between the ends (docs/model.md, "Long spans"). This head replaces that
    extrapolation by following the actor on the features the backbone computed anyway::

        anchor step a = the feature step nearest the middle of the tube's extent (``nearest_step``)
        d = 0: search region around the coarse box at a -> refined anchor box; template = RoIAlign there
        d = 1, 2, ...: steps a + d and a - d (both directions at once, every tube at once)
            search region = previous box moved by the last step's motion, enlarged x search_scale
            RoIAlign (search_size x search_size) -> attention of the template over the region's cells
            -> expected position (soft-argmax) -> new centre; size from the attended feature
        boxes at every step (R, T', 4) -> closed-form re-fit of the trajectory (coder fit_update) to the steps
        inside the extent, the coarse coefficients as a weak prior

    The work per tube is about ``2 T'`` small RoIAligns (a template and a search region per step) on features
    that exist already; no frame is looked at twice.

    Training: each tube is followed from the GT box at the previous step (jittered) with probability
    ``teacher_forcing``, else from its own (detached) previous box; the losses are L1 (normalised) + GIoU of
    the followed boxes against the GT boxes at the step frames of positive tubes.

    Args:
        in_channels (int): Channels of the features.
        embed_channels (int): Channels of the template / region embeddings. Defaults to 64.
        template_size (int): RoIAlign size of the template. Defaults to 3.
        search_size (int): RoIAlign size of the search region (cells of the attention). Defaults to 7.
        search_scale (float): Search region = the box enlarged by this factor. Defaults to 4.0.
        prior_strength (float): Weight of the coarse coefficients in the re-fit (the followed steps weigh 1
            each). Defaults to 0.01.
        teacher_forcing (float): Probability that a training tube is followed from the GT. Defaults to 0.5.
        jitter (float): Std of the GT box jitter under teacher forcing (centre in box sizes, log size).
            Defaults to 0.1.
        loss_box, loss_giou (dict): loss configs.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, embed_channels: int = 64, template_size: int = 3,
                 search_size: int = 7, search_scale: float = 4.0, prior_strength: float = 0.01,
                 teacher_forcing: float = 0.5, jitter: float = 0.1,
                 loss_box: dict = dict(type='mmdet.L1Loss', loss_weight=2.0),
                 loss_giou: dict = dict(type='mmdet.GIoULoss', loss_weight=1.0),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if search_size < 2 or template_size < 1:
            raise ValueError(f'TubeTrackHead: search_size must be >= 2 and template_size >= 1, got '
                             f'{search_size} and {template_size}')
        if search_scale <= 1:
            raise ValueError(f'TubeTrackHead: search_scale must be > 1 (the region holds the box), got '
                             f'{search_scale}')
        self.template_size = template_size
        self.search_size = search_size
        self.search_scale = float(search_scale)
        self.prior_strength = float(prior_strength)
        self.teacher_forcing = float(teacher_forcing)
        self.jitter = float(jitter)
        self.template = nn.Sequential(nn.Linear(in_channels * template_size * template_size, embed_channels),
                                      nn.ReLU(inplace=True), nn.Linear(embed_channels, embed_channels))
        self.key = nn.Conv2d(in_channels, embed_channels, 1)
        # a learned preference for each cell of the region (e.g. for the extrapolated centre)
        self.cell_bias = nn.Parameter(torch.zeros(search_size * search_size))
        self.size = nn.Sequential(nn.Linear(in_channels + embed_channels, embed_channels),
                                  nn.ReLU(inplace=True), nn.Linear(embed_channels, 2))
        self.loss_box = MODELS.build(loss_box)
        self.loss_giou = MODELS.build(loss_giou)
        # cell centres of the region in units of its size, (-0.5, 0.5)
        g = (torch.arange(search_size, dtype=torch.float32) + 0.5) / search_size - 0.5
        self.register_buffer('grid', torch.stack(torch.meshgrid(g, g, indexing='ij'), -1).reshape(-1, 2),
                             persistent=False)  # (S*S, (y, x))

    def init_weights(self):
        super().init_weights()
        nn.init.normal_(self.size[-1].weight, std=0.001)
        nn.init.constant_(self.size[-1].bias, 0)

    # ------------------------------------------------------------------ one step
    def _region(self, boxes: Tensor) -> Tensor:
        """Square search regions ``(R, 4)`` centred on ``boxes (R, 4)``, side ``search_scale`` x the longer
        side of the box."""
        ctr = (boxes[:, :2] + boxes[:, 2:]) / 2
        side = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True).clamp(min=1.0) * self.search_scale
        return torch.cat([ctr - side / 2, ctr + side / 2], dim=1)

    def embed_template(self, feats: Tensor, tube_batch: Tensor, steps: Tensor, boxes: Tensor,
                       spatial_scale: float) -> Tensor:
        """Template embeddings ``(R, E)`` of ``boxes (R, 4)`` at feature steps ``steps (R,)``."""
        roi = sample_tube_rois(feats, tube_batch, steps[:, None], boxes[:, None],
                               (self.template_size, self.template_size), spatial_scale)
        return self.template(roi.flatten(1))

    def step(self, feats: Tensor, tube_batch: Tensor, steps: Tensor, guess: Tensor, template: Tensor,
             spatial_scale: float) -> Tensor:
        """Boxes ``(R, 4)`` at feature steps ``steps (R,)``, searched around ``guess (R, 4)``.

        The template attends over the cells of the region (dot product / sqrt(E) + a learned bias per cell);
        the new centre is the attention-weighted mean of the cell centres, the new size the guess's size
        scaled by ``exp`` of a regression from the attended feature and the template.
        """
        region = self._region(guess)
        s = self.search_size
        roi = sample_tube_rois(feats, tube_batch, steps[:, None], region[:, None], (s, s),
                               spatial_scale)[:, 0]  # (R, C, s, s)
        keys = self.key(roi).flatten(2)  # (R, E, s*s)
        logits = torch.einsum('re,rek->rk', template, keys) / math.sqrt(template.shape[1]) + self.cell_bias
        attn = logits.softmax(1)  # (R, s*s)
        side = region[:, 2:3] - region[:, 0:1]
        offset = attn @ self.grid  # (R, (y, x)) in region units
        ctr = (region[:, :2] + region[:, 2:]) / 2 + offset.flip(1) * side
        attended = torch.einsum('rck,rk->rc', roi.flatten(2), attn)
        scale = self.size(torch.cat([attended, template], 1)).exp()
        wh = (guess[:, 2:] - guess[:, :2]).clamp(min=1.0) * scale
        return torch.cat([ctr - wh / 2, ctr + wh / 2], dim=1)

    # ------------------------------------------------------------------ the whole chain
    def follow(self, feats: Tensor, tube_batch: Tensor, start_boxes: Tensor, anchors: Tensor,
               img_shape: Tuple[int, int], spatial_scale: float,
               guide: Optional[Tensor] = None) -> Tensor:
        """Boxes ``(R, T', 4)`` at every feature step, followed outwards from the anchor steps.

        Args:
            feats (Tensor): ``(N, C, T', H', W')``.
            tube_batch (Tensor): ``(R,)`` clip of each tube.
            start_boxes (Tensor): ``(R, 4)`` boxes at the anchor steps (the coarse estimate).
            anchors (Tensor): ``(R,)`` anchor steps.
            img_shape (tuple[int, int]): ``(H, W)`` of the input.
            spatial_scale (float): Feature cells per input pixel.
            guide (Tensor, optional): ``(R, T', 4)`` boxes to search around instead of the tube's own
                previous boxes (teacher forcing; rows of NaN follow the tube's own boxes).

        Returns:
            Tensor: ``(R, T', 4)`` boxes in input pixels (clamped to the image).
        """
        r, tf = start_boxes.shape[0], feats.shape[2]
        out = start_boxes.new_zeros((r, tf, 4))
        if r == 0:
            return out
        rows = torch.arange(r, device=start_boxes.device)

        def guided(boxes, steps):
            if guide is None:
                return boxes
            g = guide[rows, steps]
            return torch.where(torch.isnan(g), boxes, g)

        # d = 0: the anchor box, searched around the coarse box (template of the coarse box)
        tmpl = self.embed_template(feats, tube_batch, anchors, clamp_boxes_to_image(start_boxes, img_shape),
                                   spatial_scale)
        anchor_box = self.step(feats, tube_batch, anchors, start_boxes, tmpl, spatial_scale)
        anchor_box = clamp_boxes_to_image(anchor_box, img_shape)
        out = out.index_put((rows, anchors), anchor_box)
        template = self.embed_template(feats, tube_batch, anchors, guided(anchor_box.detach(), anchors),
                                       spatial_scale)
        for sign in (1, -1):
            prev = guided(anchor_box.detach(), anchors)
            prev_motion = torch.zeros_like(prev)
            for d in range(1, tf):
                steps = anchors + sign * d
                inside = (steps >= 0) & (steps < tf)  # (no early exit: a fixed loop exports)
                steps_c = steps.clamp(0, tf - 1)
                guess = clamp_boxes_to_image(prev + prev_motion, img_shape)
                box = self.step(feats, tube_batch, steps_c, guess, template, spatial_scale)
                box = clamp_boxes_to_image(box, img_shape)
                out = torch.where(inside[:, None, None] & (torch.arange(tf, device=out.device)[None, :, None]
                                                           == steps_c[:, None, None]), box[:, None], out)
                # the next search starts from this step (from the GT there, under teacher forcing)
                nxt = guided(box.detach(), steps_c)
                prev_motion = torch.where(inside[:, None], nxt - prev, prev_motion)
                prev = torch.where(inside[:, None], nxt, prev)
        return out

    def refit(self, coder, coeffs: Tensor, extents: Tensor, step_frames: Tensor, boxes: Tensor,
              step_in: Tensor, img_shape: Tuple[int, int]) -> Tensor:
        """Coefficients ``(R, 4, P)`` fitted to the followed boxes at the steps inside the extents, the given
        coefficients as prior (``prior_strength``; the coder's closed-form ``fit_update``)."""
        frames = step_frames[None].to(coeffs.dtype).expand(boxes.shape[0], -1)
        return coder.fit_update(coeffs, extents, frames, boxes, step_in.to(coeffs.dtype), self.prior_strength,
                                img_shape)

    def teacher_guide(self, gt_tubes: Tensor, gt_masks: Tensor, positive: Tensor,
                      step_frames: Tensor) -> Tensor:
        """Guide boxes ``(R, T', 4)`` for :meth:`follow` in training: the GT boxes at the step frames,
        jittered, for a ``teacher_forcing`` share of the positive tubes; NaN elsewhere (the tube follows its
        own boxes)."""
        gt = gt_tubes[:, step_frames]  # (R, T', 4)
        valid = gt_masks[:, step_frames] & positive[:, None]
        chosen = torch.rand(positive.shape, device=gt.device) < self.teacher_forcing
        valid = valid & chosen[:, None]
        wh = (gt[..., 2:] - gt[..., :2]).clamp(min=1.0)
        ctr = (gt[..., :2] + gt[..., 2:]) / 2 + torch.randn_like(wh) * self.jitter * wh
        wh = wh * (torch.randn_like(wh) * self.jitter).exp()
        jittered = torch.cat([ctr - wh / 2, ctr + wh / 2], dim=-1)
        return torch.where(valid[..., None], jittered, torch.full_like(jittered, float('nan')))

    def loss(self, boxes: Tensor, gt_boxes: Tensor, valid: Tensor,
             img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """L1 (normalised) + GIoU of followed boxes ``(R, T', 4)`` against the GT at the step frames where
        ``valid (R, T')``: ``loss_track_box``, ``loss_track_giou``."""
        l1, giou = masked_box_losses(boxes, gt_boxes, valid, img_shape, self.loss_box, self.loss_giou)
        return dict(loss_track_box=l1, loss_track_giou=giou)
