"""Packing a tube clip into mmaction's ``ActionDataSample``."""
from typing import Sequence

import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from mmaction.structures import ActionDataSample
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from ..sampling import span_length
from .box_mapping import AFFINE_KEY
from .tube_transforms import init_tube_geometry

DEFAULT_META_KEYS = ('video_id', 'frame_numbers', 'frame_valid', 'frame_interval', 'nframes', 'ori_shape',
                     'img_shape', 'scale_factor', 'crop_bbox', 'flip', 'flip_direction', AFFINE_KEY,
                     'sample_idx')


@TRANSFORMS.register_module()
class PackTubeInputs(BaseTransform):
    """Pack a clip and its tubes: ``dict(inputs=uint8 tensor (C, T, H, W), data_samples=ActionDataSample)``.

    Use after ``FormatShape(input_format='NCTHW', collapse=True)``.

    The inputs are the ``T`` decoded frames; with ``frame_interval = k`` (results key, default 1) they are
    every k-th frame of a span of ``S = (T - 1) * k + 1`` frames, and the ground truth and the frame numbers
    cover the whole span (``S = T`` when ``k = 1``).

    ``data_samples.gt_instances`` (when the results hold ``gt_tubes``): ``tubes`` float32 (n, S, 4) xyxy in
    input pixels, ``tube_masks`` bool (n, S), ``labels`` int64 (n,).

    ``data_samples.metainfo``: ``video_id`` (str); ``frame_numbers`` (S,) int64 1-based video frame numbers
    (the pipeline key ``frame_inds``, 0-based decoder indices, is not packed); ``frame_valid`` (S,) bool;
    ``frame_interval``;
    ``nframes``; ``ori_shape`` / ``img_shape`` (H, W); ``scale_factor`` (w, h); ``crop_bbox``; ``flip``;
    ``flip_direction``; ``input_affine`` (see :mod:`cfad_mm.datasets.transforms.box_mapping`);
    ``sample_idx``. Keys absent from the results are skipped.

    Args:
        meta_keys (Sequence[str]): Metainfo keys to pack. Defaults to ``DEFAULT_META_KEYS``.

    Raises:
        ValueError: ``meta_keys`` lists ``'frame_inds'``: the packed 1-based frame numbers were called so
            before they became ``'frame_numbers'``; packing the 0-based decoder indices under that name would
            silently change what an older config evaluates.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)
        if 'frame_inds' in self.meta_keys:
            raise ValueError("PackTubeInputs: meta_keys lists 'frame_inds'; the 1-based video frame numbers "
                             "are packed as 'frame_numbers' (the pipeline's 'frame_inds' are 0-based decoder "
                             "indices): replace 'frame_inds' by 'frame_numbers' in meta_keys")

    def transform(self, results: dict) -> dict:
        if 'imgs' not in results:
            raise KeyError('PackTubeInputs: results have no "imgs"; decode the clip first')
        imgs = results['imgs']
        if not isinstance(imgs, np.ndarray) or imgs.ndim != 4:
            shape = getattr(imgs, 'shape', f'a {type(imgs).__name__}')
            raise ValueError(f'PackTubeInputs expects imgs of shape (C, T, H, W) from '
                             f"FormatShape(input_format='NCTHW', collapse=True), got {shape}")
        init_tube_geometry(results)
        inputs = torch.from_numpy(np.ascontiguousarray(imgs))
        # T decoded frames every k frames: the ground truth and the frame numbers cover the span
        num_frames = span_length(inputs.shape[1], results.get('frame_interval', 1))

        data_sample = ActionDataSample()
        if 'gt_tubes' in results:
            tubes = np.asarray(results['gt_tubes'], dtype=np.float32)
            masks = np.asarray(results['gt_tube_masks'], dtype=bool)
            labels = np.asarray(results['gt_labels'], dtype=np.int64)
            if tubes.ndim != 3 or tubes.shape[1:] != (num_frames, 4) or masks.shape != tubes.shape[:2] \
                    or labels.shape != tubes.shape[:1]:
                raise ValueError(
                    f'PackTubeInputs: inconsistent tube shapes for a clip spanning {num_frames} frames: '
                    f'gt_tubes {tubes.shape}, gt_tube_masks {masks.shape}, gt_labels {labels.shape}')
            data_sample.gt_instances = InstanceData(
                tubes=torch.from_numpy(tubes),
                tube_masks=torch.from_numpy(masks),
                labels=torch.from_numpy(labels))

        meta = {}
        for key in self.meta_keys:
            if key in results:
                meta[key] = results[key]
        if 'frame_numbers' in meta:
            meta['frame_numbers'] = np.asarray(meta['frame_numbers'], dtype=np.int64)
            if len(meta['frame_numbers']) != num_frames:
                raise ValueError(f"PackTubeInputs: {len(meta['frame_numbers'])} frame numbers for a clip "
                                 f'spanning {num_frames} frames')
        if 'frame_valid' in meta:
            meta['frame_valid'] = np.asarray(meta['frame_valid'], dtype=bool)
        data_sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
