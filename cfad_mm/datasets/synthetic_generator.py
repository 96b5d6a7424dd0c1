"""A synthetic spatio-temporal action detection dataset whose classes are defined by MOTION.

:func:`make_synthetic_dataset` writes real mp4 videos (OpenCV ``VideoWriter``, fourcc ``mp4v``) and one
annotation pickle in the ACT format read by :func:`cfad_mm.datasets.annotation.load_annotations`::

    {out_dir}/annotations.pkl
    {out_dir}/videos/{video}.mp4     video = '{class of the first actor}/v_{index:04d}', e.g. 'circle/v_0007'

What a video of the default preset shows:

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

Presets (:data:`PRESETS`, ``make_synthetic_dataset(..., preset=...)``): ``'default'`` is all of the above.
``'long'`` renders :func:`synthesize_long_video`, what breaks tube linking on surveillance footage: 120
videos of 150-300 frames at 160x120; 2-8 actors of one sprite pattern and colour set per video (appearance
cannot tell them apart); tubes of 40-250 frames, each a chain of motion segments of its class
(:func:`segmented_trajectory`: direction and speed change between segments); most further actors are placed
so that their path crosses an earlier actor's mid-tube; in 80 % of the videos 1-2 full-height occluders pass
in front, each hiding (>= 75 % of the box) the actor it is aimed at for 10-30 frames while the GT tube goes on
(other actors they pass are hidden for shorter runs; no actor is hidden for more than 30 frames in a row);
30 % of the videos have a slow camera pan (background and actors shift together, boxes follow the actors and
stay inside the frame); low contrast (gain 0.4-0.6), washed-out sprites, a light blur and Gaussian sensor
noise (3-7 grey levels).

Determinism: the dataset-level choices (class of each video's first actor, video lengths, split) come from
``np.random.default_rng(seed)``; video ``i`` is drawn from :func:`video_rng` ``(seed, i)`` alone. The same
arguments give an identical annotation dict and identical frames (and, with the same OpenCV/FFmpeg build,
identical mp4 bytes).
"""
import functools
import inspect
import os
import os.path as osp
import pickle
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from cfad_mm.structures.tube_ops import box_iou_aligned

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
        background (np.ndarray): The static background, uint8 (H, W, 3) RGB (long preset: the canvas
            (H + pan_y, W + pan_x, 3) the camera looks at, before the sensor model).
        labels (list[int]): Class index of each actor (0-based), in drawing order.
        tubes (list[np.ndarray]): Per actor, float32 (n, 5) rows (frame 1-based, x1, y1, x2, y2), consecutive
            frames.
        sprite_masks (np.ndarray): bool (num_actors, T, H, W), the pixels each actor drew (before later actors
            and the occluder were drawn over it).
        occluder_masks (np.ndarray): bool (T, H, W), the pixels covered by the occluder (all False without
            one).
        occluder (str): ``'none'``, or ``'{static|moving} {pole|wall}'`` (long preset: ``'{n} passing'``,
            n occluders).
        camera (np.ndarray, optional): Long preset: int64 (T, 2), the (x, y) offset of each frame in
            ``background`` (all zero without a pan); an actor's image position is its world position minus
            this offset. None for the default preset (fixed camera).
        crossings (list[tuple[int, int, int]]): Long preset: ``(earlier actor, later actor, frame)`` (0-based)
            of each pair placed so that their centres meet at that frame while their paths cross.
        hidden (list[np.ndarray], optional): Long preset: per actor, bool (n,) over its tube, True where the
            occluders cover at least :data:`OCCLUDED_FRACTION` of its box. None for the default preset.
    """
    frames: np.ndarray
    background: np.ndarray
    labels: List[int]
    tubes: List[np.ndarray]
    sprite_masks: np.ndarray
    occluder_masks: np.ndarray
    occluder: str
    camera: Optional[np.ndarray] = None
    crossings: List[Tuple[int, int, int]] = field(default_factory=list)
    hidden: Optional[List[np.ndarray]] = None


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
    # After a shrink the path spans exactly the room, so the offset range has zero width, and rounding can
    # make it (by ~1e-14 px) negative: Generator.uniform then fails with 'high - low < 0' (long paths, i.e.
    # long videos, need the shrink most often). An empty range is one point; valid ranges draw as before.
    low_x, low_y = w.max() / 2 - dx.min(), h.max() / 2 - dy.min()
    off_x = rng.uniform(low_x, max(low_x, width - w.max() / 2 - dx.max()))
    off_y = rng.uniform(low_y, max(low_y, height - h.max() / 2 - dy.max()))
    x1 = np.clip(np.round(off_x + dx - w / 2), 0, width - w).astype(np.int64)
    y1 = np.clip(np.round(off_y + dy - h / 2), 0, height - h).astype(np.int64)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


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
                    ious = box_iou_aligned(boxes[lo - start:hi - start].astype(np.float64),
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


def _draw_actors(frames: np.ndarray, actors: list, textures: list) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Paint the sprite of each ``(label, start, boxes)`` actor into ``frames`` (T, H, W, 3) in place.

    Returns:
        tuple: The sprite masks (n, T, H, W) bool and the GT tubes (one ``(len(boxes), 5)`` float32 array
        ``[frame (1-based), x1, y1, x2, y2]`` per actor).
    """
    num_frames, height, width = frames.shape[:3]
    sprite_masks = np.zeros((len(actors), num_frames, height, width), dtype=bool)
    tubes = []
    for k, ((label, start, boxes), texture) in enumerate(zip(actors, textures)):
        for t, (x1, y1, x2, y2) in enumerate(boxes, start=start):
            mask = sprite_mask(y2 - y1, x2 - x1)
            patch = cv2.resize(texture, (int(x2 - x1), int(y2 - y1)), interpolation=cv2.INTER_NEAREST)
            frames[t, y1:y2, x1:x2][mask] = patch[mask]
            sprite_masks[k, t, y1:y2, x1:x2] = mask
        frame_ids = np.arange(start + 1, start + len(boxes) + 1, dtype=np.float32)
        tubes.append(np.concatenate([frame_ids[:, None], boxes.astype(np.float32)], axis=1))
    return sprite_masks, tubes


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
    sprite_masks, tubes = _draw_actors(frames, actors, textures)
    occluder_masks = np.zeros((num_frames, height, width), dtype=bool)
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
# The long preset: what breaks tube linking on surveillance footage
# ----------------------------------------------------------------------------------------------------------
LONG_SCENE = dict(
    max_action_len=250,  # longest tube in frames (and at most MAX_ACTION_FRACTION of the video)
    segment_len=(20, 45),  # frames per motion segment (a shorter remainder joins the previous segment)
    crossing_prob=0.8,  # a further actor is placed to cross the path of an earlier one
    crossing_window=12,  # frames before / after the meeting at which the two are on opposite sides
    occluders=(1, 2),  # occluders per video that has occluders
    occluder_width=(1.1, 1.5),  # times the width of the actor it is aimed at
    occlusion_len=(10, 30),  # frames an occluder hides (>= OCCLUDED_FRACTION of) the actor it is aimed at
    pan_prob=0.3,  # probability of a slow camera pan
    pan_distance=(0.1, 0.25),  # pan length as a fraction of W
    contrast=(0.4, 0.6),  # grey-level gain of the sensor model
    noise_std=(3.0, 7.0),  # Gaussian sensor noise, grey levels
    base_height=(0.2, 0.27),  # actor height as a fraction of H, one value per video (+-10 % per actor)
)
OCCLUDED_FRACTION = 0.75  # an actor counts as hidden when occluders cover this much of its box
IN_PLACE_MOTIONS = ('circle', 'sway')  # their segments keep to where the action started
CROSSING_PARTNERS = 3  # earlier actors tried as the partner of a crossing
CROSSING_TRIES = 40  # meeting frames tried per partner and orientation
OCCLUDER_TRIES = 12  # (actor, interval) draws tried per occluder
NOISE_BANK = 8  # noise frames drawn per video; each frame adds one of them at a random shift
NOISE_OFFSET = 24  # the bank stores noise + NOISE_OFFSET as uint8 (saturating cv2.add / cv2.subtract)


def _segment_lengths(rng: np.random.Generator, length: int, segment_len: Tuple[int, int]) -> List[int]:
    """Split ``length`` frames into segments of ``segment_len`` frames (at most half the action, so an action
    of at least two minimal segments has several); a remainder shorter than the minimum joins the last."""
    lo, hi = segment_len
    hi = max(lo, min(hi, length // 2))
    lengths: List[int] = []
    while sum(lengths) < length:
        lengths.append(int(rng.integers(lo, hi + 1)))
    lengths[-1] -= sum(lengths) - length
    if len(lengths) > 1 and lengths[-1] < lo:
        tail = lengths.pop()
        lengths[-1] += tail
    return lengths


def _hops(rng: np.random.Generator, length: int, unit: float) -> np.ndarray:
    """Vertical offset (<= 0, 0 = ground) of back-to-back parabolic hops, each with its own period (8-13
    frames) and height (12-22 px); the first starts mid-hop. float (length,)."""
    u = np.arange(length, dtype=np.float64)
    dy = np.zeros(length)
    period = rng.uniform(8, 13)
    begin = -rng.uniform(0, 0.5) * period
    while begin < length:
        height = rng.uniform(12, 22) * unit
        inside = (u >= begin) & (u < begin + period)
        phase = (u[inside] - begin) / period
        dy[inside] = -4 * height * phase * (1 - phase)
        begin += period
        period = rng.uniform(8, 13)
    return dy


def segmented_trajectory(motion: str, rng: np.random.Generator, length: int, width: int, height: int,
                         room: Tuple[float, float],
                         segment_len: Tuple[int, int] = LONG_SCENE['segment_len']
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Centre displacement of one actor whose action is a chain of motion segments (long preset).

    Each segment (``segment_len`` frames) is the class's own motion (its :data:`MOTIONS` function) with
    freshly drawn parameters (speed, heading, radius, period ...), so the direction and the speed change from
    segment to segment while the class stays defined by the motion; segments join without a jump in position.
    A segment is mirrored (horizontally and / or vertically, which keeps every class; ``jump`` only
    horizontally) when that keeps the path within ``room``; among the orientations that do, a moving class
    takes a random one, an in-place class (:data:`IN_PLACE_MOTIONS`) the one nearest to its starting point.
    ``jump`` hops continuously over the whole action (each hop with its own height and period); only its
    sideways drift is segmented.

    Args:
        motion (str): One of :data:`MOTION_CLASSES`.
        rng (np.random.Generator): Random source.
        length (int): Number of frames of the action.
        width (int): Frame width W (speeds scale with ``min(W, H) / 96``).
        height (int): Frame height H.
        room (tuple[float, float]): The wanted largest extent (x, y) of the path in pixels; a single segment
            longer than that is kept (the placement shrinks the path then).
        segment_len (tuple[int, int]): Frames per segment (min, max). Defaults to ``(20, 45)``.

    Returns:
        tuple: ``dx``, ``dy`` float (length,), the centre displacement in pixels (first frame near 0).
    """
    if motion not in MOTIONS:
        raise ValueError(f'Unknown motion {motion!r}; expected one of {MOTION_CLASSES}')
    unit = min(width, height) / BASE_SIDE
    xs, ys = [np.zeros(0)], [np.zeros(0)]
    x = y = 0.0
    box = [0.0, 0.0, 0.0, 0.0]  # x min, x max, y min, y max of the path so far
    flips_y = (1, ) if motion == 'jump' else (1, -1)
    for n in _segment_lengths(rng, length, segment_len):
        sdx, sdy, _ = MOTIONS[motion](rng, n + 1, unit)
        sdx, sdy = sdx[1:] - sdx[0], sdy[1:] - sdy[0]
        if motion == 'jump':
            sdy = np.zeros(n)
        options = []
        for fx in (1, -1):
            for fy in flips_y:
                px, py = x + fx * sdx, y + fy * sdy
                over = (max(0.0, max(box[1], px.max()) - min(box[0], px.min()) - room[0])
                        + max(0.0, max(box[3], py.max()) - min(box[2], py.min()) - room[1]))
                options.append((over, abs(px.mean()) + abs(py.mean()), px, py))
        least = min(o[0] for o in options)
        fitting = [o for o in options if o[0] <= least + 1e-9]
        if motion in IN_PLACE_MOTIONS:
            _, _, px, py = min(fitting, key=lambda o: o[1])
        else:
            _, _, px, py = fitting[int(rng.integers(len(fitting)))]
        xs.append(px)
        ys.append(py)
        x, y = float(px[-1]), float(py[-1])
        box = [min(box[0], px.min()), max(box[1], px.max()), min(box[2], py.min()), max(box[3], py.max())]
    dx, dy = np.concatenate(xs), np.concatenate(ys)
    if motion == 'jump':
        dy = _hops(rng, length, unit)
    return dx, dy


def _long_sizes(rng: np.random.Generator, motion: str, length: int, base_h: float, aspect: float,
                width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """Sprite width and height, int (length,): ``approach`` starts at 75 % of ``base_h`` and grows 1.6-2.0x,
    the others follow :func:`_smooth_scale`."""
    if motion == 'approach':
        u = np.arange(length, dtype=np.float64)
        scale = 0.75 * rng.uniform(1.6, 2.0)**(u / max(length - 1, 1))
    else:
        scale = _smooth_scale(rng, length)
    h = np.clip(np.round(base_h * scale), 4, int(0.6 * height)).astype(np.int64)
    w = np.clip(np.round(base_h * aspect * scale), 3, int(0.6 * width)).astype(np.int64)
    return w, h


def _camera_path(rng: np.random.Generator, num_frames: int, width: int, pan_prob: float,
                 pan_distance: Tuple[float, float]) -> np.ndarray:
    """Per frame int64 (T, 2) (x, y) offset of the view in the background canvas (>= 0, zero without a pan).

    A pan moves ``pan_distance * W`` pixels (left or right, with a slight tilt) over a random interval of
    60-100 % of the video, easing in and out (smoothstep).
    """
    cam = np.zeros((num_frames, 2), dtype=np.int64)
    if rng.random() >= pan_prob:
        return cam
    distance = rng.uniform(*pan_distance) * width
    duration = int(rng.integers(int(0.6 * num_frames), num_frames + 1))
    first = int(rng.integers(0, num_frames - duration + 1))
    u = np.clip((np.arange(num_frames) - first) / max(duration - 1, 1), 0, 1)
    ease = u * u * (3 - 2 * u)
    path = np.stack([distance * ease, rng.uniform(-0.15, 0.15) * distance * ease], axis=1)
    if rng.random() < 0.5:
        path[:, 0] = distance - path[:, 0]
    cam = np.round(path).astype(np.int64)
    return cam - cam.min(axis=0)


def _placement(dx: np.ndarray, dy: np.ndarray, w: np.ndarray, h: np.ndarray, cam: np.ndarray, width: int,
               height: int):
    """Image-space path (without its offset) and the ranges of valid centre offsets.

    The image centre of frame ``i`` is ``(off_x + gx[i], off_y + gy[i])`` with ``g = path - camera``; any
    ``off`` in the returned ranges keeps the sprite inside the frame on every frame. The path is shrunk
    uniformly (never clipped) only when no offset fits it; a shrink of 0 (the pan alone) always fits.

    Returns:
        tuple: ``gx``, ``gy`` float (n,), ``(lo_x, hi_x)``, ``(lo_y, hi_y)``.
    """
    for shrink in [0.85**k for k in range(20)] + [0.0]:
        gx, gy = shrink * dx - cam[:, 0], shrink * dy - cam[:, 1]
        lo_x, hi_x = float(np.max(w / 2 - gx)), float(np.min(width - w / 2 - gx))
        lo_y, hi_y = float(np.max(h / 2 - gy)), float(np.min(height - h / 2 - gy))
        if lo_x <= hi_x and lo_y <= hi_y:
            break
    return gx, gy, (lo_x, hi_x), (lo_y, hi_y)


def _offset_boxes(off_x: float, off_y: float, gx: np.ndarray, gy: np.ndarray, w: np.ndarray, h: np.ndarray,
                  width: int, height: int) -> np.ndarray:
    """int64 (n, 4) boxes of the sprite centred at ``(off_x + gx, off_y + gy)``, inside the frame."""
    x1 = np.clip(np.round(off_x + gx - w / 2), 0, width - w).astype(np.int64)
    y1 = np.clip(np.round(off_y + gy - h / 2), 0, height - h).astype(np.int64)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def _crossing_offset(rng: np.random.Generator, gx: np.ndarray, gy: np.ndarray, range_x, range_y,
                     w: np.ndarray, h: np.ndarray, start: int, partner_start: int, partner_boxes: np.ndarray,
                     window: int) -> Optional[Tuple[float, float, int]]:
    """An offset that makes the actor cross the partner's path, or None.

    Tries meeting frames t (both present from ``t - window`` to ``t + window``): the offset puts both centres
    at the same x on frame t (and the boxes overlapping vertically); accepted when the centres are on
    opposite sides, at least half the mean box width apart (+1 px for the rounding), ``window`` frames before
    and after, and the offset keeps the actor inside the frame.

    Returns:
        tuple | None: ``(off_x, off_y, t)`` with t 0-based.
    """
    first = max(start, partner_start) + window
    last = min(start + len(gx), partner_start + len(partner_boxes)) - window
    if last <= first:
        return None
    pcx = (partner_boxes[:, 0] + partner_boxes[:, 2]) / 2
    pcy = (partner_boxes[:, 1] + partner_boxes[:, 3]) / 2
    pw, ph = partner_boxes[:, 2] - partner_boxes[:, 0], partner_boxes[:, 3] - partner_boxes[:, 1]
    for t in rng.permutation(np.arange(first, last))[:CROSSING_TRIES]:
        i, j = int(t) - start, int(t) - partner_start
        off_x = float(pcx[j] - gx[i])
        if not range_x[0] <= off_x <= range_x[1]:
            continue
        sides = [(off_x + gx[i + k] - pcx[j + k]) / ((w[i + k] + pw[j + k]) / 4 + 1)
                 for k in (-window, window)]
        if sides[0] * sides[1] >= 0 or min(abs(sides[0]), abs(sides[1])) < 1:
            continue
        off_y = float(np.clip(pcy[j] - gy[i] + rng.uniform(-0.4, 0.4) * h[i], *range_y))
        if abs(off_y + gy[i] - pcy[j]) >= (h[i] + ph[j]) / 2 - 1:
            continue
        return off_x, off_y, int(t)
    return None


def _overlap_with(boxes: np.ndarray, start: int, actors) -> float:
    """Largest IoU of ``boxes`` (starting at frame ``start``) with the earlier actors on common frames."""
    overlap = 0.0
    for _label, other_start, other_boxes in actors:
        lo, hi = max(start, other_start), min(start + len(boxes), other_start + len(other_boxes))
        if lo < hi:
            ious = box_iou_aligned(boxes[lo - start:hi - start].astype(np.float64),
                            other_boxes[lo - other_start:hi - other_start].astype(np.float64))
            overlap = max(overlap, float(ious.max()))
    return overlap


def _sample_long_actors(rng: np.random.Generator, primary_label: int, num_frames: int, width: int,
                        height: int, num_classes: int, max_actors: int, min_action_len: int, cam: np.ndarray,
                        scene: dict):
    """Labels, first frames and int boxes (n, 4) of the actors of a long-preset video, and the crossings."""
    num_actors = int(rng.integers(min(2, max_actors), max_actors + 1))
    max_len = max(min_action_len, min(scene['max_action_len'], int(round(MAX_ACTION_FRACTION * num_frames))))
    base_h, aspect = rng.uniform(*scene['base_height']) * height, rng.uniform(0.5, 0.7)
    pan_x, pan_y = np.ptp(cam, axis=0)
    window = scene['crossing_window']
    actors, crossings = [], []
    for k in range(num_actors):
        label = primary_label if k == 0 else int(rng.integers(num_classes))
        motion = MOTION_CLASSES[label]
        length = int(rng.integers(min_action_len, max_len + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        actor_h, actor_aspect = base_h * rng.uniform(0.9, 1.1), aspect * rng.uniform(0.95, 1.05)
        w, h = _long_sizes(rng, motion, length, actor_h, actor_aspect, width, height)
        room = (max(0.0, width - w.max() - pan_x - 2.0), max(0.0, height - h.max() - pan_y - 2.0))
        dx, dy = segmented_trajectory(motion, rng, length, width, height, room, scene['segment_len'])
        view = cam[start:start + length]
        boxes = None
        if actors and rng.random() < scene['crossing_prob']:
            partners = [j for j, (_, s, b) in enumerate(actors)
                        if min(start + length, s + len(b)) - max(start, s) > 2 * window]
            for j in rng.permutation(partners)[:CROSSING_PARTNERS]:
                for mirror in (1, -1):  # a horizontal mirror keeps every class
                    gx, gy, range_x, range_y = _placement(mirror * dx, dy, w, h, view, width, height)
                    found = _crossing_offset(rng, gx, gy, range_x, range_y, w, h, start, actors[j][1],
                                             actors[j][2], window)
                    if found is not None:
                        boxes = _offset_boxes(found[0], found[1], gx, gy, w, h, width, height)
                        crossings.append((int(j), k, found[2]))
                        break
                if boxes is not None:
                    break
        if boxes is None:
            gx, gy, range_x, range_y = _placement(dx, dy, w, h, view, width, height)
            best_overlap = np.inf
            for _ in range(PLACEMENT_TRIES):
                candidate = _offset_boxes(rng.uniform(*range_x), rng.uniform(*range_y), gx, gy, w, h, width,
                                          height)
                overlap = _overlap_with(candidate, start, actors)
                if overlap < best_overlap:
                    boxes, best_overlap = candidate, overlap
                if overlap <= MAX_ACTOR_IOU:
                    break
        actors.append((label, start, boxes))
    return actors, crossings


def _covered_fraction(actors, columns: np.ndarray) -> List[np.ndarray]:
    """Per actor, float (n,): the fraction of its box width under the full-height occluder ``columns``
    (bool (T, W))."""
    cum = np.concatenate([np.zeros((len(columns), 1), np.int64), np.cumsum(columns, axis=1)], axis=1)
    fractions = []
    for _label, start, boxes in actors:
        t = np.arange(start, start + len(boxes))
        fractions.append((cum[t, boxes[:, 2]] - cum[t, boxes[:, 0]]) / (boxes[:, 2] - boxes[:, 0]))
    return fractions


def _runs(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True in a bool (n,) array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _band_columns(x1: np.ndarray, band_w: int, width: int) -> np.ndarray:
    """bool (T, W): the columns covered by a band of width ``band_w`` starting at ``x1[t]``."""
    cols = np.arange(width)
    return (cols[None] >= x1[:, None]) & (cols[None] < x1[:, None] + band_w)


def _sample_long_occluders(rng: np.random.Generator, actors, num_frames: int, width: int,
                           scene: dict) -> List[Tuple[np.ndarray, int]]:
    """Full-height occluders passing in front of the actors (a post or a passer-by close to the camera).

    Each one is aimed at one actor and interval of ``occlusion_len`` frames: ``occluder_width`` times as wide
    as the actor, it follows the actor's mean motion over the interval plus a relative speed (in the direction
    that makes it faster, so it leaves the view sooner) at which it covers at least :data:`OCCLUDED_FRACTION`
    of the actor for about that many frames. A draw is kept only when the
    actor is then hidden for a run of ``occlusion_len`` frames around the interval's middle and no actor is
    hidden for longer than ``occlusion_len[1]`` frames in a row (all occluders together).

    Returns:
        list[tuple[np.ndarray, int]]: Per occluder, int64 (T,) left edge per frame (image coordinates; may
        lie outside the frame) and its width.
    """
    lo_len, hi_len = scene['occlusion_len']
    columns = np.zeros((num_frames, width), dtype=bool)
    frames = np.arange(num_frames, dtype=np.float64)
    occluders = []
    for _ in range(int(rng.integers(scene['occluders'][0], scene['occluders'][1] + 1))):
        for _ in range(OCCLUDER_TRIES):
            k = int(rng.integers(len(actors)))
            _, start, boxes = actors[k]
            length = int(rng.integers(lo_len, hi_len + 1))
            if len(boxes) < length + 10:
                continue
            first = start + int(rng.integers(5, len(boxes) - length - 5 + 1))
            part = boxes[first - start:first - start + length]
            actor_w = int((part[:, 2] - part[:, 0]).max())
            band_w = max(2, int(round(rng.uniform(*scene['occluder_width']) * actor_w)))
            middle = first + (length - 1) / 2
            slope, centre = np.polyfit(
                np.arange(first, first + length) - middle, (part[:, 0] + part[:, 2]) / 2, 1)
            relative = (band_w - actor_w / 2) / length  # the faster direction: it passes fewer other actors
            relative = relative if abs(slope + relative) >= abs(slope - relative) else -relative
            x1 = np.round(centre - band_w / 2 + (slope + relative) * (frames - middle)).astype(np.int64)
            trial = columns | _band_columns(x1, band_w, width)
            hidden = [f >= OCCLUDED_FRACTION for f in _covered_fraction(actors, trial)]
            if max((int((e - s).max()) for s, e in map(_runs, hidden) if len(s)), default=0) > hi_len:
                continue
            starts, ends = _runs(hidden[k])
            at = int(round(middle)) - start
            aimed = [e - s for s, e in zip(starts, ends) if s <= at < e]
            if not aimed or not lo_len <= aimed[0] <= hi_len:
                continue
            occluders.append((x1, band_w))
            columns = trial
            break
    return occluders


def _texture_family(rng: np.random.Generator, num: int) -> List[np.ndarray]:
    """``num`` sprite textures of one pattern and one colour set: one :func:`make_sprite_texture`, washed out
    (35-65 % of its saturation kept), then per actor shifted cyclically, maybe mirrored and brightened by
    -8..8 grey levels. uint8 (48, 32, 3) each."""
    base = make_sprite_texture(rng).astype(np.float64)
    grey = base.mean(axis=2, keepdims=True)
    base = np.round(grey + rng.uniform(0.35, 0.65) * (base - grey))
    textures = []
    for _ in range(num):
        tex = np.roll(base, (int(rng.integers(base.shape[0])), int(rng.integers(base.shape[1]))), axis=(0, 1))
        if rng.random() < 0.5:
            tex = tex[:, ::-1]
        textures.append(np.clip(tex.astype(np.int16) + int(rng.integers(-8, 9)), 0, 255).astype(np.uint8))
    return textures


def _occluder_texture(rng: np.random.Generator, height: int, band_w: int) -> np.ndarray:
    """A dark muted band with vertical streaks and a soft vertical shading, uint8 (H, band_w, 3)."""
    streaks = _muted_colour(rng, 30, 95, 10) + rng.normal(0, 6, (1, band_w, 3))
    shade = 1 + 0.15 * np.sin(np.linspace(0, np.pi, height) + rng.uniform(0, np.pi))[:, None, None]
    return np.clip(streaks * shade, 20, 200).astype(np.uint8)


def _apply_sensor(rng: np.random.Generator, frames: np.ndarray, contrast: Tuple[float, float],
                  noise_std: Tuple[float, float]) -> None:
    """Low contrast and sensor noise, in place on uint8 (T, H, W, 3) frames.

    Grey levels are compressed by a gain of ``contrast`` around a random mid level (a look-up table), a light
    blur softens the edges, and Gaussian noise of ``noise_std`` grey levels is added: each frame adds one of
    :data:`NOISE_BANK` noise frames at a random shift (independent enough frame to frame, and cheap).
    """
    gain, level = rng.uniform(*contrast), rng.uniform(95, 135)
    lut = np.clip(np.round(level + gain * (np.arange(256) - 128.0)), 0, 255).astype(np.uint8)
    num, height, width = frames.shape[:3]
    bank = rng.normal(NOISE_OFFSET, rng.uniform(*noise_std), (NOISE_BANK, height + 8, width + 8, 3))
    bank = np.clip(np.round(bank), 0, 2 * NOISE_OFFSET).astype(np.uint8)
    which, shifts = rng.integers(0, NOISE_BANK, num), rng.integers(0, 9, (num, 2))
    for t in range(num):
        frame = cv2.LUT(cv2.GaussianBlur(frames[t], (3, 3), 0.6), lut)
        noise = bank[which[t], shifts[t, 0]:shifts[t, 0] + height, shifts[t, 1]:shifts[t, 1] + width]
        frames[t] = cv2.subtract(cv2.add(frame, noise), NOISE_OFFSET)


def synthesize_long_video(rng: np.random.Generator,
                          primary_label: int,
                          num_frames: int,
                          size: Tuple[int, int],
                          num_classes: int = 5,
                          max_actors: int = 8,
                          min_action_len: int = 40,
                          occluder_prob: float = 0.8,
                          scene: Optional[dict] = None) -> SyntheticVideo:
    """Render one video of the long preset in memory (what breaks tube linking on surveillance footage).

    2 to ``max_actors`` actors (uniformly) that all share one sprite pattern and colour set, each acting as a
    chain of motion segments (:func:`segmented_trajectory`) for ``min_action_len`` to ``max_action_len``
    frames; most further actors are placed to cross the path of an earlier one mid-tube; with probability
    ``occluder_prob`` 1-2 full-height occluders hide chosen actors for 10-30 frames each (the GT tube goes
    on);
    with probability ``pan_prob`` the camera pans slowly (background, occluder-free scene and actors move
    together in the image; boxes stay inside the frame); finally low contrast and sensor noise.

    Args:
        rng (np.random.Generator): Random source; everything is drawn from it.
        primary_label (int): Class index of the first actor.
        num_frames (int): Number of frames T (>= ``min_action_len``).
        size (tuple[int, int]): Frame size (W, H).
        num_classes (int): Further actors get a class in ``range(num_classes)``. Defaults to 5.
        max_actors (int): At most this many actors. Defaults to 8.
        min_action_len (int): Shortest action in frames. Defaults to 40.
        occluder_prob (float): Probability that the video has occluders. Defaults to 0.8.
        scene (dict, optional): Overrides of :data:`LONG_SCENE`.

    Returns:
        SyntheticVideo: Frames (after the sensor model), the background canvas, per-actor labels / tubes /
        masks, the occluder masks, the camera offsets, the crossings and the hidden frames.
    """
    scene = {**LONG_SCENE, **(scene or {})}
    width, height = size
    cam = _camera_path(rng, num_frames, width, scene['pan_prob'], scene['pan_distance'])
    canvas = make_background(rng, width + int(cam[:, 0].max()), height + int(cam[:, 1].max()))
    actors, crossings = _sample_long_actors(rng, primary_label, num_frames, width, height, num_classes,
                                            max_actors, min_action_len, cam, scene)
    textures = _texture_family(rng, len(actors))
    occluders = []
    if rng.random() < occluder_prob:
        occluders = _sample_long_occluders(rng, actors, num_frames, width, scene)
    occ_textures = [_occluder_texture(rng, height, band_w) for _, band_w in occluders]

    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t, (cx, cy) in enumerate(cam):
        frames[t] = canvas[cy:cy + height, cx:cx + width]
    sprite_masks, tubes = _draw_actors(frames, actors, textures)
    occluder_masks = np.zeros((num_frames, height, width), dtype=bool)
    columns = np.zeros((num_frames, width), dtype=bool)
    for (x1s, band_w), texture in zip(occluders, occ_textures):
        columns |= _band_columns(x1s, band_w, width)
        for t, x1 in enumerate(x1s):
            lo, hi = max(int(x1), 0), min(int(x1) + band_w, width)
            if lo < hi:
                frames[t, :, lo:hi] = texture[:, lo - x1:hi - x1]
                occluder_masks[t, :, lo:hi] = True
    _apply_sensor(rng, frames, scene['contrast'], scene['noise_std'])
    hidden = [f >= OCCLUDED_FRACTION for f in _covered_fraction(actors, columns)]
    return SyntheticVideo(frames=frames, background=canvas, labels=[a[0] for a in actors], tubes=tubes,
                          sprite_masks=sprite_masks, occluder_masks=occluder_masks,
                          occluder=f'{len(occluders)} passing' if occluders else 'none', camera=cam,
                          crossings=crossings, hidden=hidden)


def tube_crossings(tube_a: np.ndarray, tube_b: np.ndarray, min_gap: float = 0.5) -> int:
    """How many times two tubes cross: their box centres swap sides horizontally while both are annotated.

    A frame puts ``b`` on one side of ``a`` when the centres are at least ``min_gap`` times the mean box width
    apart in x; a crossing is a change of side between two such frames with the boxes overlapping vertically
    on a frame in between (the two paths meet, not just pass above each other).

    Args:
        tube_a (np.ndarray): (n, 5) rows (frame, x1, y1, x2, y2), consecutive frames.
        tube_b (np.ndarray): (m, 5) rows, likewise.
        min_gap (float): Side threshold as a fraction of the mean box width. Defaults to 0.5.

    Returns:
        int: The number of crossings (0 when the tubes share no frame).
    """
    frames_a, frames_b = np.round(tube_a[:, 0]).astype(np.int64), np.round(tube_b[:, 0]).astype(np.int64)
    _, ia, ib = np.intersect1d(frames_a, frames_b, return_indices=True)
    a, b = tube_a[ia, 1:].astype(np.float64), tube_b[ib, 1:].astype(np.float64)
    diff = (a[:, 0] + a[:, 2]) / 2 - (b[:, 0] + b[:, 2]) / 2
    gap = min_gap * ((a[:, 2] - a[:, 0]) + (b[:, 2] - b[:, 0])) / 2
    side = np.where(diff >= gap, 1, np.where(diff <= -gap, -1, 0))
    meet = np.minimum(a[:, 3], b[:, 3]) > np.maximum(a[:, 1], b[:, 1])
    sided = np.flatnonzero(side)
    return int(sum(1 for p, q in zip(sided[:-1], sided[1:]) if side[p] != side[q] and meet[p:q + 1].any()))


def count_crossings(tubes: Sequence[np.ndarray], min_gap: float = 0.5) -> int:
    """The :func:`tube_crossings` summed over all pairs of ``tubes`` (a list of (n, 5) arrays of one
    video)."""
    return sum(tube_crossings(tubes[i], tubes[j], min_gap)
               for i in range(len(tubes)) for j in range(i + 1, len(tubes)))


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


def _add_scene_stats(stats: Dict[str, int], video: SyntheticVideo) -> None:
    """Accumulate the long-preset numbers the annotation does not show (pans, placed crossings, hides)."""
    stats['pans'] = stats.get('pans', 0) + int(np.ptp(video.camera) > 0)
    stats['crossings'] = stats.get('crossings', 0) + len(video.crossings)
    stats['occluded_videos'] = stats.get('occluded_videos', 0) + int(video.occluder != 'none')
    for hidden in video.hidden:
        starts, ends = _runs(hidden)
        for run in (ends - starts).tolist():
            key = 'long_hides' if run >= LONG_SCENE['occlusion_len'][0] else 'short_hides'
            stats[key] = stats.get(key, 0) + 1
            stats['longest_hide'] = max(stats.get('longest_hide', 0), run)


def _scene_summary(stats: Dict[str, int], num_videos: int) -> List[str]:
    """Two lines: what the long preset put into the videos (see :func:`_add_scene_stats`)."""
    lo, hi = LONG_SCENE['occlusion_len']
    return [
        f"long preset: {stats.get('pans', 0)}/{num_videos} videos with a camera pan, "
        f"{stats.get('crossings', 0)} crossings placed, {stats.get('occluded_videos', 0)} videos with "
        'occluders',
        f"long preset: {stats.get('long_hides', 0)} occlusions of {lo}-{hi} frames (GT continues), "
        f"{stats.get('short_hides', 0)} shorter passes, longest {stats.get('longest_hide', 0)} frames"
    ]


# The arguments of make_synthetic_dataset that a preset sets; an argument given explicitly wins.
PRESETS: Dict[str, Dict] = dict(
    default=dict(
        num_videos=240, frames=(40, 64), size=(128, 96), num_classes=5, test_ratio=0.25, fps=10.0,
        max_actors=3, min_action_len=12, occluder_prob=0.5),
    # long crowded surveillance-like videos (synthesize_long_video); 120 videos keep the generation < 60 s on
    # 2 CPU cores
    long=dict(
        num_videos=120, frames=(150, 300), size=(160, 120), num_classes=5, test_ratio=0.25, fps=10.0,
        max_actors=8, min_action_len=40, occluder_prob=0.8),
)


def _with_preset_defaults(func: Callable) -> Callable:
    """Give the arguments of :data:`PRESETS` that a call leaves out (or passes as None) the values of its
    ``preset``. The signature keeps the default preset's values as its defaults (``inspect.signature`` shows
    them, e.g. ``num_videos=240``); only what the call leaves out changes with ``preset='long'``."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        preset = bound.arguments.get('preset', signature.parameters['preset'].default)
        if preset not in PRESETS:
            raise ValueError(f'preset must be one of {sorted(PRESETS)}, got {preset!r}')
        for key, value in PRESETS[preset].items():
            if bound.arguments.get(key) is None:
                bound.arguments[key] = value
        return func(*bound.args, **bound.kwargs)

    return wrapper


@_with_preset_defaults
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
                           progress: bool = False,
                           preset: str = 'default') -> str:
    """Write the synthetic dataset: ``{out_dir}/videos/{video}.mp4`` and ``{out_dir}/annotations.pkl``.

    Video ``i`` is named ``'{class of its first actor}/v_{i:04d}'``; the first actors' classes are balanced
    (``i % num_classes``, shuffled). The split (one split, ``train_videos=[[...]]``,
    ``test_videos=[[...]]``) is stratified by that class: ``floor(n_c * test_ratio + 0.5)`` test videos per
    class, keeping at least one training video per class. Existing files of the same names are overwritten;
    other files in ``out_dir`` are left alone.

    ``preset`` picks the renderer and the values of the :data:`PRESETS` arguments that the call leaves out or
    passes as None (the defaults below are the default preset's, also in the signature): ``'default'``
    renders :func:`synthesize_video`, ``'long'`` renders :func:`synthesize_long_video` (120 videos of 150-300
    frames at 160x120, up to 8 actors, actions of at least 40 frames, occluders in 80 % of the videos; test
    ratio and fps as below).

    Args:
        out_dir (str): Output folder (created).
        num_videos (int, optional): Number of videos (>= num_classes). Defaults to 240 (180 train / 60 test:
            with 60 training videos the tiny config overfits the motion classes, and 20 test videos give noisy
            metrics).
        frames (int | tuple[int, int], optional): Frames per video, fixed or drawn uniformly from
            ``(min, max)``. Defaults to ``(40, 64)``.
        size (int | tuple[int, int], optional): Frame size ``(W, H)``, or one int for a square.
            Defaults to ``(128, 96)``.
        seed (int): Seed (>= 0); the same arguments give the same dataset. Defaults to 0.
        num_classes (int, optional): The first ``num_classes`` of :data:`MOTION_CLASSES` (1..7).
            Defaults to 5.
        test_ratio (float, optional): Fraction of test videos, in [0, 1). Defaults to 0.25.
        fps (float, optional): Frame rate written into the videos. Defaults to 10.
        max_actors (int, optional): At most this many actors per video. Defaults to 3.
        min_action_len (int, optional): Shortest action in frames. Defaults to 12.
        occluder_prob (float, optional): Probability that a video has an occluder. Defaults to 0.5.
        log_interval (int): Report progress every this many videos (0: never). Defaults to 20.
        logger (callable, optional): Receives the progress lines. Defaults to ``print``; None is silent.
        progress (bool): A progress bar over the videos (tqdm, on stderr; ``tools/data/make_synthetic.py``
            turns it on). Defaults to False.
        preset (str): A key of :data:`PRESETS`, ``'default'`` or ``'long'``. Defaults to ``'default'``.

    Returns:
        str: Path of the annotation pickle.
    """
    if preset == 'long' and min_action_len > LONG_SCENE['max_action_len']:
        raise ValueError(f"min_action_len ({min_action_len}) must be <= the long preset's longest action "
                         f"({LONG_SCENE['max_action_len']} frames)")
    render = synthesize_long_video if preset == 'long' else synthesize_video
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
    scene_stats: Dict[str, int] = {}
    tic = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=num_videos, desc='synthetic videos', unit='video')
        if logger is print:
            logger = tqdm.write  # the lines above the bar, not through it
    for i, name in enumerate(names):
        video = render(video_rng(seed, i), int(primary[i]), int(nframes[i]), size, num_classes, max_actors,
                       min_action_len, occluder_prob)
        write_video(osp.join(out_dir, 'videos', name + '.mp4'), video.frames, fps)
        per_label: Dict[int, List[np.ndarray]] = {}
        for label, tube in zip(video.labels, video.tubes):
            per_label.setdefault(int(label), []).append(tube)
        gttubes[name] = dict(sorted(per_label.items()))
        if preset == 'long':
            _add_scene_stats(scene_stats, video)
        if logger is not None and log_interval > 0 and ((i + 1) % log_interval == 0 or i + 1 == num_videos):
            logger(f'synthetic dataset: {i + 1}/{num_videos} videos written to {out_dir} '
                   f'({time.perf_counter() - tic:.1f} s)')
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    if preset == 'long' and logger is not None:
        for line in _scene_summary(scene_stats, num_videos):
            logger(line)

    ann = dict(labels=labels, gttubes=gttubes, nframes={n: int(f) for n, f in zip(names, nframes)},
               resolution={n: (height, width) for n in names}, train_videos=[train], test_videos=[test])
    ann_file = osp.join(out_dir, 'annotations.pkl')
    with open(ann_file, 'wb') as f:
        pickle.dump(ann, f, protocol=2)
    return ann_file
