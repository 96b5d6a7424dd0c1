"""Whole-video frames/s of any CFAD config with random weights: CFAD's sliding windows against the backbone
alone run once over every frame, on real video files.

The span sweep (``tools/analysis/span_sweep.py``) times the trained tiny models of the long synthetic preset.
This tool times a config as it is built (random weights, e.g. the I3D ResNet-50 long-span config, whose
trained weights need a dataset that is not here), so that the ratio ``CFAD / backbone once`` can be read for
a backbone whose cost dominates. The windows are the config's test windows (``clip_len`` frames every
``frame_interval``, a new window every ``test_stride`` frames, or every half span when the config has no
stride); the three ways (CFAD with the frames decoded beforehand, CFAD reading the files, the backbone once
over every frame) are interleaved in each round (``cfad_mm.analysis.span_sweep.whole_video_speed``).

With random weights the coarse head scores its tubes at random; the number of tubes per window is fixed by
the config (its top-k), so the work per window is the trained model's. The network input is ``--input-size``
(the test pipeline's resize is set to it).

Usage::

    python tools/analysis/window_speed.py configs/cfad/cfad_i3d-r50_8xb8-32x4x1-8e_ucf101-24.py \\
        --input-size 112 112 --videos 2
    python tools/analysis/window_speed.py CONFIG --doc docs/benchmarks.md --block window-speed-r50-32x4
"""
import argparse
import datetime
import glob
import os.path as osp
import platform
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.analysis.span_sweep import speed_table, stage_table, whole_video_speed  # noqa: E402
from cfad_mm.analysis.speed import build_cfad  # noqa: E402
from cfad_mm.datasets.sampling import span_length  # noqa: E402
from cfad_mm.utils.markdown import cited_command, write_block  # noqa: E402

DEFAULT_VIDEOS = 'data/synth_long/videos/*/*.mp4'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Whole-video frames/s of a CFAD config (random weights): sliding '
                                'windows against the backbone alone once over every frame')
    p.add_argument('config')
    p.add_argument('--video-glob', default=DEFAULT_VIDEOS,
                   help=f'video files to time (sorted; the first --videos of them) [{DEFAULT_VIDEOS}]')
    p.add_argument('--videos', type=int, default=2, help='videos timed [2]')
    p.add_argument('--input-size', type=int, nargs=2, default=(112, 112), metavar=('H', 'W'),
                   help='network input height and width [112 112]')
    p.add_argument('--repeats', type=int, default=3, help='timed rounds after one warm-up [3]')
    p.add_argument('--batch-size', type=int, default=4, help='windows per forward pass [4]')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, help='config overrides')
    p.add_argument('--doc', default=None, help='markdown file to write the tables into (block --block)')
    p.add_argument('--block', default='window-speed', help='block name in --doc [window-speed]')
    args = p.parse_args(argv)
    if args.videos < 1 or args.repeats < 1 or args.batch_size < 1 or min(args.input_size) < 16:
        p.error(f'--videos, --repeats and --batch-size must be >= 1 and --input-size at least 16 x 16, got '
                f'{args.videos}, {args.repeats}, {args.batch_size} and {args.input_size}')
    if not osp.isfile(args.config):
        p.error(f'{args.config}: no such file')
    if args.doc and not osp.isfile(args.doc):
        p.error(f'--doc {args.doc}: no such file')
    return args


def test_windows(cfg: Config):
    """``(clip_len, frame_interval, stride)`` of the config's test windows."""
    ds = cfg.test_dataloader.dataset
    t, k = int(ds.get('clip_len', 16)), int(ds.get('frame_interval', 1))
    stride = ds.get('test_stride') or max(1, span_length(t, k) // 2)
    return t, k, int(stride)


def main(argv=None):
    args = parse_args(argv)
    videos = sorted(glob.glob(args.video_glob))[:args.videos]
    if not videos:
        sys.exit(f'--video-glob {args.video_glob}: no video files (write the long synthetic preset with '
                 '`python tools/data/make_synthetic.py --preset long --out data/synth_long`, or give other '
                 'files)')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = build_cfad(cfg, tuple(args.input_size), quiet=True)
    t, k, stride = test_windows(cfg)
    print(f'timing {len(videos)} videos: windows of {t} frames every {k} (span {span_length(t, k)}), a '
          f'window every {stride} frames, input {args.input_size[1]}x{args.input_size[0]}', flush=True)
    speed = whole_video_speed(model, videos, t, k, stride, repeats=args.repeats, batch_size=args.batch_size)
    row = dict(name=f'{t}x{k}', nominal=t * k, span=span_length(t, k), speed=speed)
    lines = [*speed_table([row]), '', 'Milliseconds per video frame in each stage of CFAD (one more run, '
             'decoding excluded; stages nest):', '', *stage_table([row])]
    print('\n'.join(lines))
    if args.doc:
        command = cited_command('tools/analysis/window_speed.py', sys.argv[1:] if argv is None else argv)
        header = [f'## Whole-video frames/s of `{osp.basename(args.config)}`, random weights', '',
                  f'Produced by `{command}` ({datetime.date.today()}, {platform.machine()}, '
                  f'{torch.get_num_threads()} threads, torch {torch.__version__}). Videos: '
                  f'{", ".join(osp.relpath(v) for v in videos)} ({speed["frames"]} frames), network input '
                  f'{args.input_size[1]}x{args.input_size[0]}; windows of {t} frames every {k}, a new window '
                  f'every {stride} frames; median (min-max) of {args.repeats} rounds after one warm-up, the '
                  f'three ways interleaved in each round, batches of {args.batch_size} windows. Random '
                  'weights: the work per window is the trained model\'s (a fixed number of tubes per '
                  'window), its accuracy is not measured here.', '']
        write_block(args.doc, args.block, '\n'.join(header + lines))
        print(f'written into block {args.block} of {args.doc}')


if __name__ == '__main__':
    main()
