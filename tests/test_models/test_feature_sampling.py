"""RoI sampling along tubes: batch of one clip (strided view of the features) vs the same clip inside a
batch."""
import torch

from cfad_mm.models.utils import sample_tube_rois


def test_sample_tube_rois_single_clip_equals_batched():
    torch.manual_seed(0)
    feats = torch.randn(2, 4, 6, 12, 16)  # (N, C, T', H', W')
    boxes = torch.rand(3, 6, 4) * 40
    boxes[..., 2:] += boxes[..., :2] + 8
    steps = torch.arange(6).expand(3, 6)
    batched = sample_tube_rois(feats, torch.tensor([1, 1, 1]), steps, boxes, (3, 3), 0.125)
    single = sample_tube_rois(feats[1:], torch.tensor([0, 0, 0]), steps, boxes, (3, 3), 0.125)
    assert single.shape == (3, 6, 4, 3, 3)
    torch.testing.assert_close(single, batched)
    # features linear in (x, y): bilinear RoIAlign averages to the value at the box centre in feature
    # coordinates, (x1 + x2) / 2 * scale - 0.5 (aligned=True)
    ys, xs = torch.meshgrid(torch.arange(12.), torch.arange(16.), indexing='ij')
    lin = (xs + 10 * ys).expand(1, 2, 6, 12, 16).clone()
    one = sample_tube_rois(lin, torch.tensor([0]), torch.tensor([[4]]),
                           torch.tensor([[[24., 16., 40., 32.]]]), (1, 1), 0.125)
    torch.testing.assert_close(one.flatten(), torch.tensor([3.5 + 10 * 2.5] * 2))
