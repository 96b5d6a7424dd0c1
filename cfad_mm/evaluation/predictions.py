"""Clip predictions as the evaluation receives them: grouping by video, the shared evaluation entry point of
``TubeMetric`` and ``tools/analysis/eval_results.py``, and reading ``DumpResults`` pickles safely."""
import argparse
import io
import os.path as osp
import pickle
from typing import Dict, List, Optional, Sequence, Union

from .functional import evaluate_tubes
from .functional.protocol import PROTOCOLS
from .linking import LINK_METHODS, drop_nonfinite_tubes, rename_legacy_keys

__all__ = [
    'group_clips_by_video', 'evaluate_clip_predictions', 'load_dump', 'DumpUnpickler', 'config_tube_metric',
    'EVAL_SETTING_KEYS', 'eval_settings', 'optional_float', 'add_eval_setting_args'
]


def group_clips_by_video(clips: Sequence[dict]) -> Dict[str, List[dict]]:
    """Clip predictions grouped by their ``video_id`` (the order of the clips of a video is kept).

    Args:
        clips (Sequence[dict]): Clip predictions with a ``video_id`` key (as
            :func:`~cfad_mm.evaluation.data_samples_to_clip_predictions` returns them).

    Returns:
        dict[str, list[dict]]: The clips of each video.

    Raises:
        KeyError: A clip has no ``video_id``.
    """
    by_video: Dict[str, List[dict]] = {}
    for i, clip in enumerate(clips):
        if 'video_id' not in clip:
            raise KeyError(f'clip prediction {i}: no video_id (keys: {sorted(clip)})')
        by_video.setdefault(str(clip['video_id']), []).append(clip)
    return by_video


def evaluate_clip_predictions(clips: Union[Sequence[dict], Dict[str, Sequence[dict]]],
                              annotations: Union[str, dict],
                              split: int = 0,
                              subset: str = 'test',
                              protocol: str = 'act',
                              frame_iou_thr: float = 0.5,
                              video_iou_thrs: Sequence[float] = (0.2, 0.5, 0.75),
                              nms_thr: Optional[float] = 0.3,
                              link_iou: float = 0.5,
                              trim_thr: Optional[float] = 0.5,
                              max_gap: int = 0,
                              return_tubes: bool = False,
                              progress: bool = False,
                              link_method: str = 'greedy',
                              vel_weight: float = 2.0) -> dict:
    """Evaluate model outputs: leave out the non-finite clip tubes, then :func:`evaluate_tubes`.

    The one path of the online (``TubeMetric``) and the offline (``tools/analysis/eval_results.py``)
    evaluation, so that both give the same numbers for the same predictions. A clip tube with a NaN/inf score
    or box (on a frame of its mask) is a numerically broken model output: it is left out of the linking and
    the evaluation with a warning per video (:func:`cfad_mm.evaluation.linking.drop_nonfinite_tubes`) rather
    than failing the whole evaluation. Hand-made inputs given to :func:`evaluate_tubes` directly still get an
    error for such values.

    Args:
        clips (Sequence[dict] | dict[str, Sequence[dict]]): Clip predictions with a ``video_id`` (grouped
            here), or already grouped by video name. Layout in :func:`cfad_mm.evaluation.prepare_clips`.
        annotations (str | dict): Annotation pickle path or dict (ACT format).
        split (int): 0-based split index. Defaults to 0.
        subset (str): ``'test'`` or ``'train'``. Defaults to ``'test'``.
        protocol (str): ``'act'``, ``'voc'`` or ``'multisports'``. Defaults to ``'act'``.
        frame_iou_thr (float): IoU threshold of frame-mAP. Defaults to 0.5.
        video_iou_thrs (Sequence[float]): Reported video-mAP thresholds. Defaults to (0.2, 0.5, 0.75).
        nms_thr (float, optional): Hard-NMS threshold. Defaults to 0.3.
        link_iou (float): Linking threshold. Defaults to 0.5.
        trim_thr (float, optional): Temporal trimming threshold of the linking. Defaults to 0.5.
        max_gap (int): Largest gap (frames) bridged by the linking. Defaults to 0.
        return_tubes (bool): Also return the linked video tubes. Defaults to False.
        progress (bool): Progress bars over the videos (for the offline tools). Defaults to False.
        link_method (str): ``'greedy'`` or ``'hungarian'`` joining of the windows. Defaults to ``'greedy'``.
        vel_weight (float): Velocity weight of ``'hungarian'``. Defaults to 2.0.

    Returns:
        dict: The report of :func:`evaluate_tubes` plus ``num_nonfinite_tubes`` (clip tubes left out).

    Raises:
        KeyError: Ungrouped clips without ``video_id``.
        ValueError: As :func:`evaluate_tubes` (videos outside the split, malformed predictions, ...).
    """
    by_video = dict(clips) if isinstance(clips, dict) else group_clips_by_video(clips)
    num_nonfinite = 0
    for video in sorted(by_video):
        by_video[video], dropped = drop_nonfinite_tubes(by_video[video], video)
        num_nonfinite += dropped
    report = evaluate_tubes(
        by_video,
        annotations,
        split=split,
        subset=subset,
        protocol=protocol,
        frame_iou_thr=frame_iou_thr,
        video_iou_thrs=video_iou_thrs,
        nms_thr=nms_thr,
        link_iou=link_iou,
        trim_thr=trim_thr,
        max_gap=max_gap,
        return_tubes=return_tubes,
        progress=progress,
        link_method=link_method,
        vel_weight=vel_weight)
    report['num_nonfinite_tubes'] = num_nonfinite
    return report


def _load_storage_from_bytes(data: bytes):
    """``torch.storage._load_from_bytes`` without arbitrary objects: the bytes are a ``torch.save`` of one
    storage, read with ``torch.load(weights_only=True)``."""
    import torch
    return torch.load(io.BytesIO(data), weights_only=True)


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle refers to a global outside the allow-list of :class:`DumpUnpickler`."""


class DumpUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds what a ``DumpResults`` pickle of data samples holds.

    ``DumpResults`` writes the data-sample dicts with ``pickle``: containers, strings and numbers, numpy
    arrays / scalars and CPU torch tensors. Any other global (a class, ``os.system``, ...) is refused, so a
    crafted pickle cannot run code while it is loaded. The tensor storages inside are read with
    ``torch.load(weights_only=True)``.

    Raises:
        RefusedGlobalError: (a ``pickle.UnpicklingError``) On a global outside the allow-list.
    """

    ALLOWED = {
        ('builtins', 'set'), ('builtins', 'frozenset'), ('builtins', 'complex'), ('builtins', 'slice'),
        ('builtins', 'range'), ('builtins', 'bytearray'),
        ('_codecs', 'encode'),  # bytes in pickle protocol 2
        ('collections', 'OrderedDict'),
        ('numpy', 'ndarray'), ('numpy', 'dtype'),
        ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
        ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),
        ('torch._utils', '_rebuild_tensor_v2'),
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _load_storage_from_bytes
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise RefusedGlobalError(
            f'refusing to load {module}.{name}: a results dump only holds data samples (dicts, numpy arrays, '
            'tensors)')


def load_dump(path: str, restricted: bool = True) -> Dict[str, List[dict]]:
    """Clip predictions grouped by video from a ``DumpResults`` pickle (``tools/test.py --dump``).

    Args:
        path (str): The pickle: the list of data-sample dicts, each with ``pred_instances`` and the metainfo
            keys ``video_id``, ``frame_numbers`` and ``frame_valid``. Dumps written before the rename, whose
            1-based frame numbers are called ``frame_inds``, are read as well.
        restricted (bool): Load with :class:`DumpUnpickler` (no code can run while loading). False uses plain
            ``pickle.load``: only for trusted files that hold other objects. Defaults to True.

    Returns:
        dict[str, list[dict]]: The compact numpy clip predictions of each video
        (:func:`~cfad_mm.evaluation.data_samples_to_clip_predictions`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not a readable pickle, holds something other than data samples, or
            (restricted) holds objects outside the allow-list. The message starts with ``path``.
    """
    from .metrics.tube_metric import data_samples_to_clip_predictions  # (tube_metric imports this module)
    if not osp.isfile(path):
        raise FileNotFoundError(f'results file not found: {path}')
    with open(path, 'rb') as f:
        try:
            samples = DumpUnpickler(f).load() if restricted else pickle.load(f)
        except RefusedGlobalError as err:
            raise ValueError(f'{path}: {err}') from err
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
                ValueError, RuntimeError) as err:
            raise ValueError(f'{path}: not a readable results pickle ({type(err).__name__}: {err})') from err
    if not isinstance(samples, (list, tuple)):
        raise ValueError(f'{path}: expected the list of data samples written by DumpResults, got '
                         f'{type(samples).__name__}')
    # Dumps written before the rename call the 1-based frame numbers 'frame_inds': read them as
    # 'frame_numbers' (a dump never holds the 0-based decoder indices: PackTubeInputs does not pack them).
    samples = [rename_legacy_keys(s) if isinstance(s, dict) else s for s in samples]
    try:
        clips = data_samples_to_clip_predictions(samples)
    except (KeyError, TypeError) as err:
        raise ValueError(f'{path}: {err}') from err
    return group_clips_by_video(clips)


#: ``TubeMetric`` arguments that set how predictions are evaluated (read from configs by the offline tools).
EVAL_SETTING_KEYS = ('split', 'subset', 'protocol', 'frame_iou_thr', 'video_iou_thrs', 'nms_thr', 'link_iou',
                     'trim_thr', 'max_gap', 'link_method', 'vel_weight')


def config_tube_metric(cfg, key: str = 'test_evaluator') -> dict:
    """The ``TubeMetric`` dict of a config's evaluator.

    Args:
        cfg (Config | dict): The config.
        key (str): The evaluator entry. Defaults to ``'test_evaluator'``.

    Returns:
        dict: The evaluator dict (a single evaluator is returned whatever its type; from a list, the first
        ``TubeMetric``); ``{}`` when there is none.
    """
    ev = cfg.get(key, None)
    if isinstance(ev, (list, tuple)):
        ev = next((e for e in ev if str(e.get('type', '')).split('.')[-1] == 'TubeMetric'), None)
    return dict(ev) if ev else {}


def optional_float(text: str):
    """A float, or None for 'none'."""
    return None if text.lower() == 'none' else float(text)


def add_dump_input_args(parser: argparse.ArgumentParser) -> None:
    """The inputs of an offline tool that reads a result dump: ``results`` (the pickle of ``tools/test.py
    --dump``), the optional ``ann_file`` and ``--config`` (whose ``test_evaluator`` gives the annotation file
    and the settings not given as flags; see :func:`eval_settings`)."""
    parser.add_argument('results', help='pickle written by tools/test.py --dump')
    parser.add_argument('ann_file', nargs='?', default=None,
                        help="annotation pickle (ACT format); default: the --config's "
                        'test_evaluator.ann_file')
    parser.add_argument('--config', default=None,
                        help="take the settings not given (and ann_file) from this config's test_evaluator")


def add_eval_setting_args(parser: argparse.ArgumentParser, frame_map: bool = True) -> None:
    """Add the flags of the evaluation settings (:data:`EVAL_SETTING_KEYS`) to an offline tool's parser.

    A flag not given stays absent from the parsed arguments (``argparse.SUPPRESS``), so that
    :func:`eval_settings` takes that setting from the ``--config``, else leaves ``TubeMetric``'s default
    (shown in brackets in the help).

    Args:
        parser (argparse.ArgumentParser): The parser (or an argument group).
        frame_map (bool): Also ``--frame-iou-thr`` and ``--video-iou-thrs`` (the mAP thresholds).
            Defaults to True.
    """
    def add(*flags, **kwargs):
        parser.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)

    add('--split', type=int, help='0-based split index [0]')
    add('--subset', choices=['test', 'train'], help='[test]')
    add('--protocol', choices=list(PROTOCOLS), help='[act]')
    if frame_map:
        add('--frame-iou-thr', type=float, help='[0.5]')
        add('--video-iou-thrs', type=float, nargs='+', help='[0.2 0.5 0.75]')
    add('--nms-thr', type=optional_float, help="hard-NMS threshold or 'none' [0.3]")
    add('--link-iou', type=float, help='[0.5]')
    add('--trim-thr', type=optional_float, help="trimming threshold or 'none' [0.5]")
    add('--max-gap', type=int, help='[0]')
    add('--link-method', choices=list(LINK_METHODS),
        help='joining of the windows (docs/evaluation.md) [greedy]')
    add('--vel-weight', type=float, help="velocity weight of 'hungarian' [2.0]")


def eval_settings(args) -> tuple:
    """The annotation file and the keyword arguments of ``evaluate_clip_predictions`` from the parsed
    arguments of ``tools/analysis/eval_results.py`` or ``analyze_errors.py`` (``ann_file``, ``config`` and the
    settings given, absent when not given).

    Precedence: the flags given, then the ``--config``'s ``test_evaluator``, then ``TubeMetric``'s defaults
    (the function's own defaults: unset keys are left out).

    Returns:
        tuple[str, dict]: The annotation file and the settings.

    Raises:
        SystemExit: The config does not exist, or no annotation file is given.
    """
    settings, ann_file = {}, args.ann_file
    if args.config is not None:
        from mmengine.config import Config
        if not osp.isfile(args.config):
            raise SystemExit(f'error: config not found: {args.config}')
        metric = config_tube_metric(Config.fromfile(args.config))
        if not metric:
            print(f'warning: {args.config} has no test_evaluator (TubeMetric); its settings are not used')
        settings = {k: metric[k] for k in EVAL_SETTING_KEYS if k in metric}
        if ann_file is None and isinstance(metric.get('ann_file'), str):
            ann_file = metric['ann_file']
    if ann_file is None:
        raise SystemExit('error: no annotation file: give ANN_FILE, or --config with a '
                         'test_evaluator.ann_file')
    settings.update({k: getattr(args, k) for k in EVAL_SETTING_KEYS if hasattr(args, k)})
    return ann_file, settings
