"""Multiply-adds of the layers of a module, counted in one forward call.

Used by ``tools/analysis/actor_head_cost.py`` to say where the work of a head goes: a convolution's
multiply-adds are its output elements times its input channels per group times its kernel volume, a linear
layer's its output elements times its input features; a layer with a ``multiply_adds(output)`` method (a
cost volume, :class:`~cfad_mm.models.utils.local_correlation.LocalCorrelation`) says its own. Other layers
(norms, activations, interpolation, indexing) are not counted; they are reported as such by the tool's
timings, not by this count.
"""
import math
from collections import OrderedDict
from typing import Callable, Dict

from torch import nn

COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def layer_multiply_adds(layer: nn.Module, output) -> int:
    """Multiply-adds of one call of a conv (1-D, 2-D, 3-D) or linear ``layer`` (or of a layer with a
    ``multiply_adds`` method) that gave ``output``."""
    if hasattr(layer, 'multiply_adds'):
        return int(layer.multiply_adds(output))
    if isinstance(layer, nn.Linear):
        return output.numel() * layer.in_features
    kernel = math.prod(layer.kernel_size)
    return output.numel() * (layer.in_channels // layer.groups) * kernel


def count_multiply_adds(module: nn.Module, call: Callable[[], object]) -> Dict[str, int]:
    """Multiply-adds of every conv / linear layer of ``module`` during ``call()``, by qualified name (in the
    order of ``named_modules``; a layer called several times is summed; layers not called are left out).

    Args:
        module (nn.Module): the module whose layers are counted.
        call (callable): runs the forward pass (of ``module`` or of a model that holds it).

    Returns:
        dict[str, int]: ``{name: multiply-adds}``.
    """
    counts: Dict[str, int] = OrderedDict()
    handles = []
    for name, layer in module.named_modules():
        if isinstance(layer, COUNTED) or hasattr(layer, 'multiply_adds'):
            def hook(m, args, out, name=name):
                counts[name] = counts.get(name, 0) + layer_multiply_adds(m, out)
            handles.append(layer.register_forward_hook(hook))
    try:
        call()
    finally:
        for h in handles:
            h.remove()
    order = [n for n, _ in module.named_modules()]
    return OrderedDict(sorted(counts.items(), key=lambda kv: order.index(kv[0])))
