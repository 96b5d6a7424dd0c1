"""Sampling of 3-D feature maps along time and along tubes (used by the proposal, key-timestamp and refine
stages).

Time conventions: a clip has ``T`` frames indexed ``0..T-1`` ("clip frames"); the backbone outputs ``T'``
feature steps with temporal stride ``s = T / T'``. Feature step ``u`` covers clip frames ``[u*s, (u+1)*s)``
and is centred at clip time ``(u + 0.5) * s - 0.5``.
"""
from typing import Tuple

import torch
from torch import Tensor

from .roi_align import roi_align


def feature_step_frames(num_steps: int, stride_t: float, num_frames: int, device=None) -> Tensor:
    """The integer clip frame represented by each feature step: ``floor((u + 0.5) * stride_t)``, ``(T',)``."""
    u = torch.arange(num_steps, device=device, dtype=torch.float32)
    return torch.floor((u + 0.5) * stride_t).long().clamp(max=num_frames - 1)


def nearest_step(extents: Tensor, step_frames: Tensor) -> Tensor:
    """The feature step whose frame is nearest the middle of each extent ``(R, 2)`` -> ``(R,)`` int64 (the
    anchor step of a tube)."""
    mid = extents.mean(1, keepdim=True)
    return (mid - step_frames[None].to(extents.dtype)).abs().argmin(1)


def input_frame_spacing(num_inputs: int, span: int) -> float:
    """Span frames between two consecutive sampled input frames when ``num_inputs`` frames are sampled evenly
    over a span of ``span`` frames (the first and the last frame of the span are inputs): ``k`` of a
    ``T x k`` window, whose span is ``(T - 1) k + 1``; 1 for a single input frame."""
    return (span - 1) / (num_inputs - 1) if num_inputs > 1 else 1.0


def nearest_input_frames(span_frames: Tensor, num_inputs: int, span: int) -> Tensor:
    """Index (int64, the shape of ``span_frames``) of the sampled input frame nearest each span frame when
    ``num_inputs`` frames are sampled evenly over a span of ``span`` frames."""
    k = input_frame_spacing(num_inputs, span)
    return torch.round(span_frames.float() / k).long().clamp(0, num_inputs - 1)


def input_span_frames(inputs: Tensor, num_inputs: int, span: int) -> Tensor:
    """The span frame (int64, the shape of ``inputs``) of each sampled input frame index ``inputs``: the
    inverse of :func:`nearest_input_frames` on the input frames."""
    return torch.round(inputs.double() * input_frame_spacing(num_inputs, span)).long()


def feature_time_to_clip(u: Tensor, stride_t: float) -> Tensor:
    """Centre of feature step(s) ``u`` in clip-frame time."""
    return (u + 0.5) * stride_t - 0.5


def clip_time_to_feature(t: Tensor, stride_t: float) -> Tensor:
    """Clip-frame time(s) ``t`` as a continuous feature-step coordinate (inverse of
    :func:`feature_time_to_clip`)."""
    return (t + 0.5) / stride_t - 0.5


def temporal_roi_pool(feats: Tensor, batch_inds: Tensor, segments: Tensor, num_bins: int,
                      stride_t: float) -> Tensor:
    """Temporal RoI-Align: sample a 3-D feature map at ``num_bins`` evenly spaced times inside each segment.

    Linear interpolation between the two nearest feature steps (clamped at the clip borders). The bins are
    stacked into the channel dimension so that a 2-D head sees the motion inside the segment. Computed as one
    batched matrix product of per-segment interpolation weights ``(P, num_bins, T')`` with the features.

    Args:
        feats (Tensor): Features ``(N, C, T', H', W')``.
        batch_inds (Tensor): Clip index of each segment ``(P,)`` int64.
        segments (Tensor): ``(P, 2)`` segment ``(start, end)`` in clip frames (inclusive, float).
        num_bins (int): Number of temporal samples per segment.
        stride_t (float): Temporal stride of ``feats`` w.r.t. clip frames.

    Returns:
        Tensor: ``(P, C * num_bins, H', W')``, channel ``c * num_bins + b`` = channel ``c`` at bin ``b``.
    """
    n, c, tf, h, w = feats.shape
    p = segments.shape[0]
    if p == 0:
        return feats.new_zeros((0, c * num_bins, h, w))
    frac = (torch.arange(num_bins, device=feats.device, dtype=feats.dtype) + 0.5) / num_bins
    start, end = segments[:, :1], segments[:, 1:]
    # Bin centres spread over the inclusive frame range [start - 0.5, end + 0.5].
    t = (start - 0.5) + (end - start + 1.0) * frac[None]  # (P, num_bins)
    u = clip_time_to_feature(t, stride_t).clamp(0, tf - 1)
    u0 = u.floor().long().clamp(max=tf - 1)
    u1 = (u0 + 1).clamp(max=tf - 1)
    a = u - u0.to(u.dtype)
    # interpolation weights (P, bins, T'): 1 - a at u0, a at u1 (both at u0 when u0 == u1 at the last step)
    weights = feats.new_zeros((p, num_bins, tf))
    weights.scatter_add_(2, u0[..., None], (1 - a)[..., None])
    weights.scatter_add_(2, u1[..., None], a[..., None])
    # features as (N, T', H'*W'*C): a free view when the map is channels-last (channels_last_3d backbones)
    table = feats.permute(0, 2, 3, 4, 1).reshape(n, tf, h * w * c)
    pooled = torch.bmm(weights, table[batch_inds])  # (P, bins, H'*W'*C)
    return pooled.view(p, num_bins, h, w, c).permute(0, 4, 1, 2, 3).reshape(p, c * num_bins, h, w)


def sample_tube_rois(feats: Tensor, batch_inds: Tensor, feat_steps: Tensor, boxes: Tensor,
                     output_size: Tuple[int, int], spatial_scale: float) -> Tensor:
    """RoI-Align boxes on given feature time steps, all tubes and times in ONE batched call (mmcv's
    ``roi_align`` semantics, ``aligned=True``, sampling ratio 2; :func:`~.roi_align.roi_align`).

    Args:
        feats (Tensor): Features ``(N, C, T', H', W')``.
        batch_inds (Tensor): Clip index of each tube ``(R,)`` int64.
        feat_steps (Tensor): Integer feature steps to sample ``(R, S)`` int64 in ``[0, T')``.
        boxes (Tensor): Boxes ``(R, S, 4)`` xyxy in input pixels.
        output_size (tuple[int, int]): RoI output size ``(h, w)``.
        spatial_scale (float): ``1 / spatial stride`` of ``feats``.

    Returns:
        Tensor: ``(R, S, C, h, w)``.
    """
    n, c, tf, h, w = feats.shape
    r, s = feat_steps.shape
    if r * s == 0:
        return feats.new_zeros((r, s, c) + tuple(output_size))
    # one channels-last copy of all frames; roi_align gathers rows of it (see roi_align.py)
    frames = feats.permute(0, 2, 3, 4, 1).reshape(n * tf, h, w, c)
    img_inds = (batch_inds[:, None] * tf + feat_steps).reshape(-1, 1).to(boxes.dtype)
    rois = torch.cat([img_inds, boxes.reshape(-1, 4)], dim=1)
    out = roi_align(frames, rois, tuple(output_size), spatial_scale, 2, channels_last=True)
    return out.reshape(r, s, c, *output_size)
