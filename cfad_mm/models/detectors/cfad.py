"""CFAD: Coarse-to-Fine Action Detector (Li et al., ECCV 2020), as an mmengine ``BaseModel``."""
import warnings
from typing import Dict, Optional, Tuple

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor

from cfad_mm.datasets.transforms.box_mapping import boxes_to_original
from ..roi_heads.tube_refine_roi_head import TubeRefineRoIHead
from ..utils.cfg_keys import merge_known_keys
from ..utils.clip_geometry import ClipGeometry
from ..utils.pretrained import load_pretrained_backbone
from ..utils.tube_postprocessing import outputs_to_clip_tubes

#: Checkpoints written before the refine stage became one RoI head keep its modules at the top level.
LEGACY_PREFIXES = {'key_selector.': 'roi_head.key_selector.', 'refine_head.': 'roi_head.refine_head.'}


@MODELS.register_module()
class CFAD(BaseModel):
    """Coarse-to-Fine Action Detector: whole action tubes from one clip, refined at a few key timestamps.

    ::

        clip (N, C, T, H, W) -> data_preprocessor -> backbone [-> neck] -> F (N, C', T', H', W')
          -> TemporalProposalHead: actionness (N, T') -> segments (+ whole clip) -> temporal RoI pool
          -> CoarseTubeHead: heatmap / coefficients / extent per cell -> top-k coarse tubes
          -> TubeRefineRoIHead: key timestamps -> refined key boxes -> trajectory re-fit; class re-scoring
          -> outputs_to_clip_tubes: final scores, boxes at every clip frame, class-wise tube NMS
          -> boxes mapped to original pixels

    The detector only composes its parts: the heads own their targets, losses and decoding, and the raw
    per-tube outputs become tubes in one function (:func:`outputs_to_clip_tubes`), which the ONNX
    post-processing calls too.

    Args:
        backbone (dict): Any mmaction 3-D backbone returning ``(N, C', T', H', W')`` (or a tuple ending
            with it).
        proposal_head (dict): :class:`TemporalProposalHead` config (``in_channels`` filled from
            ``feat_channels``).
        coarse_head (dict): :class:`CoarseTubeHead` config (its ``tube_coder`` is the model's tube coder).
        roi_head (dict): :class:`TubeRefineRoIHead` config with ``key_selector``, ``refine_head`` and
            ``assigner`` (``in_channels``, ``num_classes`` and the coder are filled in).
        feat_channels (int): ``C'`` of the backbone output (of the neck's output with a neck).
        num_classes (int): Number of action classes.
        neck (dict, optional): A module between the backbone and the heads, e.g. :class:`ChannelMapper3d` to
            reduce the channels every head works on. Defaults to None (the heads read the backbone output).
        frame_interval (int): The clips sample every ``frame_interval``-th frame of a span of
            ``(T - 1) * frame_interval + 1`` frames (the dataset's ``frame_interval``); the model predicts
            boxes at EVERY frame of the span (trajectories are continuous in time), so ground truth and
            predictions cover the span. Defaults to 1 (the span is the clip).
        refine (bool): ``False`` gives the coarse-only ablation (the refine stage is built, so that
            checkpoints are interchangeable, but not run).
        channels_last (bool): Run the backbone in the ``torch.channels_last_3d`` memory format (its weights
            and input clips); ``tools/analysis/speed_compare.py`` and ``tools/analysis/benchmark.py
            --cfg-options model.channels_last=False`` measure the difference. Results are the same up to float
            rounding. Defaults to False.
        train_cfg (dict, optional): ``topk`` coarse tubes per clip fed to the refine stage in training
            (besides the tubes at the GT centres); ``gt_jitter`` and ``refine_iters`` go to the RoI head (see
            :class:`TubeRefineRoIHead`). Defaults to ``dict(topk=8, gt_jitter=(0.03, 0.1), refine_iters=1)``.
        test_cfg (dict, optional): ``topk`` coarse tubes per clip, ``score_thr``, ``nms_iou``
            (spatio-temporal), ``max_per_clip`` (post-processing) and ``refine_iters`` (RoI head: passes of
            the refine stage).
            Defaults to ``dict(topk=20, score_thr=0.05, nms_iou=0.5, max_per_clip=10, refine_iters=1)``.

            A key of ``train_cfg`` / ``test_cfg`` that is not listed here raises a ``KeyError`` naming it and
            the known keys (a misspelt ablation switch would otherwise do nothing).
        data_preprocessor (dict, optional): e.g. ``ActionDataPreprocessor`` with ``format_shape='NCTHW'``.
        init_cfg (dict, optional): Initialisation config.
        key_selector, refine_head, assigner (dict, optional): The layout of configs written before the refine
            stage became one RoI head; they are moved into ``roi_head`` with a warning.
    """

    # the RoI head's keys (and defaults) come from the RoI head; the detector hands them on
    DEFAULT_TRAIN_CFG = dict(topk=8, **TubeRefineRoIHead.DEFAULT_TRAIN_CFG)
    DEFAULT_TEST_CFG = dict(topk=20, score_thr=0.05, nms_iou=0.5, max_per_clip=10,
                            **TubeRefineRoIHead.DEFAULT_TEST_CFG)

    def __init__(self, backbone: dict, proposal_head: dict, coarse_head: dict, feat_channels: int,
                 num_classes: int, roi_head: Optional[dict] = None, neck: Optional[dict] = None,
                 frame_interval: int = 1, refine: bool = True, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, channels_last: bool = False, init_cfg=None,
                 key_selector: Optional[dict] = None, refine_head: Optional[dict] = None,
                 assigner: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes
        if int(frame_interval) < 1:
            raise ValueError(f'CFAD: frame_interval must be >= 1, got {frame_interval}')
        self.frame_interval = int(frame_interval)
        self.refine = refine
        self.train_cfg = merge_known_keys('train_cfg', self.DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = merge_known_keys('test_cfg', self.DEFAULT_TEST_CFG, test_cfg)
        roi_head = self._roi_head_cfg(roi_head, key_selector, refine_head, assigner)
        self.backbone = MODELS.build(backbone)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            # in-place initialisation and checkpoint loading (copy_) keep this memory format
            self.backbone.to(memory_format=torch.channels_last_3d)
        self.neck = MODELS.build(neck) if neck is not None else None
        neck_out = getattr(self.neck, 'out_channels', None)
        if neck_out is not None and neck_out != feat_channels:
            raise ValueError(f'CFAD: feat_channels={feat_channels} must equal the neck\'s '
                             f'out_channels={neck_out} (the heads read the neck output)')
        self.proposal_head = MODELS.build(dict(proposal_head, in_channels=feat_channels))
        self.coarse_head = MODELS.build(
            dict(coarse_head, in_channels=feat_channels * self.proposal_head.num_bins,
                 num_classes=num_classes))
        #: the tube coder, shared by both stages and the post-processing
        self.coder = self.coarse_head.coder
        self.roi_head = MODELS.build(dict(
            roi_head, in_channels=feat_channels, num_classes=num_classes, tube_coder=self.coder,
            train_cfg={k: self.train_cfg[k] for k in TubeRefineRoIHead.DEFAULT_TRAIN_CFG},
            test_cfg={k: self.test_cfg[k] for k in TubeRefineRoIHead.DEFAULT_TEST_CFG}))

    @staticmethod
    def _roi_head_cfg(roi_head: Optional[dict], key_selector: Optional[dict], refine_head: Optional[dict],
                      assigner: Optional[dict]) -> dict:
        """The RoI head config; the pre-RoI-head layout (top-level ``key_selector`` / ``refine_head`` /
        ``assigner``) is moved into it with a warning."""
        legacy = {k: v for k, v in (('key_selector', key_selector), ('refine_head', refine_head),
                                     ('assigner', assigner)) if v is not None}
        if roi_head is not None:
            if legacy:
                raise ValueError(f'CFAD: model.{", model.".join(legacy)} moved into model.roi_head (e.g. '
                                 f'model.roi_head.key_selector.mode=uniform); the config has both')
            for key in ('in_channels', 'num_classes', 'tube_coder', 'train_cfg', 'test_cfg'):
                if key in roi_head:
                    where = f'model.{key}' if key.endswith('_cfg') else 'the detector'
                    raise ValueError(f'CFAD: model.roi_head.{key} is set by the detector; set it in {where}'
                                     + (' (model.coarse_head.tube_coder for the coder)' if key == 'tube_coder'
                                        else ''))
            return dict(roi_head)
        if 'key_selector' not in legacy or 'refine_head' not in legacy:
            raise ValueError("CFAD needs roi_head=dict(type='TubeRefineRoIHead', key_selector=dict(...), "
                             'refine_head=dict(...))')
        warnings.warn('CFAD: model.key_selector / model.refine_head / model.assigner are the layout of older '
                      "configs; write them inside model.roi_head=dict(type='TubeRefineRoIHead', ...)",
                      DeprecationWarning, stacklevel=3)
        return dict(type='TubeRefineRoIHead', **legacy)

    def init_weights(self):
        """Initialise every part; then load the backbone's ``init_cfg=dict(type='Pretrained', ...)``
        checkpoint, which mmaction's 3-D backbones would ignore (see :func:`load_pretrained_backbone`)."""
        super().init_weights()
        load_pretrained_backbone(self.backbone, getattr(self.backbone, 'init_cfg', None))

    # ------------------------------------------------------------------ checkpoints of older layouts
    @staticmethod
    def upgrade_state_dict(state_dict: Dict[str, Tensor], prefix: str = '') -> Dict[str, Tensor]:
        """Rename the weights of a checkpoint written before the refine stage became one RoI head
        (``key_selector.*`` -> ``roi_head.key_selector.*``, ``refine_head.*`` -> ``roi_head.refine_head.*``);
        a new checkpoint is returned unchanged. Changes ``state_dict`` in place and returns it."""
        for key in list(state_dict):
            for old, new in LEGACY_PREFIXES.items():
                if key.startswith(prefix + old) and prefix + new + key[len(prefix + old):] not in state_dict:
                    state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)
        return state_dict

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # torch's and mmengine's loaders call this before the children's: renaming here reaches them
        self.upgrade_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ shared pieces
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Features ``(N, C', T', H', W')`` (backbone, then the neck if any) of clips
        ``(N, C, T, H, W)``."""
        # (channels_last is a layout the ONNX graph has no use for)
        if self.channels_last and not torch.onnx.is_in_onnx_export():
            inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
        feats = self.backbone(inputs)
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        if feats.dim() != 5:
            raise ValueError(f'CFAD needs a 3-D backbone returning (N, C, T, H, W) features, got '
                             f'{tuple(feats.shape)}')
        return self.neck(feats) if self.neck is not None else feats

    def _geometry(self, inputs: Tensor, feats: Tensor, data_samples: list) -> ClipGeometry:
        """The clip geometry, checked against what the data samples say of their clips: the sampling interval
        (metainfo ``frame_interval``), the frames of the span (``frame_numbers`` / ``frame_valid``) and of the
        ground truth."""
        geom = ClipGeometry.of(inputs, feats, self.frame_interval)
        for i, ds in enumerate(data_samples or []):
            meta = ds.metainfo
            where = f"CFAD: data sample {i} (video {meta.get('video_id', '?')})"
            k = meta.get('frame_interval')
            if k is not None and int(k) != self.frame_interval:
                raise ValueError(f'{where} samples every {int(k)} frames, the model has '
                                 f'frame_interval={self.frame_interval}: set model.frame_interval to the '
                                 "dataset's frame_interval")
            for key in ('frame_numbers', 'frame_valid'):
                if key in meta and len(meta[key]) != geom.num_frames:
                    raise ValueError(f'{where}: {len(meta[key])} values of {key} for a span of '
                                     f'{geom.num_frames} frames ({inputs.shape[2]} sampled every '
                                     f'{self.frame_interval})')
            gt = ds.get('gt_instances')
            if gt is not None and 'tubes' in gt and gt.tubes.shape[1] != geom.num_frames:
                raise ValueError(f'{where}: ground-truth tubes of {gt.tubes.shape[1]} frames for a span of '
                                 f'{geom.num_frames} frames')
        return geom

    def _coarse_maps(self, feats: Tensor, geom: ClipGeometry, gt_masks: Optional[list] = None):
        """Actionness logits, proposals and the coarse head's maps on the pooled proposals."""
        logits = self.proposal_head(feats)
        batch_inds, segments = self.proposal_head.get_proposals(logits, geom.num_frames, geom.stride_t,
                                                                gt_masks)
        pooled = self.proposal_head.pool(feats, batch_inds, segments, geom.stride_t)
        return logits, batch_inds, segments, self.coarse_head(pooled)

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
        also pools the actionness segments and the temporal anchors; with ``proposal_head.max_proposals=1``
        and no ``anchor_scales`` both see the same proposals) and only torch ops, no data-dependent control
        flow. With ``N`` clips, ``K`` classes,
        ``D+1`` coefficients per coordinate, ``k = min(test_cfg.topk, K * H' * W')`` coarse tubes per clip:

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

            :func:`cfad_mm.apis.export.tensor_outputs_to_tubes` turns them into tubes with
            :func:`outputs_to_clip_tubes`, as :meth:`predict` does (see ``docs/deployment.md``).
        """
        feats = self.extract_feat(inputs)
        geom = ClipGeometry.of(inputs, feats, self.frame_interval)
        n = int(inputs.shape[0])
        logits = self.proposal_head(feats)
        segments = inputs.new_tensor([[0.0, geom.num_frames - 1.0]]).expand(n, 2)
        pooled = self.proposal_head.pool(feats, torch.arange(n, device=inputs.device), segments,
                                         geom.stride_t)
        maps = self.coarse_head(pooled)
        coarse = self.coarse_head.predict_by_feat(maps, None, segments, n, geom.num_frames,
                                                  self.test_cfg['topk'])
        k = coarse['scores'].shape[1]
        outs = [logits, *maps, coarse['scores'], coarse['labels'], coarse['coeffs'].reshape(n, k, 4, -1),
                coarse['extents'].reshape(n, k, 2)]
        if self.refine:
            coeffs, cls_logits = self.roi_head.predict(feats, coarse['tube_batch'], coarse['coeffs'],
                                                       coarse['extents'], geom, frames=inputs)
            outs += [coeffs.reshape(n, k, 4, -1), cls_logits.reshape(n, k, -1)]
        return tuple(outs)

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """Losses of the proposal head, the coarse head and (``refine=True``) the RoI head."""
        feats = self.extract_feat(inputs)
        geom = self._geometry(inputs, feats, data_samples)
        gts = [ds.gt_instances for ds in data_samples]
        logits, batch_inds, segments, maps = self._coarse_maps(feats, geom, [g.tube_masks for g in gts])
        losses = self.proposal_head.loss(logits, [g.tube_masks for g in gts], geom.stride_t)
        coarse_losses, positives = self.coarse_head.loss_and_predict(maps, batch_inds, segments, gts,
                                                                     geom.num_frames, geom.img_shape)
        losses.update(coarse_losses)
        if not self.refine:
            return losses
        # The refine stage sees the coarse tubes at the GT centres and the top-k coarse detections (detached).
        top = self.coarse_head.predict_by_feat([m.detach() for m in maps], batch_inds, segments, len(gts),
                                               geom.num_frames, self.train_cfg['topk'])
        valid = top['valid'].reshape(-1)
        losses.update(self.roi_head.loss(
            feats, torch.cat([positives['tube_batch'], top['tube_batch'][valid]]),
            torch.cat([positives['coeffs'], top['coeffs'][valid]]),
            torch.cat([positives['extents'], top['extents'][valid]]), gts, geom, frames=inputs))
        return losses

    def predict_raw(self, inputs: Tensor, data_samples: list, stages: Optional[dict] = None) -> dict:
        """The per-tube outputs of :meth:`predict` before the post-processing, for clips ``(N, C, T, H, W)``.

        Args:
            inputs (Tensor): The preprocessed clips. data_samples (list): Their data samples (geometry
                checks).
            stages (dict, optional): Receives the coefficients of every stage: ``'coarse'`` and those of
                :meth:`TubeRefineRoIHead.predict` (``'snapped'``, ``'tracked'``, ``'refined_1'``, ...).

        Returns:
            dict: ``geom`` (:class:`ClipGeometry`), ``feats`` (:meth:`extract_feat`, ``(N, C', T', H',
            W')``), ``actionness (N, T')`` logits, and for the ``R`` coarse tubes kept: ``scores
            (R,)``, ``labels (R,)``, ``coeffs (R, 4, D+1)`` (refined with ``refine=True``), ``extents (R,
            2)``, ``tube_batch (R,)`` and ``cls_logits (R, K+1)`` or None.
        """
        stages = {} if stages is None else stages
        feats = self.extract_feat(inputs)
        geom = self._geometry(inputs, feats, data_samples)
        logits, batch_inds, segments, maps = self._coarse_maps(feats, geom)
        top = self.coarse_head.predict_by_feat(maps, batch_inds, segments, inputs.shape[0], geom.num_frames,
                                               self.test_cfg['topk'])
        valid = top['valid'].reshape(-1)
        scores, labels = top['scores'].reshape(-1)[valid], top['labels'].reshape(-1)[valid]
        coeffs, extents, tube_batch = top['coeffs'][valid], top['extents'][valid], top['tube_batch'][valid]
        stages['coarse'] = coeffs
        cls_logits = None
        if self.refine and coeffs.shape[0]:
            coeffs, cls_logits = self.roi_head.predict(feats, tube_batch, coeffs, extents, geom,
                                                       frames=inputs, stages=stages)
        return dict(geom=geom, feats=feats, actionness=logits, scores=scores, labels=labels, coeffs=coeffs,
                    extents=extents, tube_batch=tube_batch, cls_logits=cls_logits)

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """Detect tubes in each clip; fills ``pred_instances`` (original video pixels) of each data sample:
        ``tubes (n, T, 4)``, ``tube_masks (n, T)``, ``scores (n,)``, ``labels (n,)`` and ``frame_scores
        (n, T)`` (the clip's actionness per frame)."""
        raw = self.predict_raw(inputs, data_samples)
        geom, scores, labels, coeffs = raw['geom'], raw['scores'], raw['labels'], raw['coeffs']
        extents, tube_batch, cls_logits = raw['extents'], raw['tube_batch'], raw['cls_logits']
        frame_act = self.proposal_head.frame_actionness(raw['actionness'], geom.num_frames, geom.stride_t)
        cfg = self.test_cfg
        for i, ds in enumerate(data_samples):
            sel = tube_batch == i
            meta = ds.metainfo
            out = outputs_to_clip_tubes(self.coder, scores[sel], labels[sel], coeffs[sel], extents[sel],
                                        None if cls_logits is None else cls_logits[sel], geom.img_shape,
                                        geom.num_frames, cfg['score_thr'], cfg['nms_iou'],
                                        cfg['max_per_clip'], frame_valid=meta.get('frame_valid'))
            if len(out):
                out.tubes = boxes_to_original(out.tubes, meta)
            out.frame_scores = frame_act[i].detach()[None].expand(len(out), -1).clone()
            ds.pred_instances = out
        return data_samples
