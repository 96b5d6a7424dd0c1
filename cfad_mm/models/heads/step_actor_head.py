"""StepActorHead: where the actors are at every feature step (class-agnostic), and coarse tubes moved onto
them."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmaction.registry import MODELS, TASK_UTILS
from mmdet.models.utils.gaussian_target import gaussian_radius, gen_gaussian_target, get_local_maximum
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn import functional as F

from cfad_mm.structures.tube_ops import box_centres, clamp_boxes_to_image
from ..utils import feature_step_frames, input_span_frames, nearest_input_frames
from ..utils.local_correlation import LocalCorrelation


@MODELS.register_module()
class StepActorHead(BaseModule):
    """A class-agnostic actor heatmap with box sizes at every feature step, and the snap of coarse tubes onto
    its peaks before the refine stage.

    A whole-span trajectory regressed from one temporally pooled cell drifts away from a moving actor over a
    long window. The backbone's features hold the actor at every feature step anyway; this head reads them
    (one small 2-D CenterNet-style head shared by all steps, class-agnostic) and each coarse tube is moved,
    step by step, onto the nearest actor peak around its own estimate, then its trajectory is re-fitted::

        feats (N, C, T', H', W') -> per step: [Conv3x3-ReLU] x num_convs -> heatmap (N, T', H', W')
                                                                    -> log size (N, T', 2, H', W')
                                                                    -> offset   (N, T', 2, H', W')
                                                    [with motion] -> motion   (N, T', 4, H', W')
        coarse tube at the step frames (R, T', 4)
          -> the 3x3 peaks of the heatmap within search_radius cells of the tube's centre at each step,
             each scored heat x exp(-d^2 / (2 sigma^2)) (d in cells, sigma = distance_sigma) -> best peak
          -> box at the peak (cell + offset, size) with weight = its heat (0 below min_score or outside the
             tube's extent) -> closed-form re-fit of the trajectory (tube coder ``fit_update``, the coarse
             coefficients as prior of weight prior_strength)

    With ``frame_widths`` the maps are finer than the backbone's: a light 2-D branch
    (``[Conv3x3(stride 2)-BN-ReLU] x len(frame_widths)``) reads the input frame nearest each step's frame,
    and the step's features, upsampled to its resolution, join it before a 3x3 conv (``fusion='concat'``)::

        per step: upsample([Conv3x3-ReLU] x num_convs (backbone step)) ++ 2-D branch (input frame)
                  -> Conv3x3-ReLU -> heatmap / log size / offset at stride 2^len(frame_widths)

    or, with ``fusion='add'``, FPN-style: a 1x1 conv projects the step's features to the branch's width at
    the backbone's resolution, they are upsampled and added to the branch, and the 3x3 conv and the outputs
    work at the branch's width (``frame_widths[-1]`` channels instead of ``feat_channels`` out of
    ``feat_channels + frame_widths[-1]`` in): the 3x3 conv at the fine resolution is most of the head's
    work, and this makes it several times cheaper (``tools/analysis/actor_head_cost.py`` counts it)::

        per step: upsample(Conv1x1([Conv3x3-ReLU] x num_convs (backbone step))) + 2-D branch (input frame)
                  -> Conv3x3-ReLU -> heatmap / log size / offset at stride 2^len(frame_widths)

    With ``motion`` (and ``follow``) the head also learns where each actor goes: at an actor's centre cell of
    step u, the displacement (cells) of its centre to steps u - 1 and u + 1 (CenterTrack-style tracking
    offsets, trained at the GT centres only). Following then predicts the next step's search centre from
    the displacement learned at the peak found at the step before, instead of the followed velocity: right
    where that velocity is wrong (the first move from the anchor, an actor that turns or changes speed);
    actors that share one peak share its displacement.

    With ``corr_radius`` the displacement is read from how each map matches its neighbours, not guessed from
    one map's features: the features of every map, average-pooled by ``corr_pool``, are projected by a 1x1
    conv to ``corr_channels`` unit vectors, each is correlated with the maps before and after within
    ``corr_radius`` cells of the pooled map (a FlowNet-C style cost volume,
    :class:`~cfad_mm.models.utils.local_correlation.LocalCorrelation`), and the motion is the expected shift
    of the softmax of each cost volume (temperature learned) plus a 1x1 conv of the pooled features and both
    cost volumes, upsampled (bilinear) back to the maps' resolution::

        per map u: p_u = AvgPool(x_u); g_u = normalize(Conv1x1(p_u))
                   C_prev = corr(g_u, g_(u-1)); C_next = corr(g_u, g_(u+1))
                   motion_u = up(corr_pool x [E_softmax(C_prev)[shift], E_softmax(C_next)[shift]]
                                 + Conv1x1(p_u ++ C_prev ++ C_next))

    Its work per window is one 2-D head over the feature map (no RoI per tube) and a gather of
    ``(2 search_radius + 1)^2`` cells per tube and step. The snap is not differentiable (an argmax); the head
    learns from its own losses (training targets: every annotated GT box at each step's frame), which also
    reach the backbone.

    Args:
        in_channels (int): Channels of the features.
        feat_channels (int): Hidden channels. Defaults to 64.
        num_convs (int): 3x3 convs before the outputs. Defaults to 1.
        prior_size (float): Box size prior as a fraction of the clip size (the size map is the log of the
            ratio to it). Defaults to 0.25.
        min_overlap (float): CenterNet Gaussian radius parameter of the heatmap targets. Defaults to 0.7.
        min_radius (int): Smallest Gaussian radius (cells) of the targets: actors of a few cells would get a
            single positive cell and full negatives next to it. Defaults to 1.
        search_radius (int): Cells searched around the tube's centre in each direction. Defaults to 2.
        distance_sigma (float): Scale (cells) of the distance penalty of a peak. Defaults to 1.5.
        min_score (float): Peaks with a lower heat are not used (the step keeps the coarse box).
            Defaults to 0.1, the heatmap's initial prior: early in training nearly every peak passes it, so
            the refine stage first sees tubes snapped to weak peaks (the measured runs of docs/model.md
            trained so).
        prior_strength (float): ``lambda`` of the re-fit (each snapped box weighs its heat). Defaults to 0.01.
        follow (bool): Follow each tube from its best peak step by step (each step searched around the box
            found at the step before it) instead of searching around the tube's own box at every step; see
            :meth:`snap`. Defaults to False.
        coast_weight (float): With ``follow``, the re-fit weight of a step where no peak is found (the box
            there coasts on the followed velocity). Defaults to 0.05.
        motion (bool): Learn the step-to-step displacement of every actor and follow with it (needs
            ``follow``). Defaults to False.
        frame_widths (Sequence[int], optional): Channels of the stride-2 stages of the 2-D branch on the
            input frames (their number sets the stride of the maps: 2 stages give stride 4, twice as fine as
            the tiny backbone's 8; exactly so when the input's H and W divide by it, the stride-2 convs
            round up). Defaults to None (maps at the backbone's resolution, no branch).
        at_input_frames (bool): Maps at every sampled input frame instead of every feature step (needs
            ``frame_widths``): each input frame goes through the 2-D branch and joins the features of the
            step that covers it, so that the snap, the follow and the re-fit get a box every ``k`` frames of a
            ``T x k`` window instead of every ``S / T'`` (twice as often with the tiny backbone's temporal
            stride 2). Every "step" above is then an input frame (:meth:`map_frames`). Defaults to False.
        tracker (dict, optional): A :class:`~cfad_mm.models.task_modules.PeakTracker` config: the peaks of
            all maps of a window are linked into tracks first and each tube is moved onto one whole track
            (:meth:`snap`); a tube left without one keeps the step-by-step snap. Defaults to None.
        corr_radius (int): With ``motion``, read the displacements from cost volumes of this radius (cells of
            the pooled maps: ``corr_radius x corr_pool`` cells of the maps) between neighbouring maps (see
            above; the largest displacement they express directly, the 1x1 conv adds a residual). Defaults
            to 0 (off: the motion is a 1x1 conv of one map's features).
        corr_channels (int): Channels of the features that are correlated. Defaults to 16.
        corr_pool (int): Average-pooling of the maps before the correlation: its work falls with the square
            of it, and a shift of one pooled cell is ``corr_pool`` cells of the maps. Defaults to 2.
        fusion (str): How the step's features join the 2-D branch (with ``frame_widths``): ``'concat'``
            (concatenated, then a 3x3 conv to ``feat_channels``) or ``'add'`` (projected by a 1x1 conv to the
            branch's width, added, then a 3x3 conv at that width; see above). Defaults to ``'concat'``.
        loss_heatmap, loss_size, loss_offset, loss_motion (dict): loss configs (``loss_motion``: only with
            ``motion``).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, feat_channels: int = 64, num_convs: int = 1,
                 prior_size: float = 0.25, min_overlap: float = 0.7, min_radius: int = 1,
                 search_radius: int = 2, distance_sigma: float = 1.5,
                 min_score: float = 0.1, prior_strength: float = 0.01, follow: bool = False,
                 coast_weight: float = 0.05, motion: bool = False,
                 frame_widths: Optional[Sequence[int]] = None, at_input_frames: bool = False,
                 fusion: str = 'concat', tracker: Optional[dict] = None, assign_from: str = 'snapped',
                 corr_radius: int = 0, corr_channels: int = 16, corr_pool: int = 2,
                 loss_heatmap: dict = dict(type='mmdet.GaussianFocalLoss', loss_weight=1.0),
                 loss_size: dict = dict(type='mmdet.L1Loss', loss_weight=1.0),
                 loss_offset: dict = dict(type='mmdet.L1Loss', loss_weight=1.0),
                 loss_motion: dict = dict(type='mmdet.L1Loss', loss_weight=1.0),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if int(search_radius) < 0 or distance_sigma <= 0 or not 0 < prior_size <= 1:
            raise ValueError(f'StepActorHead: search_radius must be >= 0, distance_sigma > 0 and prior_size '
                             f'in (0, 1], got {search_radius}, {distance_sigma} and {prior_size}')
        if not 0 <= min_score < 1 or not 0 < min_overlap < 1 or int(min_radius) < 0:
            raise ValueError(f'StepActorHead: min_score must be in [0, 1), min_overlap in (0, 1) and '
                             f'min_radius >= 0, got {min_score}, {min_overlap} and {min_radius}')
        if coast_weight < 0:
            raise ValueError(f'StepActorHead: coast_weight must be >= 0, got {coast_weight}')
        if motion and not follow:
            raise ValueError('StepActorHead: motion=True is used only when following; set follow=True too')
        if int(corr_radius) < 0 or int(corr_channels) < 1 or int(corr_pool) < 1:
            raise ValueError(f'StepActorHead: corr_radius must be >= 0, corr_channels and corr_pool >= 1, '
                             f'got {corr_radius}, {corr_channels} and {corr_pool}')
        if corr_radius and not motion:
            raise ValueError('StepActorHead: corr_radius > 0 reads the learned motion from cost volumes; it '
                             'needs motion=True (and follow=True)')
        if at_input_frames and not frame_widths:
            raise ValueError('StepActorHead: at_input_frames=True needs frame_widths (without the 2-D branch '
                             'the maps of the input frames of one step would be copies of each other)')
        if fusion not in ('concat', 'add'):
            raise ValueError(f"StepActorHead: fusion must be 'concat' or 'add', got {fusion!r}")
        if fusion != 'concat' and not frame_widths:
            raise ValueError(f'StepActorHead: fusion={fusion!r} joins the 2-D branch; it needs frame_widths')
        if assign_from not in ('snapped', 'coarse'):
            raise ValueError(f"StepActorHead: assign_from must be 'snapped' or 'coarse', got {assign_from!r}")
        if prior_strength <= 0:
            raise ValueError(f'StepActorHead: prior_strength must be > 0, got {prior_strength}')
        self.prior_size = float(prior_size)
        self.min_overlap = float(min_overlap)
        self.min_radius = int(min_radius)
        self.search_radius = int(search_radius)
        self.distance_sigma = float(distance_sigma)
        self.min_score = float(min_score)
        self.prior_strength = float(prior_strength)
        self.follow = bool(follow)
        self.coast_weight = float(coast_weight)
        self.at_input_frames = bool(at_input_frames)
        self.tracker = TASK_UTILS.build(tracker) if tracker else None
        self.assign_from = assign_from
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(c, feat_channels, 3, padding=1), nn.ReLU(inplace=True)]
            c = feat_channels
        self.shared = nn.Sequential(*layers)
        self.frame_branch = self.lateral = None
        if frame_widths:
            branch, fc = [], 3
            for fw in frame_widths:
                branch += [nn.Conv2d(fc, fw, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(fw),
                           nn.ReLU(inplace=True)]
                fc = fw
            self.frame_branch = nn.Sequential(*branch)
            if fusion == 'add':
                self.lateral = nn.Conv2d(c, fc, 1)
                self.fuse = nn.Sequential(nn.Conv2d(fc, fc, 3, padding=1), nn.ReLU(inplace=True))
                c = fc
            else:
                self.fuse = nn.Sequential(nn.Conv2d(c + fc, feat_channels, 3, padding=1),
                                          nn.ReLU(inplace=True))
                c = feat_channels
        self.heatmap = nn.Conv2d(c, 1, 1)
        self.size = nn.Conv2d(c, 2, 1)
        self.offset = nn.Conv2d(c, 2, 1)
        self.correlation = self.corr_proj = self.corr_scale = None
        if motion and corr_radius:
            self.corr_proj = nn.Conv2d(c, int(corr_channels), 1)
            self.correlation = LocalCorrelation(int(corr_radius))
            self.corr_scale = nn.Parameter(torch.tensor(10.0))  # softmax temperature of the cosines
            self.corr_pool = int(corr_pool)
            self.motion = nn.Conv2d(c + 2 * (2 * int(corr_radius) + 1) ** 2, 4, 1)
        else:
            self.motion = nn.Conv2d(c, 4, 1) if motion else None
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.loss_size = MODELS.build(loss_size)
        self.loss_offset = MODELS.build(loss_offset)
        self.loss_motion = MODELS.build(loss_motion) if motion else None
        r = self.search_radius
        d = torch.arange(-r, r + 1)
        dy, dx = torch.meshgrid(d, d, indexing='ij')
        self.register_buffer('window', torch.stack([dy.flatten(), dx.flatten()], 1), persistent=False)

    def init_weights(self):
        super().init_weights()
        nn.init.constant_(self.heatmap.bias, -math.log((1 - 0.1) / 0.1))
        for m in (self.size, self.offset, self.motion):
            if m is None:
                continue
            nn.init.normal_(m.weight, std=0.001)
            nn.init.constant_(m.bias, 0)
        nn.init.constant_(self.offset.bias, 0.5)

    def map_frames(self, num_maps: int, span: int, device=None) -> Tensor:
        """The span frame ``(M,)`` (int64) of each of the ``M = num_maps`` maps of :meth:`forward` over a
        span of ``span`` frames: the frame of each feature step (:func:`feature_step_frames` with the stride
        ``span / T'``, ``M = T'``), or with ``at_input_frames`` the frame of each sampled input frame
        (``M = T``)."""
        if self.at_input_frames:
            return input_span_frames(torch.arange(num_maps, device=device), num_maps, span)
        return feature_step_frames(num_maps, span / num_maps, span, device)

    def forward(self, feats: Tensor, frames: Optional[Tensor] = None,
                span: Optional[int] = None) -> Tuple[Tensor, ...]:
        """Heatmap logits ``(N, M, h, w)``, log sizes ``(N, M, 2, h, w)`` (relative to ``prior_size``
        x the clip size), sub-cell centre offsets ``(N, M, 2, h, w)`` (x, y; cells) and, with ``motion``,
        displacements ``(N, M, 4, h, w)`` (cells: x, y to the map before, x, y to the map after) of
        features ``(N, C, T', H', W')``: ``M = T'`` maps (one per feature step) or with ``at_input_frames``
        ``M = T`` (one per input frame); ``(h, w) = (H', W')``, or with ``frame_widths`` the resolution of
        the 2-D branch on ``frames`` (the network input ``(N, 3, T, H, W)`` sampled evenly over ``span``
        frames). :meth:`map_frames` gives the span frame of each map."""
        n, c, t, h, w = feats.shape
        x = self.shared(feats.transpose(1, 2).reshape(n * t, c, h, w))
        if self.frame_branch is not None:
            if self.lateral is not None:  # at the backbone's resolution, once per step
                x = self.lateral(x)
            if frames is None or span is None:
                raise ValueError('StepActorHead with frame_widths needs the input frames and the span '
                                 '(forward(feats, frames, span))')
            nt = frames.shape[2]
            if self.at_input_frames:
                # every input frame, with the features of the step that covers it (step u: span frames
                # [u S / T', (u + 1) S / T'))
                inputs = self.map_frames(nt, span, frames.device)
                covering = torch.floor(inputs.double() * t / span).long().clamp(max=t - 1)  # (T,)
                x = x.reshape(n, t, *x.shape[1:])[:, covering].reshape(n * nt, *x.shape[1:])
                j, t = torch.arange(nt, device=frames.device), nt
            else:
                # (T',) the input frame nearest each step
                j = nearest_input_frames(self.map_frames(t, span, frames.device), nt, span)
            images = frames[:, :, j].transpose(1, 2).reshape(n * t, frames.shape[1], *frames.shape[-2:])
            fine = self.frame_branch(images)
            x = F.interpolate(x, size=fine.shape[-2:], mode='bilinear', align_corners=False)
            x = self.fuse(x + fine if self.lateral is not None else torch.cat([x, fine], 1))
            h, w = fine.shape[-2:]
        outs = (self.heatmap(x).reshape(n, t, h, w), self.size(x).reshape(n, t, 2, h, w),
                self.offset(x).reshape(n, t, 2, h, w))
        if self.correlation is not None:
            outs += (self._correlated_motion(x, n, t).reshape(n, t, 4, h, w),)
        elif self.motion is not None:
            outs += (self.motion(x).reshape(n, t, 4, h, w),)
        return outs

    def _correlated_motion(self, x: Tensor, n: int, t: int) -> Tensor:
        """Displacements ``(N * M, 4, h, w)`` (cells of the maps) from the cost volumes of each map
        ``x (N * M, C, h, w)`` with the maps before and after it in its window (zero volumes, and so a zero
        expected shift, at the first and the last map)."""
        pool = self.corr_pool
        pooled = F.avg_pool2d(x, pool, ceil_mode=True) if pool > 1 else x
        g = F.normalize(self.corr_proj(pooled), dim=1).reshape(n, t, -1, *pooled.shape[-2:])
        none = torch.zeros_like(g[:, :1])
        before, after = torch.cat([none, g[:, :-1]], 1), torch.cat([g[:, 1:], none], 1)
        g, before, after = (z.reshape(n * t, *z.shape[2:]) for z in (g, before, after))
        c_before, c_after = self.correlation(g, before), self.correlation(g, after)
        expected = torch.cat([self.correlation.expected_shift(c_before, self.corr_scale),
                              self.correlation.expected_shift(c_after, self.corr_scale)], 1)
        motion = pool * expected + self.motion(torch.cat([pooled, c_before, c_after], 1))
        if pool > 1:
            motion = F.interpolate(motion, size=x.shape[-2:], mode='bilinear', align_corners=False)
        return motion

    # ------------------------------------------------------------------ training
    def get_targets(self, gt_instances: List, step_frames: Tensor, feat_shape: Tuple[int, int],
                    img_shape: Tuple[int, int]) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Heatmap targets ``(N, T', H', W')`` and, at the centre cell of every GT box annotated at a step's
        frame, its size and offset targets and the displacement of its centre to the steps before and after.

        Returns:
            tuple: ``heat (N, T', H', W')``; dict of ``inds (P, 4)`` (clip, step, y, x; int64),
            ``size (P, 2)``, ``offset (P, 2)``, ``motion (P, 4)`` (cells: x, y to step u - 1, x, y to step
            u + 1) and ``motion_weight (P, 4)`` (1 where the tube is annotated at that neighbouring step).
        """
        h, w = feat_shape
        img_h, img_w = img_shape
        n, t = len(gt_instances), step_frames.numel()
        ref = gt_instances[0].tubes if n else step_frames.float()
        heat = ref.new_zeros((n, t, h, w))
        inds, sizes, offsets, motions, motion_weights = [], [], [], [], []
        for b, gt in enumerate(gt_instances):
            if gt.tubes.shape[0] == 0:
                continue
            # (on the CPU once: the loop reads single values)
            boxes = gt.tubes[:, step_frames].to(heat.dtype).cpu()  # (G, T', 4)
            valid = gt.tube_masks[:, step_frames].cpu()
            # centres (x, y) in cells, inside the map, (G, T', 2); in double, as the loop reads them
            c = box_centres(boxes.double())
            centres = torch.stack([(c[..., 0] * w / img_w).clamp(0.0, w - 1e-3),
                                   (c[..., 1] * h / img_h).clamp(0.0, h - 1e-3)], -1).tolist()
            for g, u in torch.nonzero(valid).tolist():
                x1, y1, x2, y2 = boxes[g, u].tolist()
                cx, cy = centres[g][u]
                move, move_w = [0.0] * 4, [0.0] * 4
                for k, v in enumerate((u - 1, u + 1)):
                    if 0 <= v < t and valid[g, v]:
                        nx, ny = centres[g][v]
                        move[2 * k:2 * k + 2], move_w[2 * k:2 * k + 2] = [nx - cx, ny - cy], [1.0, 1.0]
                motions.append(move)
                motion_weights.append(move_w)
                bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
                radius = max(self.min_radius,
                             int(gaussian_radius((bh * h / img_h, bw * w / img_w), self.min_overlap)))
                ix, iy = int(cx), int(cy)
                gen_gaussian_target(heat[b, u], [ix, iy], radius)
                inds.append((b, u, iy, ix))
                sizes.append((math.log(bw / (self.prior_size * img_w)),
                              math.log(bh / (self.prior_size * img_h))))
                offsets.append((cx - ix, cy - iy))
        dev = heat.device
        return heat, dict(inds=torch.tensor(inds, dtype=torch.long, device=dev).reshape(-1, 4),
                          size=torch.tensor(sizes, dtype=heat.dtype, device=dev).reshape(-1, 2),
                          offset=torch.tensor(offsets, dtype=heat.dtype, device=dev).reshape(-1, 2),
                          motion=torch.tensor(motions, dtype=heat.dtype, device=dev).reshape(-1, 4),
                          motion_weight=torch.tensor(motion_weights, dtype=heat.dtype,
                                                     device=dev).reshape(-1, 4))

    def loss(self, outs: Tuple[Tensor, ...], gt_instances: List, step_frames: Tensor,
             img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """``loss_actor_heatmap`` (Gaussian focal), ``loss_actor_size`` and ``loss_actor_offset`` (L1 at the
        GT centre cells) and, with ``motion``, ``loss_actor_motion`` (L1 at the GT centre cells, where the
        tube is annotated at the neighbouring step) of :meth:`forward` outputs against the GT boxes at the
        step frames ``(T',)``."""
        heat_logits, size_map, offset_map = outs[:3]
        heat, tgt = self.get_targets(gt_instances, step_frames, heat_logits.shape[-2:], img_shape)
        num_pos = max(1, tgt['inds'].shape[0])
        losses = dict(loss_actor_heatmap=self.loss_heatmap(heat_logits.sigmoid().clamp(1e-4, 1 - 1e-4), heat,
                                                           avg_factor=num_pos))
        b, u, y, x = tgt['inds'].unbind(1)
        size = size_map.permute(0, 1, 3, 4, 2)[b, u, y, x]  # (P, 2)
        offset = offset_map.permute(0, 1, 3, 4, 2)[b, u, y, x]
        if tgt['inds'].shape[0] == 0:
            zero = size_map.sum() * 0 + offset_map.sum() * 0
            losses.update(loss_actor_size=zero, loss_actor_offset=zero)
            if self.motion is not None:
                losses['loss_actor_motion'] = outs[3].sum() * 0
            return losses
        losses.update(loss_actor_size=self.loss_size(size, tgt['size'], avg_factor=num_pos * 2),
                      loss_actor_offset=self.loss_offset(offset, tgt['offset'], avg_factor=num_pos * 2))
        if self.motion is not None:
            motion = outs[3].permute(0, 1, 3, 4, 2)[b, u, y, x]  # (P, 4)
            weight = tgt['motion_weight']  # (all 0: a zero loss, still with a graph)
            losses['loss_actor_motion'] = self.loss_motion(motion, tgt['motion'], weight,
                                                           avg_factor=weight.sum().clamp(min=1))
        return losses

    # ------------------------------------------------------------------ the snap
    def _peaks_near(self, peaks: Tensor, size_map: Tensor, offset_map: Tensor, tube_batch: Tensor,
                    steps: Tensor, cx: Tensor, cy: Tensor, img_shape: Tuple[int, int]
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The best peak within ``search_radius`` cells of each centre.

        Args:
            peaks (Tensor): ``(N, T', H', W')`` heat at the 3x3 local maxima, 0 elsewhere.
            size_map, offset_map (Tensor): :meth:`forward` outputs.
            tube_batch (Tensor): ``(R,)`` clip of each tube.
            steps (Tensor): ``(R, S)`` feature steps searched.
            cx, cy (Tensor): ``(R, S)`` search centres (cells).
            img_shape (tuple[int, int]): ``(H, W)`` of the input.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: the box at the best peak ``(R, S, 4)`` (input pixels,
            clipped), its heat ``(R, S)`` (0: no peak in the window), its score (heat x distance penalty)
            ``(R, S)`` and its cell ``(R, S, 2)`` (row, column; int64).
        """
        _, _, h, w = peaks.shape
        ys = cy.floor().long()[..., None] + self.window[:, 0]  # (R, S, K)
        xs = cx.floor().long()[..., None] + self.window[:, 1]
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        ys, xs = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
        bb = tube_batch[:, None, None].expand_as(ys)
        uu = steps[..., None].expand_as(ys)
        score = peaks[bb, uu, ys, xs] * inside.to(peaks.dtype)  # (R, S, K)
        dist2 = (xs.to(cx.dtype) + 0.5 - cx[..., None]) ** 2 + (ys.to(cy.dtype) + 0.5 - cy[..., None]) ** 2
        weighted = score * torch.exp(-dist2 / (2 * self.distance_sigma ** 2))
        best = weighted.argmax(-1, keepdim=True)
        by, bx = ys.gather(-1, best)[..., 0], xs.gather(-1, best)[..., 0]  # (R, S)
        heat = score.gather(-1, best)[..., 0]
        boxes = self.box_at(size_map, offset_map, bb[..., 0], uu[..., 0], by, bx, img_shape)
        return boxes, heat, weighted.gather(-1, best)[..., 0], torch.stack([by, bx], -1)

    def box_at(self, size_map: Tensor, offset_map: Tensor, b: Tensor, u: Tensor, y: Tensor, x: Tensor,
               img_shape: Tuple[int, int]) -> Tensor:
        """The box ``(..., 4)`` (input pixels, clipped) the head predicts at cells ``(b, u, y, x)`` (clip,
        step, row, column; int64 tensors of one shape): the cell plus its offset as centre, its size."""
        h, w = size_map.shape[-2:]
        img_h, img_w = img_shape
        off = offset_map[b, u, :, y, x]  # (..., 2)
        size = size_map[b, u, :, y, x].clamp(max=math.log(1 / self.prior_size) + 1).exp()
        pcx = (x.to(off.dtype) + off[..., 0]) * img_w / w
        pcy = (y.to(off.dtype) + off[..., 1]) * img_h / h
        bw, bh = size[..., 0] * self.prior_size * img_w, size[..., 1] * self.prior_size * img_h
        boxes = torch.stack([pcx - bw / 2, pcy - bh / 2, pcx + bw / 2, pcy + bh / 2], -1)
        return clamp_boxes_to_image(boxes, img_shape)

    def peak_boxes(self, outs: Tuple[Tensor, ...], img_shape: Tuple[int, int]
                   ) -> Tuple[Tensor, Tensor, Tensor]:
        """Every actor the head finds: the boxes at the 3x3 local maxima of the heatmap with heat >=
        ``min_score`` (and > 0).

        Args:
            outs (tuple[Tensor]): :meth:`forward` outputs (maps ``(N, T', h, w)``).
            img_shape (tuple[int, int]): ``(H, W)`` of the input.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``where (P, 2)`` (clip, step; int64), ``boxes (P, 4)`` (input
            pixels) and ``heat (P,)``.
        """
        heat_logits, size_map, offset_map = outs[:3]
        peaks = get_local_maximum(heat_logits.sigmoid())
        b, u, y, x = torch.nonzero((peaks > 0) & (peaks >= self.min_score), as_tuple=True)
        return (torch.stack([b, u], 1), self.box_at(size_map, offset_map, b, u, y, x, img_shape),
                peaks[b, u, y, x])

    def snap(self, outs: Tuple[Tensor, ...], tube_batch: Tensor, step_boxes: Tensor,
             step_in: Tensor, img_shape: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """The actor box each tube is moved onto at every feature step, and its weight.

        Without ``follow`` every step searches around the tube's own box at that step. With ``follow`` the
        tube is anchored at the step of its best-scoring peak and followed from there, step by step in both
        directions: each step searches around the box of the step before it (moved by the tube's velocity),
        so that an actor the coarse trajectory lags behind is still found; a step without a peak coasts on
        the velocity (weight ``coast_weight``). With ``motion`` the move from a step where a peak was found
        is the learned displacement at that peak, not the velocity. With a ``tracker`` the peaks are linked
        into tracks through the window and each tube that the tracker assigns a track is moved onto that
        track instead (:meth:`_snap_to_tracks`).

        Args:
            outs (tuple[Tensor]): :meth:`forward` outputs.
            tube_batch (Tensor): ``(R,)`` clip of each tube.
            step_boxes (Tensor): ``(R, T', 4)`` the tubes' boxes at the step frames (input pixels).
            step_in (Tensor): ``(R, T')`` bool, the steps inside each tube's extent.
            img_shape (tuple[int, int]): ``(H, W)`` of the input.

        Returns:
            tuple[Tensor, Tensor]: boxes ``(R, T', 4)`` (input pixels; the tube's own box where no peak is
            used, with ``follow`` the coasted box inside the extent) and weights ``(R, T')`` (the heat of the
            peak; 0 where none is used, with ``follow`` ``coast_weight`` at the coasted steps).
        """
        heat_logits, size_map, offset_map = outs[:3]
        _, t, h, w = heat_logits.shape
        r = step_boxes.shape[0]
        if r == 0:
            return step_boxes, step_boxes.new_zeros((0, t))
        peaks = get_local_maximum(heat_logits.sigmoid())  # (N, T', H', W'), 0 off the 3x3 maxima
        scale = step_boxes.new_tensor([w / img_shape[1], h / img_shape[0]])  # cells per input pixel (x, y)
        own = box_centres(step_boxes) * scale  # (R, T', 2) in cells
        steps = torch.arange(t, device=step_boxes.device)[None].expand(r, t)
        boxes, heat, score, cells = self._peaks_near(peaks, size_map, offset_map, tube_batch, steps,
                                                     own[..., 0], own[..., 1], img_shape)
        used = step_in & self._usable(heat)
        motion_map = outs[3] if self.motion is not None else None
        if not self.follow:
            snapped = torch.where(used[..., None], boxes, step_boxes), heat * used.to(heat.dtype)
        else:
            snapped = self._follow(peaks, size_map, offset_map, tube_batch, step_boxes, step_in, img_shape,
                                   boxes, heat, score, used, own, scale, motion_map, cells)
        if self.tracker is None:
            return snapped
        by = own if self.assign_from == 'coarse' else box_centres(snapped[0]) * scale
        return self._snap_to_tracks(peaks, size_map, offset_map, motion_map, tube_batch, step_boxes, step_in,
                                    by, img_shape, *snapped)

    def _snap_to_tracks(self, peaks: Tensor, size_map: Tensor, offset_map: Tensor,
                        motion_map: Optional[Tensor], tube_batch: Tensor, step_boxes: Tensor,
                        step_in: Tensor, tube_centres: Tensor, img_shape: Tuple[int, int], boxes: Tensor,
                        weights: Tensor) -> Tuple[Tensor, Tensor]:
        """:meth:`snap` with a ``tracker``: per clip, its peaks (heat >= ``min_score``) linked into tracks
        (:meth:`PeakTracker.link`, with the learned displacements when the head has them) and the tubes
        assigned to tracks (:meth:`PeakTracker.assign`, by ``tube_centres (R, M, 2)``, in cells, the centres
        of the boxes ``assign_from`` chooses). An assigned tube takes, inside its extent, its track's box at
        every map where the track has a peak (weight: its heat), the box interpolated between the track's
        peaks around a map it misses (weight ``coast_weight``) and its own box before the track's first and
        after its last peak (weight 0); the other tubes keep ``boxes`` / ``weights`` (the step-by-step
        snap)."""
        out, out_w = boxes.clone(), weights.clone()
        maps = torch.arange(peaks.shape[1], device=peaks.device)
        for n, track in enumerate(self.link_peaks(peaks, size_map, offset_map, motion_map, img_shape)):
            tubes = torch.nonzero(tube_batch == n).flatten()
            if tubes.numel() == 0 or track['boxes'].shape[0] == 0:
                continue
            has_peak, track_heat = track['heat'] > 0, track['heat'].to(boxes.dtype)
            choice = self.tracker.assign(tube_centres[tubes], step_in[tubes], track['centres'], track_heat)
            assigned = torch.nonzero(choice >= 0).flatten()
            if assigned.numel() == 0:
                continue
            filled, fill_w, alive = self._track_boxes(track['boxes'].to(boxes.dtype), has_peak, track_heat,
                                                      maps)
            rows, tracks = tubes[assigned.to(tubes.device)], choice[assigned].to(tubes.device)
            inside = step_in[rows] & alive[tracks]
            out[rows] = torch.where(inside[..., None], filled[tracks], step_boxes[rows])
            out_w[rows] = torch.where(inside, fill_w[tracks], out_w.new_zeros(()))
        return out, out_w

    def link_peaks(self, peaks: Tensor, size_map: Tensor, offset_map: Tensor, motion_map: Optional[Tensor],
                   img_shape: Tuple[int, int]) -> List[Dict[str, Tensor]]:
        """The ``tracker``'s tracks of every clip: its peaks (3x3 maxima ``peaks (N, M, h, w)`` with heat >=
        ``min_score``) linked through the maps (:meth:`PeakTracker.link`, with the learned displacements
        ``motion_map`` when the head has them).

        Returns:
            list[dict]: per clip, ``boxes (J, M, 4)`` (input pixels; 0 where the track has no peak),
            ``centres (J, M, 2)`` (cells; 0 where none) and ``heat (J, M)`` (0 where none) of its ``J``
            tracks.
        """
        if self.tracker is None:
            raise ValueError('StepActorHead.link_peaks needs a tracker (tracker=dict(type=\'PeakTracker\'))')
        num_clips, m = peaks.shape[:2]
        b, u, y, x = torch.nonzero((peaks > 0) & (peaks >= self.min_score), as_tuple=True)
        heat = peaks[b, u, y, x]
        off = offset_map[b, u, :, y, x].to(heat.dtype)
        centres = torch.stack([x.to(heat.dtype) + off[:, 0], y.to(heat.dtype) + off[:, 1]], -1)  # (P, 2)
        boxes = self.box_at(size_map, offset_map, b, u, y, x, img_shape).to(heat.dtype)
        moves = motion_map[b, u, :, y, x].to(heat.dtype) if motion_map is not None else None
        tracks = []
        for n in range(num_clips):
            ids = [torch.nonzero((b == n) & (u == k)).flatten() for k in range(m)]  # per map, its peaks
            local = self.tracker.link([centres[i] for i in ids], [heat[i] for i in ids],
                                      None if moves is None else [moves[i] for i in ids])
            index = torch.full(local.shape, -1, dtype=torch.long, device=peaks.device)  # (J, M) peak index
            for k in range(m):
                has = local[:, k] >= 0
                index[has.to(index.device), k] = ids[k][local[has, k].to(ids[k].device)]
            has_peak = (index >= 0)[..., None]
            safe = index.clamp(min=0)
            tracks.append(dict(boxes=boxes[safe] * has_peak, centres=centres[safe] * has_peak,
                               heat=heat[safe] * has_peak[..., 0]))
        return tracks

    def _track_boxes(self, boxes: Tensor, has_peak: Tensor, heat: Tensor,
                     maps: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Boxes ``(J, M, 4)``, weights ``(J, M)`` and lifetimes ``(J, M)`` (bool: from the track's first to
        its last peak) of tracks at every map from their peak boxes ``boxes (J, M, 4)`` where ``has_peak (J,
        M)``: the peak box (weight ``heat``), or linearly interpolated between the peaks around a missed map
        (weight ``coast_weight``); outside the lifetime box 0 and weight 0."""
        j, m = has_peak.shape
        out, w = torch.zeros_like(boxes), torch.zeros_like(heat)
        alive = torch.zeros_like(has_peak)
        for t in range(j):
            known = torch.nonzero(has_peak[t]).flatten()
            first, last = int(known[0]), int(known[-1])
            span = maps[first:last + 1]
            kb = boxes[t, known].detach().cpu().double().numpy()
            kf = known.cpu().double().numpy()
            interp = np.stack([np.interp(span.cpu().double().numpy(), kf, kb[:, c]) for c in range(4)], -1)
            out[t, first:last + 1] = torch.from_numpy(interp).to(boxes)
            w[t, first:last + 1] = self.coast_weight
            alive[t, first:last + 1] = True
            w[t, known] = heat[t, known]
        out[has_peak] = boxes[has_peak]
        return out, w, alive

    def _usable(self, heat: Tensor) -> Tensor:
        """Whether a best peak of heat ``heat`` is used: there is one (heat 0: no peak in the search window)
        and it reaches ``min_score``."""
        return (heat > 0) & (heat >= self.min_score)

    def _follow(self, peaks: Tensor, size_map: Tensor, offset_map: Tensor, tube_batch: Tensor,
                step_boxes: Tensor, step_in: Tensor, img_shape: Tuple[int, int], boxes: Tensor, heat: Tensor,
                score: Tensor, used: Tensor, own: Tensor, scale: Tensor,
                motion_map: Optional[Tensor] = None, cells: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor]:
        """:meth:`snap` with ``follow``: from the anchor step outward (see :meth:`snap`).

        Args:
            peaks (Tensor): ``(N, T', h, w)`` heat at the 3x3 local maxima, 0 elsewhere.
            size_map, offset_map (Tensor): :meth:`forward` outputs.
            tube_batch (Tensor): ``(R,)`` clip of each tube.
            step_boxes (Tensor): ``(R, T', 4)`` the tubes' own boxes at the step frames (input pixels).
            step_in (Tensor): ``(R, T')`` bool, the steps inside each tube's extent.
            img_shape (tuple[int, int]): ``(H, W)`` of the input.
            boxes, heat, score, used (Tensor): ``(R, T', 4)``, ``(R, T')`` x 3: the best peak around the
                tube's own box at every step, its heat, its score and whether it passes ``min_score``
                (the anchor is the used step of highest score).
            own (Tensor): ``(R, T', 2)`` centres of ``step_boxes`` in cells (x, y).
            scale (Tensor): ``(2,)`` cells per input pixel (x, y).
            motion_map (Tensor, optional): ``(N, T', 4, h, w)`` learned displacements (:meth:`forward`
                with ``motion``): the move from a step whose box is a peak, read at the peak's cell.
            cells (Tensor, optional): ``(R, T', 2)`` the cells (row, column) of ``boxes`` (needed with
                ``motion_map``).

        Returns:
            tuple[Tensor, Tensor]: as :meth:`snap`.
        """
        r, t = step_in.shape
        dtype = step_boxes.dtype

        def centre(b):  # (..., 4) input pixels -> (..., 2) cells
            return box_centres(b) * scale

        anchor = torch.where(used, score, score.new_full(score.shape, -1.0)).argmax(1)  # (R,)
        found = used.any(1)
        is_anchor = F.one_hot(anchor, t).bool() & found[:, None]  # (R, T')
        out = torch.where(is_anchor[..., None], boxes.to(dtype), step_boxes)
        weights = torch.where(is_anchor, heat.to(dtype), step_boxes.new_zeros(()))
        coast_weight = step_boxes.new_tensor(self.coast_weight)
        step_index = torch.zeros((r, 1), dtype=torch.long, device=step_in.device)
        if motion_map is not None:
            anchor_cell = cells.gather(1, anchor[:, None, None].expand(r, 1, 2))[:, 0]  # (R, 2) row, column
        for direction in (1, -1):
            vel = torch.zeros_like(own[:, 0])  # (R, 2) followed motion in cells per step along ``direction``
            has_vel = torch.zeros_like(found)
            prev_peak = found.clone()  # whether the box at the step before is a peak (the anchor is)
            if motion_map is not None:
                prev_cell = anchor_cell.clone()  # (R, 2) its cell
            channels = slice(2, 4) if direction == 1 else slice(0, 2)  # displacement to the step after/before
            for u in (range(1, t) if direction == 1 else range(t - 2, -1, -1)):
                prev = u - direction
                active = found & step_in[:, u] & ((u - anchor) * direction > 0)
                # the followed motion once known, the tube's own before
                step_vel = torch.where(has_vel[:, None], vel, own[:, u] - own[:, prev])
                if motion_map is not None:  # from a peak: the displacement learned at its cell
                    learned = motion_map[tube_batch, prev, channels, prev_cell[:, 0], prev_cell[:, 1]]
                    step_vel = torch.where(prev_peak[:, None], learned.to(dtype), step_vel)  # (R, 2)
                pred = centre(out[:, prev]) + step_vel
                b, hh, _, c = self._peaks_near(peaks, size_map, offset_map, tube_batch, step_index + u,
                                               pred[:, 0:1], pred[:, 1:2], img_shape)
                b, hh = b[:, 0].to(dtype), hh[:, 0].to(dtype)
                ok = active & self._usable(hh)
                shift = (step_vel / scale).repeat(1, 2)  # coast: the previous box moved by the velocity
                coast = clamp_boxes_to_image(out[:, prev] + shift, img_shape)
                out[:, u] = torch.where(active[:, None], torch.where(ok[:, None], b, coast), out[:, u])
                weights[:, u] = torch.where(ok, hh, torch.where(active, coast_weight, weights[:, u]))
                moved = centre(out[:, u]) - centre(out[:, prev])
                vel = torch.where(ok[:, None], torch.where(has_vel[:, None], 0.5 * vel + 0.5 * moved, moved),
                                  step_vel)
                has_vel = has_vel | ok
                if motion_map is not None:
                    has_vel = has_vel | (active & prev_peak)  # a coasted step goes on with the learned move
                    prev_cell = torch.where(ok[:, None], c[:, 0], prev_cell)
                prev_peak = torch.where(active, ok, prev_peak)
        return out, weights

    def refit(self, coder, coeffs: Tensor, extents: Tensor, step_frames: Tensor, boxes: Tensor,
              weights: Tensor, img_shape: Tuple[int, int]) -> Tensor:
        """Coefficients ``(R, 4, P)`` re-fitted to the snapped boxes ``(R, T', 4)`` at the step frames with
        their weights ``(R, T')``, the given coefficients as prior (the coder's closed-form
        ``fit_update``)."""
        frames = step_frames[None].to(coeffs.dtype).expand(boxes.shape[0], -1)
        return coder.fit_update(coeffs, extents, frames, boxes, weights, self.prior_strength, img_shape)
