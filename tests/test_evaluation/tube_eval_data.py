"""Small hand-made annotations and clip predictions for the evaluation tests (imported by the tests)."""
import numpy as np
import torch
from mmaction.structures import ActionDataSample
from mmengine.structures import InstanceData


def tube(frames, box, step=(0.0, 0.0)):
    """GT tube rows (frame, x1, y1, x2, y2): a box moving by ``step`` (dx, dy) pixels per frame."""
    frames = np.asarray(list(frames), dtype=np.float32)
    offset = (frames - frames[0])[:, None] * np.array([step[0], step[1], step[0], step[1]], dtype=np.float32)
    return np.concatenate([frames[:, None], np.asarray(box, dtype=np.float32)[None] + offset], axis=1)


def make_ann(videos, labels=('walk', 'run', 'jump'), test=None, resolution=(120, 160)):
    """Annotation dict: ``videos`` = {name: (nframes, {label: [tube rows, ...]})}; all videos are test videos
    unless ``test`` lists them."""
    names = list(videos)
    return dict(
        labels=list(labels),
        gttubes={v: {
            int(k): list(t)
            for k, t in videos[v][1].items()
        }
                 for v in names},
        nframes={v: int(videos[v][0])
                 for v in names},
        resolution={v: resolution
                    for v in names},
        train_videos=[names],
        test_videos=[list(test) if test is not None else names])


def dense(rows, nframes):
    """(nframes, 4) boxes + (nframes,) mask of GT tube rows."""
    boxes = np.zeros((nframes, 4))
    mask = np.zeros(nframes, dtype=bool)
    idx = rows[:, 0].astype(int) - 1
    boxes[idx] = rows[:, 1:5]
    mask[idx] = True
    return boxes, mask


def window_frames(nframes, clip_len, stride):
    """1-based frame numbers and validity of sliding windows covering a video (last window end-aligned)."""
    starts = list(range(0, max(nframes - clip_len, 0) + 1, stride))
    if starts[-1] + clip_len < nframes:
        starts.append(nframes - clip_len)
    out = []
    for s in starts:
        raw = np.arange(s, s + clip_len)
        out.append((np.minimum(raw, nframes - 1) + 1, raw < nframes))
    return out


def clips_from_gt(ann, clip_len=16, stride=8, score=0.9, jitter=0.0, seed=0, videos=None, frame_score=0.9):
    """Clip predictions copying the ground truth (optionally jittered): {video: [clip dicts]}."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in (videos or ann['test_videos'][0]):
        nframes = ann['nframes'][v]
        items = [(label, rows) for label in sorted(ann['gttubes'].get(v, {}))
                 for rows in ann['gttubes'][v][label]]
        clips = []
        for frame_numbers, valid in window_frames(nframes, clip_len, stride):
            tubes, masks, scores, labels = [], [], [], []
            for j, (label, rows) in enumerate(items):
                boxes, mask = dense(rows, nframes)
                m = mask[frame_numbers - 1] & valid
                if not m.any():
                    continue
                b = boxes[frame_numbers - 1] + (rng.normal(0, jitter, (clip_len, 4)) if jitter else 0)
                tubes.append(np.where(m[:, None], b, 0))
                masks.append(m)
                scores.append(score - 0.01 * j)
                labels.append(label)
            n = len(scores)
            clips.append(
                dict(
                    frame_numbers=frame_numbers,
                    frame_valid=valid,
                    tubes=np.asarray(tubes, dtype=np.float32).reshape(n, clip_len, 4),
                    tube_masks=np.asarray(masks, dtype=bool).reshape(n, clip_len),
                    scores=np.asarray(scores, dtype=np.float32),
                    labels=np.asarray(labels, dtype=np.int64),
                    frame_scores=np.full((n, clip_len), frame_score, dtype=np.float32)))
        out[v] = clips
    return out


def to_data_samples(clips_by_video):
    """ActionDataSamples as the model returns them (tensors in pred_instances, metainfo)."""
    samples = []
    for video, clips in clips_by_video.items():
        for c in clips:
            ds = ActionDataSample()
            ds.set_metainfo(
                dict(video_id=video, frame_numbers=c['frame_numbers'], frame_valid=c['frame_valid']))
            ds.pred_instances = InstanceData(
                tubes=torch.from_numpy(c['tubes']),
                tube_masks=torch.from_numpy(c['tube_masks']),
                scores=torch.from_numpy(c['scores']),
                labels=torch.from_numpy(c['labels']),
                frame_scores=torch.from_numpy(c['frame_scores']))
            samples.append(ds)
    return samples
