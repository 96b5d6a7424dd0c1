from .cfg_keys import merge_known_keys
from .feature_sampling import (
    clip_time_to_feature,
    feature_step_frames,
    feature_time_to_clip,
    input_frame_spacing,
    input_span_frames,
    nearest_input_frames,
    nearest_step,
    sample_tube_rois,
    temporal_roi_pool,
)
from .pretrained import load_pretrained_backbone

__all__ = [
    'clip_time_to_feature', 'feature_step_frames', 'feature_time_to_clip', 'input_frame_spacing',
    'input_span_frames', 'nearest_input_frames', 'nearest_step', 'sample_tube_rois', 'temporal_roi_pool',
    'load_pretrained_backbone', 'merge_known_keys'
]
