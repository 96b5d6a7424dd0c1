"""TubeRefineRoIHead: CFAD's Refine Module as one RoI head (key timestamps, refinement, re-fit,
classifier)."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmaction.registry import MODELS, TASK_UTILS
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from cfad_mm.structures.tube_ops import clamp_boxes_to_image
from ..utils import feature_step_frames, nearest_step
from ..utils.cfg_keys import merge_known_keys
from ..utils.clip_geometry import ClipGeometry


@MODELS.register_module()
class TubeRefineRoIHead(BaseModule):
    """Refine coarse tubes at a few key timestamps: the second stage of CFAD, in the role of mmaction2's
    ``AVARoIHead`` (it owns its assigner, its training targets, its losses and its inference passes).

    ::

        coarse tubes (R: coefficients (R, 4, D+1), extents (R, 2), clip index (R,))
          [-> actor_head: re-fit onto the actor peaks nearest the tube at every feature step]
          -> boxes at the frame of every feature step (R, T', 4)
          -> KeyTimestampSelector: error logit per step -> M key steps per tube (R, M)
          -> RefineTubeHead: refined boxes at the key steps (R, M, 4)
          -> closed-form re-fit of the trajectory (tube coder ``fit_update``) -> coefficients (R, 4, D+1)
          -> RefineTubeHead classifier on the refined tube -> class logits (R, K+1) (last = background)

    Training: the refine stage sees the tubes it is given (the detector passes the coarse tubes at the GT
    centres and its top-k coarse detections, detached) plus every GT tube encoded by the coder with Gaussian
    noise on its coefficients (``gt_jitter``, like the GT boxes two-stage detectors add to their proposals).
    Each is assigned to the GT tube of its clip by spatio-temporal IoU (``assigner``); the losses are the tube
    classifier's cross-entropy, the key-error regression, L1 + GIoU of the refined key boxes and of the
    re-fitted tube on every GT frame.

    Args:
        key_selector (dict): :class:`KeyTimestampSelector` config (``in_channels`` is filled in).
        refine_head (dict): :class:`RefineTubeHead` config (``in_channels``, ``num_classes``,
            ``tube_feat_dim`` are filled in).
        in_channels (int): Channels of the features the head reads.
        num_classes (int): Number of action classes.
        tube_coder (dict | object): The tube coder (config, or the built coder the coarse head uses; the
            detector passes the latter so that both stages share one). Defaults to
            ``PolyTubeCoder(degree=3)``.
        assigner (dict): :class:`TubeAssigner` config.
        train_cfg (dict, optional): ``gt_jitter`` (std of the noise on the coefficients of the constant
            trajectory of (cx, cy) and of (log w, log h), in normalised units; the others get half) and
            ``refine_iters`` (passes, each supervised, its input the detached output of the previous one).
            Defaults to :attr:`DEFAULT_TRAIN_CFG`.
        test_cfg (dict, optional): ``refine_iters``: pass ``i + 1`` selects new key timestamps on the tube
            re-fitted by pass ``i`` and refines it again with the same weights. Defaults to
            :attr:`DEFAULT_TEST_CFG`.
        track_head (dict, optional): :class:`TubeTrackHead` config: follow each tube through the feature
            steps before the refine passes. Defaults to None.
        key_frame_encoder (dict, optional): :class:`KeyFrameEncoder` config: refine the key boxes on a light
            2-D branch run on the key frames instead of the backbone steps. Defaults to None.
        actor_head (dict, optional): :class:`StepActorHead` config: a class-agnostic actor heatmap at every
            feature step (or input frame) onto whose peaks each tube is moved before the refine passes (in
            training the detector's tubes, not the jittered GT ones; its losses ``loss_actor_*`` join the
            others).
            Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    DEFAULT_TRAIN_CFG = dict(gt_jitter=(0.03, 0.1), refine_iters=1)
    DEFAULT_TEST_CFG = dict(refine_iters=1)

    def __init__(self, key_selector: dict, refine_head: dict, in_channels: int, num_classes: int,
                 tube_coder: Union[dict, object] = dict(type='PolyTubeCoder', degree=3),
                 assigner: dict = dict(type='TubeAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4),
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 track_head: Optional[dict] = None, key_frame_encoder: Optional[dict] = None,
                 actor_head: Optional[dict] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.train_cfg = merge_known_keys('roi_head train_cfg', self.DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = merge_known_keys('roi_head test_cfg', self.DEFAULT_TEST_CFG, test_cfg)
        for name, cfg in (('train_cfg', self.train_cfg), ('test_cfg', self.test_cfg)):
            if int(cfg['refine_iters']) < 1:
                raise ValueError(f"{name}.refine_iters must be >= 1, got {cfg['refine_iters']}")
        self.key_selector = MODELS.build(dict(key_selector, in_channels=in_channels))
        self.refine_head = MODELS.build(dict(refine_head, in_channels=in_channels, num_classes=num_classes,
                                             tube_feat_dim=self.key_selector.feat_dim))
        self.coder = TASK_UTILS.build(tube_coder) if isinstance(tube_coder, dict) else tube_coder
        self.assigner = TASK_UTILS.build(assigner)
        self.track_head = MODELS.build(dict(track_head, in_channels=in_channels)) if track_head else None
        self.key_frame_encoder = (MODELS.build(dict(key_frame_encoder, out_channels=in_channels))
                                  if key_frame_encoder else None)
        self.actor_head = MODELS.build(dict(actor_head, in_channels=in_channels)) if actor_head else None

    # ------------------------------------------------------------------ tubes moved onto the actors
    def snap_to_actors(self, actor_outs: Tuple[Tensor, ...], tube_batch: Tensor, coeffs: Tensor,
                       extents: Tensor, geom: ClipGeometry) -> Tensor:
        """The tubes re-fitted to the actor peaks nearest them at the frame of every map of the actor head
        (every feature step, or every input frame; :meth:`StepActorHead.map_frames`); ``actor_outs`` are the
        actor head's outputs on the features.

        Returns:
            Tensor: ``(R, 4, D+1)`` coefficients.
        """
        img_shape = geom.img_shape
        step_frames = self.actor_head.map_frames(actor_outs[0].shape[1], geom.num_frames, coeffs.device)
        step_boxes, step_in = self.coder.decode(coeffs, extents, img_shape,
                                                times=step_frames.to(coeffs.dtype))
        boxes, weights = self.actor_head.snap(actor_outs, tube_batch,
                                              clamp_boxes_to_image(step_boxes, img_shape), step_in, img_shape)
        return self.actor_head.refit(self.coder, coeffs, extents, step_frames, boxes, weights, img_shape)

    # ------------------------------------------------------------------ following long tubes
    def track(self, feats: Tensor, tube_batch: Tensor, coeffs: Tensor, extents: Tensor, geom: ClipGeometry,
              guide: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The tubes followed through every feature step by ``track_head`` and re-fitted to the followed
        boxes (see :class:`TubeTrackHead`).

        Returns:
            dict[str, Tensor]: ``step_frames (T',)``, ``boxes (R, T', 4)`` (followed), ``step_in (R, T')`` and
            ``coeffs (R, 4, D+1)`` (re-fitted).
        """
        img_shape = geom.img_shape
        step_frames = feature_step_frames(feats.shape[2], geom.stride_t, geom.num_frames, feats.device)
        step_boxes, step_in = self.coder.decode(coeffs, extents, img_shape,
                                                times=step_frames.to(coeffs.dtype))
        anchors = nearest_step(extents, step_frames)
        rows = torch.arange(coeffs.shape[0], device=coeffs.device)
        start = clamp_boxes_to_image(step_boxes[rows, anchors], img_shape)
        boxes = self.track_head.follow(feats, tube_batch, start, anchors, img_shape, geom.spatial_scale,
                                       guide)
        step_in = step_in | torch.nn.functional.one_hot(anchors, step_frames.numel()).bool()
        new = self.track_head.refit(self.coder, coeffs, extents, step_frames, boxes, step_in, img_shape)
        return dict(step_frames=step_frames, boxes=boxes, step_in=step_in, coeffs=new)

    # ------------------------------------------------------------------ one refine pass
    def refine(self, feats: Tensor, tube_batch: Tensor, coeffs: Tensor, extents: Tensor, geom: ClipGeometry,
               classify: bool = True, frames: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """One pass: key-timestamp selection, refinement at the keys, re-fit, (classification).

        Args:
            feats (Tensor): ``(N, C, T', H', W')``.
            tube_batch (Tensor): ``(R,)`` clip index of each tube.
            coeffs (Tensor): ``(R, 4, D+1)`` trajectory coefficients.
            extents (Tensor): ``(R, 2)`` clip frames.
            geom (ClipGeometry): Geometry of the clips.
            classify (bool): Run the tube classifier (an inference pass that another pass follows skips it and
                returns ``cls_logits=None``).
            frames (Tensor, optional): The network input ``(N, 3, T, H, W)``; needed with a
                ``key_frame_encoder`` (the key boxes are then refined on its features of the input frames
                nearest the key frames instead of the backbone steps nearest them).

        Returns:
            dict[str, Tensor]: ``step_frames (T',)``, ``step_boxes (R, T', 4)``, ``step_in (R, T')``,
            ``error_logits (R, T')``, ``key_steps / key_valid / key_frames (R, M)``, ``key_boxes (R, M, 4)``
            (the boxes at the key frames as they enter the refine head), ``refined (R, M, 4)``,
            ``coeffs (R, 4, D+1)`` (re-fitted), ``cls_logits (R, K+1)`` or None.
        """
        img_shape = geom.img_shape
        step_frames = feature_step_frames(feats.shape[2], geom.stride_t, geom.num_frames, feats.device)
        step_times = step_frames.to(coeffs.dtype)
        step_boxes, step_in = self.coder.decode(coeffs, extents, img_shape, times=step_times)
        step_boxes = clamp_boxes_to_image(step_boxes, img_shape)
        # A tube whose extent falls between two steps still gets its nearest step.
        # Branch-free (no data-dependent Python control flow), so that the exported graph keeps it.
        none_in = ~step_in.any(1, keepdim=True)
        mid = nearest_step(extents, step_frames)
        step_in = step_in | (none_in & torch.nn.functional.one_hot(mid, step_frames.numel()).bool())
        error_logits, roi_feats = self.key_selector(feats, tube_batch, step_boxes, geom.spatial_scale)
        key_steps, key_valid = self.key_selector.select(error_logits, step_in)
        key_frames = step_frames[key_steps].to(coeffs.dtype)
        if self.key_frame_encoder is None:
            key_boxes = step_boxes.gather(1, key_steps[..., None].expand(-1, -1, 4))
            refined = self.refine_head.refine_key_boxes(feats, tube_batch, key_steps, key_boxes,
                                                        geom.spatial_scale, img_shape)
        else:
            if frames is None:
                raise ValueError('TubeRefineRoIHead with a key_frame_encoder needs the input frames '
                                 '(frames=inputs)')
            maps, map_steps, scale, key_frames = self.key_frame_encoder.key_frame_maps(
                frames, tube_batch, key_frames, geom.num_frames)
            key_boxes = clamp_boxes_to_image(
                self.coder.decode(coeffs, extents, img_shape, times=key_frames)[0], img_shape)
            refined = self.refine_head.refine_key_boxes(maps, torch.zeros_like(tube_batch), map_steps,
                                                        key_boxes, scale, img_shape)
        new_coeffs = self.refine_head.refit(self.coder, coeffs, extents, key_frames, refined, key_valid,
                                            img_shape)
        cls_logits = None
        if classify:
            # the classifier reads the motion of the refined tube (detached: class gradients stay off the
            # boxes)
            new_step_boxes, _ = self.coder.decode(new_coeffs.detach(), extents, img_shape, times=step_times)
            cls_logits = self.refine_head.classify(roi_feats, clamp_boxes_to_image(new_step_boxes, img_shape),
                                                   step_in)
        return dict(step_frames=step_frames, step_boxes=step_boxes, step_in=step_in,
                    error_logits=error_logits, key_steps=key_steps, key_valid=key_valid,
                    key_frames=key_frames, key_boxes=key_boxes, refined=refined, coeffs=new_coeffs,
                    cls_logits=cls_logits)

    # ------------------------------------------------------------------ inference
    def predict(self, feats: Tensor, tube_batch: Tensor, coeffs: Tensor, extents: Tensor,
                geom: ClipGeometry, frames: Optional[Tensor] = None,
                stages: Optional[Dict[str, Tensor]] = None) -> Tuple[Tensor, Tensor]:
        """The actor snap and the track head (when configured), then ``test_cfg.refine_iters`` passes of
        :meth:`refine`; only the last one classifies.

        Args: as :meth:`refine`, and ``stages``: a dict that receives the coefficients after each step
            (``'snapped'``, ``'tracked'``, ``'refined_1'``, ...), for analysis tools.

        Returns:
            tuple[Tensor, Tensor]: refined coefficients ``(R, 4, D+1)`` and class logits ``(R, K+1)``.
        """
        stages = {} if stages is None else stages
        if self.actor_head is not None:
            actor_outs = self.actor_head(feats, frames, geom.num_frames)
            coeffs = stages['snapped'] = self.snap_to_actors(actor_outs, tube_batch, coeffs, extents, geom)
        if self.track_head is not None:
            coeffs = stages['tracked'] = self.track(feats, tube_batch, coeffs, extents, geom)['coeffs']
        iters = int(self.test_cfg['refine_iters'])
        for i in range(iters):
            ref = self.refine(feats, tube_batch, coeffs, extents, geom, classify=i == iters - 1,
                              frames=frames)
            coeffs = stages[f'refined_{i + 1}'] = ref['coeffs']
        return coeffs, ref['cls_logits']

    # ------------------------------------------------------------------ training
    def loss(self, feats: Tensor, tube_batch: Tensor, coeffs: Tensor, extents: Tensor,
             batch_gt_instances: List[InstanceData], geom: ClipGeometry,
             frames: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Losses of the refine stage on the given tubes plus the jittered GT tubes.

        Args:
            feats (Tensor): ``(N, C, T', H', W')``.
            tube_batch (Tensor): ``(R,)`` clip index. coeffs (Tensor): ``(R, 4, D+1)``. extents (Tensor):
                ``(R, 2)``; the detector's coarse tubes (detached here).
            batch_gt_instances (list[InstanceData]): per clip ``tubes (G, T, 4)``, ``tube_masks (G, T)``,
                ``labels (G,)``.
            geom (ClipGeometry): Geometry of the clips.

        Returns:
            dict[str, Tensor]: ``loss_refine_cls``, ``loss_key_error``, ``loss_refine_key_box``,
            ``loss_refine_key_giou``, ``loss_refine_tube_box``, ``loss_refine_tube_giou`` (averaged over the
            ``train_cfg.refine_iters`` passes), and those of the track / actor heads when configured.
        """
        losses = {}
        coeffs = coeffs.detach()
        if self.actor_head is not None:
            # the head learns from its own targets; the detector's tubes reach the refine stage snapped, as
            # at test time
            actor_outs = self.actor_head(feats, frames, geom.num_frames)
            step_frames = self.actor_head.map_frames(actor_outs[0].shape[1], geom.num_frames, feats.device)
            losses.update(self.actor_head.loss(actor_outs, batch_gt_instances, step_frames, geom.img_shape))
            with torch.no_grad():
                coeffs = self.snap_to_actors(tuple(o.detach() for o in actor_outs), tube_batch, coeffs,
                                             extents.detach(), geom)
        jit_coeffs, jit_extents, jit_batch = self.jittered_gt_tubes(batch_gt_instances, geom.img_shape,
                                                                    coeffs)
        coeffs = torch.cat([jit_coeffs, coeffs])
        extents = torch.cat([jit_extents, extents.detach()])
        tube_batch = torch.cat([jit_batch, tube_batch])
        targets = self.get_targets(tube_batch, coeffs, extents, batch_gt_instances, geom)
        if self.track_head is not None:
            track_losses, coeffs = self.track_loss(feats, tube_batch, coeffs, extents, targets, geom)
            losses.update(track_losses)
        # Every pass is supervised against the same assignment; its input is the detached output of the last.
        iters = int(self.train_cfg['refine_iters'])
        for _ in range(iters):
            ref = self.refine(feats, tube_batch, coeffs, extents, geom, frames=frames)
            for k, v in self.loss_by_feat(ref, extents, targets, geom.img_shape).items():
                losses[k] = losses.get(k, 0) + v / iters
            coeffs = ref['coeffs'].detach()
        return losses

    def track_loss(self, feats: Tensor, tube_batch: Tensor, coeffs: Tensor, extents: Tensor,
                   targets: Dict[str, Tensor], geom: ClipGeometry) -> Tuple[Dict[str, Tensor], Tensor]:
        """Losses of the track head on the assigned tubes (teacher-forced by their GT, see
        :meth:`TubeTrackHead.teacher_guide`) and the re-fitted coefficients (detached) the refine passes
        start from."""
        step_frames = feature_step_frames(feats.shape[2], geom.stride_t, geom.num_frames, feats.device)
        positive = targets['positive']
        guide = self.track_head.teacher_guide(targets['gt_tubes'], targets['gt_masks'], positive, step_frames)
        tr = self.track(feats, tube_batch, coeffs, extents, geom, guide)
        valid = targets['gt_masks'][:, step_frames] & positive[:, None]
        losses = self.track_head.loss(tr['boxes'], targets['gt_tubes'][:, step_frames], valid, geom.img_shape)
        return losses, tr['coeffs'].detach()

    def get_targets(self, tube_batch: Tensor, coeffs: Tensor, extents: Tensor,
                    batch_gt_instances: List[InstanceData], geom: ClipGeometry) -> Dict[str, Tensor]:
        """Assign every tube to the GT of its clip (by its decoded trajectory).

        Returns:
            dict[str, Tensor]: ``labels (R,)`` (class; ``num_classes`` = background; -1 = ignored),
            ``gt_tubes (R, T, 4)`` and ``gt_masks (R, T)`` of the matched GT (zeros / False elsewhere),
            ``positive (R,)`` bool.
        """
        tubes, masks = self.coder.decode(coeffs, extents, geom.img_shape, num_frames=geom.num_frames)
        r = coeffs.shape[0]
        labels = coeffs.new_full((r, ), -1, dtype=torch.long)
        gt_tubes = coeffs.new_zeros((r, geom.num_frames, 4))
        gt_masks = torch.zeros((r, geom.num_frames), dtype=torch.bool, device=coeffs.device)
        for b, gt in enumerate(batch_gt_instances):
            idx = torch.nonzero(tube_batch == b).flatten()
            gt = InstanceData(tubes=gt.tubes.to(coeffs.dtype), tube_masks=gt.tube_masks, labels=gt.labels)
            res = self.assigner.assign(InstanceData(tubes=tubes[idx], tube_masks=masks[idx]), gt)
            lab = torch.where(res.gt_inds == 0, torch.full_like(res.labels, self.num_classes), res.labels)
            labels[idx] = torch.where(res.gt_inds < 0, torch.full_like(lab, -1), lab)
            pos = res.gt_inds > 0
            gt_tubes[idx[pos]] = gt.tubes[res.gt_inds[pos] - 1]
            gt_masks[idx[pos]] = gt.tube_masks[res.gt_inds[pos] - 1]
        positive = (labels >= 0) & (labels < self.num_classes)
        return dict(labels=labels, gt_tubes=gt_tubes, gt_masks=gt_masks, positive=positive)

    def loss_by_feat(self, ref: Dict[str, Tensor], extents: Tensor, targets: Dict[str, Tensor],
                     img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of one refine pass: class, key-timestamp error, key boxes, re-fitted tube.

        Args:
            ref (dict): Output of :meth:`refine` for ``R`` tubes.
            extents (Tensor): ``(R, 2)``.
            targets (dict): Output of :meth:`get_targets`.
            img_shape (tuple[int, int]): ``(H, W)``.
        """
        labels, gt_tubes, gt_masks = targets['labels'], targets['gt_tubes'], targets['gt_masks']
        positive = targets['positive']
        losses = self.refine_head.classification_loss(ref['cls_logits'], labels)
        sf = ref['step_frames']
        losses.update(self.key_selector.loss(ref['error_logits'][positive], ref['step_boxes'][positive],
                                             ref['step_in'][positive], gt_tubes[positive][:, sf],
                                             gt_masks[positive][:, sf]))
        kf = ref['key_frames'].long()
        key_gt = gt_tubes.gather(1, kf[..., None].expand(-1, -1, 4))
        key_gt_valid = gt_masks.gather(1, kf) & ref['key_valid'] & positive[:, None]
        losses.update(self.refine_head.loss_key_boxes(ref['refined'], key_gt, key_gt_valid, img_shape))
        losses.update(self.refine_head.loss_tube(self.coder, ref['coeffs'][positive], extents[positive],
                                                 gt_tubes[positive], gt_masks[positive], img_shape))
        return losses

    def jittered_gt_tubes(self, batch_gt_instances: List[InstanceData], img_shape: Tuple[int, int],
                          like: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """GT tubes encoded by the coder, with Gaussian noise on the coefficients (``train_cfg.gt_jitter``).

        Returns:
            tuple[Tensor, Tensor, Tensor]: coeffs ``(G, 4, D+1)``, extents ``(G, 2)``, clip index ``(G,)``
            (detached), for the GT tubes of all clips that have at least one frame.
        """
        std_xy, std_wh = self.train_cfg['gt_jitter']
        coeffs, extents, batch = [], [], []
        for b, gt in enumerate(batch_gt_instances):
            keep = gt.tube_masks.any(1)
            if not bool(keep.any()):
                continue
            c, e = self.coder.encode(gt.tubes[keep].to(like.dtype), gt.tube_masks[keep], img_shape)
            coeffs.append(c)
            extents.append(e.to(like.dtype))
            batch.append(torch.full((c.shape[0], ), b, dtype=torch.long, device=like.device))
        if not coeffs:
            return like.new_zeros((0, ) + tuple(like.shape[1:])), like.new_zeros((0, 2)), \
                torch.zeros((0, ), dtype=torch.long, device=like.device)
        coeffs = torch.cat(coeffs)
        # the coefficients of a constant trajectory get the full std, the others half (polynomials: the
        # constant term, then the higher orders; splines: every control point)
        constant = self.coder.constant_coeffs(coeffs.new_ones((1, 4)))
        std = coeffs.new_tensor([std_xy, std_xy, std_wh, std_wh])[None, :, None] * (0.5 + 0.5 * constant)
        return (coeffs + torch.randn_like(coeffs) * std).detach(), torch.cat(extents), torch.cat(batch)
