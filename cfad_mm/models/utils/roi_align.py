"""RoIAlign as a weighted gather (``F.embedding_bag``): mmcv's ``roi_align`` numbers, several times faster on
CPU.

mmcv's CPU ``RoIAlign`` kernel is single-threaded and re-derives the bilinear weights per channel; on the
2-core benchmarks of ``docs/benchmarks.md`` it was a third of CFAD's inference time. RoIAlign with a fixed
``sampling_ratio`` is linear in the features: every output cell is a weighted sum of at most
``(2 * sampling_ratio) ** 2`` feature-map cells, with weights that depend only on the box. So the features are
laid out channels-last as a table of ``B * H * W`` rows and every output cell is one weighted bag of rows:
``F.embedding_bag(indices, table, per_sample_weights=weights, mode='sum')`` (multi-threaded, no intermediate
copy, and its backward is the exact transpose, scattered into the feature gradient).

The weights follow mmcv's ``aligned=True``, ``pool_mode='avg'`` kernel exactly (``roi_align_forward_cpu``):
sample points at ``x1 * scale - 0.5 + (j + (i + 0.5) / sampling_ratio) * bin_w``; a point with ``y < -1``,
``y > H``, ``x < -1`` or ``x > W`` contributes 0; otherwise it is clamped to ``>= 0`` and a point beyond the
last row / column takes that row / column; the mean over the ``sampling_ratio ** 2`` points of a bin. The
bilinear weights are separable, so they are built per axis and multiplied. As in mmcv, no gradient flows to
the boxes.

:func:`roi_align` dispatches: mmcv's kernel on CUDA (already fast there) and while exporting to ONNX (its
symbolic becomes ONNX ``RoiAlign``), the gather everywhere else. ``tests/test_models/test_roi_align.py``
checks both against each other, forward and backward.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _axis_samples(start: Tensor, size: Tensor, bins: int, sampling_ratio: int, length: int):
    """Row (or column) indices ``(R, bins, 2 * s)`` and weights ``(R, bins, 2 * s)`` along one axis.

    ``start`` / ``size`` ``(R,)`` are the RoI's first coordinate and extent in feature cells (mmcv's
    ``roi_start`` / ``roi_width`` with ``aligned=True``); ``s = sampling_ratio`` points per bin, each spread
    over its two neighbouring cells.
    """
    dtype = start.dtype
    offsets = (torch.arange(bins, device=start.device, dtype=dtype)[:, None] +
               (torch.arange(sampling_ratio, device=start.device, dtype=dtype)[None] + 0.5) / sampling_ratio)
    pos = start[:, None, None] + offsets[None] * (size / bins)[:, None, None]  # (R, bins, s)
    inside = ((pos >= -1.0) & (pos <= length)).to(dtype)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_end = low >= length - 1
    low = torch.where(at_end, torch.full_like(low, length - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(pos), pos - low.to(dtype))
    idx = torch.stack([low, high], dim=-1).flatten(2)
    weight = (torch.stack([1 - frac, frac], dim=-1) * inside[..., None]).flatten(2)
    return idx, weight


def roi_align_gather(feats_hwc: Tensor, rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
                     sampling_ratio: int = 2) -> Tensor:
    """RoIAlign (mmcv ``aligned=True``, ``'avg'``) of channels-last feature maps as a weighted gather.

    Args:
        feats_hwc (Tensor): Feature maps ``(B, H, W, C)`` (channels last, any strides).
        rois (Tensor): ``(R, 5)`` rows ``(image index, x1, y1, x2, y2)`` in input pixels.
        output_size (tuple[int, int]): ``(out_h, out_w)``.
        spatial_scale (float): ``1 / stride`` of the feature maps.
        sampling_ratio (int): Sample points per bin and axis (> 0; mmcv's adaptive ``0`` is not supported).
            Defaults to 2.

    Returns:
        Tensor: ``(R, C, out_h, out_w)``.
    """
    if sampling_ratio < 1:
        raise ValueError(f'roi_align_gather needs a fixed sampling_ratio >= 1, got {sampling_ratio}')
    b, h, w, c = feats_hwc.shape
    oh, ow = output_size
    r = rois.shape[0]
    if r == 0:
        return feats_hwc.new_zeros((0, c, oh, ow))
    rois = rois.detach().to(torch.float32)
    img = rois[:, 0].long()
    x1, y1 = rois[:, 1] * spatial_scale - 0.5, rois[:, 2] * spatial_scale - 0.5
    rw, rh = (rois[:, 3] - rois[:, 1]) * spatial_scale, (rois[:, 4] - rois[:, 2]) * spatial_scale
    yi, wy = _axis_samples(y1, rh, oh, sampling_ratio, h)
    xi, wx = _axis_samples(x1, rw, ow, sampling_ratio, w)
    # (R, oh, ow, 2s, 2s): table row of every (bin, y sample, x sample) and its weight
    rows = (img[:, None, None, None, None] * h + yi[:, :, None, :, None]) * w + xi[:, None, :, None, :]
    weights = wy[:, :, None, :, None] * wx[:, None, :, None, :] / float(sampling_ratio * sampling_ratio)
    k = (2 * sampling_ratio)**2
    table = feats_hwc.reshape(b * h * w, c)
    out = F.embedding_bag(rows.reshape(-1, k), table,
                          per_sample_weights=weights.reshape(-1, k).to(table.dtype), mode='sum')
    return out.view(r, oh, ow, c).permute(0, 3, 1, 2)


def roi_align(feats: Tensor, rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
              sampling_ratio: int = 2, channels_last: bool = False) -> Tensor:
    """RoIAlign with mmcv's semantics (``aligned=True``, ``'avg'``): the gather on CPU, mmcv's op on CUDA /
    ONNX.

    Args:
        feats (Tensor): ``(B, C, H, W)``, or ``(B, H, W, C)`` with ``channels_last=True``.
        rois, output_size, spatial_scale, sampling_ratio: as in :func:`roi_align_gather`.
        channels_last (bool): Layout of ``feats``. Defaults to False.

    Returns:
        Tensor: ``(R, C, out_h, out_w)``.
    """
    if feats.is_cuda or torch.onnx.is_in_onnx_export():
        from mmcv.ops import roi_align as mmcv_roi_align
        nchw = feats.permute(0, 3, 1, 2) if channels_last else feats
        # contiguous(): mmcv's kernel ignores strides
        return mmcv_roi_align(nchw.contiguous(), rois.to(feats.dtype), tuple(output_size), spatial_scale,
                              sampling_ratio, 'avg', True)
    hwc = feats if channels_last else feats.permute(0, 2, 3, 1)
    return roi_align_gather(hwc, rois, output_size, spatial_scale, sampling_ratio)
