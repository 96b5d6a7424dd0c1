"""KeyFrameEncoder: the input frame nearest a key frame, one 2-D pass per distinct (clip, frame) pair, and
CFAD on a long window refining its key boxes on these features."""
import os.path as osp
import sys

import pytest
import torch
from mmaction.registry import MODELS

import cfad_mm  # noqa: F401
from cfad_mm.models.utils import input_frame_spacing, input_span_frames, nearest_input_frames


def test_nearest_input_frame_of_span_frames():
    # 16 frames sampled every 4 of a 61-frame span: frame f is input f / 4
    key = torch.tensor([[0, 1, 3, 5, 7, 30, 59, 60]])
    assert nearest_input_frames(key, 16, 61).tolist() == [[0, 0, 1, 1, 2, 8, 15, 15]]
    # dense windows: every frame is an input
    assert nearest_input_frames(torch.arange(16)[None], 16, 16).tolist() == [list(range(16))]


def test_input_span_frames_invert_the_sampling():
    # T x k windows: the spacing is k and input j is span frame j k, for every T and k
    for t, k in [(16, 4), (32, 4), (8, 3), (14, 3), (16, 1), (1, 1)]:
        span = (t - 1) * k + 1
        assert input_frame_spacing(t, span) == k
        j = torch.arange(t)
        assert input_span_frames(j, t, span).tolist() == (j * k).tolist()
        assert nearest_input_frames(input_span_frames(j, t, span), t, span).tolist() == j.tolist()


def test_key_frame_maps_run_each_distinct_frame_once():
    torch.manual_seed(0)
    enc = MODELS.build(dict(type='KeyFrameEncoder', out_channels=5, widths=(4, 6))).eval()
    frames = torch.randn(2, 3, 8, 32, 48)  # 8 frames sampled every 3 of a 22-frame span
    tube_batch = torch.tensor([0, 1, 1])
    key_frames = torch.tensor([[0, 3, 21], [3, 4, 21], [21, 9, 3]])  # inputs 0, 1, 7 / 1, 1, 7 / 7, 3, 1
    calls = []
    enc.register_forward_hook(lambda m, a, out: calls.append(a[0].shape[0]))
    with torch.no_grad():
        maps, steps, scale, snapped = enc.key_frame_maps(frames, tube_batch, key_frames, 22)
    assert calls == [6]  # (0,0) (0,1) (0,7) (1,1) (1,7) (1,3): six distinct frames in one pass
    assert maps.shape == (1, 5, 6, 8, 12) and scale == 12 / 48
    # the keys move to the span frames of those inputs (input j is span frame 3 j)
    assert snapped.tolist() == [[0, 3, 21], [3, 3, 21], [21, 9, 3]]
    assert snapped.dtype == torch.get_default_dtype()  # times to decode at, also for integer key frames
    with torch.no_grad():
        for r, (b, inputs) in enumerate(zip([0, 1, 1], [[0, 1, 7], [1, 1, 7], [7, 3, 1]])):
            for m, j in enumerate(inputs):
                assert torch.allclose(maps[0, :, steps[r, m]], enc(frames[b, :, j][None])[0], atol=1e-5)


def test_long_window_cfad_refines_on_the_key_frame_features():
    sys.path.insert(0, osp.dirname(__file__))
    from test_long_span import S, long_span_cfg, long_span_sample
    torch.manual_seed(0)
    cfg = long_span_cfg(dict(type='SplineTubeCoder', max_frames=S, knot_interval=25))
    cfg['roi_head']['key_frame_encoder'] = dict(type='KeyFrameEncoder', widths=(8, 16, 16))
    model = MODELS.build(cfg)
    model.init_weights()
    clip, ds = long_span_sample()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(losses.values()).backward()
    grad = model.roi_head.key_frame_encoder.net[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0  # the key-box losses reach the 2-D branch
    model.eval()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), False)
    with torch.no_grad():
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
    assert pred.tubes.shape[1:] == (S, 4)
    feats = model.extract_feat(data['inputs'])
    from cfad_mm.models.utils.clip_geometry import ClipGeometry
    geom = ClipGeometry.of(data['inputs'], feats, model.frame_interval)
    coeffs = torch.zeros(1, 4, model.coder.num_coeffs)
    with pytest.raises(ValueError, match='needs the input frames'):
        model.roi_head.predict(feats, torch.tensor([0]), coeffs, torch.tensor([[10.0, 100.0]]), geom)
