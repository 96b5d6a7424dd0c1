"""Detect action tubes in any video (file or frame folder) and render them.

Writes ``OUT_DIR/tubes.json`` (video tubes: label, score, per-frame boxes in original pixels, 1-based frames),
``OUT_DIR/<video name>_tubes.mp4`` (and a GIF with ``--gif``) with boxes, labels, scores and a colour per
tube, and ``OUT_DIR/timeline.png`` (the tubes over time) when ``cfad_mm.analysis.timeline`` is available. A
thin command line over :class:`cfad_mm.apis.TubeInferencer` (the same call from Python).

Example:
    python tools/demo.py data/synth/videos/circle/v_0003.mp4 configs/cfad/cfad_r3d-18-tiny_synthetic.py \\
        work_dirs/synthetic_demo/best.pth --out outputs/demo --gif
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cfad_mm  # noqa: E402,F401
from cfad_mm.apis import TubeInferencer, VideoFrames, init_detector  # noqa: E402
from cfad_mm.apis.inference import MAX_INPUT_AREA, MAX_INPUT_SIDE  # noqa: E402
from cfad_mm.datasets.media import MediaError  # noqa: E402
from cfad_mm.engine.checkpoint import CHECKPOINT_ERRORS  # noqa: E402
from cfad_mm.utils.cli import add_checkpoint_args  # noqa: E402


def size_limit(text: str) -> int:
    """A pixel limit: an integer >= 0 (0: no limit)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0 (0: no limit), got {value}')
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='CFAD demo: action tubes in a video')
    p.add_argument('video', help='video file (anything decord reads) or folder of frames')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out', default='outputs/demo', help='output directory')
    p.add_argument('--device', default='cpu', help='cpu or cuda:0')
    p.add_argument('--clip-len', type=int, default=None, help='frames per window (default: config)')
    p.add_argument('--stride', type=int, default=None, help='window stride (default: config test_stride)')
    p.add_argument('--score-thr', type=float, default=0.05, help='drop video tubes scoring below this')
    p.add_argument('--fps', type=float, default=None,
                   help='fps of the rendered video (default: the input\'s)')
    p.add_argument('--max-side', type=int, default=1280,
                   help='decode frames with a longer side downscaled to this size (0: full size); the tubes '
                        'are reported in original pixels')
    p.add_argument('--max-input-side', type=size_limit, default=MAX_INPUT_SIDE,
                   help='refuse a video whose network input (after the test pipeline\'s resize) has a longer '
                   f'side than this (0: no limit; default {MAX_INPUT_SIDE})')
    p.add_argument('--max-input-area', type=size_limit, default=MAX_INPUT_AREA,
                   help='refuse a video whose network input has more pixels (H*W) than this '
                   f'(0: no limit; default {MAX_INPUT_AREA})')
    p.add_argument('--gif', action='store_true', help='also write a GIF')
    p.add_argument('--no-render', action='store_true', help='only write tubes.json')
    add_checkpoint_args(p)  # --unsafe-load, --cfg-options
    return p.parse_args(argv)


def prepare_out_dir(out: str) -> None:
    """Create the output directory and check that a file can be written in it.

    Raises:
        SystemExit: ``error: cannot write to the output directory ...`` (not a directory, no permission, ...).
    """
    import tempfile
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise SystemExit(f'error: cannot write to the output directory {out} (--out): '
                         f'{type(err).__name__}: {err.strerror or err}') from None


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} not found: {path}')
    try:
        frames = VideoFrames(args.video, args.max_side or None)  # fails early, naming the file, if unreadable
    except (FileNotFoundError, MediaError) as err:
        raise SystemExit(f'error: {err}') from None
    prepare_out_dir(args.out)  # before the model loads and the video is processed
    try:
        model = init_detector(args.config, args.checkpoint, args.device, args.cfg_options,
                              unsafe_load=args.unsafe_load)
    except CHECKPOINT_ERRORS as err:
        raise SystemExit(f'error: {err}') from None
    print(f'{args.video}: {frames.num_frames} frames, {frames.shape[1]}x{frames.shape[0]}' +
          (f' (decoded at {frames.decode_shape[1]}x{frames.decode_shape[0]})' if frames.downscaled else ''))
    inferencer = TubeInferencer(model)
    try:  # a frame that cannot be decoded, or a network input above the size limits
        out = inferencer(frames, clip_len=args.clip_len, stride=args.stride, score_thr=args.score_thr,
                         max_input_side=args.max_input_side or None,
                         max_input_area=args.max_input_area or None, out_dir=args.out, per_video_dir=False,
                         render=not args.no_render, gif=args.gif, fps=args.fps)
    except (FileNotFoundError, MediaError) as err:
        raise SystemExit(f'error: {err}') from None
    tubes = out['predictions'][0]
    print(f'{len(tubes["tubes"])} tubes (score >= {args.score_thr}) -> {osp.join(args.out, "tubes.json")}')
    for t in tubes['tubes']:
        print(f"  #{t['tube_id']} {t['label_name']:<14} score {t['score']:.3f} "
              f"frames {t['boxes'][0][0]}-{t['boxes'][-1][0]}")
    if not args.no_render:
        name = osp.splitext(osp.basename(args.video.rstrip('/')))[0]
        mp4 = osp.join(args.out, f'{name}_tubes.mp4')
        gif = osp.join(args.out, f'{name}_tubes.gif') if args.gif else None
        print(f'rendered -> {mp4}' + (f' and {gif}' if gif else ''))
    return tubes


if __name__ == '__main__':
    main()
