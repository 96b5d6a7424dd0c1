"""Geometric transforms that keep action tubes consistent with the frames.

They act on the frame list ``results['imgs']`` (after mmaction's ``DecordDecode`` / ``RawFrameDecode``, before
``FormatShape``) and on the clip ground truth ``gt_tubes`` (n, T, 4) xyxy pixels, ``gt_tube_masks`` (n, T)
bool and ``gt_labels`` (n,). Each one also updates the geometry record documented in
:mod:`cfad_mm.datasets.transforms.box_mapping` (``input_affine``, ``scale_factor``, ``crop_bbox``, ``flip``,
``flip_direction``, ``img_shape``; ``ori_shape`` is set on first use), so that predictions can be mapped back
to original video pixels with :func:`~cfad_mm.datasets.transforms.box_mapping.boxes_to_original`.

mmaction's own ``Resize`` / ``RandomCrop`` / ``Flip`` do not know about tubes: use these instead. Photometric
transforms (mmaction's ``ColorJitter``) need no tube handling and can be used as they are.
"""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from .box_mapping import AFFINE_KEY, identity_affine

TUBE_KEYS = ('gt_tubes', 'gt_tube_masks', 'gt_labels')


def init_tube_geometry(results: dict) -> None:
    """Initialise the geometry record on the first tube transform (idempotent).

    Sets ``ori_shape`` (H, W) of the decoded frames, ``input_affine`` (identity), and defaults for
    ``scale_factor`` ([1, 1]), ``crop_bbox`` (the full frame), ``flip`` (False), ``flip_direction`` (None).

    Raises:
        ValueError: If the decoded frame size differs from the annotated resolution ``ann_shape`` (the tubes
            would not match the frames), if the decoded frames of the clip do not all have the same size (a
            frame folder with images of mixed sizes), or if a transform without tube support already changed
            the frame size (``img_shape != original_shape``).
    """
    if AFFINE_KEY in results:
        return
    if 'img_shape' in results:
        img_shape = tuple(int(v) for v in results['img_shape'])
    elif results.get('imgs') is not None and len(results['imgs']):
        img_shape = tuple(int(v) for v in results['imgs'][0].shape[:2])
    else:
        raise KeyError('tube transforms need results["img_shape"] or decoded results["imgs"]')
    video = results.get('video_id', results.get('filename', results.get('frame_dir', '?')))
    original = tuple(int(v) for v in results.get('original_shape', img_shape))
    if original != img_shape:
        raise ValueError(
            f'video {video!r}: the frames were resized/cropped from {original} to {img_shape} before '
            'the first tube transform; use TubeResize / TubeRandomCrop / TubeFlip so that the tubes '
            'follow the frames')
    ann_shape = results.get('ann_shape')
    if ann_shape is not None and tuple(int(v) for v in ann_shape) != img_shape:
        raise ValueError(
            f'video {video!r}: decoded frames are {img_shape[1]}x{img_shape[0]} (WxH) but the annotation '
            f'resolution is {ann_shape[1]}x{ann_shape[0]}; the boxes would not match the frames')
    _check_same_frame_size(results, img_shape, video)
    height, width = img_shape
    results['img_shape'] = img_shape
    results['ori_shape'] = img_shape
    results[AFFINE_KEY] = identity_affine()
    results.setdefault('scale_factor', np.array([1.0, 1.0], dtype=np.float32))
    results.setdefault('crop_bbox', np.array([0, 0, width, height], dtype=np.int64))
    results.setdefault('flip', False)
    results.setdefault('flip_direction', None)


def _check_same_frame_size(results: dict, img_shape: tuple, video) -> None:
    """Raise if a decoded frame of the list ``results['imgs']`` is not ``img_shape`` (the first frame's size):
    the tube transforms resize, crop and flip all frames with the geometry of the first one."""
    imgs = results.get('imgs')
    if not isinstance(imgs, (list, tuple)):  # a stacked array has one frame size
        return
    numbers = results.get('frame_numbers')
    for i, img in enumerate(imgs):
        size = tuple(int(v) for v in img.shape[:2])
        if size == img_shape:
            continue
        which = f'clip frame {i}'
        if numbers is not None and len(numbers) == len(imgs):
            which = f'frame {int(numbers[i])}'
        if 'frame_dir' in results and 'filename_tmpl' in results and 'frame_inds' in results:
            number = int(results['frame_inds'][i]) + int(results.get('offset', 0))
            which += f" ({osp.join(results['frame_dir'], results['filename_tmpl'].format(number))})"
        raise ValueError(
            f'video {video!r}: the decoded frames have different sizes: {which} is {size[1]}x{size[0]} (WxH) '
            f'but the first frame of the clip is {img_shape[1]}x{img_shape[0]}; all frames of a video must '
            'have one size (the tube boxes would not match the other frames); re-extract the frames at one '
            'size')


def _drop_empty_tubes(results: dict) -> None:
    """Remove tubes whose every frame was cropped away (with their labels) and zero absent boxes."""
    masks = results['gt_tube_masks']
    keep = masks.any(axis=1)
    results['gt_tubes'][~masks] = 0
    if not keep.all():
        for key in TUBE_KEYS:
            results[key] = results[key][keep]


@TRANSFORMS.register_module()
class TubeResize(BaseTransform):
    """Resize the frames and the tube boxes (same scale semantics as mmaction's ``Resize``).

    Required keys: ``imgs`` (list of (H, W, C) arrays) or ``img_shape``; optional ``gt_tubes``.
    Modified keys: ``imgs``, ``img_shape``, ``gt_tubes``, ``scale_factor``, ``input_affine`` (+ initial
    geometry, see :func:`init_tube_geometry`).

    Args:
        scale (float | tuple[int, int]): A ratio (float), or a target ``(w, h)``. With ``keep_ratio=True`` a
            tuple bounds the long and short edges (mmcv ``rescale_size``); ``-1`` in it means "no bound", so
            ``(-1, 112)`` resizes the short side to 112.
        keep_ratio (bool): Keep the aspect ratio. Defaults to True.
        interpolation (str): mmcv interpolation. Defaults to ``'bilinear'``.
    """

    def __init__(self,
                 scale: Union[float, Sequence[int]],
                 keep_ratio: bool = True,
                 interpolation: str = 'bilinear'):
        if isinstance(scale, (int, float)) and not isinstance(scale, bool):
            if scale <= 0:
                raise ValueError(f'TubeResize: scale ratio must be positive, got {scale}')
            scale = float(scale)
        elif isinstance(scale, (tuple, list)) and len(scale) == 2:
            scale = tuple(scale)
            if keep_ratio:
                if max(scale) <= 0:
                    raise ValueError(f'TubeResize: invalid scale {scale}')
                scale = tuple(np.inf if v == -1 else v for v in scale)
            elif min(scale) <= 0:
                raise ValueError(f'TubeResize: keep_ratio=False needs a positive (w, h), got {scale}')
        else:
            raise TypeError(f'TubeResize: scale must be a float or a (w, h) pair, got {scale!r}')
        self.scale = scale
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def target_size(self, img_w: int, img_h: int) -> Tuple[int, int]:
        """The output ``(w, h)`` for an input of ``img_w`` x ``img_h``."""
        if isinstance(self.scale, float) or self.keep_ratio:
            return mmcv.rescale_size((img_w, img_h), self.scale)
        return int(self.scale[0]), int(self.scale[1])

    def transform(self, results: dict) -> dict:
        init_tube_geometry(results)
        img_h, img_w = results['img_shape']
        new_w, new_h = self.target_size(img_w, img_h)
        fx, fy = new_w / img_w, new_h / img_h
        if (new_w, new_h) != (img_w, img_h) and results.get('imgs') is not None:
            results['imgs'] = [
                mmcv.imresize(img, (new_w, new_h), interpolation=self.interpolation)
                for img in results['imgs']
            ]
        if 'gt_tubes' in results:
            results['gt_tubes'] = (results['gt_tubes'] * np.array([fx, fy, fx, fy], dtype=np.float32)).astype(
                np.float32)
        affine = results[AFFINE_KEY].copy()
        affine[0:2] *= fx
        affine[2:4] *= fy
        results[AFFINE_KEY] = affine
        results['scale_factor'] = np.asarray(
            results['scale_factor'], dtype=np.float32) * np.array([fx, fy], dtype=np.float32)
        results['img_shape'] = (new_h, new_w)
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation})')


@TRANSFORMS.register_module()
class TubeRandomCrop(BaseTransform):
    """Random fixed-size crop that keeps the tubes, applied identically to all frames of the clip.

    With ``keep_tubes=True`` the crop position is drawn among the positions whose window contains the union of
    all tube boxes of the clip (along each axis where that union fits in the crop; where it does not, the crop
    lies inside the union). Boxes are shifted and clipped to the crop; a box clipped to zero area becomes
    absent (mask False) and a tube left without any box is removed -- which can only happen when the tubes
    span more than the crop size.

    Required keys: ``imgs`` or ``img_shape``; optional ``gt_tubes``, ``gt_tube_masks``, ``gt_labels``.
    Modified keys: ``imgs``, ``img_shape``, ``crop_bbox`` (x1, y1, x2, y2 in the pre-crop image), tube keys,
    ``input_affine``.

    Args:
        size (int | tuple[int, int]): Crop ``(w, h)``, an int for a square.
        keep_tubes (bool): Choose positions that keep the tubes (see above). Defaults to True.
    """

    def __init__(self, size: Union[int, Sequence[int]], keep_tubes: bool = True):
        if isinstance(size, int):
            size = (size, size)
        if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(int(v) > 0 for v in size)):
            raise ValueError(f'TubeRandomCrop: size must be a positive int or (w, h), got {size!r}')
        self.size = (int(size[0]), int(size[1]))
        self.keep_tubes = keep_tubes

    @staticmethod
    def _offset(length: int, crop: int, lo_box: Optional[float], hi_box: Optional[float]) -> int:
        """Random crop offset along one axis keeping ``[lo_box, hi_box]`` inside when possible."""
        last = length - crop
        if lo_box is None:
            return int(np.random.randint(0, last + 1))
        if hi_box - lo_box <= crop:  # the union fits: the crop must contain it
            lo, hi = int(np.ceil(hi_box - crop)), int(np.floor(lo_box))
        else:  # the union is larger: the crop must lie inside it
            lo, hi = int(np.floor(lo_box)), int(np.ceil(hi_box - crop))
        lo, hi = max(lo, 0), min(hi, last)
        if lo > hi:
            lo, hi = 0, last
        return int(np.random.randint(lo, hi + 1))

    def transform(self, results: dict) -> dict:
        init_tube_geometry(results)
        img_h, img_w = results['img_shape']
        crop_w, crop_h = self.size
        if crop_w > img_w or crop_h > img_h:
            raise ValueError(f'TubeRandomCrop: crop (w, h)={self.size} is larger than the frames '
                             f'({img_w}, {img_h}) of video {results.get("video_id", "?")!r}; resize first')
        has_tubes = 'gt_tubes' in results and results['gt_tube_masks'].any()
        if self.keep_tubes and has_tubes:
            boxes = results['gt_tubes'][results['gt_tube_masks']]
            x_off = self._offset(img_w, crop_w, boxes[:, 0].min(), boxes[:, 2].max())
            y_off = self._offset(img_h, crop_h, boxes[:, 1].min(), boxes[:, 3].max())
        else:
            x_off = self._offset(img_w, crop_w, None, None)
            y_off = self._offset(img_h, crop_h, None, None)
        if results.get('imgs') is not None:
            results['imgs'] = [img[y_off:y_off + crop_h, x_off:x_off + crop_w] for img in results['imgs']]
        if 'gt_tubes' in results:
            tubes = results['gt_tubes'] - np.array([x_off, y_off, x_off, y_off], dtype=np.float32)
            tubes[..., 0::2] = np.clip(tubes[..., 0::2], 0, crop_w)
            tubes[..., 1::2] = np.clip(tubes[..., 1::2], 0, crop_h)
            results['gt_tubes'] = tubes.astype(np.float32)
            nonempty = (tubes[..., 2] > tubes[..., 0]) & (tubes[..., 3] > tubes[..., 1])
            results['gt_tube_masks'] = results['gt_tube_masks'] & nonempty
            _drop_empty_tubes(results)
        affine = results[AFFINE_KEY].copy()
        affine[1] -= x_off
        affine[3] -= y_off
        results[AFFINE_KEY] = affine
        results['crop_bbox'] = np.array([x_off, y_off, x_off + crop_w, y_off + crop_h], dtype=np.int64)
        results['img_shape'] = (crop_h, crop_w)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size={self.size}, keep_tubes={self.keep_tubes})'


@TRANSFORMS.register_module()
class TubeFlip(BaseTransform):
    """Random horizontal flip of the whole clip and its tubes.

    A box ``(x1, y1, x2, y2)`` in an image of width ``W`` becomes ``(W - x2, y1, W - x1, y2)``.

    Required keys: ``imgs`` or ``img_shape``; optional ``gt_tubes``, ``gt_tube_masks``.
    Modified keys: ``imgs``, ``gt_tubes``, ``flip`` (toggled when flipping), ``flip_direction``
    (``'horizontal'``), ``input_affine``.

    Args:
        flip_ratio (float): Probability of flipping. Defaults to 0.5.
        direction (str): Only ``'horizontal'`` (a vertical flip would change the meaning of most actions).
            Defaults to ``'horizontal'``.
    """

    def __init__(self, flip_ratio: float = 0.5, direction: str = 'horizontal'):
        if direction != 'horizontal':
            raise ValueError(f"TubeFlip: only direction='horizontal' is supported, got {direction!r}")
        if not 0.0 <= flip_ratio <= 1.0:
            raise ValueError(f'TubeFlip: flip_ratio must be in [0, 1], got {flip_ratio}')
        self.flip_ratio = flip_ratio
        self.direction = direction

    def transform(self, results: dict) -> dict:
        init_tube_geometry(results)
        results['flip_direction'] = self.direction
        if np.random.rand() >= self.flip_ratio:
            return results
        width = results['img_shape'][1]
        if results.get('imgs') is not None:
            results['imgs'] = [np.ascontiguousarray(img[:, ::-1]) for img in results['imgs']]
        if 'gt_tubes' in results:
            tubes = results['gt_tubes'].copy()
            tubes[..., 0] = width - results['gt_tubes'][..., 2]
            tubes[..., 2] = width - results['gt_tubes'][..., 0]
            tubes[~results['gt_tube_masks']] = 0
            results['gt_tubes'] = tubes
        affine = results[AFFINE_KEY].copy()
        affine[0] = -affine[0]
        affine[1] = width - affine[1]
        results[AFFINE_KEY] = affine
        results['flip'] = not results['flip']
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(flip_ratio={self.flip_ratio}, direction={self.direction!r})'
