"""Diagnostics of tube predictions: per-video tube timelines, a TIDE-style video-mAP error breakdown and the
identity metrics of linked tubes (identity switches, fragments, jumps between actors, the best tube per
ground-truth tube in time and space)."""
from .errors import ERROR_TYPES, dense_tubes_to_dicts, format_breakdown_table, video_error_breakdown
from .identity import (
    IDENTITY_KEYS,
    best_tube_overlap,
    format_identity_table,
    frame_correspondences,
    summarize_identity,
    tube_identity,
    video_identity,
)
from .timeline import draw_tube_timeline, match_tube_dicts, plot_tube_timeline, tube_dicts_to_dense

__all__ = [
    'plot_tube_timeline', 'draw_tube_timeline', 'match_tube_dicts', 'tube_dicts_to_dense',
    'video_error_breakdown', 'format_breakdown_table', 'dense_tubes_to_dicts', 'ERROR_TYPES', 'IDENTITY_KEYS',
    'format_identity_table', 'frame_correspondences', 'summarize_identity', 'tube_identity', 'video_identity',
    'best_tube_overlap'
]
