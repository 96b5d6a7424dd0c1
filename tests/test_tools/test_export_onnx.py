"""tools/deployment/export_onnx.py: ONNX export of the tensor path, onnxruntime check, post-processing."""
import glob
import os.path as osp
import sys

import numpy as np
import pytest
import torch

import cfad_mm  # noqa: F401
from cfad_mm.apis import init_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
SHAPE = ['1', '3', '8', '48', '64']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_detector(CONFIG)
    path = tmp_path_factory.mktemp('ckpt') / 'untrained.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def test_export_tool_matches_pytorch(tmp_path, checkpoint, capsys):
    import export_onnx
    out = tmp_path / 'cfad.onnx'
    diffs = export_onnx.main([CONFIG, checkpoint, '--out', str(out), '--shape'] + SHAPE)
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    assert [o.name for o in graph.graph.output] == list(diffs)
    assert list(diffs) == ['actionness', 'heatmap', 'coeff_map', 'extent_map', 'scores', 'labels', 'coeffs',
                           'extents', 'refined_coeffs', 'cls_logits']
    assert max(diffs.values()) < 1e-3, diffs
    # the refine stage is in the graph: its RoIAlign runs in onnxruntime
    assert any(n.op_type == 'RoiAlign' for n in graph.graph.node)
    printed = capsys.readouterr().out
    assert 'refined_coeffs' in printed and 'onnxruntime check passed' in printed
    # a tolerance no float computation meets makes the tool fail, naming the outputs
    with pytest.raises(SystemExit, match='differ from PyTorch by more than 0'):
        export_onnx.main([CONFIG, checkpoint, '--out', str(tmp_path / 'again.onnx'), '--shape'] + SHAPE +
                         ['--tolerance', '0', '--cfg-options', 'model.refine=False'])


def test_onnx_outputs_plus_postprocessing_equal_predict(tmp_path, checkpoint):
    """onnxruntime outputs + tensor_outputs_to_tubes give the tubes of ``predict`` (one proposal per clip)."""
    from mmaction.structures import ActionDataSample

    from cfad_mm.apis.export import export_onnx as export
    from cfad_mm.apis.export import output_names, tensor_outputs_to_tubes
    model = init_detector(CONFIG, checkpoint, cfg_options={'model.proposal_head.max_proposals': 1,
                                                           'model.test_cfg.score_thr': 0.0})
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 8, 48, 64)
    path = str(tmp_path / 'm.onnx')
    export(model, inputs, path)
    assert not model.training  # the exporter must not leave the model in training mode
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {'inputs': inputs.numpy()})
    assert [o.name for o in sess.get_outputs()] == list(output_names(model))
    tubes = tensor_outputs_to_tubes(outs, model, (48, 64), 8)
    with torch.no_grad():
        preds = model(inputs, [ActionDataSample(), ActionDataSample()], mode='predict')
    for res, ds in zip(tubes, preds):
        pred = ds.pred_instances
        assert len(res['scores']) == len(pred) > 0
        np.testing.assert_array_equal(res['labels'], pred.labels.numpy())
        np.testing.assert_allclose(res['scores'], pred.scores.numpy(), atol=1e-5)
        np.testing.assert_array_equal(res['tube_masks'], pred.tube_masks.numpy())
        np.testing.assert_allclose(res['tubes'], pred.tubes.numpy(), atol=1e-3)


def test_export_errors_name_the_problem(tmp_path, checkpoint):
    import export_onnx

    from cfad_mm.apis.export import export_onnx as export
    with pytest.raises(SystemExit, match='checkpoint not found: .*nope.pth'):
        export_onnx.main([CONFIG, str(tmp_path / 'nope.pth')])
    with pytest.raises(ValueError, match='opset must be >= 16'):
        export(torch.nn.Identity(), torch.zeros(1, 3, 8, 48, 64), str(tmp_path / 'x.onnx'), opset=13)


def test_export_check_on_a_video_clip_compares_the_detected_tubes(tiny_synth, tmp_path, checkpoint, capsys):
    """--video checks on a real clip; the per-tube outputs are compared on the slots above the score
    threshold."""
    import re

    import export_onnx
    video = sorted(glob.glob(osp.join(tiny_synth[0], 'videos', '*', '*.mp4')))[0]
    diffs = export_onnx.main([CONFIG, checkpoint, '--out', str(tmp_path / 'v.onnx'), '--shape'] + SHAPE +
                             ['--video', str(video)])
    assert max(diffs.values()) < 1e-3, diffs
    slots = int(re.search(r'on the (\d+) top-k slots with a score >= test_cfg.score_thr=0.05',
                          capsys.readouterr().out).group(1))
    assert 0 < slots <= 20
    with pytest.raises(SystemExit, match='^error: video not found'):
        export_onnx.main([CONFIG, checkpoint, '--out', str(tmp_path / 'w.onnx'), '--shape'] + SHAPE +
                         ['--video', str(tmp_path / 'missing.mp4')])
