"""How fast the annotated actors move, and whether they can still be told apart by position when only every
``k``-th frame is seen: what a window sampling one frame in ``k`` (``frame_interval = k``) can follow.

Everything here reads the ground truth only, no model. For one video, from its dense tubes (boxes
``(G, F, 4)`` xyxy and masks ``(G, F)``, :func:`cfad_mm.datasets.annotation.densify_tubes`):

- **speed**: per annotated frame ``f`` of a tube also annotated at ``f + 1``, the distance its box centre
  moves, in pixels and divided by the box height at ``f``;
- **nearest other actor**: per annotated frame of a tube, the distance from its box centre to the nearest
  centre of another tube annotated on that frame, in pixels and divided by the box height (frames with no
  other actor are not counted);
- **association at gap k**: per annotated frame ``f`` of a tube that is also annotated at ``f - k`` and
  ``f + k``, the tube's centre at ``f + k`` is predicted from the perfect boxes it had, (a) *by position*: its
  centre at ``f``, (b) *by constant velocity*: ``2 c(f) - c(f - k)``; the prediction is right when the tube's
  own centre at ``f + k`` is strictly nearer to it than the centre of every other tube annotated there (a tie
  counts as wrong; both ways are scored on the same frames). It is the share of steps that a greedy
  nearest-centre linker with perfect boxes gets right: a reference for how far apart the actors stay between
  sampled frames, not a bound of every linker (a one-to-one assignment, or box sizes, can resolve some of
  its errors).

The numbers depend on the annotation's frame rate: ``k`` counts annotated frames.
"""
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from cfad_mm.structures.tube_ops import box_centres
from cfad_mm.utils.markdown import markdown_table


def _heights(boxes: np.ndarray) -> np.ndarray:
    return boxes[..., 3] - boxes[..., 1]


def video_speeds(boxes: np.ndarray, masks: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-frame centre motion of the tubes of one video.

    Args:
        boxes (np.ndarray): ``(G, F, 4)`` xyxy boxes (any value where not annotated).
        masks (np.ndarray): ``(G, F)`` bool, True on annotated frames.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(S,)`` pixels per frame and ``(S,)`` the same divided by the box
        height at the first frame, one value per pair of consecutive annotated frames of a tube.
    """
    both = masks[:, :-1] & masks[:, 1:]
    step = np.linalg.norm(box_centres(boxes[:, 1:]) - box_centres(boxes[:, :-1]), axis=-1)
    height = _heights(boxes[:, :-1])
    return step[both], step[both] / np.maximum(height[both], 1e-6)


def video_nearest_other(boxes: np.ndarray, masks: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per annotated box of one video with another actor on its frame: the distance from its centre to the
    nearest centre of another tube annotated there, ``(N,)`` pixels and ``(N,)`` divided by its height."""
    if masks.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    centres = box_centres(boxes)  # (G, F, 2)
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)  # (G, G, F)
    valid = masks[:, None] & masks[None] & ~np.eye(masks.shape[0], dtype=bool)[..., None]
    nearest = np.where(valid, dist, np.inf).min(axis=1)  # (G, F)
    keep = masks & np.isfinite(nearest)
    return nearest[keep], nearest[keep] / np.maximum(_heights(boxes)[keep], 1e-6)


def video_association(boxes: np.ndarray, masks: np.ndarray, gap: int) -> Tuple[int, int, int]:
    """Association of the perfect boxes of one video across ``gap`` frames (see the module doc).

    Returns:
        tuple[int, int, int]: the number of scored steps, those right by position, those right by constant
        velocity.
    """
    if gap < 1:
        raise ValueError(f'gap must be >= 1, got {gap}')
    num_tubes, num_frames = masks.shape
    if num_tubes == 0 or num_frames <= 2 * gap:
        return 0, 0, 0
    centres = box_centres(boxes)
    cur = centres[:, gap:num_frames - gap]  # frames f = gap .. F - gap - 1
    prev, nxt = centres[:, :num_frames - 2 * gap], centres[:, 2 * gap:]
    scored = masks[:, gap:num_frames - gap] & masks[:, :num_frames - 2 * gap] & masks[:, 2 * gap:]
    present = masks[:, 2 * gap:]  # (G, F') tubes annotated at f + gap: the candidates
    diagonal = np.eye(num_tubes, dtype=bool)[..., None]
    right = []
    for pred in (cur, 2 * cur - prev):
        dist = np.linalg.norm(pred[:, None] - nxt[None], axis=-1)  # (G tube, G candidate, F')
        own = dist[np.arange(num_tubes), np.arange(num_tubes)]  # (G, F')
        other = np.where(present[None] & ~diagonal, dist, np.inf).min(axis=1)  # (G, F')
        right.append(int((scored & (own < other)).sum()))
    return int(scored.sum()), right[0], right[1]


def motion_statistics(videos: Iterable[Tuple[np.ndarray, np.ndarray]], gaps: Sequence[int] = (1, 2, 4, 8)
                      ) -> Dict:
    """The statistics of the module doc over several videos.

    Args:
        videos (iterable): ``(boxes (G, F, 4), masks (G, F))`` per video.
        gaps (sequence[int]): Frame gaps ``k`` of the association rows.

    Returns:
        dict: ``videos``, ``speed_px`` / ``speed_rel`` / ``nearest_px`` / ``nearest_rel`` (each ``dict(n,
        median, p10, p90)``, None without values) and ``association``: per gap ``dict(gap, steps,
        position, velocity)`` (shares right; None without steps).
    """
    gaps = [int(g) for g in gaps]
    speeds: List[np.ndarray] = []
    speeds_rel: List[np.ndarray] = []
    near: List[np.ndarray] = []
    near_rel: List[np.ndarray] = []
    counts = {g: np.zeros(3, dtype=np.int64) for g in gaps}
    num_videos = 0
    for boxes, masks in videos:
        num_videos += 1
        s, sr = video_speeds(boxes, masks)
        n, nr = video_nearest_other(boxes, masks)
        speeds.append(s)
        speeds_rel.append(sr)
        near.append(n)
        near_rel.append(nr)
        for g in gaps:
            counts[g] += np.array(video_association(boxes, masks, g))

    def spread(parts):
        values = np.concatenate(parts) if parts else np.zeros(0)
        if values.size == 0:
            return None
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return dict(n=int(values.size), median=float(median), p10=float(p10), p90=float(p90))

    association = []
    for g in gaps:
        steps, pos, vel = (int(x) for x in counts[g])
        association.append(dict(gap=g, steps=steps, position=pos / steps if steps else None,
                                velocity=vel / steps if steps else None))
    return dict(videos=num_videos, speed_px=spread(speeds), speed_rel=spread(speeds_rel),
                nearest_px=spread(near), nearest_rel=spread(near_rel), association=association)


def format_motion_tables(stats: Dict) -> str:
    """Markdown: the motion table (median, 10th and 90th percentile) and the association table."""

    def row(name, s, fmt):
        if s is None:
            return [name, '0', '-', '-', '-']
        return [name, str(s['n']), fmt.format(s['median']), fmt.format(s['p10']), fmt.format(s['p90'])]

    motion = markdown_table(
        ['quantity', 'values', 'median', '10th percentile', '90th percentile'],
        [row('centre motion per frame (pixels)', stats['speed_px'], '{:.2f}'),
         row('centre motion per frame / box height', stats['speed_rel'], '{:.3f}'),
         row('nearest other actor: centre distance (pixels)', stats['nearest_px'], '{:.1f}'),
         row('nearest other actor: centre distance / box height', stats['nearest_rel'], '{:.2f}')])

    def share(x):
        return '-' if x is None else f'{100 * x:.1f} %'

    assoc = markdown_table(
        ['gap k (frames)', 'steps scored', 'right by position', 'right by constant velocity'],
        [[str(a['gap']), str(a['steps']), share(a['position']), share(a['velocity'])]
         for a in stats['association']])
    return motion + '\n\nAssociation of perfect boxes across k frames (the nearest centre at f + k is the ' \
        "tube's own):\n\n" + assoc
