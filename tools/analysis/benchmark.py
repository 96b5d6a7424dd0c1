"""Inference throughput and peak memory of a CFAD config: clips/s, frames/s, median over repeated runs.

The model is built from CONFIG (random initialisation unless --checkpoint is given: the speed does not depend
on the weights, except through the number of tubes that survive to NMS in ``predict`` mode) and fed random
clips of ``--batch-size x 3 x --clip-len x H x W`` (decoding and the data pipeline are excluded). Each of the
``--repeats`` timed runs is one forward pass under ``torch.inference_mode()``, after ``--warmup`` untimed
runs; the median (and min / max) time per run is reported.

Modes: ``predict`` (default) = the full test-time path of one clip batch (backbone, proposals, coarse, refine,
decoding, tube NMS); ``tensor`` = the exported graph's path (``CFAD._forward``, no post-processing).

Peak memory (:class:`cfad_mm.analysis.speed.PeakMemory`, during warm-up + timed runs), reported as the
highest value and as its growth over the value before the runs:
    * CPU: the resident set size of the process, sampled every 2 ms from ``/proc/self/statm`` (without
      ``/proc``: the process peak ``ru_maxrss``). tracemalloc is not used: it does not see torch's C++
      allocations.
    * CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats`` (tensors only,
      not the caching allocator's reserve).

The timing and the meter live in :mod:`cfad_mm.analysis.speed` (:func:`~cfad_mm.analysis.speed.time_forward`);
this tool parses the options, builds the model and prints the numbers.

Example:
    python tools/analysis/benchmark.py configs/cfad/cfad_r3d-18-tiny_synthetic.py --batch-size 1 --repeats 20
    python tools/analysis/benchmark.py configs/cfad/cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py --shape 224 224
    \\
        --device cuda:0 --out-json work_dirs/bench_i3d.json
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.analysis.speed import time_forward  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='CFAD inference throughput (clips/s, frames/s) and peak memory',
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__[__doc__.index('Modes:'):__doc__.index('Example:')])
    p.add_argument('config', help='config file')
    p.add_argument('--checkpoint', default=None, help='checkpoint (default: random initialisation)')
    p.add_argument('--unsafe-load', action='store_true',
                   help='load the checkpoint with full pickle semantics: ONLY for a file you trust')
    p.add_argument('--clip-len', type=int, default=None, help='frames per clip (default: the config\'s)')
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='frame size (default: the test resize short side and 4/3 of it)')
    p.add_argument('--batch-size', type=int, default=1, help='clips per forward pass')
    p.add_argument('--repeats', type=int, default=10, help='timed runs')
    p.add_argument('--warmup', type=int, default=3, help='untimed runs before timing')
    p.add_argument('--no-progress', action='store_true', help='no progress bar over the runs (on stderr)')
    p.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    p.add_argument('--mode', default='predict', choices=['predict', 'tensor'], help='path to time')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s default)')
    p.add_argument('--out-json', default=None, help='also write the numbers to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = p.parse_args(argv)
    for name in ('batch_size', 'repeats'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        p.error('--warmup must be >= 0')
    return args


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config not found: {args.config}')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    import torch

    from cfad_mm.apis import init_detector
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'error: --device {args.device} but CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    from cfad_mm.apis.export import default_input_shape, random_clip
    torch.manual_seed(0)
    from cfad_mm.engine.checkpoint import CHECKPOINT_ERRORS
    try:
        model = init_detector(args.config, args.checkpoint, args.device, args.cfg_options,
                              unsafe_load=args.unsafe_load)
    except CHECKPOINT_ERRORS as err:
        raise SystemExit(f'error: {err}') from None
    _, c, t, h, w = default_input_shape(model.cfg)
    t = args.clip_len or t
    h, w = args.shape or (h, w)
    inputs = random_clip(model, (args.batch_size, c, t, h, w), seed=0).to(args.device)
    res = time_forward(model, inputs, args.mode, args.repeats, args.warmup, progress=not args.no_progress)
    res.update(config=args.config, mode=args.mode, device=args.device, batch_size=args.batch_size, clip_len=t,
               shape=[h, w], threads=torch.get_num_threads(), torch=torch.__version__,
               cpu=platform.processor() or platform.machine(), warmup=args.warmup, repeats=args.repeats)
    print(f'{osp.basename(args.config)} [{args.mode}] on {args.device} ({res["threads"]} threads): '
          f'batch {args.batch_size} x {t} frames x {h}x{w}, '
          f'{args.warmup} warm-up + {args.repeats} timed runs')
    print(f'  time per run   median {res["median_s"] * 1e3:.1f} ms (min {res["min_s"] * 1e3:.1f}, '
          f'max {res["max_s"] * 1e3:.1f})')
    print(f'  throughput     {res["clips_per_s"]:.2f} clips/s, {res["frames_per_s"]:.1f} frames/s')
    print(f'  peak memory    {res["peak_mem_mib"]:.0f} MiB ({res["peak_mem_kind"]}; '
          f'+{res["peak_mem_increase_mib"]:.0f} MiB during the runs)')
    if args.out_json:
        os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
        with open(args.out_json, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()
