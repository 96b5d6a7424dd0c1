"""Mapping boxes between original video pixels and network-input pixels.

Every tube transform (``TubeResize``, ``TubeRandomCrop``, ``TubeFlip``) is an axis-aligned affine map of the
image plane, so their composition, in whatever order the pipeline applies them, is::

    x_input = sx * x_original + tx        y_input = sy * y_original + ty

with ``sx < 0`` after an odd number of horizontal flips. The transforms keep this composition in the
metainfo key ``input_affine = [sx, tx, sy, ty]`` (float64), next to the familiar mmaction keys
``scale_factor`` (w, h) (product of all resizes), ``crop_bbox`` (x1, y1, x2, y2) of the last crop in the
coordinates of the image it cut, ``flip`` (bool, toggled by each flip) and ``flip_direction``.

:func:`boxes_to_original` uses ``input_affine`` when present. Without it (metainfo written by hand), it
composes the named keys in the canonical order resize -> crop -> flip (flip width = ``img_shape[1]``).

Conventions: boxes are continuous xyxy coordinates; a horizontal flip of an image of width ``W`` maps
``x -> W - x`` (and swaps x1/x2), like mmdet/mmaction. Values of masked-out (absent) boxes are mapped too and
stay meaningless; apply the tube masks afterwards.
"""
from typing import Mapping, Tuple

import numpy as np
import torch

AFFINE_KEY = 'input_affine'


def identity_affine() -> np.ndarray:
    """The affine ``[sx, tx, sy, ty]`` of an untransformed image."""
    return np.array([1.0, 0.0, 1.0, 0.0], dtype=np.float64)


def get_input_affine(metainfo: Mapping) -> Tuple[float, float, float, float]:
    """``(sx, tx, sy, ty)`` with ``input = s * original + t`` for the clip described by ``metainfo``.

    Args:
        metainfo (Mapping): Metainfo of a packed sample (or a pipeline results dict).

    Returns:
        tuple[float, float, float, float]: ``sx, tx, sy, ty``.
    """
    if metainfo.get(AFFINE_KEY) is not None:
        sx, tx, sy, ty = (float(v) for v in np.asarray(metainfo[AFFINE_KEY], dtype=np.float64).reshape(4))
        return sx, tx, sy, ty
    sx, sy, tx, ty = 1.0, 1.0, 0.0, 0.0
    scale = metainfo.get('scale_factor')
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        sx, sy = float(scale[0]), float(scale[1] if scale.size > 1 else scale[0])
    crop = metainfo.get('crop_bbox')
    if crop is not None:
        crop = np.asarray(crop, dtype=np.float64).reshape(-1)
        tx -= float(crop[0])
        ty -= float(crop[1])
    if metainfo.get('flip', False):
        direction = metainfo.get('flip_direction', 'horizontal')
        if direction != 'horizontal':
            raise ValueError(f'boxes_to_original: only horizontal flips are supported, got {direction!r}')
        if metainfo.get('img_shape') is None:
            raise KeyError(
                'boxes_to_original: metainfo with flip=True needs img_shape (H, W) to undo the flip')
        width = float(metainfo['img_shape'][1])
        sx, tx = -sx, width - tx
    return sx, tx, sy, ty


def _apply(boxes, sx: float, tx: float, sy: float, ty: float):
    """``boxes * s + t`` per axis; reorders x1/x2 (y1/y2) when a scale is negative."""
    is_torch = isinstance(boxes, torch.Tensor)
    if not is_torch:
        boxes = np.asarray(boxes)
        if not np.issubdtype(boxes.dtype, np.floating):
            boxes = boxes.astype(np.float64)
    elif not torch.is_floating_point(boxes):
        boxes = boxes.float()
    if boxes.shape[-1] != 4:
        raise ValueError(f'boxes must have shape (..., 4), got {tuple(boxes.shape)}')
    x1 = boxes[..., 0] * sx + tx
    x2 = boxes[..., 2] * sx + tx
    y1 = boxes[..., 1] * sy + ty
    y2 = boxes[..., 3] * sy + ty
    if sx < 0:
        x1, x2 = x2, x1
    if sy < 0:
        y1, y2 = y2, y1
    stack = torch.stack if is_torch else np.stack
    return stack([x1, y1, x2, y2], -1)


def boxes_to_original(boxes, metainfo: Mapping, clip: bool = False):
    """Map boxes from network-input pixels of a clip to original video pixels.

    Inverse of the resize / crop / flip recorded by the tube transforms (see the module docstring).

    Args:
        boxes (np.ndarray | torch.Tensor): (..., 4) xyxy boxes in input pixels.
        metainfo (Mapping): The clip's metainfo (``input_affine`` or ``scale_factor`` / ``crop_bbox`` /
            ``flip`` / ``img_shape``).
        clip (bool): Clip the result to ``metainfo['ori_shape']`` (H, W). Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: (..., 4) boxes in original pixels, same kind (and float dtype) as
        the input.
    """
    sx, tx, sy, ty = get_input_affine(metainfo)
    if sx == 0 or sy == 0:
        raise ValueError(f'boxes_to_original: degenerate transform (sx={sx}, sy={sy})')
    out = _apply(boxes, 1.0 / sx, -tx / sx, 1.0 / sy, -ty / sy)
    if clip:
        out = clip_boxes_to_shape(out, metainfo['ori_shape'])
    return out


def boxes_to_input(boxes, metainfo: Mapping, clip: bool = False):
    """Map boxes from original video pixels to network-input pixels (the forward transform).

    Args:
        boxes (np.ndarray | torch.Tensor): (..., 4) xyxy boxes in original pixels.
        metainfo (Mapping): The clip's metainfo (as for :func:`boxes_to_original`).
        clip (bool): Clip the result to ``metainfo['img_shape']`` (H, W). Defaults to False.

    Returns:
        np.ndarray | torch.Tensor: (..., 4) boxes in input pixels, same kind as the input.
    """
    out = _apply(boxes, *get_input_affine(metainfo))
    if clip:
        out = clip_boxes_to_shape(out, metainfo['img_shape'])
    return out


def clip_boxes_to_shape(boxes, shape):
    """Clip xyxy boxes (..., 4) to an image of ``shape`` (H, W); numpy or torch."""
    height, width = float(shape[0]), float(shape[1])
    if isinstance(boxes, torch.Tensor):
        out = boxes.clone()
        out[..., 0::2] = out[..., 0::2].clamp(0, width)
        out[..., 1::2] = out[..., 1::2].clamp(0, height)
        return out
    out = np.array(boxes, copy=True)
    out[..., 0::2] = np.clip(out[..., 0::2], 0, width)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, height)
    return out
