"""Export CFAD's tensor path (backbone + coarse + refine, no Python post-processing) to ONNX and check it.

The graph is ``model(inputs, mode='tensor')`` (``CFAD._forward``) for a FIXED input shape ``N C T H W``. Its
input is a batch of NORMALISED clips: ``(frames_rgb - mean) / std`` with the ``data_preprocessor`` mean/std of
the config (printed by this tool). Outputs, with ``k = test_cfg.topk`` coarse tubes per clip, ``K`` classes,
polynomial degree ``D``:

    actionness (N, T')   heatmap (N, K, H', W')   coeff_map (N, 4(D+1), H', W')   extent_map (N, 2, H', W')
    scores (N, k)   labels (N, k) int64   coeffs (N, k, 4, D+1)   extents (N, k, 2)
    refined_coeffs (N, k, 4, D+1)   cls_logits (N, k, K+1)          (the last two only when model.refine)

Post-processing needed after the graph (``cfad_mm.apis.export.tensor_outputs_to_tubes`` implements 1-4):
    1. final score = sqrt(scores * softmax(cls_logits)[label])   (coarse-only models: scores)
    2. boxes at every clip frame: PolyTubeCoder.decode(refined_coeffs, extents, (H, W), num_frames=T),
       clipped to the clip; tube mask = frames within half a frame of [t_start, t_end]
    3. score threshold, class-wise tube NMS (spatio-temporal IoU), top max_per_clip
    4. boxes back to original video pixels (undo the resize of the test pipeline)
    5. for whole videos: sliding windows + linking of clip tubes (cfad_mm.evaluation.linking)
The graph uses the whole-clip proposal only; ``predict`` also pools actionness segments (identical with
``--cfg-options model.proposal_head.max_proposals=1``). Details: docs/deployment.md.

After exporting, the tool runs PyTorch and onnxruntime on the same clip (random, or the first clip of
--video), prints the max absolute difference per output and exits with status 1 when one exceeds --tolerance;
then it compares the final tubes both give after the post-processing (same tubes, labels and frames; scores
within --tolerance, boxes within --box-tolerance pixels).
The per-tube outputs are compared on the top-k slots with a score >= test_cfg.score_thr (the order of the
slots below, which post-processing drops, is arbitrary); a trained model finds no tube in a random clip, so
give --video to check them.

Example:
    python tools/deployment/export_onnx.py configs/cfad/cfad_r3d-18-tiny_synthetic.py \\
        work_dirs/synthetic_demo/best.pth --out work_dirs/cfad_tiny.onnx --shape 1 3 16 96 128
"""
import argparse
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.apis.export import DEFAULT_OPSET, default_input_shape, random_clip  # noqa: E402,F401

EPILOG = __doc__[__doc__.index('The graph is'):__doc__.index('Example:')]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export CFAD (backbone + coarse + refine) to ONNX and check it '
                                            'with onnxruntime', epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out', default=None, help='output .onnx file (default: next to the checkpoint, '
                   '<checkpoint name>.onnx)')
    p.add_argument('--shape', type=int, nargs=5, default=None, metavar=('N', 'C', 'T', 'H', 'W'),
                   help='input shape (fixed in the graph); default: 1 3 <clip_len> and the test resize '
                   '(short side and 4/3 of it, or the fixed size when keep_ratio=False)')
    p.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (>= 16)')
    p.add_argument('--tolerance', type=float, default=1e-3,
                   help='largest accepted max abs difference between PyTorch and onnxruntime')
    p.add_argument('--box-tolerance', type=float, default=0.05,
                   help='largest difference of a final tube box (network-input pixels) between PyTorch and '
                   'onnxruntime. Default: 0.05')
    p.add_argument('--no-check', action='store_true', help='export only, no onnxruntime comparison')
    p.add_argument('--seed', type=int, default=0, help='seed of the random check clip')
    p.add_argument('--video', default=None,
                   help='check on the first clip of this video (file or frame folder) instead of a random '
                        'clip: a trained model finds no tube in noise, so only a real clip checks the '
                        'per-tube outputs')
    p.add_argument('--verbose', action='store_true', help='show the exporter warnings')
    p.add_argument('--unsafe-load', action='store_true',
                   help='load the checkpoint with full pickle semantics: ONLY for a file you trust')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return p.parse_args(argv)


def video_clip(model, shape, path):
    """The first ``T`` frames of a video (repeated if shorter), resized to ``(H, W)``, as ``(N, C, T, H, W)``
    normalised clips (the same clip ``N`` times)."""
    import cv2
    import numpy as np
    import torch

    from cfad_mm.apis.inference import VideoFrames
    n, c, t, h, w = shape
    video = VideoFrames(path)
    frames = video.get([min(i, video.num_frames - 1) for i in range(t)])
    clip = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames])  # (T, H, W, 3)
    clip = torch.from_numpy(clip).permute(3, 0, 1, 2).contiguous()
    return model.data_preprocessor(dict(inputs=[clip] * n, data_samples=None), False)['inputs']


def stage(index: int, total: int, what: str) -> None:
    """One line per stage of the tool (the export and the check take a while on a CPU)."""
    print(f'[{index}/{total}] {what} ...', flush=True)


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} not found: {path}')
    from cfad_mm.apis import init_detector
    from cfad_mm.apis.export import compare_with_onnxruntime, export_onnx
    from cfad_mm.engine.checkpoint import CHECKPOINT_ERRORS
    stages = 2 if args.no_check else 3
    stage(1, stages, f'loading {args.checkpoint}')
    try:
        model = init_detector(args.config, args.checkpoint, 'cpu', args.cfg_options,
                              unsafe_load=args.unsafe_load)
    except CHECKPOINT_ERRORS as err:
        raise SystemExit(f'error: {err}') from None
    shape = tuple(args.shape) if args.shape else default_input_shape(model.cfg)
    out = args.out or osp.splitext(args.checkpoint)[0] + '.onnx'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if args.video:
        from cfad_mm.datasets.media import MediaError
        try:
            inputs = video_clip(model, shape, args.video)
        except (FileNotFoundError, MediaError) as err:  # missing, empty or undecodable video / frame folder
            raise SystemExit(f'error: {err}') from None
    else:
        inputs = random_clip(model, shape, args.seed)
    pre = model.data_preprocessor
    print(f'input "inputs" {shape}: normalised clips, (rgb - mean) / std with mean '
          f'{[round(float(v), 3) for v in pre.mean.flatten()]} std '
          f'{[round(float(v), 3) for v in pre.std.flatten()]}')
    stage(2, stages, f'exporting to {out} (torch.onnx, opset {args.opset})')
    t0 = time.perf_counter()
    try:
        names = export_onnx(model, inputs, out, opset=args.opset, verbose=args.verbose)
    except Exception as e:  # name the config and the shape in the message
        raise SystemExit(f'error: exporting {args.config} with input shape {shape} failed: '
                         f'{type(e).__name__}: {e}') from e
    print(f'exported {out} (opset {args.opset}, {osp.getsize(out) / 1e6:.1f} MB) in '
          f'{time.perf_counter() - t0:.1f} s; outputs: {", ".join(names)}')
    if args.no_check:
        return {}
    stage(3, stages, 'checking: PyTorch and onnxruntime on the same clip')
    diffs, num_slots, tube_diffs = compare_with_onnxruntime(model, out, inputs)
    print(f'max abs difference PyTorch vs onnxruntime (tolerance {args.tolerance:g}; per-tube outputs on the '
          f'{num_slots} top-k slots with a score >= test_cfg.score_thr={model.test_cfg["score_thr"]:g}):')
    for name, d in diffs.items():
        print(f'  {name:<15} {d:.3g}' + ('   <-- above tolerance' if d > args.tolerance else ''))
    bad = [n for n, d in diffs.items() if d > args.tolerance]
    if bad:
        raise SystemExit(f'error: {out}: outputs {bad} differ from PyTorch by more than {args.tolerance:g}')
    print(f'final tubes after the post-processing (tensor_outputs_to_tubes): {int(tube_diffs["tube_count"])} '
          f'clip(s) with other tubes (count, labels or frames); max abs difference of the scores '
          f'{tube_diffs["tube_scores"]:.3g} (tolerance {args.tolerance:g}), of the boxes '
          f'{tube_diffs["tube_boxes"]:.3g} px (tolerance {args.box_tolerance:g} px)')
    if (tube_diffs['tube_count'] > 0 or tube_diffs['tube_scores'] > args.tolerance
            or tube_diffs['tube_boxes'] > args.box_tolerance):
        raise SystemExit(f'error: {out}: the final tubes differ from PyTorch\'s')
    print('onnxruntime check passed')
    return diffs


if __name__ == '__main__':
    main()
