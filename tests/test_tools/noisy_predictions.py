"""Data samples of predictions that find the actors: the GT tubes of the test videos copied with box noise, as
``tools/test.py --dump`` writes them (16-frame clips every 8 frames). Shared by the offline-evaluation
tests."""
from typing import Callable, Optional

import numpy as np
import torch


def noisy_gt_samples(ann: dict, seed: int = 0, extra: Optional[Callable] = None) -> list:
    """One data-sample dict per clip that holds GT: every GT tube of the clip with N(0, 1.5) px box noise and
    a score drawn from U(0.5, 1).

    Args:
        ann (dict): A validated annotation dict (``load_annotations``).
        seed (int): Seed of the noise and the scores. Defaults to 0.
        extra (callable, optional): ``extra(sample_index, video_index, video, valid, tubes, masks, labels,
            scores)`` may append more tubes to the lists (``tubes`` (16, 4) float32, ``masks`` (16,) bool, int
            labels, float scores) before the sample is packed. Defaults to None.

    Returns:
        list[dict]: ``video_id``, ``frame_numbers`` (1-based), ``frame_valid`` and ``pred_instances``
        (tensors).
    """
    rng = np.random.default_rng(seed)
    samples = []
    for vi, video in enumerate(ann['test_videos'][0]):
        n = ann['nframes'][video]
        for start in range(0, max(1, n - 8), 8):
            frame_numbers = np.arange(start + 1, start + 17)
            valid = frame_numbers <= n
            tubes, masks, labels = [], [], []
            for label, per_label in ann['gttubes'][video].items():
                for tube in per_label:
                    dense = np.zeros((16, 4), np.float32)
                    mask = np.zeros(16, bool)
                    for row in tube:
                        t = int(row[0]) - 1 - start
                        if 0 <= t < 16:
                            dense[t] = row[1:] + rng.normal(0, 1.5, 4)
                            mask[t] = True
                    if mask.any():
                        tubes.append(dense)
                        masks.append(mask)
                        labels.append(label)
            if not tubes:
                continue
            scores = list(rng.uniform(0.5, 1.0, len(tubes)))
            if extra is not None:
                extra(len(samples), vi, video, valid, tubes, masks, labels, scores)
            samples.append(
                dict(
                    video_id=video,
                    frame_numbers=frame_numbers,
                    frame_valid=valid,
                    pred_instances=dict(
                        tubes=torch.from_numpy(np.stack(tubes)),
                        tube_masks=torch.from_numpy(np.stack(masks)),
                        scores=torch.tensor(scores, dtype=torch.float32),
                        labels=torch.tensor(labels))))
    return samples
