"""TubeVisualizationHook: render the predicted tubes of test clips (``tools/test.py --show-dir``)."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmaction.registry import HOOKS
from mmengine.hooks import Hook

from cfad_mm.datasets.transforms.box_mapping import get_input_affine
from cfad_mm.visualization import draw_tubes, render_video


class ClipFrames:
    """In-memory RGB frames ``(T, H, W, 3)`` uint8 with the interface :func:`render_video` reads."""

    def __init__(self, frames: np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f'ClipFrames needs (T, H, W, 3) frames, got {frames.shape}')
        self.frames = frames
        self.num_frames = frames.shape[0]
        self.shape = tuple(frames.shape[1:3])
        self.reader = None

    def get(self, indices: Sequence[int]) -> List[np.ndarray]:
        return [self.frames[i] for i in indices]


def clip_to_rgb_frames(inputs) -> np.ndarray:
    """A packed clip (``(C, T, H, W)`` or ``(1, C, T, H, W)``, uint8 or float in 0..255) -> ``(T, H, W, 3)``
    uint8."""
    arr = inputs.detach().cpu().numpy() if hasattr(inputs, 'detach') else np.asarray(inputs)
    if arr.ndim == 5:
        arr = arr[0]
    if arr.ndim != 4 or arr.shape[0] != 3:
        raise ValueError(f'expected a clip (3, T, H, W), got shape {arr.shape}')
    return np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8).transpose(1, 2, 3, 0))


def pred_tubes_for_drawing(pred, metainfo: dict, classes: Optional[Sequence[str]],
                           score_thr: float) -> List[dict]:
    """Predicted tubes of one clip (original video pixels) as :func:`draw_tubes` dicts in network-input
    pixels, frames numbered ``1..T`` inside the clip (the decoded frames: with ``frame_interval = k`` the
    tubes cover a span of ``(T - 1) * k + 1`` frames, of which every k-th is drawn)."""
    sx, tx, sy, ty = get_input_affine(metainfo)
    k = int(metainfo.get('frame_interval', 1))
    tubes = []
    scores = pred.scores.detach().cpu().numpy()
    labels = pred.labels.detach().cpu().numpy()
    boxes_all = pred.tubes.detach().cpu().numpy()
    masks = pred.tube_masks.detach().cpu().numpy()
    for i in np.argsort(-scores):
        if scores[i] < score_thr:
            continue
        b = boxes_all[i]
        x1, x2 = b[:, 0] * sx + tx, b[:, 2] * sx + tx
        y1, y2 = b[:, 1] * sy + ty, b[:, 3] * sy + ty
        x1, x2 = np.minimum(x1, x2), np.maximum(x1, x2)
        rows = [[int(t) // k + 1, float(x1[t]), float(y1[t]), float(x2[t]), float(y2[t])]
                for t in np.nonzero(masks[i])[0] if t % k == 0]
        label = int(labels[i])
        name = classes[label] if classes is not None and label < len(classes) else str(label)
        tubes.append(dict(tube_id=len(tubes), label=label, label_name=name, score=float(scores[i]),
                          boxes=rows))
    return tubes


@HOOKS.register_module()
class TubeVisualizationHook(Hook):
    """Draw the predicted tubes on every ``interval``-th test clip and write it as an mp4 (and optionally a
    GIF).

    The clip is the network input (after resize / crop), so the boxes of ``pred_instances`` (original video
    pixels) are mapped back with the clip's recorded transform. One file per clip:
    ``out_dir/<video id>_<first frame>.mp4`` (``/`` in video ids becomes ``__``). Each tube has its own colour
    and is labelled ``#id class score``. ``tools/test.py --show-dir DIR`` enables this hook.

    Args:
        enable (bool): Draw at all. Defaults to False (configs keep it off; ``--show-dir`` turns it on).
        out_dir (str, optional): Output directory (used as given, created if needed). Required unless
            ``show``.
        interval (int): Draw every ``interval``-th clip of the test set. Defaults to 1.
        score_thr (float): Tubes scoring below are not drawn. Defaults to 0.3.
        fps (float): Frame rate of the written clips. Defaults to 5.
        gif (bool): Also write a GIF per clip. Defaults to False.
        show (bool): Also show the frames in a window (needs a display). Defaults to False.
        wait_time (float): Seconds per clip in the window. Defaults to 2.
    """

    priority = 'NORMAL'

    def __init__(self, enable: bool = False, out_dir: Optional[str] = None, interval: int = 1,
                 score_thr: float = 0.3, fps: float = 5.0, gif: bool = False, show: bool = False,
                 wait_time: float = 2.0):
        if interval < 1:
            raise ValueError(f'TubeVisualizationHook: interval must be >= 1, got {interval}')
        if enable and out_dir is None and not show:
            raise ValueError('TubeVisualizationHook: enable=True needs out_dir (or show=True)')
        self.enable = enable
        self.out_dir = out_dir
        self.interval = interval
        self.score_thr = score_thr
        self.fps = fps
        self.gif = gif
        self.show = show
        self.wait_time = wait_time
        self._count = 0
        self.written: List[str] = []

    def before_test(self, runner) -> None:
        self._count = 0
        self.written = []
        if self.enable and self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)

    @staticmethod
    def _classes(runner) -> Optional[Sequence[str]]:
        meta = getattr(runner.model, 'dataset_meta', None) or {}
        if not meta.get('classes'):
            try:
                meta = runner.test_dataloader.dataset.metainfo or {}
            except Exception:  # no dataset: numeric labels
                meta = {}
        return meta.get('classes')

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict = None,
                        outputs: Sequence = None) -> None:
        if not self.enable or not outputs:
            return
        classes = self._classes(runner)
        for inputs, sample in zip(data_batch['inputs'], outputs):
            self._count += 1
            if (self._count - 1) % self.interval:
                continue
            meta = sample.metainfo
            frames = ClipFrames(clip_to_rgb_frames(inputs))
            tubes = pred_tubes_for_drawing(sample.pred_instances, meta, classes, self.score_thr)
            if self.show:
                self._show(frames, tubes)
            if self.out_dir is None:
                continue
            video = str(meta.get('video_id', f'clip{self._count:05d}')).replace('/', '__')
            numbers = meta.get('frame_numbers')
            first = int(np.asarray(numbers).reshape(-1)[0]) if numbers is not None else self._count
            os.makedirs(self.out_dir, exist_ok=True)
            path = osp.join(self.out_dir, f'{video}_{first:05d}.mp4')
            render_video(frames, tubes, path, fps=self.fps,
                         gif_path=osp.splitext(path)[0] + '.gif' if self.gif else None)
            self.written.append(path)

    def after_test(self, runner) -> None:
        if self.enable and self.out_dir is not None:
            runner.logger.info(f'TubeVisualizationHook: {len(self.written)} rendered clips in {self.out_dir}')

    def _show(self, frames: ClipFrames, tubes: List[dict]) -> None:
        import cv2
        delay = max(1, int(1000 * self.wait_time / max(1, frames.num_frames)))
        for i, f in enumerate(frames.get(range(frames.num_frames))):
            cv2.imshow('cfad test', draw_tubes(f, i + 1, tubes))
            cv2.waitKey(delay)
