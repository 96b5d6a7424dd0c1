"""Class-agnostic temporal proposals from per-time actionness."""
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from cfad_mm.structures.tube_ops import mask_extents
from ..utils import clip_time_to_feature, feature_time_to_clip, temporal_roi_pool


@MODELS.register_module()
class TemporalProposalHead(BaseModule):
    """Per-time actionness -> class-agnostic temporal segments -> temporal RoI pooling.

    ::

        feats (N, C, T', H', W') -> spatial mean -> Conv1d x2 -> actionness logits (N, T')
        actionness > thr, connected runs -> segments [start, end] (clip frames) + the whole clip (fallback)
            + fixed temporal anchors (anchor_scales; none by default)
        temporal_roi_pool(feats, segments) -> (P, C * num_bins, H', W')

    Temporal anchors: in a long window with several actors the actionness runs merge into one segment that
    covers the whole window, so a tube shorter than half the window overlaps no proposal by the coarse head's
    ``pos_tiou`` and is a negative everywhere. ``anchor_scales=(0.5, 0.25)`` adds, in training and at test
    time alike, segments of half and a quarter of the span every half of their length, so that every tube of
    at least a quarter of the span has a proposal that matches it.

    Args:
        in_channels (int): Channels ``C`` of the backbone features.
        feat_channels (int): Hidden channels of the actionness branch. Defaults to 64.
        num_bins (int): Temporal samples per proposal (stacked into channels). Defaults to 4.
        score_thr (float): Actionness threshold that delimits segments. Defaults to 0.5.
        max_proposals (int): Proposals per clip, the whole clip included. Defaults to 3.
        min_length (int): Minimum segment length in clip frames. Defaults to 3.
        use_gt_proposals (bool): In training, add the ground-truth tube extents as proposals so the coarse
            head learns on well-aligned segments from the first iteration. Defaults to True.
        anchor_scales (tuple[float]): Lengths of the fixed temporal anchors as fractions of the span (each in
            ``(0, 1)``); the anchors of length ``L`` start at evenly spread frames at most ``L // 2`` apart,
            from the first frame to the one where the last anchor ends at the last frame (see
            :meth:`anchors`). They come on top of ``max_proposals``. Defaults to ``()`` (no anchors).
        loss_actionness (dict): Loss config. Defaults to ``CrossEntropyLoss`` with sigmoid.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, feat_channels: int = 64, num_bins: int = 4, score_thr: float = 0.5,
                 max_proposals: int = 3, min_length: int = 3, use_gt_proposals: bool = True,
                 anchor_scales: Tuple[float, ...] = (),
                 loss_actionness: dict = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True,
                                              loss_weight=1.0),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if max_proposals < 1:
            raise ValueError(f'max_proposals must be >= 1 (the whole clip), got {max_proposals}')
        self.num_bins = num_bins
        self.score_thr = score_thr
        self.max_proposals = max_proposals
        self.min_length = min_length
        self.use_gt_proposals = use_gt_proposals
        if isinstance(anchor_scales, (int, float, str)):
            raise ValueError(f'anchor_scales must be a sequence of fractions of the span, e.g. (0.5, 0.25), '
                             f'got {anchor_scales!r}')
        bad = [a for a in anchor_scales if not 0 < float(a) < 1]
        if bad:
            raise ValueError(f'anchor_scales must lie in (0, 1) (fractions of the span; the whole span is '
                             f'always a proposal), got {tuple(anchor_scales)}')
        self.anchor_scales = tuple(float(a) for a in anchor_scales)
        self.actionness = nn.Sequential(
            nn.Conv1d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv1d(feat_channels, 1, 1))
        self.loss_actionness = MODELS.build(loss_actionness)

    def forward(self, feats: Tensor) -> Tensor:
        """Actionness logits ``(N, T')`` from features ``(N, C, T', H', W')``."""
        return self.actionness(feats.mean(dim=(3, 4))).squeeze(1)

    @staticmethod
    def actionness_targets(gt_masks: List[Tensor], num_steps: int, stride_t: float) -> Tensor:
        """Binary per-feature-step targets: 1 where any GT tube exists at the step's centre frame.

        Args:
            gt_masks (list[Tensor]): per clip ``(n, T)`` bool.
            num_steps (int): ``T'``. stride_t (float): temporal stride.

        Returns:
            Tensor: ``(N, T')`` float.
        """
        targets = []
        for masks in gt_masks:
            t = masks.shape[1]
            centre = feature_time_to_clip(torch.arange(num_steps, device=masks.device, dtype=torch.float32),
                                          stride_t).round().long().clamp(0, t - 1)
            present = masks.any(dim=0) if masks.shape[0] else masks.new_zeros(t)
            targets.append(present[centre].float())
        return torch.stack(targets)

    def loss(self, logits: Tensor, gt_masks: List[Tensor], stride_t: float) -> dict:
        targets = self.actionness_targets(gt_masks, logits.shape[1], stride_t)
        return dict(loss_actionness=self.loss_actionness(logits.reshape(-1, 1), targets.reshape(-1, 1)))

    def frame_actionness(self, logits: Tensor, num_frames: int, stride_t: float) -> Tensor:
        """Actionness probability at every clip frame ``(N, T)`` (linear interpolation of the feature
        steps)."""
        probs = logits.sigmoid()
        t = torch.arange(num_frames, device=logits.device, dtype=logits.dtype)
        u = clip_time_to_feature(t, stride_t).clamp(0, logits.shape[1] - 1)
        u0 = u.floor().long()
        u1 = (u0 + 1).clamp(max=logits.shape[1] - 1)
        a = u - u0.to(u.dtype)
        return probs[:, u0] * (1 - a) + probs[:, u1] * a

    def anchors(self, num_frames: int) -> List[Tuple[float, float]]:
        """The fixed temporal anchors of a span of ``T = num_frames`` frames, as (start, end) clip frames: for
        each scale, ``n = ceil((T - L) / max(1, L // 2)) + 1`` segments of
        ``L = min(T, max(min_length, round(scale * T)))`` frames with evenly spread starts from the first
        frame to ``T - L`` (consecutive anchors overlap by at least half their length). Two scales may give
        the same segments on short spans; :meth:`get_proposals` keeps one of each."""
        segs = []
        for scale in self.anchor_scales:
            length = min(num_frames, max(self.min_length, int(round(scale * num_frames))))
            room = num_frames - length
            n = math.ceil(room / max(1, length // 2)) + 1
            starts = [round(room * j / (n - 1)) if n > 1 else 0 for j in range(n)]
            segs += [(float(s), float(s + length - 1)) for s in starts]
        return segs

    def get_proposals(self, logits: Tensor, num_frames: int, stride_t: float,
                      gt_masks: List[Tensor] = None):
        """Segments per clip: the whole clip first, then the temporal anchors, the actionness runs (and GT
        extents in training).

        Args:
            logits (Tensor): ``(N, T')`` actionness logits.
            num_frames (int): clip length ``T``.
            stride_t (float): temporal stride.
            gt_masks (list[Tensor], optional): per clip ``(n, T)`` GT masks; their extents are added when
                ``use_gt_proposals``.

        Returns:
            tuple[Tensor, Tensor]: ``batch_inds (P,)`` and ``segments (P, 2)`` (start, end) in clip frames.
        """
        frame_scores = self.frame_actionness(logits.detach(), num_frames, stride_t)  # (N, T)
        batch_inds, segments = [], []
        # distinct anchors other than the whole clip (the cap below counts each once)
        whole = (0.0, float(num_frames - 1))
        anchors = list(dict.fromkeys(a for a in self.anchors(num_frames) if a != whole))
        for i in range(logits.shape[0]):
            segs = [whole] + anchors
            if gt_masks is not None and self.use_gt_proposals:
                first, last, nonempty = mask_extents(gt_masks[i])
                segs += [(float(s), float(e))
                         for s, e, ok in zip(first.tolist(), last.tolist(), nonempty.tolist()) if ok]
            segs.extend(self._runs(frame_scores[i] > self.score_thr))
            unique = []
            for s in segs:
                if s not in unique and s[1] - s[0] + 1 >= min(self.min_length, num_frames):
                    unique.append(s)
            # the GT extents added above come on top of the cap (only when they were added)
            extra = len(gt_masks[i]) if gt_masks is not None and self.use_gt_proposals else 0
            limit = self.max_proposals + extra + len(anchors)
            unique = unique[:limit]
            batch_inds += [i] * len(unique)
            segments += unique
        return (torch.tensor(batch_inds, device=logits.device, dtype=torch.long),
                torch.tensor(segments, device=logits.device, dtype=logits.dtype).reshape(-1, 2))

    @staticmethod
    def _runs(active: Tensor):
        """Maximal runs of True in a 1-D bool tensor, as (start, end) floats, longest first."""
        a = F.pad(active.long(), (1, 1))
        d = a[1:] - a[:-1]
        starts = torch.nonzero(d == 1).flatten().tolist()
        ends = (torch.nonzero(d == -1).flatten() - 1).tolist()
        runs = [(float(s), float(e)) for s, e in zip(starts, ends)]
        return sorted(runs, key=lambda r: r[0] - r[1])

    def pool(self, feats: Tensor, batch_inds: Tensor, segments: Tensor, stride_t: float) -> Tensor:
        """Temporal RoI pooling of each proposal: ``(P, C * num_bins, H', W')``."""
        return temporal_roi_pool(feats, batch_inds, segments, self.num_bins, stride_t)
