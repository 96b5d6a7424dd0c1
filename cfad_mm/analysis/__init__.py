"""Diagnostics of tube predictions: per-video tube timelines and a TIDE-style video-mAP error breakdown."""
from .errors import ERROR_TYPES, dense_tubes_to_dicts, format_breakdown_table, video_error_breakdown
from .timeline import draw_tube_timeline, match_tube_dicts, plot_tube_timeline, tube_dicts_to_dense

__all__ = [
    'plot_tube_timeline', 'draw_tube_timeline', 'match_tube_dicts', 'tube_dicts_to_dense',
    'video_error_breakdown', 'format_breakdown_table', 'dense_tubes_to_dicts', 'ERROR_TYPES'
]
