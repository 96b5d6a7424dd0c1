"""Evaluation of spatio-temporal action detection: ACT frame-mAP / video-mAP, clip-to-video tube linking and
the ``TubeMetric`` (registered in mmaction's ``METRICS``)."""
from .functional import (
    PROTOCOLS,
    VIDEO_05_095_THRS,
    EvalProtocol,
    average_precision,
    evaluate_tubes,
    format_report_table,
    frame_map,
    get_protocol,
    report_to_json,
    video_map,
)
from .linking import link_prepared_clips, link_tubes, link_video_tubes, prepare_clips
from .metrics import TubeMetric, data_samples_to_clip_predictions
from .predictions import DumpUnpickler, evaluate_clip_predictions, group_clips_by_video, load_dump

__all__ = [
    'PROTOCOLS', 'VIDEO_05_095_THRS', 'EvalProtocol', 'average_precision', 'evaluate_tubes',
    'format_report_table', 'frame_map', 'get_protocol', 'report_to_json', 'video_map', 'link_prepared_clips',
    'link_tubes', 'link_video_tubes', 'prepare_clips', 'TubeMetric', 'data_samples_to_clip_predictions',
    'DumpUnpickler', 'evaluate_clip_predictions', 'group_clips_by_video', 'load_dump'
]
