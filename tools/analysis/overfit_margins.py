"""Measure the margins of the overfitting test (tests/test_models/test_cfad.py) across CPU kernels and seeds.

torch picks its vectorised CPU kernels by machine (AVX-512, AVX2, or the scalar ``default`` that every x86-64
CPU has) and the number of threads changes the order of float reductions; a short training ends differently
under each. This tool runs ``overfit_one_clip`` of the test module in a fresh process per setting
(``ATEN_CPU_CAPABILITY``, ``OMP_NUM_THREADS``) and seed, and prints the tube IoU, the label and the loss
ratio, with the minimum per setting: the numbers behind the test's thresholds.

Usage::

    python tools/analysis/overfit_margins.py  # seeds 0-4, default/avx2/native, 1 and 2 threads
    python tools/analysis/overfit_margins.py --steps 30 --seeds 0 1 2 3
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CHILD = ('import json, sys; sys.path.insert(0, {tests!r}); import test_cfad; '
         'print("RESULT", json.dumps(test_cfad.overfit_one_clip({seed}, {steps})))')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Margins of the overfitting test across CPU kernels and seeds')
    p.add_argument('--steps', type=int, default=None,
                   help='training steps (default: the test\'s OVERFIT_STEPS)')
    p.add_argument('--seeds', type=int, nargs='+', default=list(range(5)))
    p.add_argument('--kernels', nargs='+', default=['default', 'avx2', 'native'],
                   help='ATEN_CPU_CAPABILITY values; native = the machine\'s own choice')
    p.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    return p.parse_args(argv)


def run_one(kernel: str, threads: int, seed: int, steps: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.pop('ATEN_CPU_CAPABILITY', None)
    if kernel != 'native':
        env['ATEN_CPU_CAPABILITY'] = kernel
    code = CHILD.format(tests=osp.join(REPO, 'tests', 'test_models'), seed=seed, steps=steps)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=REPO)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')]
    if out.returncode != 0 or not lines:
        raise SystemExit(f'error: the run kernels={kernel} threads={threads} seed={seed} failed:\n'
                         f'{out.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.join(REPO, 'tests', 'test_models'))
    import test_cfad
    steps = args.steps or test_cfad.OVERFIT_STEPS
    total = len(args.kernels) * len(args.threads) * len(args.seeds)
    print(f'overfit_one_clip, {steps} steps; {total} runs')
    print(f'{"kernels":<8} {"threads":>7} {"seed":>4} {"iou":>6} {"label":>5} {"loss ratio":>10}')
    summary, done = [], 0
    for kernel in args.kernels:
        for threads in args.threads:
            ious, ratios, labels = [], [], []
            for seed in args.seeds:
                r = run_one(kernel, threads, seed, steps)
                done += 1
                ious.append(r['iou'])
                ratios.append(r['loss_ratio'])
                labels.append(r['label'])
                print(f'{kernel:<8} {threads:>7} {seed:>4} {r["iou"]:>6.3f} {r["label"]:>5} '
                      f'{r["loss_ratio"]:>10.4f}   [{done}/{total}]', flush=True)
            summary.append((kernel, threads, min(ious), sorted(ious)[len(ious) // 2], max(ratios),
                            sum(lb == 1 for lb in labels), len(labels)))
    print('\nper setting: min IoU, median IoU, max loss ratio, right labels')
    for kernel, threads, lo, med, ratio, right, n in summary:
        print(f'  {kernel:<8} threads {threads}: {lo:.3f}  {med:.3f}  {ratio:.4f}  {right}/{n}')
    print(f'overall: min IoU {min(s[2] for s in summary):.3f}, max loss ratio '
          f'{max(s[4] for s in summary):.4f}')
    return summary


if __name__ == '__main__':
    main()
