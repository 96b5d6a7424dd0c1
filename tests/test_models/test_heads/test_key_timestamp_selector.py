"""KeyTimestampSelector.select: which steps become key timestamps, on hand-made error scores."""
import pytest
import torch
from mmaction.registry import MODELS

import cfad_mm  # noqa: F401


def selector(**kw):
    return MODELS.build(dict(type='KeyTimestampSelector', in_channels=4, num_keys=3, **kw))


# 8 feature steps; the tube's extent covers steps 1..6 (6 steps -> parts {1,2}, {3,4}, {5,6})
IN = torch.tensor([[False, True, True, True, True, True, True, False]])
ERR = torch.tensor([[9.0, 0.1, 0.5, 3.0, 2.9, 0.2, 0.3, 8.0]])


def test_learned_spread_takes_the_worst_step_of_each_part():
    keys, valid = selector().select(ERR, IN)
    assert keys.tolist() == [[2, 3, 6]] and valid.all()


def test_learned_plain_topk_clusters():
    keys, valid = selector(spread=False).select(ERR, IN)
    assert keys.tolist() == [[2, 3, 4]] and valid.all()  # steps outside the extent (0, 7) never chosen


def test_uniform_and_short_extents():
    keys, valid = selector(mode='uniform').select(ERR, IN)
    assert keys.tolist() == [[2, 4, 6]] and valid.all()  # positions 1.5, 3.5, 5.5 rounded half to even
    short = torch.zeros(1, 8, dtype=torch.bool)
    short[0, 4:6] = True  # 2 in-extent steps for 3 keys
    for kw in (dict(), dict(spread=False), dict(mode='random')):
        keys, valid = selector(**kw).select(ERR, short)
        assert valid.sum() == 2, kw
        assert set(keys[valid].tolist()) == {4, 5}, kw
        assert set(keys[0].tolist()) <= {4, 5}, kw


def test_learned_spread_batch_matches_rows():
    err = torch.randn(5, 8)
    ins = torch.rand(5, 8) > 0.3
    ins[:, 2] = True
    sel = selector()
    keys, valid = sel.select(err, ins)
    for i in range(5):
        k1, v1 = sel.select(err[i:i + 1], ins[i:i + 1])
        assert torch.equal(k1[0], keys[i]) and torch.equal(v1[0], valid[i])
        assert ins[i][keys[i]].all()


def test_bad_arguments():
    with pytest.raises(ValueError, match='mode must be one of'):
        selector(mode='best')
    with pytest.raises(ValueError, match='num_keys'):
        MODELS.build(dict(type='KeyTimestampSelector', in_channels=4, num_keys=0))
