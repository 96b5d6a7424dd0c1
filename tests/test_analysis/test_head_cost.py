"""count_multiply_adds: conv and linear multiply-adds by hand, a layer called twice summed, layers not called
left out, a cost volume counted by its own method; and tools/analysis/actor_head_cost.py on a config with an
actor head."""
import os.path as osp
import subprocess
import sys

import torch
from torch import nn

from cfad_mm.analysis.head_cost import count_multiply_adds
from cfad_mm.models.utils.local_correlation import LocalCorrelation

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_conv_and_linear_multiply_adds_by_hand():
    m = nn.ModuleDict(dict(conv=nn.Conv2d(3, 4, 3, stride=2, padding=1), grouped=nn.Conv2d(4, 8, 1, groups=2),
                           conv3d=nn.Conv3d(2, 5, (3, 1, 1), padding=(1, 0, 0)), fc=nn.Linear(6, 7),
                           unused=nn.Conv2d(1, 1, 1)))

    def call():
        x = m['grouped'](m['conv'](torch.randn(2, 3, 8, 10)))  # (2, 4, 4, 5) -> (2, 8, 4, 5)
        m['grouped'](x[:, :4])  # called twice: summed
        m['conv3d'](torch.randn(1, 2, 4, 3, 3))  # (1, 5, 4, 3, 3)
        m['fc'](torch.randn(3, 6))

    def call_all():
        call()
        m['corr'](torch.randn(2, 5, 4, 6), torch.randn(2, 5, 4, 6))  # a layer that counts itself

    m['corr'] = LocalCorrelation(1)
    counts = count_multiply_adds(m, call_all)
    assert counts == {'conv': 2 * 4 * 4 * 5 * 3 * 9, 'grouped': 2 * (2 * 8 * 4 * 5 * 2),
                      'conv3d': 5 * 4 * 3 * 3 * 2 * 3, 'fc': 3 * 7 * 6, 'corr': 2 * 9 * 4 * 6 * 5}
    assert list(counts) == ['conv', 'grouped', 'conv3d', 'fc', 'corr']
    assert not m['conv']._forward_hooks  # hooks removed


def test_actor_head_cost_tool_writes_its_table(tmp_path):
    """In its own process, as a user runs it (no registry scope set by other tests)."""
    doc = tmp_path / 'bench.md'
    doc.write_text('# Benchmarks\n')
    tool = osp.join(REPO, 'tools/analysis/actor_head_cost.py')
    config = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic-long_32x4.py')
    run = subprocess.run([sys.executable, tool, config, '--windows', '1', '--repeats', '1', '--input-size',
                          '48', '64', '--cfg-options', 'model.roi_head.actor_head.fusion=add', '--doc',
                          str(doc)], capture_output=True, text=True, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    text = doc.read_text()
    assert text.startswith('# Benchmarks\n')
    assert '<!-- actor-head-cost:start -->' in text and 'fusion=add' in text
    for part in ('| shared |', '| frame_branch |', '| lateral |', '| fuse |', '| heatmap |',
                 '| backbone, per input frame |'):
        assert part in text, part
    assert '--doc' not in text
    bad = subprocess.run([sys.executable, tool, config, '--windows', '0'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'must be >= 1' in bad.stderr
