"""Functional (framework-free) implementation of the ACT / VOC frame-mAP and video-mAP."""
from .ap import act_pr_to_ap, average_precision, per_class_ap, pr_curve, subsample_pr, voc_pr_to_ap
from .evaluate import clip_frame_detections, evaluate_tubes, format_report_table, metric_keys, report_to_json
from .frame_map import frame_detections_to_dict, frame_map
from .ground_truth import dense_gt_tubes, gt_frame_boxes, resolve_annotations, split_videos
from .matching import descending_score_order, greedy_match, group_ranks, grouped_box_nms
from .protocol import PROTOCOLS, EvalProtocol, get_protocol
from .video_map import VIDEO_05_095_THRS, check_video_tubes, video_map

__all__ = [
    'act_pr_to_ap', 'voc_pr_to_ap', 'average_precision', 'per_class_ap', 'pr_curve', 'subsample_pr',
    'evaluate_tubes', 'clip_frame_detections', 'format_report_table', 'metric_keys', 'report_to_json',
    'frame_map', 'frame_detections_to_dict', 'dense_gt_tubes', 'gt_frame_boxes', 'resolve_annotations',
    'split_videos', 'descending_score_order', 'greedy_match', 'group_ranks', 'grouped_box_nms', 'PROTOCOLS',
    'EvalProtocol', 'get_protocol', 'VIDEO_05_095_THRS', 'check_video_tubes', 'video_map'
]
