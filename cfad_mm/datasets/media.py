"""Checks of the media a tube dataset or the inference API reads: video files and frame folders.

Each check raises an error whose message starts with the offending path and says what is wrong:

* :class:`FileNotFoundError` -- the video file, the frame folder or a frame file does not exist;
* :class:`MediaError` (a ``ValueError``) -- the file exists but cannot be used: empty (0 bytes), truncated,
  not a video (decord cannot open or decode it), no frame, or fewer frames than the annotation says.

:func:`probe_video` is what :class:`~cfad_mm.datasets.TubeDataset` (once per video, before the first clip of
it is decoded) and :class:`~cfad_mm.apis.VideoFrames` call; :func:`check_frame_folder` checks that every frame
file of a folder exists (a folder with gaps names the first missing file).
"""
import os
import os.path as osp
from typing import Iterable, Optional, Tuple

__all__ = ['MediaError', 'probe_video', 'check_frame_folder']


class MediaError(ValueError):
    """A video file or frame folder that exists but cannot be read as needed. The message names the path."""


def probe_video(path: str, min_frames: Optional[int] = None, what: str = '') -> Tuple[int, Tuple[int, int]]:
    """Open a video file with decord and decode its last frame.

    Decoding the last frame catches truncated files whose header still announces all frames.

    Args:
        path (str): The video file.
        min_frames (int, optional): Raise if the video has fewer frames (e.g. the annotation's ``nframes``).
            Defaults to None (any positive number of frames).
        what (str): Where ``min_frames`` comes from, appended to the message (e.g. ``"nframes of video 'a/b'
            in ann.pkl"``). Defaults to ``''``.

    Returns:
        tuple[int, tuple[int, int]]: The number of frames and the frame size ``(height, width)``.

    Raises:
        FileNotFoundError: The file does not exist.
        MediaError: The file is empty, cannot be decoded, has no frame or fewer than ``min_frames``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'video file not found: {path}')
    if osp.getsize(path) == 0:
        raise MediaError(f'{path}: the video file is empty (0 bytes); re-extract or re-download it')
    import decord
    try:
        reader = decord.VideoReader(path, num_threads=1)
        num_frames = len(reader)
        if num_frames == 0:
            raise MediaError(f'{path}: the video file has no frame')
        last = reader[num_frames - 1].shape
    except MediaError:
        raise
    except Exception as err:  # decord raises its own DECORDError (a RuntimeError)
        raise MediaError(f'{path}: cannot decode this video file (truncated, not a video, or a codec '
                         f'decord/FFmpeg cannot read): {type(err).__name__}: '
                         f'{str(err).strip()[:300]}') from err
    if min_frames is not None and num_frames < min_frames:
        where = f' ({what})' if what else ''
        raise MediaError(f'{path}: the video has {num_frames} frames but {min_frames} are expected{where}; '
                         'the file is truncated or the annotation belongs to another version of the video')
    return num_frames, (int(last[0]), int(last[1]))


def check_frame_folder(folder: str, numbers: Iterable[int], filename_tmpl: str) -> None:
    """Check that the frame files ``filename_tmpl.format(n)`` of a folder exist for every ``n`` in
    ``numbers``.

    Args:
        folder (str): The frame folder.
        numbers (Iterable[int]): File numbers (e.g. ``range(1, nframes + 1)`` for ``00001.jpg`` ...).
        filename_tmpl (str): File name template, e.g. ``'{:05d}.jpg'``.

    Raises:
        FileNotFoundError: The folder or a frame file does not exist (the first missing one is named, with
            the number of missing files).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'frame folder not found: {folder}')
    present = set(os.listdir(folder))
    wanted = [filename_tmpl.format(int(n)) for n in numbers]
    missing = [name for name in wanted if name not in present]
    if missing:
        raise FileNotFoundError(f'frame file not found: {osp.join(folder, missing[0])} ({len(missing)} of '
                                f'the {len(wanted)} frame files needed from {folder} are missing, e.g. '
                                f'{missing[:3]}; the folder has gaps or fewer frames than annotated)')
