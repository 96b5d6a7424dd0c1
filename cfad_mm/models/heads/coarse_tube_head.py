"""CoarseTubeHead: whole tubes from one temporally pooled proposal map (the Coarse Module)."""
import math
from typing import Dict, Optional, Tuple

import torch
from mmaction.registry import MODELS, TASK_UTILS
from mmdet.models.utils.gaussian_target import gaussian_radius, gen_gaussian_target, get_local_maximum
from mmengine.model import BaseModule
from torch import Tensor, nn

from cfad_mm.structures.tube_ops import mask_extents, tube_temporal_iou
from ..losses import tube_box_losses


@MODELS.register_module()
class CoarseTubeHead(BaseModule):
    """Predict whole tubes, CenterNet-style, on each temporal proposal's pooled feature map.

    At every spatial cell of a proposal map the head predicts a per-class *tube-centre* heatmap, the tube's
    trajectory as ``4 x (degree + 1)`` polynomial coefficients (via :class:`PolyTubeCoder`) and the tube's
    temporal extent as offsets of the proposal's start/end::

        pooled (P, C_in, H', W') -> [Conv3x3-ReLU] x num_convs -> heatmap  (P, num_classes, H', W')
                                                            -> coeffs   (P, 4 * (degree + 1), H', W')
                                                            -> extent   (P, 2, H', W')

    A tube's centre is its box centre at the middle frame of its extent (``centre_time='tube'``) or, with
    ``centre_time='proposal'``, at its annotated frame nearest the proposal's middle: every peak of one
    proposal's heatmap then marks where an actor is at one and the same time,
    the time the proposal's middle bin samples, however the tubes' extents are spread over a long window.
    The constant Legendre coefficient of
    ``cx``/``cy`` is predicted relative to the cell centre, that of ``log w``/``log h`` relative to
    ``log(prior_size)``.

    Losses (paper: boxes supervised through the *decoded* trajectory): Gaussian focal loss on the heatmap;
    L1 on normalised boxes + GIoU on pixel boxes, decoded at every ground-truth frame (decoding uses the
    ground-truth extent in training, the predicted one at test time); L1 on the extent (normalised by ``T``).

    Args:
        in_channels (int): Channels of the pooled proposal map.
        num_classes (int): Number of action classes.
        tube_coder (dict): Config of the tube coder. Defaults to ``PolyTubeCoder(degree=3)``.
        feat_channels (int): Hidden channels. Defaults to 64.
        num_convs (int): Shared 3x3 convs. Defaults to 2.
        prior_size (float): Prior box size as a fraction of the clip size. Defaults to 0.25.
        pos_tiou (float): Temporal IoU between a GT extent and a proposal for the GT to be a target of that
            proposal. Defaults to 0.5.
        min_overlap (float): CenterNet Gaussian radius parameter. Defaults to 0.7.
        centre_time (str): ``'tube'`` (the middle frame of the tube's extent) or ``'proposal'`` (the tube's
            annotated frame nearest the proposal's middle): the time of the box whose centre is the heatmap
            target. Defaults to ``'tube'``.
        loss_heatmap, loss_box, loss_giou, loss_extent (dict): loss configs.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 tube_coder: dict = dict(type='PolyTubeCoder', degree=3),
                 feat_channels: int = 64, num_convs: int = 2, prior_size: float = 0.25, pos_tiou: float = 0.5,
                 min_overlap: float = 0.7, centre_time: str = 'tube',
                 loss_heatmap: dict = dict(type='mmdet.GaussianFocalLoss', loss_weight=1.0),
                 loss_box: dict = dict(type='mmdet.L1Loss', loss_weight=2.0),
                 loss_giou: dict = dict(type='mmdet.GIoULoss', loss_weight=1.0),
                 loss_extent: dict = dict(type='mmdet.L1Loss', loss_weight=5.0),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.coder = TASK_UTILS.build(tube_coder)
        self.num_coeffs = self.coder.num_coeffs
        self.prior_size = prior_size
        self.pos_tiou = pos_tiou
        self.min_overlap = min_overlap
        if centre_time not in ('tube', 'proposal'):
            raise ValueError(f"centre_time must be 'tube' or 'proposal', got {centre_time!r}")
        self.centre_time = centre_time
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(c, feat_channels, 3, padding=1), nn.ReLU(inplace=True)]
            c = feat_channels
        self.shared = nn.Sequential(*layers)
        self.heatmap = nn.Conv2d(c, num_classes, 1)
        self.coeffs = nn.Conv2d(c, 4 * self.num_coeffs, 1)
        self.extent = nn.Conv2d(c, 2, 1)
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.loss_box = MODELS.build(loss_box)
        self.loss_giou = MODELS.build(loss_giou)
        self.loss_extent = MODELS.build(loss_extent)

    def init_weights(self):
        super().init_weights()
        nn.init.constant_(self.heatmap.bias, -math.log((1 - 0.1) / 0.1))
        for m in (self.coeffs, self.extent):
            nn.init.normal_(m.weight, std=0.001)
            nn.init.constant_(m.bias, 0)

    def forward(self, pooled: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Raw maps: heatmap logits ``(P, K, H', W')``, coefficients ``(P, 4*(D+1), H', W')``,
        extent offsets ``(P, 2, H', W')``."""
        x = self.shared(pooled)
        return self.heatmap(x), self.coeffs(x), self.extent(x)

    # ------------------------------------------------------------------ decoding of the raw maps
    def cell_coeffs(self, coeff_map: Tensor, prop_inds: Tensor, ys: Tensor, xs: Tensor) -> Tensor:
        """Coefficients ``(R, 4, D+1)`` at cells ``(prop_inds, ys, xs)`` (cell-centre and size priors
        added)."""
        h, w = coeff_map.shape[-2:]
        raw = coeff_map[prop_inds, :, ys, xs].reshape(-1, 4, self.num_coeffs)
        prior = torch.stack([(xs.to(raw.dtype) + 0.5) / w, (ys.to(raw.dtype) + 0.5) / h,
                             raw.new_full(xs.shape, math.log(self.prior_size)),
                             raw.new_full(xs.shape, math.log(self.prior_size))], dim=1)
        return raw + self.coder.constant_coeffs(prior)

    @staticmethod
    def cell_extents(extent_map: Tensor, segments: Tensor, prop_inds: Tensor, ys: Tensor, xs: Tensor,
                     num_frames: int) -> Tensor:
        """Temporal extents ``(R, 2)`` in clip frames: proposal bounds shifted by the predicted offsets
        (in units of the proposal length), clamped to the clip and ordered."""
        seg = segments[prop_inds]
        length = seg[:, 1] - seg[:, 0] + 1
        off = extent_map[prop_inds, :, ys, xs]
        start = (seg[:, 0] + off[:, 0] * length).clamp(0, num_frames - 1)
        end = (seg[:, 1] + off[:, 1] * length).clamp(0, num_frames - 1)
        return torch.stack([torch.minimum(start, end), torch.maximum(start, end)], dim=1)

    def predict_by_feat(self, outs, prop_batch_inds: Optional[Tensor], segments: Tensor, num_clips: int,
                        num_frames: int, topk: int) -> Dict[str, Tensor]:
        """Top-k coarse tubes of every clip over all of its proposals, with the same ``k`` for every clip.

        Args:
            outs (tuple[Tensor]): :meth:`forward` outputs for ``P`` proposals.
            prop_batch_inds (Tensor, optional): ``(P,)`` clip of each proposal. None: proposal ``i`` is the
                only proposal of clip ``i`` (``P == num_clips``; the fixed-shape layout of the export path).
            segments (Tensor): ``(P, 2)`` proposal bounds in clip frames.
            num_clips (int): ``N``. num_frames (int): ``T``.
            topk (int): Tubes per clip.

        Returns:
            dict[str, Tensor]: with ``k = min(topk, (most proposals of a clip) * K * H' * W')``:
            ``scores (N, k)`` (descending; sigmoid of the heatmap at its 3x3 local maxima, 0 elsewhere),
            ``labels (N, k)`` int64, ``coeffs (N * k, 4, D+1)``, ``extents (N * k, 2)``,
            ``tube_batch (N * k,)`` (clip of each tube) and ``valid (N, k)`` bool (False on the slots of a
            clip with fewer candidates than ``k``; those slots hold copies of a real tube with score -1).
        """
        heat, coeff_map, extent_map = outs
        p, num_cls, h, w = heat.shape
        cells = num_cls * h * w
        scores = get_local_maximum(heat.sigmoid()).reshape(p, 1, cells)
        if prop_batch_inds is None:
            padded, prop_index = scores, torch.arange(p, device=heat.device)[:, None]
        else:
            # the proposals of each clip in ascending order, padded to the clip with the most
            onehot = torch.nn.functional.one_hot(prop_batch_inds, num_clips)
            rank = (onehot.cumsum(0) - 1).gather(1, prop_batch_inds[:, None]).squeeze(1)
            most = int(onehot.sum(0).max()) if p else 1
            padded = scores.new_full((num_clips, most, cells), -1.0)
            padded[prop_batch_inds, rank] = scores[:, 0]
            prop_index = prop_batch_inds.new_zeros((num_clips, most))
            prop_index[prop_batch_inds, rank] = torch.arange(p, device=heat.device)
        k = min(int(topk), padded.shape[1] * cells)
        if prop_batch_inds is None:
            top_scores, top = padded.reshape(num_clips, -1).topk(k, dim=1)
        else:  # ties (the zeros of non-maxima) in cell order, whatever the padding
            top_scores, top = padded.reshape(num_clips, -1).sort(dim=1, descending=True, stable=True)
            top_scores, top = top_scores[:, :k], top[:, :k]
        prop_inds = prop_index.gather(1, top // cells).reshape(-1)
        rem = (top % cells).reshape(-1)
        labels = rem // (h * w)
        ys, xs = (rem % (h * w)) // w, rem % w
        tube_batch = torch.arange(num_clips, device=heat.device)[:, None].expand(num_clips, k).reshape(-1)
        return dict(scores=top_scores, labels=labels.reshape(num_clips, k),
                    coeffs=self.cell_coeffs(coeff_map, prop_inds, ys, xs),
                    extents=self.cell_extents(extent_map, segments, prop_inds, ys, xs, num_frames),
                    tube_batch=tube_batch, valid=top_scores >= 0)

    # ------------------------------------------------------------------ training targets and losses
    def get_targets(self, prop_batch_inds: Tensor, segments: Tensor, gt_instances: list, num_frames: int,
                    feat_shape: Tuple[int, int], img_shape: Tuple[int, int]):
        """Heatmap targets and the positive (proposal, GT) pairs.

        Returns:
            tuple: ``heat_target (P, K, H', W')``; ``pos`` dict with
            ``prop_inds, ys, xs, batch_inds, gt_inds`` (all ``(R,)``), i.e. the cell of every assigned GT in
            every proposal that covers it.
        """
        h, w = feat_shape
        p = segments.shape[0]
        heat = segments.new_zeros((p, self.num_classes, h, w))
        prop_l, y_l, x_l, b_l, g_l = [], [], [], [], []
        frames = torch.arange(num_frames, device=segments.device)
        seg_masks = (frames[None] >= segments[:, :1]) & (frames[None] <= segments[:, 1:])  # (P, T)
        for b, gt in enumerate(gt_instances):
            props = torch.nonzero(prop_batch_inds == b).flatten()
            if gt.tubes.shape[0] == 0 or props.numel() == 0:
                continue
            tiou = tube_temporal_iou(seg_masks[props], gt.tube_masks)  # (p_b, G)
            for g in range(gt.tubes.shape[0]):
                valid = torch.nonzero(gt.tube_masks[g]).flatten()
                if valid.numel() == 0:
                    continue
                # centre_time='tube': one cell for every proposal; 'proposal': one per proposal
                tube_centre = (self.centre_cell(gt.tubes[g], valid, None, (h, w), img_shape)
                               if self.centre_time == 'tube' else None)
                for j in torch.nonzero(tiou[:, g] >= self.pos_tiou).flatten().tolist():
                    pi = int(props[j])
                    iy, ix, radius = tube_centre or self.centre_cell(gt.tubes[g], valid, segments[pi], (h, w),
                                                                     img_shape)
                    gen_gaussian_target(heat[pi, int(gt.labels[g])], [ix, iy], radius)
                    prop_l.append(pi), y_l.append(iy), x_l.append(ix), b_l.append(b), g_l.append(g)
        dev = segments.device

        def t(x):
            return torch.tensor(x, device=dev, dtype=torch.long)

        return heat, dict(prop_inds=t(prop_l), ys=t(y_l), xs=t(x_l), batch_inds=t(b_l), gt_inds=t(g_l))

    def centre_cell(self, tube: Tensor, valid: Tensor, segment: Optional[Tensor], feat_shape: Tuple[int, int],
                    img_shape: Tuple[int, int]) -> Tuple[int, int, int]:
        """The heatmap cell ``(y, x)`` and Gaussian radius of a GT tube ``(T, 4)`` whose annotated frames are
        ``valid`` (sorted) on a proposal ``segment = (start, end)`` (see ``centre_time``; ``'tube'`` does not
        read the segment, which may be None)."""
        h, w = feat_shape
        img_h, img_w = img_shape
        if self.centre_time == 'tube':
            mid = valid[(valid.numel() - 1) // 2]
        else:  # the annotated frame nearest the proposal's middle
            mid = valid[(valid.to(segment.dtype) - (segment[0] + segment[1]) / 2).abs().argmin()]
        box = tube[mid]
        cx = ((box[0] + box[2]) / 2 * w / img_w).clamp(0, w - 1e-3)
        cy = ((box[1] + box[3]) / 2 * h / img_h).clamp(0, h - 1e-3)
        bw = float((box[2] - box[0]) * w / img_w)
        bh = float((box[3] - box[1]) * h / img_h)
        return int(cy), int(cx), max(0, int(gaussian_radius((bh, bw), self.min_overlap)))

    def loss_and_predict(self, outs, prop_batch_inds: Tensor, segments: Tensor, gt_instances: list,
                         num_frames: int,
                         img_shape: Tuple[int, int]) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Coarse losses, and the coarse tubes predicted at the GT centres (they feed the refine stage).

        Returns:
            tuple[dict, dict]: losses ``loss_heatmap``, ``loss_coarse_box``, ``loss_coarse_giou``,
            ``loss_extent``; the positive tubes ``coeffs (R, 4, D+1)``, ``extents (R, 2)`` (with their graph),
            ``tube_batch (R,)`` (clip) and ``prop_inds (R,)`` (proposal).
        """
        heat_logits, coeff_map, extent_map = outs
        heat_target, pos = self.get_targets(prop_batch_inds, segments, gt_instances, num_frames,
                                            heat_logits.shape[-2:], img_shape)
        num_pos = max(1, int(pos['prop_inds'].numel()))
        losses = dict(loss_heatmap=self.loss_heatmap(heat_logits.sigmoid().clamp(1e-4, 1 - 1e-4), heat_target,
                                                     avg_factor=num_pos))
        coeffs = self.cell_coeffs(coeff_map, pos['prop_inds'], pos['ys'], pos['xs'])
        extents = self.cell_extents(extent_map, segments, pos['prop_inds'], pos['ys'], pos['xs'], num_frames)
        gt_tubes, gt_masks, gt_extents = self.gather_gt(gt_instances, pos, coeffs)
        box_losses = tube_box_losses(self.coder, coeffs, gt_extents, gt_tubes, gt_masks, img_shape,
                                     self.loss_box, self.loss_giou)
        losses.update(loss_coarse_box=box_losses[0], loss_coarse_giou=box_losses[1])
        losses['loss_extent'] = self.loss_extent(extents / num_frames, gt_extents / num_frames,
                                                 avg_factor=num_pos * 2) if len(extents) else extents.sum()
        return losses, dict(coeffs=coeffs, extents=extents, tube_batch=pos['batch_inds'],
                            prop_inds=pos['prop_inds'])

    @staticmethod
    def gather_gt(gt_instances: list, pos: dict, like: Tensor):
        """Dense GT tubes ``(R, T, 4)``, masks ``(R, T)`` and extents ``(R, 2)`` of the positive pairs."""
        tubes, masks = [], []
        for b, g in zip(pos['batch_inds'].tolist(), pos['gt_inds'].tolist()):
            tubes.append(gt_instances[b].tubes[g])
            masks.append(gt_instances[b].tube_masks[g])
        if not tubes:
            t = gt_instances[0].tube_masks.shape[1]
            return like.new_zeros((0, t, 4)), torch.zeros((0, t), dtype=torch.bool, device=like.device), \
                like.new_zeros((0, 2))
        masks = torch.stack(masks)
        first, last, _ = mask_extents(masks)  # a positive pair's GT tube has frames
        return torch.stack(tubes).to(like.dtype), masks, torch.stack([first, last], dim=1).to(like.dtype)
