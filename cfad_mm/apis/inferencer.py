"""``TubeInferencer``: action tubes in videos, frame folders or arrays with one call (MMEngine inferencer
API).

Example:
    >>> from cfad_mm.apis import TubeInferencer
    >>> inferencer = TubeInferencer('cfad_r3d-18-tiny_synthetic',
    weights='work_dirs/synthetic_demo/epoch_16.pth')
    >>> out = inferencer('video.mp4', out_dir='outputs/infer')
    >>> out['predictions'][0]['tubes'][0]['label_name']
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log

from .inference import (
    MAX_INPUT_AREA,
    MAX_INPUT_SIDE,
    VideoFrames,
    inference_video,
    init_detector,
    tubes_to_json,
)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILE = osp.join(REPO_ROOT, 'configs', 'cfad', 'metafile.yml')

InputType = Union[str, np.ndarray, VideoFrames]
InputsType = Union[InputType, Sequence[InputType]]


class ArrayFrames(VideoFrames):
    """Frames of a video held in memory: a ``(T, H, W, 3)`` RGB ``uint8`` array, with the interface of
    :class:`VideoFrames` (``path`` is the generated name, e.g. ``array_0``).

    Args:
        array (np.ndarray): ``(T, H, W, 3)`` RGB uint8 frames.
        name (str): The name reported for the video (``video`` of the predictions).
        max_side (int, optional): Frames with a longer side are downscaled to it (as :class:`VideoFrames`);
            None keeps the full size. Defaults to 1280.

    Raises:
        ValueError: Not a non-empty ``(T, H, W, 3)`` uint8 array.
    """

    def __init__(self, array: np.ndarray, name: str, max_side: Optional[int] = 1280):
        if not isinstance(array, np.ndarray) or array.ndim != 4 or array.shape[-1] != 3 or \
                array.dtype != np.uint8 or min(array.shape[:3]) < 1:
            what = f'{array.dtype} array of shape {tuple(array.shape)}' if isinstance(array, np.ndarray) \
                else type(array).__name__
            raise ValueError(f'{name}: a video array must be a non-empty (T, H, W, 3) RGB uint8 array, got a '
                             f'{what}')
        if max_side is not None and max_side < 1:
            raise ValueError(f'ArrayFrames: max_side must be >= 1 or None, got {max_side}')
        from .inference import _downscaled
        self.path = name
        self.array = array
        self.files = None
        self.reader = None
        self.num_frames = int(array.shape[0])
        self.shape = tuple(int(v) for v in array.shape[1:3])
        self.decode_shape = _downscaled(self.shape, max_side)

    def get(self, positions: Sequence[int]) -> List[np.ndarray]:
        """RGB frames ``(h, w, 3)`` uint8 (``decode_shape``) at 0-based ``positions``."""
        frames = [np.ascontiguousarray(self.array[int(p)]) for p in positions]
        if self.downscaled:
            import cv2
            frames = [cv2.resize(f, self.decode_shape[::-1], interpolation=cv2.INTER_AREA) for f in frames]
        return frames


def metafile_models(metafile: str = METAFILE) -> List[dict]:
    """The ``Models`` entries of the model-zoo metafile (``configs/cfad/metafile.yml``)."""
    import yaml
    with open(metafile) as f:
        return list((yaml.safe_load(f) or {}).get('Models') or [])


def resolve_model_name(name: str, metafile: str = METAFILE) -> Tuple[str, Optional[str]]:
    """``(config path, weights path or None)`` of a model NAME of the metafile (as MMAction2's inferencer
    resolves names): the ``Name`` (or an ``Alias``) matches case-insensitively, ``Config`` and ``Weights`` are
    relative to the repository root.

    Raises:
        ValueError: The name is unknown; the message lists the known names.
    """
    models = metafile_models(metafile)
    for m in models:
        aliases = m.get('Alias') or []
        aliases = [aliases] if isinstance(aliases, str) else list(aliases)
        if name.lower() in [str(m['Name']).lower()] + [str(a).lower() for a in aliases]:
            weights = m.get('Weights')
            weights = weights[0] if isinstance(weights, list) else weights
            if weights and not (weights.startswith(('http://', 'https://')) or osp.isabs(weights)):
                weights = osp.join(REPO_ROOT, weights)
            return osp.join(REPO_ROOT, m['Config']), weights
    known = '\n  '.join(str(m['Name']) for m in models)
    raise ValueError(f'unknown model {name!r}: not a config file and not a model name of '
                     f'{osp.relpath(metafile, REPO_ROOT)}. Known names:\n  {known}')


class TubeInferencer(BaseInferencer):
    """Detect action tubes in whole videos: sliding windows -> CFAD -> linking -> video tubes.

    Each input is decoded (a video file or a frame folder: :class:`~cfad_mm.apis.VideoFrames`; an array:
    :class:`ArrayFrames`), run through :func:`~cfad_mm.apis.inference_video` (windows batched by
    ``batch_size``, a progress bar over the windows with ``show_progress``) and converted by
    :func:`~cfad_mm.apis.tubes_to_json`.

    Args:
        model (str | Config | nn.Module): A config file, a model NAME of ``configs/cfad/metafile.yml`` (e.g.
            ``'cfad_r3d-18-tiny_synthetic'``), a :class:`Config`, or a model built by
            :func:`~cfad_mm.apis.init_detector` (then ``weights`` and the loading options are not used).
        weights (str, optional): A local checkpoint. It wins over the metafile's ``Weights`` of a model name;
            None with a config leaves the model at its initialisation (with a warning).
        device (str, optional): ``'cpu'``, ``'cuda:0'`` ... None: CUDA when available, else CPU.
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool, optional): Refuse a checkpoint that does not fit the model (None: the config's
            ``load_strict``, default True).
        unsafe_load (bool): Load the checkpoint with full pickle semantics: ONLY for files you trust.
            Defaults to False (``weights_only=True`` with a short allow-list, docs/security.md).
        show_progress (bool): A progress bar over the windows of each video. Defaults to True.

    Call arguments (``inferencer(inputs, batch_size=1, **kwargs)``):
        inputs: a video file, a frame folder, a ``(T, H, W, 3)`` RGB uint8 array, a
            :class:`~cfad_mm.apis.VideoFrames`, or a list of them.
        batch_size (int): windows per forward pass.
        max_side (int, optional): decode frames with a longer side downscaled (tubes stay in original
            pixels). Defaults to 1280; None: full size.
        clip_len, stride, frame_interval, link_cfg, max_input_side, max_input_area: as
            :func:`~cfad_mm.apis.inference_video`.
        score_thr (float): drop video tubes scoring below it. Defaults to 0.05 (as ``tools/demo.py``).
        out_dir (str, optional): write ``<out_dir>/<video name>/tubes.json``, ``<video name>_tubes.mp4`` (and
            ``.gif`` with ``gif``) and ``timeline.png`` (``per_video_dir=False``: in ``out_dir`` itself, for a
            single input). An array is named ``array_<i>`` (``i``: its index in the inputs).
        render (bool): write the rendered video and the timeline with ``out_dir``. Defaults to True.
        gif (bool): also a GIF. fps (float, optional): of the rendered video (default: the input's, else 10).
        return_vis (bool): return the rendered frames (``(T, h, w, 3)`` RGB uint8 arrays). Defaults to False.
        return_datasamples (bool): predictions are the raw results of ``inference_video`` (numpy tubes and
            clip predictions) instead of the JSON-like dicts.

    Returns:
        dict: ``predictions`` (per input, the ``tubes.json`` dict: ``video``, ``nframes``, ``resolution``,
        ``tubes``) and ``visualization`` (per input, the rendered frames with ``return_vis``, else None).

    Raises:
        ValueError: An unknown model name (the message lists the known ones); an invalid array.
        FileNotFoundError: A missing config, checkpoint or video.
        MediaError: A video that cannot be decoded or whose network input exceeds the size limits.
        CheckpointMismatchError, UnsafeCheckpointError: see :func:`~cfad_mm.apis.init_detector`.
    """

    preprocess_kwargs: set = {'max_side'}
    forward_kwargs: set = {'clip_len', 'stride', 'frame_interval', 'link_cfg', 'max_input_side',
                           'max_input_area', 'score_thr'}
    visualize_kwargs: set = {'out_dir', 'render', 'gif', 'fps', 'return_vis', 'per_video_dir'}
    postprocess_kwargs: set = set()

    def __init__(self, model: Union[str, Config, nn.Module], weights: Optional[str] = None,
                 device: Optional[str] = None, cfg_options: Optional[dict] = None,
                 strict: Optional[bool] = None, unsafe_load: bool = False,
                 show_progress: bool = True) -> None:
        # BaseInferencer.__init__ is not called: its checkpoint loading is neither safe nor strict, and the
        # whole-video path decodes and batches windows itself (no dataset pipeline / collate / visualizer).
        import cfad_mm  # noqa: F401  (registers the plugin)
        self.scope = 'mmaction'
        self.show_progress = show_progress
        if isinstance(model, nn.Module):
            if not isinstance(getattr(model, 'cfg', None), Config):
                raise TypeError('TubeInferencer: a model instance must come from cfad_mm.apis.init_detector '
                                '(it needs model.cfg)')
            self.model = model
        else:
            if isinstance(model, (str, os.PathLike)):
                model = str(model)
                if osp.isfile(model):
                    config = model
                elif model.endswith('.py'):
                    raise FileNotFoundError(f'config not found: {model}')
                else:
                    config, meta_weights = resolve_model_name(model)
                    if weights is None:
                        if not meta_weights or not osp.isfile(meta_weights):
                            raise FileNotFoundError(
                                f'the weights of model {model!r} in the metafile are not available locally '
                                f'({meta_weights}); pass weights=<checkpoint> (see docs/get_started.md)')
                        weights = meta_weights
            elif isinstance(model, (Config, ConfigDict, dict)):
                config = model if isinstance(model, Config) else Config(dict(model))
            else:
                raise TypeError('TubeInferencer: model must be a config path, a model name, a Config or a '
                                f'model, got {type(model).__name__}')
            if weights is None:
                print_log('TubeInferencer: no weights given, the model keeps its initialisation',
                          logger='current', level=30)
            if device is None:
                from mmengine.device import get_device
                device = get_device()
            self.model = init_detector(config, weights, device, cfg_options, strict=strict,
                                       unsafe_load=unsafe_load)
        self.cfg = self.model.cfg
        self.pipeline = self._init_pipeline(self.cfg)
        self.collate_fn = None
        self.visualizer = None
        from cfad_mm.visualization import class_names
        self.classes = class_names(self.model)

    def _init_pipeline(self, cfg) -> None:
        """No dataset pipeline: :func:`~cfad_mm.apis.inference_video` builds the windows (the config's test
        pipeline without its decoding steps)."""
        return None

    # ---------------------------------------------------------------------------------------------- steps
    def __call__(self, inputs: InputsType, return_datasamples: bool = False, batch_size: int = 1,
                 **kwargs) -> dict:
        """Detect tubes in ``inputs``; see the class documentation for the arguments."""
        preprocess_kwargs, forward_kwargs, visualize_kwargs, postprocess_kwargs = \
            self._dispatch_kwargs(**kwargs)
        ori_inputs = self._inputs_to_list(inputs)
        if visualize_kwargs.get('out_dir') and not visualize_kwargs.get('per_video_dir', True) and \
                len(ori_inputs) > 1:
            raise ValueError('per_video_dir=False writes the files of a single input: got '
                             f'{len(ori_inputs)} inputs')
        preds = []
        for data in self.preprocess(ori_inputs, batch_size=batch_size, **preprocess_kwargs):
            preds.extend(self.forward(data, **forward_kwargs))
        visualization = self.visualize(ori_inputs, preds, **visualize_kwargs)
        return self.postprocess(preds, visualization, return_datasamples, **postprocess_kwargs)

    def _inputs_to_list(self, inputs: InputsType) -> list:
        """One input (a path, a ``(T, H, W, 3)`` array, a VideoFrames) -> ``[input]``; a list stays a list."""
        if isinstance(inputs, (str, os.PathLike, np.ndarray, VideoFrames)):
            return [inputs]
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        raise TypeError('TubeInferencer: inputs must be a video file, a frame folder, a (T, H, W, 3) uint8 '
                        f'array or a list of them, got {type(inputs).__name__}')

    def preprocess(self, inputs: list, batch_size: int = 1, max_side: Optional[int] = 1280):
        """Open each input (lazily, one at a time): yields ``dict(frames, name, batch_size)``.

        ``name`` is the file or folder name without extension, ``array_<i>`` for an array; a name already
        taken by an earlier input of the call gets ``_<i>`` (the input's index) appended, so that outputs
        under ``out_dir`` never overwrite each other."""
        used = set()
        for i, item in enumerate(inputs):
            if isinstance(item, VideoFrames):
                frames = item
            elif isinstance(item, np.ndarray):
                frames = ArrayFrames(item, f'array_{i}', max_side)
            else:
                frames = VideoFrames(str(item), max_side)
            name = frames.path if isinstance(frames, ArrayFrames) else \
                osp.splitext(osp.basename(str(frames.path).rstrip('/')))[0]
            if name in used:
                name = f'{name}_{i}'
            used.add(name)
            yield dict(frames=frames, name=name, batch_size=batch_size)

    def forward(self, inputs: dict, clip_len: Optional[int] = None, stride: Optional[int] = None,
                frame_interval: Optional[int] = None, link_cfg: Optional[dict] = None,
                max_input_side: Optional[int] = MAX_INPUT_SIDE,
                max_input_area: Optional[int] = MAX_INPUT_AREA, score_thr: float = 0.05) -> List[dict]:
        """The whole-video path on one opened input: ``[dict(frames, name, result, tubes)]``."""
        result = inference_video(self.model, inputs['frames'], clip_len=clip_len, stride=stride,
                                 frame_interval=frame_interval, batch_size=inputs['batch_size'],
                                 link_cfg=link_cfg, progress=self.show_progress,
                                 max_input_side=max_input_side, max_input_area=max_input_area)
        return [dict(frames=inputs['frames'], name=inputs['name'], result=result,
                     tubes=tubes_to_json(result, self.classes, score_thr))]

    def visualize(self, inputs: list, preds: List[dict], out_dir: Optional[str] = None, render: bool = True,
                  gif: bool = False, fps: Optional[float] = None, return_vis: bool = False,
                  per_video_dir: bool = True) -> List[Optional[np.ndarray]]:
        """Write the outputs of each prediction under ``out_dir``; return the rendered frames with
        ``return_vis`` (else None per input)."""
        from cfad_mm.visualization import draw_tubes
        vis = []
        for pred in preds:
            frames, tubes = pred['frames'], pred['tubes']
            if out_dir:
                self.save(pred, osp.join(out_dir, pred['name']) if per_video_dir else out_dir, render=render,
                          gif=gif, fps=fps)
            if return_vis:
                h, w = frames.decode_shape
                scale = (w / frames.shape[1], h / frames.shape[0])
                vis.append(np.stack([draw_tubes(f, i + 1, tubes['tubes'], scale)[:, :, ::-1]
                                     for i, f in enumerate(frames.get(range(frames.num_frames)))]))
            else:
                vis.append(None)
        return vis

    def save(self, pred: dict, video_dir: str, render: bool = True, gif: bool = False,
             fps: Optional[float] = None) -> Dict[str, Optional[str]]:
        """Write ``tubes.json``, and with ``render`` ``<name>_tubes.mp4`` (``.gif`` with ``gif``) and
        ``timeline.png`` into ``video_dir``; returns the written paths (None: not written)."""
        from cfad_mm.visualization import render_video
        os.makedirs(video_dir, exist_ok=True)
        tubes, frames, name = pred['tubes'], pred['frames'], pred['name']
        paths = dict(json=osp.join(video_dir, 'tubes.json'), video=None, gif=None, timeline=None)
        with open(paths['json'], 'w') as f:
            json.dump(tubes, f)
        if not render:
            return paths
        if fps is None:
            fps = 10.0
            if getattr(frames, 'reader', None) is not None:
                fps = float(frames.reader.get_avg_fps()) or 10.0
        paths['video'] = osp.join(video_dir, f'{name}_tubes.mp4')
        paths['gif'] = osp.join(video_dir, f'{name}_tubes.gif') if gif else None
        render_video(frames, tubes['tubes'], paths['video'], fps=fps, gif_path=paths['gif'])
        paths['timeline'] = save_timeline(tubes, osp.join(video_dir, 'timeline.png'), self.classes)
        return paths

    def postprocess(self, preds: List[dict], visualization: List[Optional[np.ndarray]],
                    return_datasamples: bool = False) -> dict:
        """``dict(predictions=[tubes.json dict per input], visualization=[frames or None per input])``;
        ``return_datasamples``: the raw ``inference_video`` results as predictions."""
        key = 'result' if return_datasamples else 'tubes'
        return dict(predictions=[p[key] for p in preds], visualization=visualization)


def save_timeline(tubes: dict, out_path: str, classes: Optional[Sequence[str]] = None) -> Optional[str]:
    """The tube timeline picture of ``tubes`` (a ``tubes.json`` dict) by
    ``cfad_mm.analysis.timeline.plot_tube_timeline``; None (with a warning) when that module is not available
    in this installation or drawing fails."""
    try:
        from cfad_mm.analysis.timeline import plot_tube_timeline
    except ImportError as err:
        print_log(f'tube timeline skipped (cfad_mm.analysis.timeline is not available: {err})',
                  logger='current', level=30)
        return None
    try:
        plot_tube_timeline(tubes['tubes'], tubes['nframes'], out_path, classes=classes, gt_tubes=None)
    except Exception as err:  # an optional picture: the tubes and the rendered video are already written
        print_log(f'tube timeline skipped ({out_path}): {type(err).__name__}: {err}', logger='current',
                  level=30)
        return None
    return out_path
