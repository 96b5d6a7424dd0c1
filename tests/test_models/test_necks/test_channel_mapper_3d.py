"""ChannelMapper3d: shapes, the 1x1x1 conv + BN + ReLU on hand-set weights, registry build and error cases."""
import math

import pytest
import torch
from mmaction.registry import MODELS
from torch import nn

import cfad_mm  # noqa: F401
from cfad_mm.models.necks.channel_mapper_3d import ChannelMapper3d


def test_build_from_registry():
    neck = MODELS.build(dict(type='ChannelMapper3d', in_channels=8, out_channels=4))
    assert isinstance(neck, ChannelMapper3d)
    assert (neck.in_channels, neck.out_channels) == (8, 4)
    # default out_channels
    assert MODELS.build(dict(type='ChannelMapper3d', in_channels=8)).out_channels == 256


def test_is_conv1x1x1_bn_relu():
    neck = ChannelMapper3d(in_channels=3, out_channels=2)
    conv = neck.conv.conv
    assert isinstance(conv, nn.Conv3d)
    assert conv.kernel_size == (1, 1, 1) and conv.stride == (1, 1, 1) and conv.padding == (0, 0, 0)
    assert conv.bias is None  # followed by a norm layer
    assert isinstance(neck.conv.bn, nn.BatchNorm3d)
    assert isinstance(neck.conv.activate, nn.ReLU)


@pytest.mark.parametrize('shape', [(1, 3, 4, 5, 6), (2, 3, 1, 1, 1), (3, 3, 2, 7, 3)])
def test_output_shapes(shape):
    neck = ChannelMapper3d(in_channels=3, out_channels=5)
    out = neck(torch.randn(shape))
    assert out.shape == (shape[0], 5) + shape[2:]
    assert (out >= 0).all()  # ReLU


def test_empty_batch_and_batch_vs_single():
    torch.manual_seed(0)
    neck = ChannelMapper3d(in_channels=3, out_channels=2).eval()
    assert neck(torch.zeros(0, 3, 2, 4, 4)).shape == (0, 2, 2, 4, 4)
    x = torch.randn(3, 3, 2, 4, 4)
    out = neck(x)
    for i in range(3):
        assert torch.allclose(out[i:i + 1], neck(x[i:i + 1]), atol=1e-6)


def test_hand_set_weights_in_eval_mode():
    neck = ChannelMapper3d(in_channels=2, out_channels=2).eval()
    with torch.no_grad():
        neck.conv.conv.weight.copy_(torch.tensor([[1., 2.], [-1., 0.5]]).view(2, 2, 1, 1, 1))
        bn = neck.conv.bn
        bn.running_mean.copy_(torch.tensor([1., 0.]))
        bn.running_var.copy_(torch.tensor([4., 1.]))
        bn.weight.copy_(torch.tensor([2., 1.]))
        bn.bias.copy_(torch.tensor([0.5, -1.]))
    # two positions: (x0, x1) = (1, 1) and (3, -2)
    x = torch.tensor([[1., 3.], [1., -2.]]).view(1, 2, 1, 1, 2)
    eps = bn.eps
    # channel 0: conv = x0 + 2 x1 -> (3, -1); BN: (conv - 1) / sqrt(4 + eps) * 2 + 0.5 -> ReLU
    # channel 1: conv = -x0 + 0.5 x1 -> (-0.5, -4); BN: conv / sqrt(1 + eps) - 1 -> all negative -> 0
    c0 = [max(0., (3 - 1) / math.sqrt(4 + eps) * 2 + 0.5), max(0., (-1 - 1) / math.sqrt(4 + eps) * 2 + 0.5)]
    expected = torch.tensor([c0, [0., 0.]]).view(1, 2, 1, 1, 2)
    assert torch.allclose(neck(x), expected, atol=1e-5)
    assert math.isclose(c0[0], 2.5, abs_tol=1e-4) and c0[1] == 0.


def test_without_norm_and_act_is_a_plain_linear_map():
    neck = ChannelMapper3d(in_channels=2, out_channels=1, norm_cfg=None, act_cfg=None)
    with torch.no_grad():
        neck.conv.conv.weight.copy_(torch.tensor([[3., -1.]]).view(1, 2, 1, 1, 1))
        neck.conv.conv.bias.fill_(0.25)
    x = torch.tensor([2., 5.]).view(1, 2, 1, 1, 1)
    assert torch.allclose(neck(x), torch.tensor(3 * 2 - 5 + 0.25).view(1, 1, 1, 1, 1))


def test_gradients_reach_the_weights():
    neck = ChannelMapper3d(in_channels=3, out_channels=2).train()
    neck(torch.randn(2, 3, 2, 3, 3)).sum().backward()
    assert neck.conv.conv.weight.grad is not None and torch.isfinite(neck.conv.conv.weight.grad).all()


@pytest.mark.parametrize('in_channels, out_channels', [(0, 4), (4, 0), (-1, 4)])
def test_bad_channels(in_channels, out_channels):
    with pytest.raises(ValueError, match='channels must be >= 1'):
        ChannelMapper3d(in_channels=in_channels, out_channels=out_channels)


@pytest.mark.parametrize('shape', [(1, 4, 2, 3, 3), (1, 3, 3, 3), (3, 2, 3, 3, 3, 1)])
def test_wrong_input_raises(shape):
    neck = ChannelMapper3d(in_channels=3, out_channels=2)
    with pytest.raises(ValueError, match=r'expects \(N, 3, T, H, W\)'):
        neck(torch.randn(shape))
