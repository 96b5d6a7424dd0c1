"""CFAD: Coarse-to-Fine Action Detector (Li et al., ECCV 2020), as an mmengine ``BaseModel``."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmaction.registry import MODELS, TASK_UTILS
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from cfad_mm.structures.tube_ops import tube_nms
from ..heads.coarse_tube_head import tube_box_losses
from ..heads.key_timestamp_selector import feature_step_frames
from ..utils.cfg_keys import merge_known_keys
from ..utils.pretrained import load_pretrained_backbone


@MODELS.register_module()
class CFAD(BaseModel):
    """Coarse-to-Fine Action Detector: whole action tubes from one clip, refined at a few key timestamps.

    ::

        clip (N, C, T, H, W) -> data_preprocessor -> backbone [-> neck] -> F (N, C', T', H', W')
          -> TemporalProposalHead: actionness (N, T') -> segments (+ whole clip) -> temporal RoI pool
          -> CoarseTubeHead: heatmap / coefficients / extent per cell -> top-k coarse tubes
          -> KeyTimestampSelector: error score per feature step along each tube -> M key frames
          -> RefineTubeHead: refined key boxes -> closed-form trajectory re-fit; class re-scoring
          -> decode boxes at every clip frame -> class-wise tube NMS -> boxes mapped to original pixels

    Args:
        backbone (dict): Any mmaction 3-D backbone returning ``(N, C', T', H', W')`` (or a tuple ending with it).
        proposal_head (dict): :class:`TemporalProposalHead` config (``in_channels`` filled from ``feat_channels``).
        coarse_head (dict): :class:`CoarseTubeHead` config.
        key_selector (dict): :class:`KeyTimestampSelector` config.
        refine_head (dict): :class:`RefineTubeHead` config.
        feat_channels (int): ``C'`` of the backbone output (of the neck's output with a neck).
        neck (dict, optional): A module between the backbone and the heads, e.g. :class:`ChannelMapper3d` to
            reduce the channels every head works on. Defaults to None (the heads read the backbone output).
        assigner (dict): :class:`TubeAssigner` config matching coarse tubes to GT for the refine stage.
        refine (bool): ``False`` gives the coarse-only ablation (no selector / refine stage at all).
        channels_last (bool): Run the backbone in the ``torch.channels_last_3d`` memory format (its weights
            and input clips): faster on CPU (``tools/analysis/speed_compare.py`` and
            ``tools/analysis/benchmark.py --cfg-options model.channels_last=False`` measure it); results are
            the same up to float rounding. Defaults to False.
        train_cfg (dict, optional): ``topk`` coarse tubes per clip fed to the refine stage in training
            (besides the tubes at the GT centres), ``gt_jitter`` (std of the noise on jittered GT tubes, see
            :meth:`_jittered_gt_tubes`) and ``refine_iters`` (see below). Defaults to
            ``dict(topk=8, gt_jitter=(0.03, 0.1), refine_iters=1)``.
        test_cfg (dict, optional): ``topk`` coarse tubes per clip, ``score_thr``, ``nms_iou`` (spatio-temporal),
            ``max_per_clip``, ``refine_iters``. Defaults to
            ``dict(topk=20, score_thr=0.05, nms_iou=0.5, max_per_clip=10, refine_iters=1)``.

            ``refine_iters`` (ours): passes of the refine stage. Pass ``i + 1`` selects new key timestamps on
            the tube re-fitted by pass ``i`` and refines it again with the same heads (iterative refinement).
            In training every pass is supervised (its input detached, the refine losses averaged over the
            passes). The synthetic study (docs/results.md) found two passes at test time after one-pass
            training the best setting.

            A key of ``train_cfg`` / ``test_cfg`` that is not listed here raises a ``KeyError`` naming it and
            the known keys (a misspelt ablation switch would otherwise do nothing).
        data_preprocessor (dict, optional): e.g. ``ActionDataPreprocessor`` with ``format_shape='NCTHW'``.
        init_cfg (dict, optional): Initialisation config.
    """

    DEFAULT_TRAIN_CFG = dict(topk=8, gt_jitter=(0.03, 0.1), refine_iters=1)
    DEFAULT_TEST_CFG = dict(topk=20, score_thr=0.05, nms_iou=0.5, max_per_clip=10, refine_iters=1)

    def __init__(self, backbone: dict, proposal_head: dict, coarse_head: dict, key_selector: dict,
                 refine_head: dict, feat_channels: int, num_classes: int, neck: Optional[dict] = None,
                 assigner: dict = dict(type='TubeAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4),
                 refine: bool = True, train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, channels_last: bool = False, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.refine = refine
        self.train_cfg = merge_known_keys('train_cfg', self.DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = merge_known_keys('test_cfg', self.DEFAULT_TEST_CFG, test_cfg)
        for name, cfg in (('train_cfg', self.train_cfg), ('test_cfg', self.test_cfg)):
            if int(cfg['refine_iters']) < 1:
                raise ValueError(f"{name}.refine_iters must be >= 1, got {cfg['refine_iters']}")
        self.backbone = MODELS.build(backbone)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            # in-place initialisation and checkpoint loading (copy_) keep this memory format
            self.backbone.to(memory_format=torch.channels_last_3d)
        self.neck = MODELS.build(neck) if neck is not None else None
        neck_out = getattr(self.neck, 'out_channels', None)
        if neck_out is not None and neck_out != feat_channels:
            raise ValueError(f'CFAD: feat_channels={feat_channels} must equal the neck\'s out_channels={neck_out} '
                             '(the heads read the neck output)')
        self.proposal_head = MODELS.build(dict(proposal_head, in_channels=feat_channels))
        num_bins = self.proposal_head.num_bins
        self.coarse_head = MODELS.build(dict(coarse_head, in_channels=feat_channels * num_bins,
                                             num_classes=num_classes))
        self.coder = self.coarse_head.coder
        self.key_selector = MODELS.build(dict(key_selector, in_channels=feat_channels))
        self.refine_head = MODELS.build(dict(refine_head, in_channels=feat_channels, num_classes=num_classes,
                                             tube_feat_dim=self.key_selector.feat_dim))
        self.assigner = TASK_UTILS.build(assigner)

    def init_weights(self):
        """Initialise every part; then load the backbone's ``init_cfg=dict(type='Pretrained', ...)`` checkpoint,
        which mmaction's 3-D backbones would ignore (see :func:`load_pretrained_backbone`)."""
        super().init_weights()
        load_pretrained_backbone(self.backbone, getattr(self.backbone, 'init_cfg', None))

    # ------------------------------------------------------------------ shared pieces
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Features ``(N, C', T', H', W')`` (backbone, then the neck if any) of clips ``(N, C, T, H, W)``."""
        if self.channels_last and not torch.onnx.is_in_onnx_export():  # (a layout the ONNX graph has no use for)
            inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
        feats = self.backbone(inputs)
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        if feats.dim() != 5:
            raise ValueError(f'CFAD needs a 3-D backbone returning (N, C, T, H, W) features, got '
                             f'{tuple(feats.shape)}')
        return self.neck(feats) if self.neck is not None else feats

    def _geometry(self, inputs: Tensor, feats: Tensor):
        num_frames = inputs.shape[2]
        img_shape = tuple(inputs.shape[-2:])
        return num_frames, img_shape, num_frames / feats.shape[2], feats.shape[-1] / inputs.shape[-1]

    def _coarse(self, feats, num_frames, stride_t, gt_masks=None):
        logits = self.proposal_head(feats)
        batch_inds, segments = self.proposal_head.get_proposals(logits, num_frames, stride_t, gt_masks)
        pooled = self.proposal_head.pool(feats, batch_inds, segments, stride_t)
        return logits, batch_inds, segments, self.coarse_head(pooled)

    def _refine(self, feats: Tensor, batch_inds: Tensor, coeffs: Tensor, extents: Tensor, num_frames: int,
                img_shape, stride_t: float, spatial_scale: float, classify: bool = True) -> Dict[str, Tensor]:
        """Run key-timestamp selection + refinement on coarse tubes ``coeffs (R, 4, D+1)``, ``extents (R, 2)``.

        With ``classify=False`` (an inference pass that another pass follows) the tube classifier is skipped and
        ``cls_logits`` is None."""
        step_frames = feature_step_frames(feats.shape[2], stride_t, num_frames, feats.device)
        step_boxes, step_in = self.coder.decode(coeffs, extents, img_shape, times=step_frames.to(coeffs.dtype))
        step_boxes = clip_boxes(step_boxes, img_shape)
        # A tube whose extent falls between two steps still gets its nearest step.
        # Branch-free (no data-dependent Python control flow), so that the ONNX graph of ``_forward`` keeps it.
        none_in = ~step_in.any(1, keepdim=True)
        mid = (extents.mean(1, keepdim=True) - step_frames[None].to(extents.dtype)).abs().argmin(1)
        step_in = step_in | (none_in & torch.nn.functional.one_hot(mid, step_frames.numel()).bool())
        error_logits, roi_feats = self.key_selector(feats, batch_inds, step_boxes, spatial_scale)
        key_steps, key_valid = self.key_selector.select(error_logits, step_in)
        key_boxes = step_boxes.gather(1, key_steps[..., None].expand(-1, -1, 4))
        refined = self.refine_head.refine_key_boxes(feats, batch_inds, key_steps, key_boxes, spatial_scale,
                                                    img_shape)
        key_frames = step_frames[key_steps].to(coeffs.dtype)
        new_coeffs = self.coder.fit_update(coeffs, extents, key_frames, refined, key_valid.to(coeffs.dtype),
                                           self.refine_head.prior_strength, img_shape)
        cls_logits = None
        if classify:
            # the classifier reads the motion of the refined tube (detached: class gradients stay off the boxes)
            new_step_boxes, _ = self.coder.decode(new_coeffs.detach(), extents, img_shape,
                                                  times=step_frames.to(coeffs.dtype))
            cls_logits = self.refine_head.classify(roi_feats, clip_boxes(new_step_boxes, img_shape), step_in)
        return dict(step_frames=step_frames, step_boxes=step_boxes, step_in=step_in, error_logits=error_logits,
                    key_steps=key_steps, key_valid=key_valid, key_frames=key_frames, refined=refined,
                    coeffs=new_coeffs, cls_logits=cls_logits)

    def _refine_passes(self, feats: Tensor, batch_inds: Tensor, coeffs: Tensor, extents: Tensor, *args
                       ) -> Dict[str, Tensor]:
        """Inference: ``test_cfg.refine_iters`` passes of :meth:`_refine`, each on the tube re-fitted by the
        previous one; returns the last pass's outputs (``coeffs``, ``cls_logits``, ...); only the last pass
        classifies. ``args`` as in :meth:`_refine`."""
        iters = int(self.test_cfg['refine_iters'])
        for i in range(iters):
            ref = self._refine(feats, batch_inds, coeffs, extents, *args, classify=i == iters - 1)
            coeffs = ref['coeffs']
        return ref

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """``mode='loss'`` -> dict of losses; ``'predict'`` -> data samples with ``pred_instances``;
        ``'tensor'`` -> raw outputs (see :meth:`_forward`)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def _forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Raw network outputs with fixed shapes: backbone + coarse + refine, without Python post-processing.

        This is the export (ONNX) and benchmarking path. It uses the whole-clip proposal only (``predict``
        also pools the actionness segments; with ``proposal_head.max_proposals=1`` both see the same
        proposals) and only torch ops, no data-dependent control flow. With ``N`` clips, ``K`` classes,
        polynomial degree ``D``, ``k = min(test_cfg.topk, K * H' * W')`` coarse tubes per clip:

        Returns:
            tuple[Tensor]: in this order

            - ``actionness`` ``(N, T')``: actionness logits per feature step.
            - ``heatmap`` ``(N, K, H', W')``: tube-centre heatmap logits.
            - ``coeff_map`` ``(N, 4*(D+1), H', W')``: raw coefficient map (no cell/size priors).
            - ``extent_map`` ``(N, 2, H', W')``: extent offsets (units of the clip length).
            - ``scores`` ``(N, k)``: coarse scores, sigmoid of the heatmap at its 3x3 local maxima,
              descending (0 at non-maxima).
            - ``labels`` ``(N, k)`` int64: class of each coarse tube.
            - ``coeffs`` ``(N, k, 4, D+1)``: coarse tube coefficients (priors added, see
              :meth:`CoarseTubeHead.cell_coeffs`).
            - ``extents`` ``(N, k, 2)``: ``(t_start, t_end)`` in clip frames (float).

            and, when ``refine=True``:

            - ``refined_coeffs`` ``(N, k, 4, D+1)``: coefficients after the key-timestamp re-fit.
            - ``cls_logits`` ``(N, k, K+1)``: refined class logits (last = background).

            The final tube score is ``sqrt(scores * softmax(cls_logits)[label])``
            (:meth:`RefineTubeHead.combine_scores`); boxes are ``PolyTubeCoder.decode(coeffs, extents,
            (H, W), num_frames=T)`` clipped to the clip; score threshold, class-wise tube NMS and the mapping to
            original pixels follow as in :meth:`_postprocess` (see ``docs/deployment.md``).
        """
        feats = self.extract_feat(inputs)
        num_frames, img_shape, stride_t, spatial_scale = self._geometry(inputs, feats)
        # Python numbers, not traced sizes: the exported graph has fixed shapes.
        num_frames, stride_t, spatial_scale = int(num_frames), float(stride_t), float(spatial_scale)
        img_shape = (int(img_shape[0]), int(img_shape[1]))
        logits = self.proposal_head(feats)
        n = int(inputs.shape[0])
        segments = inputs.new_tensor([[0.0, num_frames - 1.0]]).expand(n, 2)
        batch_inds = torch.arange(n, device=inputs.device)
        pooled = self.proposal_head.pool(feats, batch_inds, segments, stride_t)
        heat, coeff_map, extent_map = self.coarse_head(pooled)
        outs = [logits, heat, coeff_map, extent_map]
        scores, labels, coeffs, extents, tube_batch = self._topk_coarse_tubes(heat, coeff_map, extent_map,
                                                                               segments, num_frames)
        k = scores.shape[1]
        outs += [scores, labels, coeffs.reshape(n, k, 4, -1), extents.reshape(n, k, 2)]
        if self.refine:
            ref = self._refine_passes(feats, tube_batch, coeffs, extents, num_frames, img_shape, stride_t,
                                      spatial_scale)
            outs += [ref['coeffs'].reshape(n, k, 4, -1), ref['cls_logits'].reshape(n, k, -1)]
        return tuple(outs)

    def _topk_coarse_tubes(self, heat: Tensor, coeff_map: Tensor, extent_map: Tensor, segments: Tensor,
                           num_frames: int) -> Tuple[Tensor, ...]:
        """Top-k coarse tubes of one proposal per clip with fixed shapes (the tensor counterpart of
        :meth:`CoarseTubeHead.predict_tubes`, which loops over clips with a variable number of proposals).

        Args:
            heat, coeff_map, extent_map (Tensor): coarse maps ``(N, K | 4*(D+1) | 2, H', W')``.
            segments (Tensor): the proposal of each clip ``(N, 2)``.
            num_frames (int): clip length ``T``.

        Returns:
            tuple[Tensor]: ``scores (N, k)``, ``labels (N, k)``, ``coeffs (N*k, 4, D+1)``, ``extents (N*k, 2)``,
            ``tube_batch (N*k,)`` (clip index of each tube), with ``k = min(test_cfg.topk, K*H'*W')``.
        """
        from mmdet.models.utils.gaussian_target import get_local_maximum
        n, num_cls, h, w = heat.shape
        flat = get_local_maximum(heat.sigmoid()).reshape(n, -1)
        k = min(int(self.test_cfg['topk']), flat.shape[1])
        scores, top = flat.topk(k, dim=1)
        labels = top // (h * w)
        ys, xs = (top % (h * w)) // w, top % w
        tube_batch = torch.arange(n, device=heat.device)[:, None].expand(n, k).reshape(-1)
        ys, xs = ys.reshape(-1), xs.reshape(-1)
        coeffs = self.coarse_head.cell_coeffs(coeff_map, tube_batch, ys, xs)
        extents = self.coarse_head.cell_extents(extent_map, segments, tube_batch, ys, xs, num_frames)
        return scores, labels, coeffs, extents, tube_batch

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        feats = self.extract_feat(inputs)
        num_frames, img_shape, stride_t, spatial_scale = self._geometry(inputs, feats)
        gts = [ds.gt_instances for ds in data_samples]
        gt_masks = [g.tube_masks for g in gts]
        logits, batch_inds, segments, outs = self._coarse(feats, num_frames, stride_t, gt_masks)
        losses = self.proposal_head.loss(logits, gt_masks, stride_t)
        coarse_losses, pos, pos_coeffs, pos_extents = self.coarse_head.loss(outs, batch_inds, segments, gts,
                                                                            num_frames, img_shape)
        losses.update(coarse_losses)
        if not self.refine:
            return losses
        # Tubes for the refine stage (all detached): jittered GT tubes (positives from the first iteration on,
        # like GT boxes added to the proposals of two-stage detectors), the coarse tubes at the GT centres and
        # the top-k coarse detections.
        preds = self.coarse_head.predict_tubes([o.detach() for o in outs], batch_inds, segments, len(gts),
                                               num_frames, self.train_cfg['topk'])
        jit_coeffs, jit_extents, jit_batch = self._jittered_gt_tubes(gts, img_shape, pos_coeffs)
        coeffs = torch.cat([jit_coeffs, pos_coeffs.detach()] + [p['coeffs'] for p in preds])
        extents = torch.cat([jit_extents, pos_extents.detach()] + [p['extents'] for p in preds])
        tube_batch = torch.cat([jit_batch, pos['batch_inds']] +
                               [torch.full_like(p['labels'], i) for i, p in enumerate(preds)])
        # Match every refined-stage tube to the GT of its clip (by its coarse tube).
        coarse_tubes, coarse_masks = self.coder.decode(coeffs, extents, img_shape, num_frames=num_frames)
        labels = coeffs.new_full((coeffs.shape[0], ), -1, dtype=torch.long)
        gt_tubes = coeffs.new_zeros((coeffs.shape[0], num_frames, 4))
        gt_masks_r = torch.zeros((coeffs.shape[0], num_frames), dtype=torch.bool, device=coeffs.device)
        for b, gt in enumerate(gts):
            idx = torch.nonzero(tube_batch == b).flatten()
            res = self.assigner.assign(coarse_tubes[idx], coarse_masks[idx], gt.tubes.to(coeffs.dtype),
                                       gt.tube_masks, gt.labels)
            lab = torch.where(res.gt_inds == 0, torch.full_like(res.labels, self.num_classes), res.labels)
            labels[idx] = torch.where(res.gt_inds < 0, torch.full_like(lab, -1), lab)
            p = res.gt_inds > 0
            gt_tubes[idx[p]] = gt.tubes[res.gt_inds[p] - 1].to(coeffs.dtype)
            gt_masks_r[idx[p]] = gt.tube_masks[res.gt_inds[p] - 1]
        positive = (labels >= 0) & (labels < self.num_classes)
        # Every pass is supervised against the same assignment; its input is the detached output of the last.
        refine_losses, iters = {}, int(self.train_cfg['refine_iters'])
        for _ in range(iters):
            ref = self._refine(feats, tube_batch, coeffs, extents, num_frames, img_shape, stride_t, spatial_scale)
            for k, v in self._refine_losses(ref, extents, labels, gt_tubes, gt_masks_r, positive,
                                            img_shape).items():
                refine_losses[k] = refine_losses.get(k, 0) + v / iters
            coeffs = ref['coeffs'].detach()
        losses.update(refine_losses)
        return losses

    def _refine_losses(self, ref: Dict[str, Tensor], extents: Tensor, labels: Tensor, gt_tubes: Tensor,
                       gt_masks: Tensor, positive: Tensor, img_shape) -> Dict[str, Tensor]:
        """Losses of one refine pass: class, key-timestamp error, key boxes, re-fitted tube.

        Args:
            ref (dict): Output of :meth:`_refine` for ``R`` tubes.
            extents (Tensor): ``(R, 2)``. labels (Tensor): ``(R,)`` class, ``num_classes`` = background,
                -1 = ignored. gt_tubes (Tensor): ``(R, T, 4)`` matched GT. gt_masks (Tensor): ``(R, T)``.
            positive (Tensor): ``(R,)`` bool, tubes matched to a GT.
        """
        losses = self.refine_head.loss_cls_targets(ref['cls_logits'], labels)
        sf = ref['step_frames']
        losses.update(self.key_selector.loss(ref['error_logits'][positive], ref['step_boxes'][positive],
                                             ref['step_in'][positive], gt_tubes[positive][:, sf],
                                             gt_masks[positive][:, sf]))
        kf = ref['key_frames'].long()
        key_gt = gt_tubes.gather(1, kf[..., None].expand(-1, -1, 4))
        key_gt_valid = gt_masks.gather(1, kf) & ref['key_valid'] & positive[:, None]
        losses.update(self.refine_head.loss_key_boxes(ref['refined'], key_gt, key_gt_valid, img_shape))
        l1, giou = tube_box_losses(self.coder, ref['coeffs'][positive], extents[positive], gt_tubes[positive],
                                   gt_masks[positive], img_shape, self.refine_head.loss_box,
                                   self.refine_head.loss_giou)
        losses.update(loss_refine_tube_box=l1, loss_refine_tube_giou=giou)
        return losses

    def _jittered_gt_tubes(self, gts: list, img_shape, like: Tensor):
        """GT tubes encoded by the coder, with Gaussian noise on the coefficients (``train_cfg.gt_jitter``:
        std of the constant term of (cx, cy) and (log w, log h), in normalised units; higher orders get half).

        Returns:
            tuple[Tensor, Tensor, Tensor]: coeffs ``(G, 4, D+1)``, extents ``(G, 2)``, clip index ``(G,)``.
        """
        std_xy, std_wh = self.train_cfg.get('gt_jitter', (0.03, 0.1))
        coeffs, extents, batch = [], [], []
        for b, gt in enumerate(gts):
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
        std = coeffs.new_tensor([std_xy, std_xy, std_wh, std_wh])[None, :, None].expand_as(coeffs).clone()
        std[:, :, 1:] *= 0.5
        return (coeffs + torch.randn_like(coeffs) * std).detach(), torch.cat(extents), torch.cat(batch)

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """Detect tubes in each clip; fills ``pred_instances`` (original video pixels) of each data sample."""
        feats = self.extract_feat(inputs)
        num_frames, img_shape, stride_t, spatial_scale = self._geometry(inputs, feats)
        logits, batch_inds, segments, outs = self._coarse(feats, num_frames, stride_t)
        preds = self.coarse_head.predict_tubes(outs, batch_inds, segments, inputs.shape[0], num_frames,
                                               self.test_cfg['topk'])
        coeffs = torch.cat([p['coeffs'] for p in preds])
        extents = torch.cat([p['extents'] for p in preds])
        scores = torch.cat([p['scores'] for p in preds])
        labels = torch.cat([p['labels'] for p in preds])
        tube_batch = torch.cat([torch.full_like(p['labels'], i) for i, p in enumerate(preds)])
        if self.refine and coeffs.shape[0]:
            ref = self._refine_passes(feats, tube_batch, coeffs, extents, num_frames, img_shape, stride_t,
                                      spatial_scale)
            coeffs = ref['coeffs']
            scores = self.refine_head.combine_scores(scores, ref['cls_logits'], labels)
        tubes, masks = self.coder.decode(coeffs, extents, img_shape, num_frames=num_frames)
        tubes = clip_boxes(tubes, img_shape)
        frame_act = self.proposal_head.frame_actionness(logits, num_frames, stride_t)
        for i, ds in enumerate(data_samples):
            sel = tube_batch == i
            ds.pred_instances = self._postprocess(tubes[sel], masks[sel], scores[sel], labels[sel],
                                                  frame_act[i], ds)
        return data_samples

    def _postprocess(self, tubes: Tensor, masks: Tensor, scores: Tensor, labels: Tensor, frame_act: Tensor,
                     data_sample) -> InstanceData:
        """Score threshold, class-wise tube NMS, top ``max_per_clip``, mapping back to original pixels."""
        from cfad_mm.datasets.transforms.box_mapping import boxes_to_original
        cfg = self.test_cfg
        meta = data_sample.metainfo
        if 'frame_valid' in meta:
            masks = masks & torch.as_tensor(meta['frame_valid'], device=masks.device, dtype=torch.bool)[None]
        keep = (scores >= cfg['score_thr']) & masks.any(1)
        tubes, masks, scores, labels = tubes[keep], masks[keep], scores[keep], labels[keep]
        # class-wise NMS in one call: tubes of different classes are moved apart so that they never overlap
        # (float64, so that the offset does not round the boxes)
        boxes64 = tubes.detach().double()
        span = 2 * float(boxes64.abs().max()) + 1 if boxes64.numel() else 1.0
        keep = tube_nms(boxes64 + labels.double()[:, None, None] * span, masks, scores, cfg['nms_iou'])
        order = torch.as_tensor(keep, device=labels.device, dtype=torch.long)[:cfg['max_per_clip']]
        out = InstanceData()
        tubes = tubes[order].detach()
        out.tubes = boxes_to_original(tubes, meta) if tubes.numel() else tubes
        out.tube_masks = masks[order]
        out.scores = scores[order].detach()
        out.labels = labels[order]
        out.frame_scores = frame_act.detach()[None].expand(order.numel(), -1).clone()
        return out


def clip_boxes(boxes: Tensor, img_shape) -> Tensor:
    """Clip xyxy boxes ``(..., 4)`` to an image of ``(H, W)`` and keep them at least 1 px wide."""
    h, w = img_shape
    x1 = boxes[..., 0].clamp(0, w - 1)
    y1 = boxes[..., 1].clamp(0, h - 1)
    x2 = torch.maximum(boxes[..., 2].clamp(0, w), x1 + 1)
    y2 = torch.maximum(boxes[..., 3].clamp(0, h), y1 + 1)
    return torch.stack([x1, y1, x2, y2], dim=-1)
