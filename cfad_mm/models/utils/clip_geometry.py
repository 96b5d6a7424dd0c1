"""ClipGeometry: the sizes that relate a clip batch to its feature map, passed from the detector to its
heads."""
from dataclasses import dataclass
from typing import Tuple

from torch import Tensor


@dataclass(frozen=True)
class ClipGeometry:
    """Geometry of a clip batch ``(N, C, T, H, W)`` and its features ``(N, C', T', H', W')``.

    Attributes:
        num_frames (int): ``T``, frames per clip.
        img_shape (tuple[int, int]): ``(H, W)`` of the network input.
        stride_t (float): Clip frames per feature step, ``T / T'``.
        spatial_scale (float): Feature cells per input pixel, ``W' / W``.

    All four are Python numbers (not traced sizes), so that an exported graph has fixed shapes.
    """

    num_frames: int
    img_shape: Tuple[int, int]
    stride_t: float
    spatial_scale: float

    @classmethod
    def of(cls, inputs: Tensor, feats: Tensor) -> 'ClipGeometry':
        """The geometry of clips ``inputs (N, C, T, H, W)`` with features ``feats (N, C', T', H', W')``."""
        num_frames = int(inputs.shape[2])
        return cls(num_frames=num_frames, img_shape=(int(inputs.shape[-2]), int(inputs.shape[-1])),
                   stride_t=float(num_frames / int(feats.shape[2])),
                   spatial_scale=float(int(feats.shape[-1]) / int(inputs.shape[-1])))
