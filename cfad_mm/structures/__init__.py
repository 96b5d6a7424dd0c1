"""Tube and box geometry shared by the whole package (IoUs, temporal / spatio-temporal IoU, NMS, mask
extents)."""
from .tube_ops import (
    box_area,
    box_centres,
    box_iou,
    box_iou_aligned,
    box_nms,
    clamp_boxes_to_image,
    mask_extents,
    tube_frame_iou,
    tube_nms,
    tube_st_iou,
    tube_temporal_iou,
)

__all__ = [
    'box_area', 'box_centres', 'box_iou', 'box_iou_aligned', 'box_nms', 'tube_temporal_iou', 'tube_frame_iou',
    'tube_st_iou', 'tube_nms', 'clamp_boxes_to_image', 'mask_extents'
]
