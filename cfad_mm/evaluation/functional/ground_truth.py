"""Ground truth of the evaluated videos, in the layouts the metrics need."""
from typing import List, Tuple, Union

import numpy as np

__all__ = ['resolve_annotations', 'split_videos', 'dense_gt_tubes', 'gt_frame_boxes']


def resolve_annotations(annotations: Union[str, dict]) -> dict:
    """Load (path) or validate (dict) an ACT-style annotation and return the normalised dict.

    Args:
        annotations (str | dict): Path of the annotation pickle, or the dict itself (raw or already loaded);
            both go through :func:`cfad_mm.datasets.annotation.load_annotations` /
            :func:`~cfad_mm.datasets.annotation.validate_annotations`.

    Returns:
        dict: ``labels``, ``gttubes``, ``nframes``, ``resolution``, ``train_videos``, ``test_videos``.
    """
    from cfad_mm.datasets.annotation import load_annotations, validate_annotations
    if isinstance(annotations, str):
        return load_annotations(annotations)
    if isinstance(annotations, dict):
        return validate_annotations(annotations, ann_file='<annotation dict>')
    raise TypeError(
        f'annotations must be a path (str) or an annotation dict, got {type(annotations).__name__}')


def split_videos(ann: dict, split: int = 0, subset: str = 'test') -> List[str]:
    """The videos of one split.

    Args:
        ann (dict): Normalised annotation dict.
        split (int): 0-based split index (ACT's command line is 1-based). Defaults to 0.
        subset (str): ``'test'`` or ``'train'``. Defaults to ``'test'``.

    Returns:
        list[str]: Video names, in annotation order.
    """
    if subset not in ('test', 'train'):
        raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")
    lists = ann[f'{subset}_videos']
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 <= split < len(lists):
        raise ValueError(f'split must be an integer in 0..{len(lists) - 1} ({len(lists)} splits in the '
                         f'annotation), got {split!r}')
    return list(lists[split])


def dense_gt_tubes(ann: dict, video: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ground-truth tubes of a video, dense on the video's time axis.

    Args:
        ann (dict): Normalised annotation dict.
        video (str): Video name.

    Returns:
        tuple: ``boxes (n, nframes, 4)`` float64 (0 on unannotated frames), ``masks (n, nframes)`` bool
        (True on annotated frames), ``labels (n,)`` int64. Tubes are ordered by label, then annotation order.
    """
    from cfad_mm.datasets.annotation import densify_tubes
    return densify_tubes(ann['gttubes'].get(video, {}), ann['nframes'][video])


def gt_frame_boxes(ann: dict, videos: List[str]) -> dict:
    """Every annotated box of the given videos as flat arrays (the frame-mAP ground truth).

    Args:
        ann (dict): Normalised annotation dict.
        videos (list[str]): Evaluated videos; ``video_idx`` indexes this list.

    Returns:
        dict: ``video_idx``, ``frame`` (1-based), ``label`` (int64 ``(M,)``) and ``boxes``
        (float64 ``(M, 4)``).
    """
    video_idx, frames, labels, boxes = [], [], [], []
    for vi, video in enumerate(videos):
        for label in sorted(ann['gttubes'].get(video, {})):
            for tube in ann['gttubes'][video][label]:
                video_idx.append(np.full(len(tube), vi, dtype=np.int64))
                frames.append(np.round(tube[:, 0]).astype(np.int64))
                labels.append(np.full(len(tube), label, dtype=np.int64))
                boxes.append(np.asarray(tube[:, 1:5], dtype=np.float64))
    if not boxes:
        empty = np.zeros(0, dtype=np.int64)
        return dict(video_idx=empty, frame=empty.copy(), label=empty.copy(), boxes=np.zeros((0, 4)))
    return dict(
        video_idx=np.concatenate(video_idx),
        frame=np.concatenate(frames),
        label=np.concatenate(labels),
        boxes=np.concatenate(boxes))
