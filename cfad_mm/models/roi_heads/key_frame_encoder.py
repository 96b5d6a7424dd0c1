"""KeyFrameEncoder: a light 2-D branch that gives the refine stage frame-level features at its key frames."""
from typing import Sequence, Tuple

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..utils import input_span_frames, nearest_input_frames


@MODELS.register_module()
class KeyFrameEncoder(BaseModule):
    """A small 2-D CNN run only on the input frames nearest the key frames of the refine stage.

    The refine stage reads RoI features at a few key frames per tube. By default they come from the backbone
    step nearest each key frame (a 3-D feature step covers ``S / T'`` frames of the span and mixes them). This
    branch is the alternative: each key moves to the sampled input frame nearest it (at most ``k / 2`` frames
    away with ``frame_interval = k``; the key box is decoded, refined and re-fitted there), which goes
    through ``[Conv3x3(stride 2)-BN-ReLU] x len(widths)`` and a 1x1 projection to the channels the refine
    head reads, computed once per distinct (clip, frame) pair of the batch::

        frames (N, 3, T, H, W), key frames (R, M) in span frames
          -> nearest sampled frame j = round(f * (T - 1) / (S - 1)) -> distinct (clip, j) pairs (U)
          -> 2-D CNN (U, C, H / 2^L, W / 2^L) -> as a map of U steps (1, C, U, H', W') for the RoI sampling

    Args:
        out_channels (int): Channels of the output (the refine head's ``in_channels``).
        widths (Sequence[int]): Channels of the stride-2 stages; their number sets the stride (3: 8, that of
            the tiny backbone's features). Defaults to ``(16, 32, 64)``.
        in_channels (int): Input channels. Defaults to 3.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, out_channels: int, widths: Sequence[int] = (16, 32, 64), in_channels: int = 3,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not widths:
            raise ValueError('KeyFrameEncoder: widths must name at least one stage')
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.Conv2d(c, out_channels, 1))
        self.net = nn.Sequential(*layers)
        self.stride = 2**len(widths)

    def forward(self, images: Tensor) -> Tensor:
        """Features ``(U, C, H', W')`` of images ``(U, 3, H, W)``."""
        return self.net(images)

    def key_frame_maps(self, frames: Tensor, tube_batch: Tensor, key_frames: Tensor,
                       span: int) -> Tuple[Tensor, Tensor, float, Tensor]:
        """Features of the distinct input frames nearest the key frames.

        Args:
            frames (Tensor): The network input ``(N, 3, T, H, W)``.
            tube_batch (Tensor): ``(R,)`` clip of each tube.
            key_frames (Tensor): ``(R, M)`` key frames in span frames.
            span (int): Frames of the span ``S``.

        Returns:
            tuple: ``maps (1, C, U, H', W')`` (the U distinct frames as the steps of one clip), ``steps
            (R, M)`` (the map step of each key), the spatial scale (map cells per input pixel) and
            ``frames (R, M)``: the span frame of the input frame each key was moved to (the refine stage
            refines and re-fits there).
        """
        n, _, t, h, w = frames.shape
        j = nearest_input_frames(key_frames, t, span)
        snapped = input_span_frames(j, t, span).to(
            key_frames.dtype if key_frames.is_floating_point() else torch.get_default_dtype())
        ids = tube_batch[:, None] * t + j  # (R, M)
        uniq, inverse = torch.unique(ids.reshape(-1), return_inverse=True)
        images = frames.permute(0, 2, 1, 3, 4).reshape(n * t, frames.shape[1], h, w)[uniq]
        maps = self(images)  # (U, C, H', W')
        return maps.permute(1, 0, 2, 3)[None], inverse.reshape(ids.shape), maps.shape[-1] / w, snapped
