"""Frames/s for boxing EVERY frame of a video: CFAD vs mmaction2's AVA-style detector vs the backbone alone.

All three run in one process, on the same machine, with the SAME backbone config and input size, on the same
in-memory video (decoding is excluded for all three):

(a) **CFAD** -- sliding windows of ``T`` frames with stride ``S = T // 2`` (the test setting of the configs),
    coarse + refine + per-window post-processing + linking into video tubes
    (:func:`cfad_mm.apis.inference_video`).
(b) **AVA-style** -- mmdet ``FastRCNN`` with mmaction's ``AVARoIHead`` / ``SingleRoIExtractor3D`` /
    ``BBoxHeadAVA`` on the same backbone, run as its users run it: one clip of ``T`` frames centred on each
    frame to be labelled, the actors' boxes of that frame given as proposals (the person detector's cost is
    NOT counted, which favours (b)). ``AVARoIHead.predict`` accepts one clip at a time, so the backbone runs
    on batches of ``--batch-size`` clips and the RoI head on each clip of the batch. Its cost per frame does
    not depend on the video, so it is timed on ``--ava-frames`` frames spread over the video and reported per
    frame.
(c) **backbone alone** -- the backbone over the same windows as (a), same batches. A neck (``model.neck``,
    e.g. the I3D-R50 configs' ``ChannelMapper3d``) counts as part of (a), not of (c).

When the CFAD config runs its backbone in the ``channels_last_3d`` memory format (``model.channels_last``),
(b)'s backbone does too. All three methods use the same batch: on CPU, for batch 1 and narrow layers PyTorch
runs 3-D convolutions with its native kernel instead of oneDNN (``use_mkldnn`` heuristic of
``aten/src/ATen/native/Convolution.cpp``).

Each measurement is the median of ``--repeats`` timed runs after ``--warmup`` runs; the three methods are
interleaved in every round. Peak memory: :class:`cfad_mm.analysis.speed.PeakMemory` (CPU: resident set growth,
sampled; CUDA: ``torch.cuda.max_memory_allocated``). "Time outside the backbone" is measured inside (a)'s own
runs: the wall clock of its backbone calls over its whole time (median over the timed runs).

The same run also times training (clips/s and peak memory, tiny config, batch of the config) and profiles
where (a) spends its time (per stage, and the most expensive operators).

The measurement lives in :mod:`cfad_mm.analysis.speed`; this tool loops over the settings, prints and writes
the report.

Example (the defaults take about 1.5-3 minutes on 2 CPU cores)::

    python tools/analysis/speed_compare.py --out-md docs/benchmarks.md --out-png docs/figures/speed_vs_T.png
"""
import argparse
import os
import os.path as osp
import platform
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import cfad_mm  # noqa: E402,F401
import cfad_mm.analysis.speed as speed  # noqa: E402

SETTINGS = {
    # name: (config, input (H, W), note)
    'tiny': ('configs/cfad/cfad_r3d-18-tiny_synthetic.py', (96, 128), 'R3D-18 tiny, 96x128'),
    'r50': ('configs/cfad/cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py', (112, 112), 'I3D ResNet-50, 112x112'),
}
#: clip length of the per-stage breakdown and of the profile
STAGE_T = 16


def measure(setting, clip_len, args, device, log):
    """One row of the table: (a), (b) and (c) for ``setting`` at ``clip_len`` (see the module docstring)."""
    cfg_path, hw, _ = SETTINGS[setting]
    frames, boxes = speed.synthetic_video(args.num_frames, hw)
    cfad = speed.build_cfad(osp.join(REPO, cfg_path), hw, device)
    ava = speed.build_ava_detector(cfad.cfg, device)
    row = dict(setting=setting, T=clip_len)
    row.update(speed.compare_speed(cfad, ava, frames, boxes, clip_len, stride=max(1, clip_len // 2),
                                   batch_size=args.batch_size, ava_frames=args.ava_frames, warmup=args.warmup,
                                   repeats=args.repeats, device=device))
    log(f'{setting:5s} T={clip_len:2d}  CFAD {row["cfad_fps"]:7.1f} f/s  AVA-style {row["ava_fps"]:6.2f} f/s '
        f' backbone {row["backbone_fps"]:7.1f} f/s  (a)/(b) {row["a_over_b"]:5.2f}x  (a)/(c) '
        f'{row["a_over_c"]:.2f}  outside backbone {100 * row["outside_backbone"]:.0f}%')
    return row


def stages_and_profile(setting, args, device, profile):
    """:func:`cfad_mm.analysis.speed.stage_breakdown` of (a) at ``STAGE_T`` (and the profiler table)."""
    cfg_path, hw, _ = SETTINGS[setting]
    frames, _ = speed.synthetic_video(args.num_frames, hw)
    model = speed.build_cfad(osp.join(REPO, cfg_path), hw, device)
    video = speed.ArrayFrames(frames)
    stride = STAGE_T // 2
    stages = speed.stage_breakdown(model, video, STAGE_T, stride, batch_size=args.batch_size,
                                   repeats=args.repeats, device=device)
    prof = speed.profile_cfad(model, video, STAGE_T, stride, args.batch_size) if profile else None
    return stages, prof


def stages_markdown(stages) -> list:
    """Markdown table of :func:`cfad_mm.analysis.speed.stage_breakdown` results
    ``{setting: (spent, total)}``."""
    names = list(stages)
    heads = [f'{SETTINGS[n][2]}, T={STAGE_T}: ms per video (share)' for n in names]
    lines = ['| stage | ' + ' | '.join(heads) + ' |', '|---|' + '---|' * len(names)]
    for label, _ in speed.STAGES:
        cells = []
        for n in names:
            spent, total = stages[n]
            cells.append(f'{1000 * spent[label]:.1f} ({100 * spent[label] / total:.0f}%)')
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    cells = []
    for n in names:
        spent, total = stages[n]
        rest = total - spent['predict (all of the model)']
        cells.append(f'{1000 * rest:.1f} ({100 * rest / total:.0f}%)')
    lines.append('| sliding windows + linking (outside the model) | ' + ' | '.join(cells) + ' |')
    lines.append('| **all of (a)** | ' + ' | '.join(f'**{1000 * stages[n][1]:.1f}**' for n in names) + ' |')
    return lines


def markdown(rows, args, device, train, prof_text, elapsed, stages=None):
    """The report: the command, the machine, the measured numbers and what each column measures."""
    lines = ['# Speed: CFAD vs the AVA-style detector of mmaction2', '',
             f'Produced by `python tools/analysis/speed_compare.py {" ".join(args.argv)}`'.rstrip() +
             f' on {time.strftime("%Y-%m-%d")}, in {elapsed / 60:.1f} min.', '',
             f'Machine: {platform.machine()}, {os.cpu_count()} CPU cores ({platform.processor() or "cpu"}), '
             f'torch {torch.__version__}, device `{device}`, {torch.get_num_threads()} threads. Random '
             f'weights. Video: {args.num_frames} frames in memory (decoding excluded for all), 2 actors; '
             f'batches of {args.batch_size} clips; medians of {args.repeats} runs after {args.warmup} '
             'warm-up runs, the three methods interleaved.', '',
             'Frames/s = frames that get boxes (and scores) per second. (a) CFAD: windows of T, stride T/2, '
             'coarse + refine + linking. (b) mmaction2 AVA-style FastRCNN: one clip of T frames centred on '
             'each frame, RoI head clip by clip, ground-truth boxes as proposals (no person detector). (c) '
             'the backbone alone over the windows of (a). Time outside backbone: the share of (a)\'s time '
             'not spent inside its backbone calls, timed within the same runs (median over the runs); '
             '(a)/(c) compares separate runs. Memory: peak memory growth during the runs in MiB '
             f'({speed.PeakMemory(device).kind}).', '',
             '| backbone, input | T | (a) CFAD f/s | (b) AVA-style f/s | (c) backbone f/s | (a)/(b) | '
             '(a)/(c) | time outside backbone | mem (a) | mem (b) | mem (c) |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {SETTINGS[r["setting"]][2]} | {r["T"]} | {r["cfad_fps"]:.1f} | {r["ava_fps"]:.2f} | '
                     f'{r["backbone_fps"]:.1f} | {r["a_over_b"]:.2f}x | {r["a_over_c"]:.2f} | '
                     f'{100 * r["outside_backbone"]:.0f}% | {r["cfad_mem"]:.0f} | {r["ava_mem"]:.0f} | '
                     f'{r["backbone_mem"]:.0f} |')
    if train is not None:
        lines += ['', '## Training throughput (tiny config)', '',
                  f'{train["clips_per_s"]:.2f} clips/s ({train["frames_per_s"]:.0f} frames/s), batch '
                  f'{train["batch_size"]} of {train["clip_len"]} frames, forward + backward + AdamW step; '
                  f'peak memory growth {train["peak_mem_mib"]:.0f} MiB.']
    if args.out_png:
        lines += ['', f'![frames/s vs T]({osp.relpath(args.out_png, osp.dirname(args.out_md or "."))})']
    if stages:
        title = f'## Where (a) spends its time, per stage (T={STAGE_T}, one {args.num_frames}-frame video)'
        lines += ['', title, '', 'Wall clock inside each stage\'s method, averaged over the timed runs; '
                  'stages nest (the backbone and the heads are inside "predict").', '']
        lines += stages_markdown(stages)
    if prof_text:
        lines += ['', f'## Most expensive operators of (a) (torch.profiler, tiny, T={STAGE_T})', '', '```',
                  prof_text, '```']
    return '\n'.join(lines) + '\n'


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len({r['setting'] for r in rows}), figsize=(10, 4), squeeze=False)
    for ax, setting in zip(axes[0], dict.fromkeys(r['setting'] for r in rows)):
        rs = [r for r in rows if r['setting'] == setting]
        ts = [r['T'] for r in rs]
        for key, label in (('cfad', '(a) CFAD'), ('ava', '(b) AVA-style'), ('backbone', '(c) backbone only')):
            ax.plot(ts, [r[f'{key}_fps'] for r in rs], marker='o', label=label)
        ax.set_yscale('log')
        ax.set_xticks(ts)
        ax.set_xlabel('clip length T')
        ax.set_ylabel('frames/s (log)')
        ax.set_title(SETTINGS[setting][2])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('--settings', nargs='+', default=['tiny', 'r50'], choices=sorted(SETTINGS))
    p.add_argument('--clip-lens', nargs='+', type=int, default=[8, 16, 32])
    p.add_argument('--num-frames', type=int, default=64, help='frames of the test video')
    p.add_argument('--ava-frames', type=int, default=8, help='frames timed for (b) (its cost is per frame)')
    p.add_argument('--batch-size', type=int, default=4, help='clips per backbone forward, for all three')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--no-train', action='store_true', help='skip the training throughput measurement')
    p.add_argument('--no-profile', action='store_true',
                   help='skip the per-stage breakdown and the torch.profiler table')
    p.add_argument('--out-md', help='write the markdown report here (e.g. docs/benchmarks.md)')
    p.add_argument('--out-png', help='write the frames/s vs T plot here')
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if any(t < 2 for t in args.clip_lens):
        p.error('--clip-lens must be >= 2')
    if args.num_frames < max(args.clip_lens):
        p.error(f'--num-frames ({args.num_frames}) must be at least the longest clip ({max(args.clip_lens)})')
    return args


def main(argv=None):
    args = parse_args(argv)
    DefaultScope.get_instance(f'speed_compare_{time.time()}', scope_name='mmaction')
    device = torch.device(args.device)
    t0 = time.time()
    rows = []
    for setting in args.settings:
        for t in args.clip_lens:
            rows.append(measure(setting, t, args, device, print))
    train = None
    if not args.no_train:
        train = speed.train_throughput(osp.join(REPO, SETTINGS['tiny'][0]), device, warmup=args.warmup,
                                       repeats=args.repeats)
        print(f'training (tiny): {train["clips_per_s"]:.2f} clips/s, peak +{train["peak_mem_mib"]:.0f} MiB')
    stages, prof_text = None, None
    if not args.no_profile:
        stages = {}
        for s in args.settings:
            stages[s], prof = stages_and_profile(s, args, device, profile=s == 'tiny')
            prof_text = prof or prof_text
    elapsed = time.time() - t0
    report = markdown(rows, args, device, train, prof_text, elapsed, stages)
    print(report)
    if args.out_png:
        plot(rows, args.out_png)
    if args.out_md:
        from cfad_mm.utils.markdown import write_keeping_blocks
        write_keeping_blocks(args.out_md, report)  # the blocks of other tools (span_sweep.py) stay
        print(f'written {args.out_md}')
    return rows


if __name__ == '__main__':
    main()
