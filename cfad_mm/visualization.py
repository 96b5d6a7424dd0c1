"""Rendering of video tubes onto frames (demo videos and GIFs)."""
import colorsys
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np


def tube_colour(tube_id: int) -> tuple:
    """A distinct BGR colour per tube id (golden-ratio hue steps)."""
    h = (tube_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_tubes(frame_rgb: np.ndarray, frame_number: int, tubes: List[Dict],
               box_scale: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """Draw the boxes of ``tubes`` (from :func:`cfad_mm.apis.tubes_to_json`) present at 1-based
    ``frame_number`` on a copy of an RGB frame; returns a BGR frame.

    ``box_scale`` (sx, sy) maps the boxes to the frame (frames decoded downscaled, see
    :class:`cfad_mm.apis.VideoFrames`). Defaults to (1.0, 1.0).
    """
    img = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    sx, sy = box_scale
    scale = max(0.35, min(img.shape[:2]) / 400)
    thick = max(1, int(round(2 * scale)))
    for tube in tubes:
        for row in tube['boxes']:
            if row[0] != frame_number:
                continue
            x1, y1, x2, y2 = (int(round(v * s)) for v, s in zip(row[1:], (sx, sy, sx, sy)))
            colour = tube_colour(tube['tube_id'])
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
            text = f"#{tube['tube_id']} {tube['label_name']} {tube['score']:.2f}"
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, 1)
            ty = max(th + 2, y1 - 2)
            cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 2, ty + 1), colour, -1)
            cv2.putText(img, text, (x1 + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (0, 0, 0), 1,
                        cv2.LINE_AA)
            break
    return img


def render_video(frames, tubes: List[Dict], out_path: str, fps: float = 10.0,
                 gif_path: Optional[str] = None, max_gif_frames: int = 200) -> None:
    """Write an mp4 (mp4v) with the tubes drawn; optionally a GIF (via matplotlib's Pillow writer).

    Args:
        frames: :class:`cfad_mm.apis.VideoFrames`.
        tubes (list[dict]): tubes of :func:`cfad_mm.apis.tubes_to_json`.
        out_path (str): the mp4 to write. fps (float): frame rate. gif_path (str, optional): also a GIF.
    """
    h, w = getattr(frames, 'decode_shape', None) or frames.shape  # frames as decoded (maybe downscaled)
    box_scale = (w / frames.shape[1], h / frames.shape[0])
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f'cannot open {out_path} for writing (mp4v)')
    gif_frames = []
    step = 64
    for s in range(0, frames.num_frames, step):
        idx = list(range(s, min(frames.num_frames, s + step)))
        for i, f in zip(idx, frames.get(idx)):
            img = draw_tubes(f, i + 1, tubes, box_scale)
            writer.write(img)
            if gif_path and len(gif_frames) < max_gif_frames:
                gif_frames.append(img[:, :, ::-1].copy())
    writer.release()
    if gif_path:
        from PIL import Image
        ims = [Image.fromarray(g) for g in gif_frames]
        ims[0].save(gif_path, save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)


def class_names(model, fallback: Optional[Sequence[str]] = None) -> Optional[Sequence[str]]:
    """Class names from the checkpoint meta, else ``fallback``."""
    meta = getattr(model, 'dataset_meta', None) or {}
    return meta.get('classes') or fallback
