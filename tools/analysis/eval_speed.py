"""Time the evaluation (linking + frame-mAP + video-mAP) on a synthetic result set of UCF101-24 size.

Default set: 910 test videos, 24 classes, 120..240 frames a video (mean ~180), 1-2 ground-truth tubes a video,
10 detected tracks a video (the ground-truth tracks with noise, plus distractors), observed by clips of T=16
frames with stride 8, each clip predicting the tracks visible in it with per-clip box noise, score noise and
per-frame actionness. Everything goes through ``evaluate_tubes`` exactly as ``TubeMetric.compute_metrics``
does (annotation validation, frame detections + NMS + matching, linking, tube NMS + matching).

Usage::

    python tools/analysis/eval_speed.py                  # UCF101-24 size
    python tools/analysis/eval_speed.py --videos 100 --protocol voc
"""
import argparse
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from cfad_mm.datasets.tube_dataset import window_positions, window_starts  # noqa: E402
from cfad_mm.evaluation.functional import evaluate_tubes  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark the tube evaluation on synthetic results')
    parser.add_argument('--videos', type=int, default=910)
    parser.add_argument('--classes', type=int, default=24)
    parser.add_argument('--frames', type=int, nargs=2, default=[120, 240], metavar=('MIN', 'MAX'))
    parser.add_argument('--tracks', type=int, default=10, help='detected tubes per video')
    parser.add_argument('--clip-len', type=int, default=16)
    parser.add_argument('--stride', type=int, default=8)
    parser.add_argument('--protocol', default='act', choices=['act', 'voc', 'multisports'])
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def _trajectory(rng, nframes, height, width):
    """Dense boxes (nframes, 4) of a smoothly moving, slowly resizing box inside the frame."""
    t = np.arange(nframes) / max(nframes - 1, 1)
    w0, h0 = rng.uniform(0.15, 0.35) * width, rng.uniform(0.3, 0.6) * height
    cx = rng.uniform(0.3, 0.7) * width + rng.uniform(-0.2, 0.2) * width * t + 8 * np.sin(
        rng.uniform(2, 8) * t)
    cy = rng.uniform(0.35, 0.65) * height + 5 * np.sin(rng.uniform(2, 8) * t + rng.uniform(0, 6))
    scale = 1 + 0.2 * np.sin(rng.uniform(1, 4) * t)
    w, h = w0 * scale, h0 * scale
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return np.clip(boxes, 0, [width - 1, height - 1, width - 1, height - 1])


def _extent(rng, nframes, min_fraction):
    length = int(rng.integers(int(min_fraction * nframes), nframes + 1))
    start = int(rng.integers(0, nframes - length + 1))
    mask = np.zeros(nframes, dtype=bool)
    mask[start:start + length] = True
    return mask


def make_result_set(args):
    """Annotation dict + {video: [clip predictions]} (see the module docstring)."""
    rng = np.random.default_rng(args.seed)
    height, width = 240, 320
    ann = dict(
        labels=[f'class_{c:02d}' for c in range(args.classes)],
        gttubes={},
        nframes={},
        resolution={},
        train_videos=[[]],
        test_videos=[[]])
    clips_by_video = {}
    for v in range(args.videos):
        video = f'class_{v % args.classes:02d}/v_{v:04d}'
        nframes = int(rng.integers(args.frames[0], args.frames[1] + 1))
        label = v % args.classes
        num_gt = int(rng.integers(1, 3))
        tracks, masks, labels, base_scores = [], [], [], []
        gttubes = {label: []}
        for _ in range(num_gt):
            boxes, mask = _trajectory(rng, nframes, height, width), _extent(rng, nframes, 0.4)
            frames = np.nonzero(mask)[0]
            gttubes[label].append(
                np.concatenate([frames[:, None] + 1.0, boxes[frames]], axis=1).astype(np.float32))
            tracks.append(boxes + rng.normal(0, 3, boxes.shape))
            masks.append(mask)
            labels.append(label if rng.random() < 0.9 else int(rng.integers(args.classes)))
            base_scores.append(rng.uniform(0.5, 0.95))
        while len(tracks) < args.tracks:  # distractors
            tracks.append(_trajectory(rng, nframes, height, width))
            masks.append(_extent(rng, nframes, 0.2))
            labels.append(int(rng.integers(args.classes)))
            base_scores.append(rng.uniform(0.05, 0.6))
        tracks, masks = np.asarray(tracks), np.asarray(masks)
        # the test windows of the dataset: positions (W, T) clipped to the video, valid (W, T)
        grid = [window_positions(s, args.clip_len, 1, nframes)
                for s in window_starts(nframes, args.clip_len, args.stride)]
        positions, valid = np.stack([p for p, _ in grid]), np.stack([v for _, v in grid])
        clip_tubes = tracks[:, positions] + rng.normal(0, 2, (len(tracks), ) + positions.shape + (4, ))
        clip_masks = masks[:, positions] & valid[None]
        clips = []
        for w in range(len(positions)):
            present = np.nonzero(clip_masks[:, w].any(axis=1))[0]
            m = clip_masks[present, w]
            scores = np.clip(np.asarray(base_scores)[present] + rng.normal(0, 0.05, len(present)), 0.01, 1)
            clips.append(
                dict(
                    frame_numbers=positions[w] + 1,
                    frame_valid=valid[w],
                    tubes=np.where(m[..., None], clip_tubes[present, w], 0).astype(np.float32),
                    tube_masks=m,
                    scores=scores.astype(np.float32),
                    labels=np.asarray(labels, dtype=np.int64)[present],
                    frame_scores=np.where(m, rng.uniform(0.55, 0.95, m.shape), 0.2).astype(np.float32)))
        ann['gttubes'][video] = gttubes
        ann['nframes'][video] = nframes
        ann['resolution'][video] = (height, width)
        ann['train_videos'][0].append(video)
        ann['test_videos'][0].append(video)
        clips_by_video[video] = clips
    return ann, clips_by_video


def main(argv=None):
    args = parse_args(argv)
    tic = time.perf_counter()
    ann, clips = make_result_set(args)
    num_clips = sum(len(c) for c in clips.values())
    num_tubes = sum(len(c['scores']) for cs in clips.values() for c in cs)
    num_frames = sum(ann['nframes'].values())
    print(f'synthetic result set: {args.videos} videos, {num_frames} frames, {num_clips} clips, '
          f'{num_tubes} clip tubes (built in {time.perf_counter() - tic:.1f} s)')
    tic = time.perf_counter()
    report = evaluate_tubes(clips, ann, protocol=args.protocol)
    total = time.perf_counter() - tic
    print('metrics: ' + ', '.join(f'{k}={v:.4f}' for k, v in report['metrics'].items()))
    print(f"linked tubes: {report['num_linked_tubes']} (trimmed away: {report['num_trimmed_away']})")
    print('time: ' + ', '.join(f'{k} {v:.2f} s' for k, v in report['timing'].items()) +
          f' | total evaluate_tubes {total:.2f} s')
    return total, report


if __name__ == '__main__':
    main()
