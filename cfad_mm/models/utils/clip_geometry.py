"""ClipGeometry: the sizes that relate a clip batch to its feature map, passed from the detector to its
heads."""
from dataclasses import dataclass
from typing import Tuple

from torch import Tensor

from cfad_mm.datasets.sampling import span_length


@dataclass(frozen=True)
class ClipGeometry:
    """Geometry of a clip batch ``(N, C, T, H, W)`` and its features ``(N, C', T', H', W')``.

    A clip samples ``T`` frames every ``k`` frames (``frame_interval``) of a span of ``S = (T - 1) * k + 1``
    video frames; everything after the backbone works in span frames: extents, decoded boxes (at EVERY frame
    of the span), key timestamps. With ``k = 1`` the span is the clip.

    Attributes:
        num_frames (int): ``S``, frames of the span (``T`` when ``k = 1``).
        img_shape (tuple[int, int]): ``(H, W)`` of the network input.
        stride_t (float): Span frames per feature step, ``S / T'``.
        spatial_scale (float): Feature cells per input pixel, ``W' / W``.

    All four are Python numbers (not traced sizes), so that an exported graph has fixed shapes.
    """

    num_frames: int
    img_shape: Tuple[int, int]
    stride_t: float
    spatial_scale: float

    @classmethod
    def of(cls, inputs: Tensor, feats: Tensor, frame_interval: int = 1) -> 'ClipGeometry':
        """The geometry of clips ``inputs (N, C, T, H, W)`` sampled every ``frame_interval`` frames, with
        features ``feats (N, C', T', H', W')``."""
        num_frames = span_length(inputs.shape[2], frame_interval)
        return cls(num_frames=num_frames, img_shape=(int(inputs.shape[-2]), int(inputs.shape[-1])),
                   stride_t=float(num_frames / int(feats.shape[2])),
                   spatial_scale=float(int(feats.shape[-1]) / int(inputs.shape[-1])))
