"""ChannelMapper3d: a 1x1x1 convolution between a 3-D backbone and the CFAD heads."""
from typing import Optional

from mmaction.registry import MODELS
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class ChannelMapper3d(BaseModule):
    """Map backbone features ``(N, C_in, T', H', W')`` to ``(N, C_out, T', H', W')`` (Conv3d 1x1x1 + norm +
    act).

    The 3-D counterpart of mmdet's ``ChannelMapper``. Every CFAD head after the backbone works on ``C_out``
    channels: the temporal proposals, the coarse head's pooled maps (``C_out * num_bins`` channels) and the
    RoI features of the key-timestamp selector and the refine head (``C_out * r * r`` per box). With the
    I3D-R50 res4 output (1024 channels) the heads cost more than the backbone on CPU; the I3D-R50 configs map
    it to 256 (docs/model.md, docs/benchmarks.md).

    Args:
        in_channels (int): Backbone output channels ``C_in``.
        out_channels (int): ``C_out``. Defaults to 256.
        norm_cfg (dict, optional): Defaults to ``dict(type='BN3d')``.
        act_cfg (dict, optional): Defaults to ``dict(type='ReLU')``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 norm_cfg: Optional[dict] = dict(type='BN3d'), act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f'ChannelMapper3d: channels must be >= 1, got in_channels={in_channels}, '
                             f'out_channels={out_channels}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = ConvModule(in_channels, out_channels, 1, conv_cfg=dict(type='Conv3d'), norm_cfg=norm_cfg,
                               act_cfg=act_cfg)

    def forward(self, feats: Tensor) -> Tensor:
        """``(N, C_in, T', H', W')`` -> ``(N, C_out, T', H', W')``."""
        if feats.dim() != 5 or feats.shape[1] != self.in_channels:
            raise ValueError(f'ChannelMapper3d expects (N, {self.in_channels}, T, H, W) features, got '
                             f'{tuple(feats.shape)}')
        return self.conv(feats)
