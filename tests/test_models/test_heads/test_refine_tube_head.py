"""RefineTubeHead's tube classifier: the motion descriptor on hand-made boxes, masking and the mean
fallback."""
import math

import pytest
import torch
from mmaction.registry import MODELS

import cfad_mm  # noqa: F401


def head(**kw):
    return MODELS.build(dict(type='RefineTubeHead', in_channels=4, num_classes=3, tube_feat_dim=6,
                             hidden_channels=8, **kw))


# one tube over 4 steps, the last outside its extent: a 10x20 box moving right by 5 px, then growing to 20x40
BOXES = torch.tensor([[[0., 0., 10., 20.], [5., 0., 15., 20.], [10., 0., 30., 40.], [99., 99., 120., 120.]]])
IN = torch.tensor([[True, True, True, False]])


def test_motion_descriptor_hand_computed():
    desc = head().motion_descriptor(BOXES, IN)
    # centres (5, 10), (10, 10), (20, 20) -> mean (35/3, 40/3);
    # sizes (10,20), (10,20), (20,40) -> mean (40/3, 80/3)
    mw, mh = 40 / 3, 80 / 3
    expected = torch.tensor([[[(5 - 35 / 3) / mw, (10 - 40 / 3) / mh, math.log(10 / mw), math.log(20 / mh)],
                              [(10 - 35 / 3) / mw, (10 - 40 / 3) / mh, math.log(10 / mw), math.log(20 / mh)],
                              [(20 - 35 / 3) / mw, (20 - 40 / 3) / mh, math.log(20 / mw), math.log(40 / mh)],
                              [0., 0., 0., 0.]]])
    assert torch.allclose(desc, expected, atol=1e-6)


def test_motion_descriptor_is_scale_and_shift_invariant():
    h = head()
    moved = BOXES * 3 + torch.tensor([7., -2., 7., -2.])
    assert torch.allclose(h.motion_descriptor(moved, IN), h.motion_descriptor(BOXES, IN), atol=1e-5)


def test_classify_ignores_steps_outside_the_extent():
    torch.manual_seed(0)
    h = head()
    h.init_weights()
    feats = torch.randn(1, 4, 6)
    logits = h.classify(feats, BOXES, IN)
    assert logits.shape == (1, 4)  # 3 classes + background
    feats2, boxes2 = feats.clone(), BOXES.clone()
    feats2[0, 3] = 100.0
    boxes2[0, 3] = torch.tensor([0., 0., 1., 1.])
    assert torch.allclose(h.classify(feats2, boxes2, IN), logits, atol=1e-6)
    # batch of tubes == tubes one by one; a single-step tube is well defined
    feats_b = torch.randn(3, 4, 6)
    boxes_b = BOXES.expand(3, -1, -1).clone()
    in_b = torch.tensor([[True, True, True, False], [False, True, False, False], [True, True, True, True]])
    out = h.classify(feats_b, boxes_b, in_b)
    for i in range(3):
        assert torch.allclose(out[i], h.classify(feats_b[i:i + 1], boxes_b[i:i + 1], in_b[i:i + 1])[0],
                              atol=1e-6)
    assert torch.isfinite(out).all()


def test_classify_reads_the_order_of_the_steps():
    """Reversing the motion changes the logits (a temporal mean would not see it)."""
    torch.manual_seed(1)
    h = head()
    feats = torch.randn(1, 4, 6)
    full = torch.ones(1, 4, dtype=torch.bool)
    boxes = torch.tensor([[[0., 0., 10., 20.], [2., 0., 12., 20.], [10., 0., 20., 20.], [30., 0., 40., 20.]]])
    a = h.classify(feats, boxes, full)
    b = h.classify(feats.flip(1), boxes.flip(1), full)
    assert not torch.allclose(a, b, atol=1e-4)
    mean_head = head(cls_convs=0)
    a0 = mean_head.classify(feats, boxes, full)
    assert torch.allclose(a0, mean_head.classify(feats.flip(1), boxes.flip(1), full), atol=1e-6)


def test_bad_cls_convs():
    with pytest.raises(ValueError, match='cls_convs'):
        head(cls_convs=-1)
