"""The window grid of clips over a video, in one place: where windows start (:func:`window_starts`), every
frame of a window's span and which of them are decoded (:func:`window_span`, :func:`window_positions`), the
span's length (:func:`span_length`). The dataset, whole-video inference, the packing transform, the model's
clip geometry and the speed measurements all use these (``cfad_mm.datasets.tube_dataset`` re-exports them)."""
from typing import List

import numpy as np


def window_starts(nframes: int, span: int, stride: int) -> List[int]:
    """0-based start positions of sliding windows of ``span`` frames covering ``nframes`` frames.

    Starts are ``0, stride, 2 * stride, ...``; the last window is aligned to the video end. A video shorter
    than ``span`` gets the single start 0 (the window is padded by the caller).

    Args:
        nframes (int): Number of frames of the video.
        span (int): Frames covered by a window.
        stride (int): Distance between window starts.

    Returns:
        list[int]: Start positions.
    """
    if nframes <= span:
        return [0]
    last = nframes - span
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def span_length(clip_len: int, frame_interval: int) -> int:
    """Frames ``S = (T - 1) * k + 1`` spanned by a window of ``T = clip_len`` frames sampled every
    ``k = frame_interval`` frames (``S = T`` when ``k = 1``)."""
    return (int(clip_len) - 1) * int(frame_interval) + 1


def window_positions(start: int, clip_len: int, frame_interval: int, nframes: int):
    """0-based frame positions of the sampled frames of a window, clipped to the video, and their validity
    (the decoded frames of :func:`window_span`).

    Args:
        start (int): 0-based first position.
        clip_len (int): Number of sampled frames T.
        frame_interval (int): Distance between sampled frames.
        nframes (int): Number of frames of the video.

    Returns:
        tuple[np.ndarray, np.ndarray]: positions (T,) int64 in ``[0, nframes - 1]`` (a position past the end
        repeats the last frame) and frame_valid (T,) bool (False on such padding).
    """
    positions, valid, sampled = window_span(start, clip_len, frame_interval, nframes)
    return positions[sampled], valid[sampled]


def window_span(start: int, clip_len: int, frame_interval: int, nframes: int):
    """Every frame of a window's span, and which of them the network sees.

    A window samples ``T = clip_len`` frames every ``k = frame_interval`` frames of a span of
    ``S = (T - 1) * k + 1`` frames. The model decodes trajectories at every frame of the span, so ground truth
    and predictions cover all ``S`` frames, while only ``T`` are decoded from the video. With ``k = 1`` the
    span is the window (``positions`` equals :func:`window_positions`).

    Args:
        start (int): 0-based first position.
        clip_len (int): Number of sampled frames T.
        frame_interval (int): Distance k between sampled frames.
        nframes (int): Number of frames of the video.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``positions (S,)`` int64 0-based frames of the
        span clipped to the video (a position past the end repeats the last frame), ``frame_valid (S,)``
        bool (False on such padding) and ``sampled (T,)`` int64 indices into them of the decoded frames
        (``0, k, 2k, ...``).
    """
    raw = start + np.arange(span_length(clip_len, frame_interval), dtype=np.int64)
    sampled = frame_interval * np.arange(clip_len, dtype=np.int64)
    return np.minimum(raw, nframes - 1), raw <= nframes - 1, sampled
