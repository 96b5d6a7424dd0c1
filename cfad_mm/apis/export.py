"""ONNX export of CFAD's tensor path (backbone + coarse + refine) and its check with
onnxruntime.

The exported graph is :meth:`CFAD._forward` (``mode='tensor'``) with fixed input and output shapes. What the
pinned stack needs during the export:

1. mmcv 2.1.0's ``RoIAlign`` ONNX symbolic and mmdet 3.3.0's import of ``mmdet.core.export``: both fixed by
   :func:`cfad_mm.compat.onnx_export.onnx_export_context` (a workaround of :mod:`cfad_mm.compat`, with its
   version guard), applied only during :func:`export_onnx`.
2. ``torch.linalg.solve`` (the closed-form re-fit of :meth:`PolyTubeCoder.fit_update`) has no ONNX operator;
   ``fit_update`` itself switches to an unrolled Cholesky solve while ``torch.onnx.is_in_onnx_export()``.

The exporter is torch's TorchScript-based one (``dynamo=False``): the ``dynamo`` exporter, the default of
torch 2.13, cannot trace mmcv's C++ ``RoIAlign`` extension (it is not a registered torch operator).
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from cfad_mm.compat.onnx_export import onnx_export_context

#: ONNX opset used by default (>= 16 is required for ``RoiAlign(coordinate_transformation_mode=...)``).
DEFAULT_OPSET = 17

COARSE_OUTPUTS = ('actionness', 'heatmap', 'coeff_map', 'extent_map', 'scores', 'labels', 'coeffs', 'extents')
REFINE_OUTPUTS = ('refined_coeffs', 'cls_logits')


def default_input_shape(cfg) -> Tuple[int, int, int, int, int]:
    """``(1, 3, clip_len, H, W)`` of a test clip: the size of the test pipeline's resize (``scale=(W, H)``
    with ``keep_ratio=False``), else its short side ``s`` and ``W = round(4 s / 3)`` (4:3 videos).

    The default input of ``tools/deployment/export_onnx.py`` and ``tools/analysis/benchmark.py``.
    """
    test_ds = cfg.get('test_dataloader', {}).get('dataset', {})
    clip_len = int(test_ds.get('clip_len', cfg.get('clip_len', 16)))
    h, w = 224, 299
    for step in test_ds.get('pipeline', []):
        if step.get('type') in ('TubeResize', 'Resize') and isinstance(step.get('scale'), (tuple, list)):
            sw, sh = (int(v) for v in step['scale'])
            if not step.get('keep_ratio', True) and sw > 0 and sh > 0:
                h, w = sh, sw
            else:
                short = sh if sw == -1 else min(sw, sh)
                h, w = short, int(round(short * 4 / 3))
    return 1, 3, clip_len, h, w


def random_clip(model, shape: Sequence[int], seed: int = 0) -> Tensor:
    """A random uint8 clip batch normalised by the model's data preprocessor: ``(N, C, T, H, W)`` float.

    The clips are drawn from a ``torch.Generator`` seeded with ``seed`` (the global RNG is not used), so the
    same ``shape`` and ``seed`` give the same batch.
    """
    g = torch.Generator().manual_seed(seed)
    n, c, t, h, w = shape
    clips = [torch.randint(0, 256, (c, t, h, w), generator=g, dtype=torch.uint8) for _ in range(n)]
    return model.data_preprocessor(dict(inputs=clips, data_samples=None), False)['inputs']


def output_names(model) -> Tuple[str, ...]:
    """Names of the tensor-path outputs of a CFAD model (see :meth:`CFAD._forward` for their shapes)."""
    return COARSE_OUTPUTS + (REFINE_OUTPUTS if getattr(model, 'refine', False) else ())


class TensorModeWrapper(nn.Module):
    """``forward(inputs)`` -> ``model(inputs, mode='tensor')``: the module handed to the exporter.

    Args:
        model (nn.Module): a CFAD model in eval mode. ``inputs`` must be normalised clips ``(N, 3, T, H, W)``
            (i.e. after the data preprocessor's mean/std normalisation).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        return self.model(inputs, mode='tensor')


def export_onnx(model: nn.Module, inputs: Tensor, out_file: str, opset: int = DEFAULT_OPSET,
                verbose: bool = False) -> List[str]:
    """Export ``model``'s tensor path for clips of the shape of ``inputs`` to ``out_file``.

    Args:
        model (nn.Module): a CFAD model; it is in eval mode afterwards.
        inputs (Tensor): an example normalised clip batch ``(N, 3, T, H, W)``; the graph is fixed to this
            shape.
        out_file (str): the ``.onnx`` file to write.
        opset (int): ONNX opset, >= 16. Defaults to :data:`DEFAULT_OPSET`.
        verbose (bool): print the exporter's warnings (tracer warnings about shape-dependent Python values,
            expected with fixed shapes). Defaults to False.

    Returns:
        list[str]: the output names, in the order of :meth:`CFAD._forward`.
    """
    if opset < 16:
        raise ValueError(f'opset must be >= 16 (RoiAlign with coordinate_transformation_mode), got {opset}')
    if inputs.dim() != 5:
        raise ValueError(f'inputs must be a clip batch (N, C, T, H, W), got shape {tuple(inputs.shape)}')
    names = list(output_names(model))
    # The exporter restores the wrapper's training flag afterwards, recursively: the wrapper must be in eval
    # mode already, or the model is left in training mode.
    wrapper = TensorModeWrapper(model).eval()
    with onnx_export_context(), torch.no_grad(), warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter('ignore')
        torch.onnx.export(wrapper, (inputs, ), out_file, dynamo=False, opset_version=opset,
                          input_names=['inputs'], output_names=names, do_constant_folding=True)
    return names


# Outputs with one row per coarse tube (N, k, ...), in the order of ``scores``.
PER_TUBE_OUTPUTS = ('labels', 'coeffs', 'extents', 'refined_coeffs', 'cls_logits')


def compare_with_onnxruntime(model: nn.Module, onnx_file: str, inputs: Tensor,
                             min_score: Optional[float] = None
                             ) -> Tuple[Dict[str, float], int, Dict[str, float]]:
    """Max absolute difference between PyTorch's and onnxruntime's outputs, per output name, and between
    the final tubes both give after the post-processing (:func:`compare_final_tubes`).

    The maps and ``scores`` are compared everywhere. The per-tube outputs (``labels``, ``coeffs``,
    ``extents``, ``refined_coeffs``, ``cls_logits``) are compared on the top-k slots whose PyTorch score is at
    least ``min_score``: below it the scores of a trained model are ~1e-15 and less (PyTorch and onnxruntime
    do not even agree whether a sigmoid of -35 is 0), so the ORDER of those slots, which post-processing
    discards anyway (score threshold), is arbitrary in both runtimes.

    Args:
        model (nn.Module): the exported CFAD model.
        onnx_file (str): the exported graph.
        inputs (Tensor): normalised clips of the exported shape.
        min_score (float, optional): Slots compared for the per-tube outputs. Defaults to
            ``model.test_cfg['score_thr']``.

    Returns:
        tuple[dict[str, float], int, dict[str, float]]: output name -> max abs difference (``labels`` compared
        as numbers too), the number of tube slots compared, and :func:`compare_final_tubes` of the two runs.
    """
    import onnxruntime as ort
    model.eval()
    with torch.no_grad():
        ref = model(inputs, mode='tensor')
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {sess.get_inputs()[0].name: inputs.cpu().numpy()})
    names = [o.name for o in sess.get_outputs()]
    if len(outs) != len(ref):
        raise RuntimeError(f'{onnx_file}: {len(outs)} outputs, the PyTorch model gives {len(ref)}')
    if min_score is None:
        min_score = float(model.test_cfg['score_thr'])
    scores = ref[names.index('scores')].detach().cpu().numpy()
    slots = scores >= min_score  # (N, k)
    diffs = {}
    for name, r, o in zip(names, ref, outs):
        r = r.detach().cpu().numpy()
        if r.shape != o.shape:
            raise RuntimeError(f'{onnx_file}: output {name} has shape {o.shape}, PyTorch gives {r.shape}')
        if name in PER_TUBE_OUTPUTS:
            r, o = r[slots], o[slots]
        diffs[name] = float(np.abs(r.astype(np.float64) - o.astype(np.float64)).max()) if r.size else 0.0
    img_shape = (int(inputs.shape[-2]), int(inputs.shape[-1]))
    from cfad_mm.datasets.sampling import span_length
    num_frames = span_length(inputs.shape[2], getattr(model, 'frame_interval', 1))
    tube_diffs = compare_final_tubes(model, [r.detach().cpu() for r in ref], outs, img_shape, num_frames)
    return diffs, int(slots.sum()), tube_diffs


def tensor_outputs_to_tubes(outputs: Sequence, model, img_shape: Tuple[int, int], num_frames: int,
                            score_thr: Optional[float] = None) -> List[Dict[str, np.ndarray]]:
    """The post-processing after the exported graph: :func:`outputs_to_clip_tubes` on each clip's outputs, the
    function :meth:`CFAD.predict` calls (final scores, boxes at every frame, score threshold, class-wise tube
    NMS, ``max_per_clip``).

    Args:
        outputs (Sequence): the graph's outputs (numpy arrays or tensors) in :func:`output_names` order.
        model: the CFAD model (for its coder, ``refine`` flag and ``test_cfg``).
        img_shape (tuple[int, int]): ``(H, W)`` of the network input.
        num_frames (int): Frames of the span, ``(T - 1) * model.frame_interval + 1`` (``T`` of the network
            input when the model samples every frame).
        score_thr (float, optional): Defaults to ``model.test_cfg['score_thr']``.

    Returns:
        list[dict]: per clip ``tubes (n, T, 4)`` (network-input pixels; map to the original video with the
        resize factors of the pipeline), ``tube_masks (n, T)``, ``scores (n,)``, ``labels (n,)``.
    """
    from cfad_mm.models.utils.tube_postprocessing import outputs_to_clip_tubes
    names = output_names(model)
    if len(outputs) != len(names):
        raise ValueError(f'tensor_outputs_to_tubes: {len(outputs)} outputs given, '
                         f'the model has {len(names)}: {", ".join(names)}')
    out = dict(zip(names, [torch.as_tensor(np.asarray(o)) for o in outputs]))
    cfg = model.test_cfg
    thr = cfg['score_thr'] if score_thr is None else score_thr
    coeffs = out['refined_coeffs'] if model.refine else out['coeffs']
    results = []
    for i in range(out['scores'].shape[0]):
        tubes = outputs_to_clip_tubes(
            model.coder, out['scores'][i].float(), out['labels'][i].long(), coeffs[i].float(),
            out['extents'][i].float(), out['cls_logits'][i].float() if model.refine else None, img_shape,
            num_frames, thr, cfg['nms_iou'], cfg['max_per_clip'])
        results.append({k: tubes.get(k).cpu().numpy() for k in ('tubes', 'tube_masks', 'scores', 'labels')})
    return results


def compare_final_tubes(model: nn.Module, reference: Sequence, outputs: Sequence, img_shape: Tuple[int, int],
                        num_frames: int) -> Dict[str, float]:
    """Compare the final tubes (after :func:`tensor_outputs_to_tubes`) of two runs of the graph.

    Returns:
        dict[str, float]: ``tube_count`` (number of clips whose tube count, labels or masks differ),
        ``tube_scores`` and ``tube_boxes`` (max abs difference over the tubes of the clips that agree).
    """
    ref = tensor_outputs_to_tubes(reference, model, img_shape, num_frames)
    got = tensor_outputs_to_tubes(outputs, model, img_shape, num_frames)
    differ, score_diff, box_diff = 0, 0.0, 0.0
    for r, g in zip(ref, got):
        if (len(r['labels']) != len(g['labels']) or not np.array_equal(r['labels'], g['labels'])
                or not np.array_equal(r['tube_masks'], g['tube_masks'])):
            differ += 1
            continue
        if len(r['labels']):
            score_diff = max(score_diff, float(np.abs(r['scores'] - g['scores']).max()))
            box_diff = max(box_diff,
                           float(np.abs(r['tubes'][r['tube_masks']] - g['tubes'][g['tube_masks']]).max()))
    return dict(tube_count=float(differ), tube_scores=score_diff, tube_boxes=box_diff)
