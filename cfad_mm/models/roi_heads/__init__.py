from .key_frame_encoder import KeyFrameEncoder
from .tube_refine_roi_head import TubeRefineRoIHead

__all__ = ['TubeRefineRoIHead', 'KeyFrameEncoder']
