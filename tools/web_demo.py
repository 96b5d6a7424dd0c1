"""A local web page to detect action tubes in your own videos (docs/web_demo.md).

Example:
    python tools/web_demo.py configs/cfad/cfad_r3d-18-tiny_synthetic.py work_dirs/synthetic_demo/best.pth
    # then open http://127.0.0.1:7860 in a browser
"""
import argparse
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import cfad_mm  # noqa: E402,F401
from cfad_mm.apis import init_detector  # noqa: E402
from cfad_mm.apis.web_demo import DEFAULT_MAX_UPLOAD_MB, create_app  # noqa: E402
from cfad_mm.engine.checkpoint import CHECKPOINT_ERRORS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='CFAD web demo: upload a video, see its action tubes')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--host', default='127.0.0.1',
                   help='address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes the demo to '
                   'the network, which it is not hardened for)')
    p.add_argument('--port', type=int, default=7860, help='port (default 7860)')
    p.add_argument('--device', default='cpu', help='cpu or cuda:0')
    p.add_argument('--work-dir', default=None,
                   help='where uploads and results are written (default: a new temporary directory)')
    p.add_argument('--max-upload-mb', type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f'largest accepted upload in MB (default {DEFAULT_MAX_UPLOAD_MB})')
    p.add_argument('--score-thr', type=float, default=0.05, help='drop video tubes scoring below this')
    p.add_argument('--unsafe-load', action='store_true',
                   help='load the checkpoint with full pickle semantics (weights_only=False). ONLY for a '
                   'file you trust: a pickle can run code (docs/security.md)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} not found: {path}')
    if args.max_upload_mb <= 0:
        raise SystemExit(f'error: --max-upload-mb must be > 0, got {args.max_upload_mb}')
    try:
        model = init_detector(args.config, args.checkpoint, args.device, args.cfg_options,
                              unsafe_load=args.unsafe_load)
    except CHECKPOINT_ERRORS as err:
        raise SystemExit(f'error: {err}') from None
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='cfad_web_demo_')
    app = create_app(model, work_dir, max_upload_bytes=int(args.max_upload_mb * 2**20),
                     score_thr=args.score_thr)
    import uvicorn
    print(f'CFAD web demo on http://{args.host}:{args.port}  (results in {work_dir})')
    uvicorn.run(app, host=args.host, port=args.port, log_level='info')


if __name__ == '__main__':
    main()
