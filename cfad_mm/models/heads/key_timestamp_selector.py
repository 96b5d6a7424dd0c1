"""KeyTimestampSelector: where along a coarse tube is refinement most needed?"""
from typing import Dict, Tuple

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from cfad_mm.structures.tube_ops import box_iou_aligned, mask_extents
from ..utils import sample_tube_rois


@MODELS.register_module()
class KeyTimestampSelector(BaseModule):
    """Score every feature time step of each coarse tube by its expected error, pick the top ``num_keys``.

    ::

        coarse tube (coeffs, extent) -> boxes at the frame of every feature step (R, T', 4)
        RoIAlign(feats[:, :, u], box_u)  -> (R, T', C, r, r) -> MLP -> error logit (R, T')
        highest-error step in each of num_keys equal parts of the extent -> key frames (R, M)

    Selection (``spread=True``, ours): the extent's steps are split into ``M`` contiguous, equal parts and the
    step with the highest predicted error is taken in each part. Plain top-``M`` (``spread=False``) tends to
    pick neighbouring steps, because coarse errors are temporally correlated, and a trajectory re-fit from
    clustered keys extrapolates badly; one key per part keeps the re-fit well conditioned while the scorer
    still decides where inside each part refinement pays most.

    The scorer is trained to regress the actual coarse error ``1 - IoU(coarse box, GT box)`` at each step of
    positive tubes (binary cross-entropy with soft targets). ``mode='uniform'`` / ``'random'`` are ablations
    that ignore the scorer (it is still trained, so checkpoints are interchangeable).

    Args:
        in_channels (int): Channels of the backbone features.
        num_keys (int): Key timestamps per tube ``M``. Defaults to 3.
        mode (str): ``'learned'``, ``'uniform'`` or ``'random'``. Defaults to ``'learned'``.
        spread (bool): In ``'learned'`` mode, one key per equal part of the extent instead of the plain top-M.
            Defaults to True.
        roi_size (int): RoIAlign output size. Defaults to 3.
        hidden_channels (int): MLP width. Defaults to 128.
        loss_error (dict): loss config. Defaults to sigmoid ``CrossEntropyLoss``.
        init_cfg (dict, optional): Initialisation config.
    """

    MODES = ('learned', 'uniform', 'random')

    def __init__(self, in_channels: int, num_keys: int = 3, mode: str = 'learned', roi_size: int = 3,
                 hidden_channels: int = 128, spread: bool = True,
                 loss_error: dict = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if mode not in self.MODES:
            raise ValueError(f'KeyTimestampSelector mode must be one of {self.MODES}, got {mode!r}')
        if num_keys < 1:
            raise ValueError(f'num_keys must be >= 1, got {num_keys}')
        self.num_keys = num_keys
        self.mode = mode
        self.spread = spread
        self.roi_size = roi_size
        self.feat_dim = in_channels * roi_size * roi_size
        self.scorer = nn.Sequential(nn.Linear(self.feat_dim, hidden_channels), nn.ReLU(inplace=True),
                                    nn.Linear(hidden_channels, 1))
        self.loss_error = MODELS.build(loss_error)

    def forward(self, feats: Tensor, batch_inds: Tensor, step_boxes: Tensor, spatial_scale: float):
        """Error logits ``(R, T')`` and RoI features ``(R, T', C*r*r)`` for boxes at every feature step.

        Args:
            feats (Tensor): ``(N, C, T', H', W')``. batch_inds (Tensor): ``(R,)``.
            step_boxes (Tensor): ``(R, T', 4)`` coarse boxes (input pixels) at each step's frame.
            spatial_scale (float): ``1 / spatial stride``.
        """
        r, tf = step_boxes.shape[:2]
        steps = torch.arange(tf, device=feats.device).expand(r, tf)
        roi = sample_tube_rois(feats, batch_inds, steps, step_boxes, (self.roi_size, self.roi_size),
                               spatial_scale).flatten(2)
        return self.scorer(roi).squeeze(-1), roi

    def select(self, error_logits: Tensor, step_in_extent: Tensor) -> Tuple[Tensor, Tensor]:
        """Pick ``num_keys`` steps per tube inside its extent.

        Args:
            error_logits (Tensor): ``(R, T')``. step_in_extent (Tensor): ``(R, T')`` bool.

        Returns:
            tuple[Tensor, Tensor]: key steps ``(R, M)`` int64 (sorted in time) and ``valid (R, M)`` bool
            (False where the extent spans fewer than ``M`` steps; those slots repeat a valid step).
        """
        r, tf = error_logits.shape
        m = self.num_keys
        n_in = step_in_extent.sum(1)
        if self.mode == 'learned':
            score = error_logits.detach()
        elif self.mode == 'random':
            score = torch.rand_like(error_logits)
        else:  # uniform: prefer steps closest to evenly spaced positions inside the extent
            score = torch.zeros_like(error_logits)
        score = score.masked_fill(~step_in_extent, float('-inf'))
        first, _, nonempty = mask_extents(step_in_extent)
        first = torch.where(nonempty, first, 0)  # first in-extent step (0 for an empty extent)
        if self.mode == 'uniform':
            pos = first[:, None].float() + (torch.arange(m, device=score.device)[None].float() + 0.5) / m \
                * n_in[:, None].float() - 0.5
            keys = pos.round().long().clamp(0, tf - 1)
        elif self.mode == 'learned' and self.spread:
            # part index of every in-extent step: floor((u - first) * M / n_in) in 0..M-1
            u = torch.arange(tf, device=score.device)[None]
            part = torch.div((u - first[:, None]) * m, n_in.clamp(min=1)[:, None], rounding_mode='floor')
            in_part = step_in_extent[:, None, :] & (
                part[:, None, :] == torch.arange(m, device=score.device)[None, :, None])
            # (R, M)
            keys = score[:, None, :].expand(-1, m, -1).masked_fill(~in_part, float('-inf')).argmax(2)
            valid = in_part.any(2)
            keys = torch.where(valid, keys, score.argmax(1, keepdim=True))  # empty parts repeat the best step
            keys, order = keys.sort(dim=1)
            return keys, valid.gather(1, order)
        else:
            keys = score.topk(min(m, tf), dim=1).indices
            if keys.shape[1] < m:
                keys = torch.cat([keys, keys[:, -1:].expand(-1, m - keys.shape[1])], 1)
        valid = torch.arange(m, device=score.device)[None] < n_in[:, None]
        if self.mode != 'uniform':
            # slots beyond the number of in-extent steps repeat the best one
            keys = torch.where(valid, keys, keys[:, :1])
        keys, order = keys.sort(dim=1)
        valid = valid.gather(1, order)
        return keys, valid

    def loss(self, error_logits: Tensor, step_boxes: Tensor, step_in_extent: Tensor, gt_step_boxes: Tensor,
             gt_step_masks: Tensor) -> Dict[str, Tensor]:
        """Regress the actual coarse error at every step where both the tube and its matched GT exist.

        Args:
            error_logits (Tensor): ``(R, T')`` of positive tubes. step_boxes (Tensor): ``(R, T', 4)``.
            step_in_extent (Tensor): ``(R, T')``. gt_step_boxes (Tensor): ``(R, T', 4)``.
            gt_step_masks (Tensor): ``(R, T')`` bool.
        """
        sel = step_in_extent & gt_step_masks
        if not bool(sel.any()):
            return dict(loss_key_error=error_logits.sum() * 0)
        err = 1 - box_iou_aligned(step_boxes.detach()[sel], gt_step_boxes[sel])
        return dict(
            loss_key_error=self.loss_error(error_logits[sel].unsqueeze(1), err.unsqueeze(1).clamp(0, 1)))
