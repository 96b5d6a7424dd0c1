"""A synthetic spatio-temporal action detection dataset whose classes are defined by MOTION.

:func:`make_synthetic_dataset` writes real mp4 videos (OpenCV ``VideoWriter``, fourcc ``mp4v``) and one
annotation pickle in the ACT format read by :func:`cfad_mm.datasets.annotation.load_annotations`::

    {out_dir}/annotations.pkl
    {out_dir}/videos/{video}.mp4     video = '{class of the first actor}/v_{index:04d}', e.g. 'circle/v_0007'

What a video shows:

* a static textured background (fixed camera): a muted colour gradient, low-frequency noise and random
  rectangles, circles and lines;
* one to ``max_actors`` actors. Each actor is a textured sprite (a rounded rectangle filled with a random
  pattern of vivid colours: stripes, checker, blocks or spots) that is **not** tied to its class, so the class
  can only be read from the motion. The sprite changes its size smoothly (a slow ramp plus a wobble);
* each actor acts during a random sub-interval of the video (at least ``min_action_len`` frames, at most 85 %
  of the video), so actions start and stop inside the video. **An actor is visible only while it acts**: it
  appears on the first frame of its tube and disappears after the last one, so every visible actor is
  annotated and every annotated box shows its actor;
* with probability ``occluder_prob`` an occluder (a narrow pole or a low wall, static or sliding sideways)
  drawn in front of the actors. The GT box stays the full actor box under occlusion, as in real annotations.
  Occluders are sized so they never hide more than about half of an actor; a later actor may pass in front of
  an earlier one (their boxes overlap by at most ~30 % IoU when a non-overlapping placement exists).

Motion classes (``MOTION_CLASSES``; ``num_classes`` takes the first ones, 5 by default). Speeds and sizes are
given for 96-pixel-high frames and scale with ``min(W, H) / 96``:

===============  ======================================================================================
``walk_line``    constant velocity (0.8-1.8 px/frame) along a mostly horizontal straight line
``circle``       circular / elliptic path, radius 10-20 px, one turn every 14-24 frames
``zigzag``       forward motion plus a triangle-wave sideways swing (sharp turns every 4-7 frames)
``jump``         parabolic vertical hops (12-22 px high, one every 8-13 frames) with a slow drift
``stop_and_go``  fast straight moves (1.4-2.4 px/frame) alternating with pauses: move / pause / move ...
``sway``         stays in place, swinging sideways (5-9 px amplitude, period 6-10 frames)
``approach``     comes towards the camera: grows 1.6-2.0 x over the action with a slight drift
===============  ======================================================================================

Geometry: boxes are the sprite's exact drawn extent in continuous pixel coordinates, i.e. the sprite covers
pixel columns ``x1 .. x2 - 1`` and rows ``y1 .. y2 - 1`` (integer values, stored as float32), so
``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``. The sprite (a rounded rectangle) touches all four sides of
its box and covers more than 90 % of it. Trajectories are never clipped (clipping would turn a walk into a
stop); instead the whole path is shrunk uniformly around its centre when it would not fit, and placed at a
random position where the sprite stays inside the frame on every frame.

Determinism: the dataset-level choices (class of each video's first actor, video lengths, split) come from
``np.random.default_rng(seed)``; video ``i`` is drawn from :func:`video_rng` ``(seed, i)`` alone. The same
arguments give an identical annotation dict and identical frames (and, with the same OpenCV/FFmpeg build,
identical mp4 bytes).
"""
import os
import os.path as osp
import pickle
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

MOTION_CLASSES = ('walk_line', 'circle', 'zigzag', 'jump', 'stop_and_go', 'sway', 'approach')

BASE_SIDE = 96.0  # motion parameters are given for frames whose shorter side is 96 px
MAX_ACTION_FRACTION = 0.85  # longest action, as a fraction of the video length
MAX_ACTOR_IOU = 0.3  # placement of a further actor is retried while it overlaps an earlier one more than this
PLACEMENT_TRIES = 10


@dataclass
class SyntheticVideo:
    """One rendered synthetic video and everything needed to check it.

    Attributes:
        frames (np.ndarray): RGB frames, uint8 (T, H, W, 3).
        background (np.ndarray): The static background, uint8 (H, W, 3) RGB.
        labels (list[int]): Class index of each actor (0-based), in drawing order.
        tubes (list[np.ndarray]): Per actor, float32 (n, 5) rows (frame 1-based, x1, y1, x2, y2), consecutive
            frames.
        sprite_masks (np.ndarray): bool (num_actors, T, H, W), the pixels each actor drew (before later actors
            and the occluder were drawn over it).
        occluder_masks (np.ndarray): bool (T, H, W), the pixels covered by the occluder (all False without
            one).
        occluder (str): ``'none'``, or ``'{static|moving} {pole|wall}'``.
    """
    frames: np.ndarray
    background: np.ndarray
    labels: List[int]
    tubes: List[np.ndarray]
    sprite_masks: np.ndarray
    occluder_masks: np.ndarray
    occluder: str


def video_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of video ``index`` of the dataset made with ``seed``.

    Args:
        seed (int): Dataset seed (>= 0).
        index (int): Video index (>= 0), the number in its name ``v_{index:04d}``.

    Returns:
        np.random.Generator: ``np.random.default_rng([seed, index])``.
    """
    return np.random.default_rng([int(seed), int(index)])


# ----------------------------------------------------------------------------------------------------------
# Appearance
# ----------------------------------------------------------------------------------------------------------
def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """OpenCV HSV (h in [0, 180), s, v in [0, 255]) -> RGB uint8 (3,)."""
    hsv = np.array([[[h, s, v]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]


def _vivid_colours(rng: np.random.Generator, n: int) -> List[np.ndarray]:
    """``n`` saturated, bright colours whose hues differ by 25-100 degrees from one to the next."""
    hue = rng.uniform(0, 180)
    colours = []
    for _ in range(n):
        colours.append(_hsv_to_rgb(hue % 180, rng.uniform(170, 255), rng.uniform(185, 255)))
        hue += rng.uniform(12, 50) * rng.choice([-1, 1])
    return colours


def _muted_colour(rng: np.random.Generator, low: float = 55, high: float = 165,
                  tint: float = 18) -> np.ndarray:
    """A greyish colour (float (3,)): a grey level plus a small per-channel tint."""
    return rng.uniform(low, high) + rng.uniform(-tint, tint, 3)


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static textured background of muted colours: gradient + low-frequency noise + random shapes.

    Args:
        rng (np.random.Generator): Random source.
        width (int): Frame width W.
        height (int): Frame height H.

    Returns:
        np.ndarray: uint8 (H, W, 3) RGB, values in [25, 200].
    """
    c1, c2 = _muted_colour(rng), _muted_colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    proj = (xx - width / 2) * np.cos(angle) + (yy - height / 2) * np.sin(angle)
    ramp = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    img = c1 * (1 - ramp[..., None]) + c2 * ramp[..., None]
    grid = rng.normal(0, 14, (max(2, height // 16), max(2, width // 16), 3))
    img += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    unit = min(width, height) / BASE_SIDE
    for _ in range(int(rng.integers(6, 13))):
        colour = tuple(float(c) for c in np.clip(_muted_colour(rng, 40, 190), 25, 200))
        kind = rng.integers(3)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if kind == 0:
            w, h = int(rng.integers(6, 30) * unit), int(rng.integers(6, 30) * unit)
            thickness = -1 if rng.random() < 0.7 else max(1, int(unit))
            cv2.rectangle(img, (x, y), (x + w, y + h), colour, thickness)
        elif kind == 1:
            radius = int(rng.integers(3, 16) * unit)
            cv2.circle(img, (x, y), max(radius, 1), colour, -1 if rng.random() < 0.7 else max(1, int(unit)))
        else:
            x2, y2 = int(rng.integers(0, width)), int(rng.integers(0, height))
            cv2.line(img, (x, y), (x2, y2), colour, int(rng.integers(1, 4)))
    img += rng.normal(0, 3, img.shape)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)
    return np.clip(np.round(img), 25, 200).astype(np.uint8)


def make_sprite_texture(rng: np.random.Generator, height: int = 48, width: int = 32) -> np.ndarray:
    """A random vivid texture for an actor, independent of its class.

    Patterns: stripes (horizontal, vertical or diagonal), checker, blocks (a coarse grid of colours) or spots.
    The sprite of each frame is this texture resized (nearest neighbour) to the actor's size.

    Args:
        rng (np.random.Generator): Random source.
        height (int): Texture height. Defaults to 48.
        width (int): Texture width. Defaults to 32.

    Returns:
        np.ndarray: uint8 (height, width, 3) RGB.
    """
    kind = rng.choice(['stripes', 'checker', 'blocks', 'spots'])
    yy, xx = np.mgrid[0:height, 0:width]
    if kind == 'stripes':
        colours = _vivid_colours(rng, int(rng.integers(2, 4)))
        period = int(rng.integers(4, 11))
        direction = rng.choice(['h', 'v', 'd1', 'd2'])
        coord = {'h': yy, 'v': xx, 'd1': xx + yy, 'd2': xx - yy + width}[direction]
        index = (coord // period) % len(colours)
    elif kind == 'checker':
        colours = _vivid_colours(rng, 2)
        cell = int(rng.integers(6, 13))
        index = ((yy // cell) + (xx // cell)) % 2
    elif kind == 'blocks':
        rows, cols = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        colours = _vivid_colours(rng, rows * cols)
        order = rng.permutation(rows * cols).reshape(rows, cols)
        index = order[(yy * rows) // height, (xx * cols) // width]
    else:
        colours = _vivid_colours(rng, 2)
        index = np.zeros((height, width), dtype=np.int64)
        for _ in range(int(rng.integers(4, 10))):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(3, 8)
            index[(yy - cy)**2 + (xx - cx)**2 <= r * r] = 1
    return np.stack(colours)[index].astype(np.uint8)


_MASK_CACHE: Dict[Tuple[int, int], np.ndarray] = {}


def sprite_mask(height: int, width: int) -> np.ndarray:
    """The sprite shape: a rounded rectangle touching all four sides of its ``height x width`` box.

    The corner radius is 30 % of the shorter side, so the mask covers more than 90 % of the box.

    Args:
        height (int): Box height in pixels (>= 1).
        width (int): Box width in pixels (>= 1).

    Returns:
        np.ndarray: bool (height, width).
    """
    key = (int(height), int(width))
    if key not in _MASK_CACHE:
        radius = 0.3 * min(key)
        yy, xx = np.mgrid[0:key[0], 0:key[1]] + 0.5
        if radius >= 2:
            cy = np.clip(yy, radius, key[0] - radius)
            cx = np.clip(xx, radius, key[1] - radius)
            mask = (yy - cy)**2 + (xx - cx)**2 <= radius * radius
        else:
            mask = np.ones(key, dtype=bool)
        _MASK_CACHE[key] = mask
    return _MASK_CACHE[key]


# ----------------------------------------------------------------------------------------------------------
# Motion
# ----------------------------------------------------------------------------------------------------------
def _mostly_horizontal(rng: np.random.Generator, max_deg: float) -> float:
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg))
    return angle + (np.pi if rng.random() < 0.5 else 0.0)


def _smooth_scale(rng: np.random.Generator, length: int) -> np.ndarray:
    """A smooth size factor around 1: an exponential ramp (0.86-1.16 at the ends) plus a slow wobble."""
    u = np.arange(length, dtype=np.float64)
    tau = 2 * u / max(length - 1, 1) - 1
    ramp = np.exp(rng.uniform(-0.15, 0.15) * tau)
    wobble = 1 + rng.uniform(0, 0.08) * np.sin(2 * np.pi * u / rng.uniform(length, 2.5 * length)
                                               + rng.uniform(0, 2 * np.pi))
    return ramp * wobble


def _walk_line(rng, length, unit):
    u = np.arange(length, dtype=np.float64)
    speed, angle = rng.uniform(0.8, 1.8) * unit, _mostly_horizontal(rng, 35)
    return speed * np.cos(angle) * u, speed * np.sin(angle) * u, _smooth_scale(rng, length)


def _circle(rng, length, unit):
    u = np.arange(length, dtype=np.float64)
    radius = rng.uniform(10, 20) * unit
    phase = rng.uniform(0, 2 * np.pi) + rng.choice([-1, 1]) * 2 * np.pi * u / rng.uniform(14, 24)
    dx = radius * rng.uniform(0.8, 1.3) * np.cos(phase)
    return dx, radius * np.sin(phase), _smooth_scale(rng, length)


def _triangle_wave(x: np.ndarray) -> np.ndarray:
    """Period 1, values in [-1, 1], corners at integers and half-integers."""
    return 4 * np.abs(x - np.floor(x + 0.5)) - 1


def _zigzag(rng, length, unit):
    u = np.arange(length, dtype=np.float64)
    speed, angle = rng.uniform(0.7, 1.4) * unit, _mostly_horizontal(rng, 20)
    lateral = rng.uniform(7, 13) * unit * _triangle_wave(u / rng.uniform(8, 14) + rng.uniform(0, 1))
    forward = speed * u
    dx = forward * np.cos(angle) - lateral * np.sin(angle)
    dy = forward * np.sin(angle) + lateral * np.cos(angle)
    return dx, dy, _smooth_scale(rng, length)


def _jump(rng, length, unit):
    u = np.arange(length, dtype=np.float64)
    phase = (u / rng.uniform(8, 13) + rng.uniform(0, 0.5)) % 1.0
    dy = -4 * rng.uniform(12, 22) * unit * phase * (1 - phase)
    return rng.uniform(-0.7, 0.7) * unit * u, dy, _smooth_scale(rng, length)


def _stop_and_go(rng, length, unit):
    low, high = max(3, min(4, length // 3)), max(3, min(9, length // 3))
    moving, phases = True, []
    while len(phases) < length:
        phases.extend([moving] * int(rng.integers(low, high + 1)))
        moving = not moving
    velocity = np.array(phases[:length], dtype=np.float64)
    # a brief ease in / out
    velocity = np.convolve(np.pad(velocity, 1, mode='edge'), np.ones(3) / 3, mode='valid')
    distance = np.cumsum(velocity) - velocity[0]
    distance *= rng.uniform(1.4, 2.4) * unit
    angle = _mostly_horizontal(rng, 25)
    return distance * np.cos(angle), distance * np.sin(angle), _smooth_scale(rng, length)


def _sway(rng, length, unit):
    u = np.arange(length, dtype=np.float64)
    dx = rng.uniform(5, 9) * unit * np.sin(2 * np.pi * u / rng.uniform(6, 10) + rng.uniform(0, 2 * np.pi))
    return dx, np.zeros(length), _smooth_scale(rng, length)


def _approach(rng, length, unit):
    u = np.arange(length, dtype=np.float64)
    scale = rng.uniform(1.6, 2.0)**(u / max(length - 1, 1))
    return rng.uniform(-0.3, 0.3) * unit * u, np.zeros(length), scale


MOTIONS: Dict[str, Callable] = dict(
    walk_line=_walk_line, circle=_circle, zigzag=_zigzag, jump=_jump, stop_and_go=_stop_and_go, sway=_sway,
    approach=_approach)
# sprite height as a fraction of H; motions not listed use DEFAULT_BASE_HEIGHT
BASE_HEIGHT = dict(approach=(0.16, 0.22))
DEFAULT_BASE_HEIGHT = (0.22, 0.32)


def motion_trajectory(motion: str, rng: np.random.Generator, length: int, width: int,
                      height: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre displacement and sprite size of one actor over its ``length`` frames.

    Args:
        motion (str): One of :data:`MOTION_CLASSES`.
        rng (np.random.Generator): Random source.
        length (int): Number of frames of the action.
        width (int): Frame width W.
        height (int): Frame height H.

    Returns:
        tuple: ``dx``, ``dy`` float (length,) centre displacement in pixels (arbitrary origin),
        ``w``, ``h`` int (length,) sprite size in pixels (at most 60 % of the frame side).
    """
    if motion not in MOTIONS:
        raise ValueError(f'Unknown motion {motion!r}; expected one of {MOTION_CLASSES}')
    unit = min(width, height) / BASE_SIDE
    dx, dy, scale = MOTIONS[motion](rng, length, unit)
    base_h = rng.uniform(*BASE_HEIGHT.get(motion, DEFAULT_BASE_HEIGHT)) * height
    aspect = rng.uniform(0.5, 0.8)
    h = np.clip(np.round(base_h * scale), 4, int(0.6 * height)).astype(np.int64)
    w = np.clip(np.round(base_h * aspect * scale), 3, int(0.6 * width)).astype(np.int64)
    return dx, dy, w, h


def _fit_boxes(rng: np.random.Generator, dx: np.ndarray, dy: np.ndarray, w: np.ndarray, h: np.ndarray,
               width: int, height: int) -> np.ndarray:
    """Place a path in the frame: shrink it uniformly if needed, pick a random valid offset.

    Returns:
        np.ndarray: int64 (length, 4) boxes x1, y1, x2, y2 with 0 <= x1 < x2 <= W, 0 <= y1 < y2 <= H.
    """
    room_x, room_y = width - w.max(), height - h.max()
    span_x, span_y = float(np.ptp(dx)), float(np.ptp(dy))
    shrink = min(1.0, room_x / span_x if span_x > 0 else 1.0, room_y / span_y if span_y > 0 else 1.0)
    dx, dy = dx * shrink, dy * shrink
    off_x = rng.uniform(w.max() / 2 - dx.min(), width - w.max() / 2 - dx.max())
    off_y = rng.uniform(h.max() / 2 - dy.min(), height - h.max() / 2 - dy.max())
    x1 = np.clip(np.round(off_x + dx - w / 2), 0, width - w).astype(np.int64)
    y1 = np.clip(np.round(off_y + dy - h / 2), 0, height - h).astype(np.int64)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of (n, 4) boxes (continuous convention)."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


# ----------------------------------------------------------------------------------------------------------
# One video
# ----------------------------------------------------------------------------------------------------------
def _sample_actors(rng: np.random.Generator, primary_label: int, num_frames: int, width: int, height: int,
                   num_classes: int, max_actors: int, min_action_len: int):
    """Labels, first frames (0-based) and int boxes (length, 4) of the actors of one video."""
    num_actors = 1 + int(rng.choice(max_actors, p=_actor_count_probs(max_actors)))
    max_len = max(min_action_len, int(round(MAX_ACTION_FRACTION * num_frames)))
    actors = []
    for k in range(num_actors):
        label = primary_label if k == 0 else int(rng.integers(num_classes))
        length = int(rng.integers(min_action_len, max_len + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        dx, dy, w, h = motion_trajectory(MOTION_CLASSES[label], rng, length, width, height)
        best, best_overlap = None, np.inf
        for _ in range(PLACEMENT_TRIES):
            boxes = _fit_boxes(rng, dx, dy, w, h, width, height)
            overlap = 0.0
            for _label, other_start, other_boxes in actors:
                lo, hi = max(start, other_start), min(start + length, other_start + len(other_boxes))
                if lo < hi:
                    ious = _box_iou(boxes[lo - start:hi - start].astype(np.float64),
                                    other_boxes[lo - other_start:hi - other_start].astype(np.float64))
                    overlap = max(overlap, float(ious.max()))
            if overlap < best_overlap:
                best, best_overlap = boxes, overlap
            if overlap <= MAX_ACTOR_IOU:
                break
        actors.append((label, start, best))
    return actors


def _actor_count_probs(max_actors: int) -> np.ndarray:
    """Probabilities of 1 .. max_actors actors, proportional to 1, 1/2, 1/4, ... (3 actors: 4/7, 2/7, 1/7)."""
    probs = 0.5**np.arange(max_actors)
    return probs / probs.sum()


def _sample_occluder(rng: np.random.Generator, actors, num_frames: int, width: int, height: int):
    """Occluder kind and per-frame (x1, y1, x2, y2) int boxes, sized to hide at most ~half an actor."""
    min_w = min(int((boxes[:, 2] - boxes[:, 0]).min()) for _, _, boxes in actors)
    min_h = min(int((boxes[:, 3] - boxes[:, 1]).min()) for _, _, boxes in actors)
    if rng.random() < 0.5:
        kind = 'pole'
        occ_w = max(1, min(int(round(rng.uniform(0.04, 0.08) * width)), min_w // 2))
        occ_h = int(round(rng.uniform(0.5, 1.0) * height))
    else:
        kind = 'wall'
        occ_w = int(round(rng.uniform(0.2, 0.4) * width))
        occ_h = max(1, min(int(round(rng.uniform(0.1, 0.2) * height)), min_h // 2))
    _, start, boxes = actors[0]  # put it where the first actor goes, so it does occlude sometimes
    centre = float((boxes[:, 0] + boxes[:, 2]).mean() / 2) + rng.uniform(-0.15, 0.15) * width
    x_first = int(np.clip(round(centre - occ_w / 2), 0, width - occ_w))
    moving = rng.random() < 0.5
    x_last = int(rng.integers(0, width - occ_w + 1)) if moving else x_first
    xs = np.round(np.linspace(x_first, x_last, num_frames)).astype(np.int64)
    occ_boxes = np.stack([xs, np.full_like(xs, height - occ_h), xs + occ_w, np.full_like(xs, height)], axis=1)
    return f'{"moving" if moving else "static"} {kind}', occ_boxes


def synthesize_video(rng: np.random.Generator, primary_label: int, num_frames: int, size: Tuple[int, int],
                     num_classes: int = 5, max_actors: int = 3, min_action_len: int = 12,
                     occluder_prob: float = 0.5) -> SyntheticVideo:
    """Render one synthetic video in memory.

    Args:
        rng (np.random.Generator): Random source (e.g. :func:`video_rng`); everything is drawn from it.
        primary_label (int): Class index of the first actor.
        num_frames (int): Number of frames T (>= ``min_action_len``).
        size (tuple[int, int]): Frame size (W, H).
        num_classes (int): Further actors get a class in ``range(num_classes)``. Defaults to 5.
        max_actors (int): At most this many actors; each further actor is half as likely as one fewer
            (1-3 actors: probabilities 4/7, 2/7, 1/7). Defaults to 3.
        min_action_len (int): Shortest action in frames. Defaults to 12.
        occluder_prob (float): Probability of an occluder. Defaults to 0.5.

    Returns:
        SyntheticVideo: Frames, background, per-actor labels/tubes/masks and the occluder masks.
    """
    width, height = size
    background = make_background(rng, width, height)
    actors = _sample_actors(rng, primary_label, num_frames, width, height, num_classes, max_actors,
                            min_action_len)
    textures = [make_sprite_texture(rng) for _ in actors]
    occluder_kind, occ_boxes = 'none', None
    if rng.random() < occluder_prob:
        occluder_kind, occ_boxes = _sample_occluder(rng, actors, num_frames, width, height)
    occ_texture = np.clip(_muted_colour(rng, 35, 110, 12) + rng.normal(0, 6, (1, width, 3)), 25, 200)
    occ_texture = np.repeat(occ_texture, height, axis=0).astype(np.uint8)  # vertical streaks

    frames = np.repeat(background[None], num_frames, axis=0)
    sprite_masks = np.zeros((len(actors), num_frames, height, width), dtype=bool)
    occluder_masks = np.zeros((num_frames, height, width), dtype=bool)
    tubes = []
    for k, ((label, start, boxes), texture) in enumerate(zip(actors, textures)):
        for t, (x1, y1, x2, y2) in enumerate(boxes, start=start):
            mask = sprite_mask(y2 - y1, x2 - x1)
            patch = cv2.resize(texture, (int(x2 - x1), int(y2 - y1)), interpolation=cv2.INTER_NEAREST)
            frames[t, y1:y2, x1:x2][mask] = patch[mask]
            sprite_masks[k, t, y1:y2, x1:x2] = mask
        frame_ids = np.arange(start + 1, start + len(boxes) + 1, dtype=np.float32)
        tubes.append(np.concatenate([frame_ids[:, None], boxes.astype(np.float32)], axis=1))
    if occ_boxes is not None:
        for t, (x1, y1, x2, y2) in enumerate(occ_boxes):
            occluder_masks[t, y1:y2, x1:x2] = True
            frames[t, y1:y2, x1:x2] = occ_texture[y1:y2, x1:x2]
    return SyntheticVideo(frames=frames, background=background, labels=[a[0] for a in actors], tubes=tubes,
                          sprite_masks=sprite_masks, occluder_masks=occluder_masks, occluder=occluder_kind)


def write_video(path: str, frames: np.ndarray, fps: float) -> None:
    """Write RGB frames (T, H, W, 3) uint8 to an mp4 file with OpenCV's ``mp4v`` encoder.

    Raises:
        RuntimeError: If OpenCV cannot open a writer for ``path``.
    """
    height, width = frames.shape[1:3]
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), float(fps), (int(width), int(height)))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write the mp4v video {path!r} ({width}x{height} at {fps} fps)')
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


# ----------------------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------------------
def _check_args(num_videos, frames, size, seed, num_classes, test_ratio, fps, max_actors, min_action_len,
                occluder_prob) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if len(size) != 2 or any(int(s) != s or s < 16 for s in size):
        raise ValueError(f'size must be (W, H) with integers >= 16 (or one int for a square), got {size!r}')
    if isinstance(frames, (int, np.integer)):
        frames = (int(frames), int(frames))
    if len(frames) != 2 or frames[0] > frames[1] or any(int(f) != f for f in frames):
        raise ValueError(f'frames must be an int or a (min, max) pair of ints with min <= max, '
                         f'got {frames!r}')
    if not 1 <= min_action_len:
        raise ValueError(f'min_action_len must be >= 1, got {min_action_len}')
    if frames[0] < min_action_len:
        raise ValueError(f'frames must be >= min_action_len ({min_action_len}), got {frames!r}')
    if not 1 <= num_classes <= len(MOTION_CLASSES):
        raise ValueError(f'num_classes must be in 1..{len(MOTION_CLASSES)} (the motions {MOTION_CLASSES}), '
                         f'got {num_classes}')
    if num_videos < num_classes:
        raise ValueError(f'num_videos ({num_videos}) must be >= num_classes ({num_classes}) so that every '
                         'class has a training video')
    if not 0 <= test_ratio < 1:
        raise ValueError(f'test_ratio must be in [0, 1), got {test_ratio}')
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f'seed must be an int >= 0, got {seed!r}')
    if not fps > 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    if not 1 <= max_actors:
        raise ValueError(f'max_actors must be >= 1, got {max_actors}')
    if not 0 <= occluder_prob <= 1:
        raise ValueError(f'occluder_prob must be in [0, 1], got {occluder_prob}')
    return (int(size[0]), int(size[1])), (int(frames[0]), int(frames[1]))


def _split(rng: np.random.Generator, primary: np.ndarray, names: List[str], num_classes: int,
           test_ratio: float) -> Tuple[List[str], List[str]]:
    """Split stratified by the first actor's class; every class keeps at least one training video."""
    train, test = [], []
    for label in range(num_classes):
        idx = rng.permutation(np.flatnonzero(primary == label))
        n_test = min(len(idx) - 1, int(np.floor(len(idx) * test_ratio + 0.5)))
        test += [names[i] for i in idx[:n_test]]
        train += [names[i] for i in idx[n_test:]]
    if test_ratio > 0 and not test:
        raise ValueError(f'test_ratio={test_ratio} with {len(names)} videos of {num_classes} classes leaves '
                         'no test video: use more videos or a larger test_ratio')
    return sorted(train), sorted(test)


def make_synthetic_dataset(out_dir: str,
                           num_videos: int = 240,
                           frames: Union[int, Sequence[int]] = (40, 64),
                           size: Union[int, Sequence[int]] = (128, 96),
                           seed: int = 0,
                           num_classes: int = 5,
                           test_ratio: float = 0.25,
                           fps: float = 10.0,
                           max_actors: int = 3,
                           min_action_len: int = 12,
                           occluder_prob: float = 0.5,
                           log_interval: int = 20,
                           logger: Optional[Callable[[str], None]] = print,
                           progress: bool = False) -> str:
    """Write the synthetic dataset: ``{out_dir}/videos/{video}.mp4`` and ``{out_dir}/annotations.pkl``.

    Video ``i`` is named ``'{class of its first actor}/v_{i:04d}'``; the first actors' classes are balanced
    (``i % num_classes``, shuffled). The split (one split, ``train_videos=[[...]]``,
    ``test_videos=[[...]]``) is stratified by that class: ``floor(n_c * test_ratio + 0.5)`` test videos per
    class, keeping at least one training video per class. Existing files of the same names are overwritten;
    other files in ``out_dir`` are left alone.

    Args:
        out_dir (str): Output folder (created).
        num_videos (int): Number of videos (>= num_classes). Defaults to 240 (180 train / 60 test: with 60
            training videos the tiny config overfits the motion classes, and 20 test videos give noisy metrics).
        frames (int | tuple[int, int]): Frames per video, fixed or drawn uniformly from ``(min, max)``.
            Defaults to ``(40, 64)``.
        size (int | tuple[int, int]): Frame size ``(W, H)``, or one int for a square.
            Defaults to ``(128, 96)``.
        seed (int): Seed (>= 0); the same arguments give the same dataset. Defaults to 0.
        num_classes (int): The first ``num_classes`` of :data:`MOTION_CLASSES` (1..7). Defaults to 5.
        test_ratio (float): Fraction of test videos, in [0, 1). Defaults to 0.25.
        fps (float): Frame rate written into the videos. Defaults to 10.
        max_actors (int): At most this many actors per video. Defaults to 3.
        min_action_len (int): Shortest action in frames. Defaults to 12.
        occluder_prob (float): Probability that a video has an occluder. Defaults to 0.5.
        log_interval (int): Report progress every this many videos (0: never). Defaults to 20.
        logger (callable, optional): Receives the progress lines. Defaults to ``print``; None is silent.
        progress (bool): A progress bar over the videos (tqdm, on stderr; ``tools/data/make_synthetic.py``
            turns it on). Defaults to False.

    Returns:
        str: Path of the annotation pickle.
    """
    size, frame_range = _check_args(num_videos, frames, size, seed, num_classes, test_ratio, fps, max_actors,
                                    min_action_len, occluder_prob)
    width, height = size
    labels = list(MOTION_CLASSES[:num_classes])
    rng = np.random.default_rng(seed)
    primary = rng.permutation(np.arange(num_videos) % num_classes)
    nframes = rng.integers(frame_range[0], frame_range[1] + 1, num_videos)
    names = [f'{labels[c]}/v_{i:04d}' for i, c in enumerate(primary)]
    train, test = _split(rng, primary, names, num_classes, test_ratio)

    gttubes: Dict[str, Dict[int, List[np.ndarray]]] = {}
    tic = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=num_videos, desc='synthetic videos', unit='video')
        if logger is print:
            logger = tqdm.write  # the lines above the bar, not through it
    for i, name in enumerate(names):
        video = synthesize_video(video_rng(seed, i), int(primary[i]), int(nframes[i]), size, num_classes,
                                 max_actors, min_action_len, occluder_prob)
        write_video(osp.join(out_dir, 'videos', name + '.mp4'), video.frames, fps)
        per_label: Dict[int, List[np.ndarray]] = {}
        for label, tube in zip(video.labels, video.tubes):
            per_label.setdefault(int(label), []).append(tube)
        gttubes[name] = dict(sorted(per_label.items()))
        if logger is not None and log_interval > 0 and ((i + 1) % log_interval == 0 or i + 1 == num_videos):
            logger(f'synthetic dataset: {i + 1}/{num_videos} videos written to {out_dir} '
                   f'({time.perf_counter() - tic:.1f} s)')
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()

    ann = dict(labels=labels, gttubes=gttubes, nframes={n: int(f) for n, f in zip(names, nframes)},
               resolution={n: (height, width) for n in names}, train_videos=[train], test_videos=[test])
    ann_file = osp.join(out_dir, 'annotations.pkl')
    with open(ann_file, 'wb') as f:
        pickle.dump(ann, f, protocol=2)
    return ann_file
