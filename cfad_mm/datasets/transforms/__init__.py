"""Tube-aware data transforms (registered in mmaction's ``TRANSFORMS``)."""
from .box_mapping import boxes_to_input, boxes_to_original, clip_boxes_to_shape, get_input_affine
from .formatting import PackTubeInputs
from .tube_transforms import TubeFlip, TubeRandomCrop, TubeResize, init_tube_geometry

__all__ = [
    'TubeResize', 'TubeRandomCrop', 'TubeFlip', 'PackTubeInputs', 'boxes_to_original', 'boxes_to_input',
    'clip_boxes_to_shape', 'get_input_affine', 'init_tube_geometry'
]
