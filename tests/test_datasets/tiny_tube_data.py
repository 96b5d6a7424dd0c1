"""Tiny tube datasets written on the fly (mp4v videos and jpg/png frame folders) for the dataset tests.

Every frame has a uniform ``MARKER`` block in its top-left corner whose grey level encodes the 1-based frame
number (``marker_level``), a static textured background, and solid red actors (RGB ``ACTOR_RGB``) exactly
where the annotation boxes are.
"""
import os
import os.path as osp
import pickle

import cv2
import numpy as np

WIDTH, HEIGHT = 64, 48
ACTOR_RGB = (230, 20, 20)
MARKER = (slice(0, 8), slice(0, 16))  # rows, cols of the frame-number block
LABELS = ['walk', 'jump']


def marker_level(frame: int) -> int:
    """Grey level of the frame-number block of 1-based frame ``frame``."""
    return 10 + 6 * frame


def _tube(frames, x0, y0, w, h, dx=0.0, dy=0.0):
    """Rows (frame, x1, y1, x2, y2) of a box of size w x h moving by (dx, dy) per frame."""
    rows = []
    for k, f in enumerate(frames):
        x1, y1 = x0 + dx * k, y0 + dy * k
        rows.append([f, x1, y1, x1 + w, y1 + h])
    return np.array(rows, dtype=np.float32)


def tiny_annotations() -> dict:
    """Annotations of four tiny videos (names contain '/'), one split."""
    gttubes = {
        'walk/v_000': {
            0: [_tube(range(3, 21), 4, 14, 14, 20, dx=2.0)]
        },
        'jump/v_001': {
            1: [_tube(range(1, 21), 40, 20, 12, 16, dy=0.5)],
            0: [_tube(range(8, 16), 6, 12, 10, 14, dx=1.0)]
        },
        'walk/v_002': {
            0: [_tube(range(1, 13), 20, 16, 16, 24)]
        },
        'jump/v_003': {
            1: [_tube(range(25, 41), 10, 18, 12, 20, dx=1.0, dy=-0.25)]
        },
    }
    nframes = {'walk/v_000': 30, 'jump/v_001': 20, 'walk/v_002': 12, 'jump/v_003': 40}
    return dict(
        labels=list(LABELS),
        gttubes=gttubes,
        nframes=nframes,
        resolution={v: (HEIGHT, WIDTH)
                    for v in nframes},
        train_videos=[['walk/v_000', 'jump/v_001', 'jump/v_003']],
        test_videos=[['jump/v_001', 'walk/v_002', 'jump/v_003']])


def render_frames(ann: dict, video: str, seed: int = 0) -> np.ndarray:
    """RGB frames (N, H, W, 3) uint8 of ``video``: background, actors at their boxes, frame marker."""
    rng = np.random.default_rng(seed + sum(map(ord, video)))
    background = cv2.GaussianBlur(rng.integers(40, 140, (HEIGHT, WIDTH, 3)).astype(np.uint8), (5, 5), 0)
    background[..., 0] = np.minimum(background[..., 0], 120)  # keep the background clearly non-red
    n = ann['nframes'][video]
    frames = np.repeat(background[None], n, axis=0)
    for tubes in ann['gttubes'].get(video, {}).values():
        for tube in tubes:
            for f, x1, y1, x2, y2 in tube:
                frames[int(f) - 1, int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = ACTOR_RGB
    for f in range(1, n + 1):
        frames[f - 1][MARKER] = marker_level(f)
    return frames


def write_tiny_dataset(root: str, ann: dict = None, frames_ext: str = None) -> dict:
    """Write ``root/annotations.pkl`` and ``root/videos/{video}.mp4`` (+ ``root/frames/{video}/{:05d}{ext}``).

    Returns:
        dict: ``ann_file``, ``videos`` (dir), ``frames`` (dir or None), ``ann``.
    """
    ann = tiny_annotations() if ann is None else ann
    os.makedirs(root, exist_ok=True)
    ann_file = osp.join(root, 'annotations.pkl')
    with open(ann_file, 'wb') as f:
        pickle.dump(ann, f, protocol=2)
    for video in ann['nframes']:
        frames = render_frames(ann, video)
        path = osp.join(root, 'videos', video + '.mp4')
        os.makedirs(osp.dirname(path), exist_ok=True)
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10, (WIDTH, HEIGHT))
        assert writer.isOpened(), 'cv2 cannot write mp4v'
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        if frames_ext:
            folder = osp.join(root, 'frames', video)
            os.makedirs(folder, exist_ok=True)
            for i, frame in enumerate(frames, start=1):
                cv2.imwrite(osp.join(folder, f'{i:05d}{frames_ext}'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return dict(
        ann_file=ann_file,
        videos=osp.join(root, 'videos'),
        frames=osp.join(root, 'frames') if frames_ext else None,
        ann=ann)


def assert_same_annotations(a: dict, b: dict):
    """Two validated annotation dicts are equal: the same keys and values, every tube array float32 and
    equal."""
    for key in ('labels', 'nframes', 'resolution', 'train_videos', 'test_videos'):
        assert a[key] == b[key], key
    assert a['gttubes'].keys() == b['gttubes'].keys()
    for video, per_label in a['gttubes'].items():
        assert per_label.keys() == b['gttubes'][video].keys()
        for label, tubes in per_label.items():
            assert len(tubes) == len(b['gttubes'][video][label])
            for x, y in zip(tubes, b['gttubes'][video][label]):
                assert x.dtype == y.dtype == np.float32 and np.array_equal(x, y)
