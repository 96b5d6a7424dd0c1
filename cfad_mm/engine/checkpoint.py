"""Checkpoint loading: one function for every entry point, safe by default, strict about the model.

A checkpoint is a pickle, and a pickle can run any code while it is loaded (``__reduce__``). Every checkpoint
this project loads -- :func:`cfad_mm.apis.init_detector` (demo, inference API, ONNX export),
``tools/test.py``, ``load_from`` and ``--resume`` in training, a backbone's
``init_cfg=dict(type='Pretrained', ...)`` -- goes through :func:`load_checkpoint_file`, which calls
``torch.load(weights_only=True)`` with an explicit allow-list of the few globals that checkpoints written by
mmengine's ``Runner`` need (:data:`SAFE_GLOBAL_NAMES`: mmengine's ``HistoryBuffer`` and numpy's array / scalar
/ dtype reconstruction). torch's own safe default is never switched off for the process: the allow-list
applies only inside our calls, and ``import cfad_mm`` sets no environment variable.

A checkpoint that needs any other global is refused with :class:`UnsafeCheckpointError`, which names the
global and the opt-in for a file the user trusts: ``--unsafe-load`` of the tools, ``unsafe_load=True`` of the
API, or :func:`trust_checkpoint` (one path at a time; nothing else in the process loads unsafely).

``load_from`` and ``--resume`` are read by mmengine's ``CheckpointLoader``; :func:`register_safe_local_loader`
(called by ``import cfad_mm``) registers :func:`load_from_local_safe` as its loader for local paths, in place
of mmengine's ``torch.load(filename)`` (which, under torch >= 2.6, refuses mmengine's own checkpoints). Remote
schemes (``http://``, ``s3://`` ...) keep mmengine's loaders.

:func:`load_model_checkpoint` loads a checkpoint into a model and, by default, refuses one that does not fit
it (missing, unexpected or differently shaped weights are named, with the config and the checkpoint), so that
a wrong file cannot silently run random weights. ``strict=False`` (tools: ``--cfg-options load_strict=False``)
loads what fits and logs the rest. ``load_from`` in training keeps mmengine's non-strict behaviour
(fine-tuning from another dataset's checkpoint is its purpose).
"""
import os.path as osp
import pickle
import re
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log

__all__ = [
    'CHECKPOINT_ERRORS', 'SAFE_GLOBAL_NAMES', 'HISTORY_BUFFER_METHODS', 'history_buffer_getattr',
    'RestrictedHistoryBuffer', 'UnsafeCheckpointError', 'CheckpointMismatchError', 'safe_globals',
    'trust_checkpoint', 'load_checkpoint_file', 'load_from_local_safe', 'register_safe_local_loader',
    'load_model_checkpoint', 'model_state_dict'
]

#: The globals (``module.name``) that a checkpoint may reference. Each is a data type or a function that only
#: rebuilds data: numpy's array, scalar and dtype reconstruction (numpy values in ``meta`` and in the message
#: hub). torch adds its own tensor rebuilding functions and ``collections.OrderedDict`` itself. Two more names
#: are bound to restricted stand-ins (see :func:`safe_globals`): mmengine's ``HistoryBuffer`` (the logged
#: scalars in ``message_hub``) to :class:`RestrictedHistoryBuffer`, and ``builtins.getattr`` to
#: :func:`history_buffer_getattr`.
SAFE_GLOBAL_NAMES = (
    'numpy.core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar',
    'numpy.ndarray',
    'numpy.dtype',
)

#: The attributes :func:`history_buffer_getattr` hands out: mmengine's default statistics of a HistoryBuffer.
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to ``HistoryBuffer.<min|max|current|mean>``, all that mmengine checkpoints use
    it for (``HistoryBuffer.__getstate__`` saves its statistics methods, which
    :class:`RestrictedHistoryBuffer` then ignores).

    Raises:
        pickle.UnpicklingError: Any other object or attribute.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj in (HistoryBuffer, RestrictedHistoryBuffer) and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refused getattr({getattr(obj, "__name__", type(obj).__name__)}, '
                                 f'{name!r}): builtins.getattr is only allowed for HistoryBuffer.'
                                 f'{"/".join(HISTORY_BUFFER_METHODS)}')


def _history_buffer_class():
    from mmengine.logging.history_buffer import HistoryBuffer
    return HistoryBuffer


class RestrictedHistoryBuffer(_history_buffer_class()):
    """What a pickled mmengine ``HistoryBuffer`` is rebuilt as: a ``HistoryBuffer`` whose state can only be
    its data.

    mmengine's ``HistoryBuffer.__setstate__`` merges the pickled ``statistics_methods`` into a dict shared by
    every buffer of the process and copies any other key into the instance ``__dict__``, so a checkpoint could
    replace ``mean`` for the whole process or plant attributes. Here the state is checked and only
    ``_log_history``, ``_count_history`` (numeric arrays of one length) and ``max_length`` (a positive int)
    are kept; the statistics methods stay mmengine's. The buffer pickles back as a plain ``HistoryBuffer``.

    Raises:
        pickle.UnpicklingError: A state that is not a buffer's data.
    """

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f'HistoryBuffer state must be a dict, got {type(state).__name__}')
        import numpy as np
        log, count, max_length = (state.get(k) for k in ('_log_history', '_count_history', 'max_length'))
        ok = (isinstance(log, np.ndarray) and isinstance(count, np.ndarray) and log.ndim == 1
              and count.shape == log.shape and log.dtype.kind in 'biuf' and count.dtype.kind in 'biuf'
              and isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > 0)
        if not ok:
            raise pickle.UnpicklingError('HistoryBuffer state must hold _log_history and _count_history '
                                         '(numeric 1-D arrays of one length) and a positive int max_length')
        self._set_default_statistics()
        self.max_length = max_length
        self._log_history = log
        self._count_history = count

    def __reduce__(self):
        return (_history_buffer_class(), (self._log_history.tolist(), self._count_history.tolist(),
                                          self.max_length))


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that cannot be loaded with ``weights_only=True`` and the allow-list. The message names the
    file, the global it needs and the opt-in for trusted files."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose weights do not fit the model (missing, unexpected or differently shaped keys)."""


#: What loading a checkpoint raises for a bad file (missing, unreadable, refused, not fitting the model): the
#: tools print these as one ``error:`` line.
CHECKPOINT_ERRORS = (FileNotFoundError, UnsafeCheckpointError, CheckpointMismatchError, ValueError)

_TRUSTED: set = set()


def _numpy_dtype_classes() -> List[type]:
    """The concrete dtype classes (``numpy.dtypes.Float64DType`` ...) that pickled dtypes reference."""
    import numpy as np
    classes = []
    for code in '?bBhHiIlLqQefdgFDGSUVOMm':
        try:
            classes.append(type(np.dtype(code)))
        except TypeError:
            continue
    return classes


def _resolve(name: str):
    module, _, attr = name.rpartition('.')
    try:
        mod = __import__(module, fromlist=[attr])
        return getattr(mod, attr)
    except (ImportError, AttributeError):
        return None


def safe_globals() -> list:
    """The objects of :data:`SAFE_GLOBAL_NAMES` (those importable here), numpy's concrete dtype classes,
    :class:`RestrictedHistoryBuffer` under the name of mmengine's ``HistoryBuffer`` and
    :func:`history_buffer_getattr` under the name ``builtins.getattr``.

    Returns:
        list: For ``torch.serialization.safe_globals``.
    """
    objs = [obj for obj in (_resolve(n) for n in SAFE_GLOBAL_NAMES) if obj is not None]
    for name in ('numpy._core.multiarray._reconstruct',
                 'numpy._core.multiarray.scalar'):  # numpy >= 2 spelling
        obj = _resolve(name)
        if obj is not None and obj not in objs:
            objs.append(obj)
    return objs + _numpy_dtype_classes() + [
        (RestrictedHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (history_buffer_getattr, 'builtins.getattr'),
    ]


def _not_yet_allowed(entries: list) -> list:
    """The entries that torch's process-wide allow-list does not hold yet.
    ``torch.serialization.safe_globals`` removes on exit everything it added: passing only these keeps the
    user's own ``add_safe_globals``."""
    present = torch.serialization.get_safe_globals()
    return [e for e in entries if not any(e is p or (isinstance(e, tuple) and e == p) for p in present)]


def trust_checkpoint(path: str) -> None:
    """Allow ONE file to be loaded with full pickle semantics (``weights_only=False``) from now on.

    Only for files the user trusts (the tools' ``--unsafe-load``): loading a pickle runs whatever code it
    holds.

    Args:
        path (str): The checkpoint file.
    """
    _TRUSTED.add(osp.realpath(path))


def _is_trusted(path: str) -> bool:
    return osp.realpath(path) in _TRUSTED


_GLOBAL_RE = re.compile(r'(?:Unsupported global|Trying to load unsupported|unsupported GLOBAL)[^A-Za-z_]*'
                        r'(?:GLOBAL )?([A-Za-z_][\w.]*)')


def _needed_global(err: Exception) -> Optional[str]:
    match = _GLOBAL_RE.search(str(err))
    return match.group(1) if match else None


def _unpickler_reason(err: Exception) -> str:
    """The line of torch's weights-only error that says what was refused."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if 'WeightsUnpickler error:' in line:
            rest = line.split('WeightsUnpickler error:', 1)[1].strip()
            return (rest or (lines[i + 1] if i + 1 < len(lines) else ''))[:300]
    return (lines[-1] if lines else type(err).__name__)[:300]


def load_checkpoint_file(path: str, map_location='cpu', unsafe_load: bool = False):
    """Load a checkpoint file with ``torch.load(weights_only=True)`` and the allow-list of this module.

    Args:
        path (str): A local checkpoint file.
        map_location: As in ``torch.load``. Defaults to ``'cpu'``.
        unsafe_load (bool): Load with full pickle semantics (``weights_only=False``): ONLY for a file you
            trust, since its pickle may run code. Files passed to :func:`trust_checkpoint` load this way too.
            Defaults to False.

    Returns:
        The loaded object (usually a dict with ``state_dict``, ``meta`` ...).

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file needs a global outside the allow-list (named in the message).
        ValueError: The file is not a readable PyTorch checkpoint (truncated, empty, another format).
    """
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if unsafe_load or _is_trusted(path):
        print_log(f'loading {path} with full pickle semantics (unsafe load requested for this trusted file)',
                  logger='current', level=30)
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        # torch keeps this allow-list in one process-wide set: other threads see it during the call
        with torch.serialization.safe_globals(_not_yet_allowed(safe_globals())):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickler_reason(err)
        needed = None if 'refused getattr(' in reason or 'HistoryBuffer state' in reason \
            else _needed_global(err)
        if needed is None and reason.startswith('Unsupported operand'):
            raise ValueError(f'{path}: cannot read this checkpoint: it is not a PyTorch checkpoint, or an '
                             f'old pickle format that weights_only loading does not read ({reason})') from err
        what = f'the global {needed!r}, which is not on the allow-list of safe globals' if needed else \
            f'something the allow-list of safe globals refuses ({reason})'
        raise UnsafeCheckpointError(
            f'{path}: refused to load: the checkpoint needs {what}. Loading it would let its pickle run '
            'code. If you trust this file (you wrote it, or it comes from a source you trust), load it with '
            '--unsafe-load (tools) or unsafe_load=True (cfad_mm.apis.init_detector / load_checkpoint_file). '
            'See docs/security.md.') from err
    except Exception as err:  # truncated zip, random bytes, a text file: all "not a checkpoint"
        raise ValueError(f'{path}: cannot read this checkpoint (empty, truncated or not a PyTorch '
                         f'checkpoint): {type(err).__name__}: {str(err).strip()[:300]}') from err


def load_from_local_safe(filename: str, map_location=None):
    """mmengine ``CheckpointLoader`` scheme for local paths: :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location=map_location)


def register_safe_local_loader() -> None:
    """Make mmengine's ``CheckpointLoader`` read local files with :func:`load_from_local_safe`
    (idempotent). A workaround of :mod:`cfad_mm.compat` (``cfad_mm/compat/torch_weights_only.py``, whose
    version guard covers mmengine's private ``CheckpointLoader._schemes`` read here)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if getattr(CheckpointLoader, '_schemes', {}).get('') is load_from_local_safe:
        return
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)


def model_state_dict(checkpoint) -> dict:
    """The weights of a loaded checkpoint: its ``state_dict`` (or the dict itself), ``module.`` prefixes of a
    DDP-wrapped model removed."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, dict):
        raise ValueError(f'the checkpoint holds no state dict (found {type(state).__name__})')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def _compare(own: dict, state: dict) -> Tuple[List[str], List[str], List[str]]:
    missing = sorted(k for k in own if k not in state and not k.endswith('num_batches_tracked'))
    unexpected = sorted(k for k in state if k not in own)
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in sorted(own)
                  if k in state and hasattr(state[k], 'shape')
                  and tuple(state[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, mismatched


def _listing(what: str, keys: Sequence[str], limit: int = 5) -> str:
    more = f' and {len(keys) - limit} more' if len(keys) > limit else ''
    return f'{len(keys)} {what} ({", ".join(keys[:limit])}{more})'


def load_model_checkpoint(model: torch.nn.Module,
                          path: str,
                          strict: bool = True,
                          unsafe_load: bool = False,
                          config: Optional[str] = None,
                          map_location='cpu'):
    """Load a checkpoint's weights into ``model``; refuse one that does not fit unless ``strict=False``.

    Args:
        model (nn.Module): The model (unwrapped).
        path (str): The checkpoint file.
        strict (bool): Raise when a weight of the model is missing from the checkpoint, the checkpoint has
            weights the model lacks, or a shape differs. ``False`` loads the weights that fit and logs a
            warning naming the rest. Defaults to True.
        unsafe_load (bool): See :func:`load_checkpoint_file`. Defaults to False.
        config (str, optional): The config the model was built from, named in the error. Defaults to None.
        map_location: As in ``torch.load``. Defaults to ``'cpu'``.

    A model with an ``upgrade_state_dict(state_dict)`` method (:meth:`CFAD.upgrade_state_dict`) renames the
    weights of its older layouts first.

    Returns:
        The loaded checkpoint (for its ``meta``).

    Raises:
        CheckpointMismatchError: ``strict`` and the checkpoint does not fit (keys named, and how to load
            partially on purpose).
        UnsafeCheckpointError, FileNotFoundError, ValueError: See :func:`load_checkpoint_file`.
    """
    checkpoint = load_checkpoint_file(path, map_location=map_location, unsafe_load=unsafe_load)
    try:
        state = model_state_dict(checkpoint)
    except ValueError as err:
        raise CheckpointMismatchError(f'{path}: {err}') from err
    upgrade = getattr(model, 'upgrade_state_dict', None)  # a model's renames of its older weight names
    if callable(upgrade):
        state = upgrade(dict(state))
    own = model.state_dict()
    missing, unexpected, mismatched = _compare(own, state)
    problems = [
        _listing(w, k) for w, k in (('weights of the model missing from the checkpoint', missing),
                                    ('weights in the checkpoint that the model does not have', unexpected),
                                    ('weights of another shape', mismatched)) if k
    ]
    common = sum(1 for k in own if k in state)
    if problems and (strict or common == 0):
        model_of = f'the model of {config}' if config else f'the model ({type(model).__name__})'
        hint = ('It holds no weight of the model at all: it is the checkpoint of another model.'
                if common == 0 else 'A checkpoint of another config (e.g. another number of classes) is the '
                'usual cause. To load only the weights that fit, on purpose, pass --cfg-options '
                'load_strict=False (tools) or strict=False (API).')
        raise CheckpointMismatchError(f'checkpoint {path} does not fit {model_of}: ' + '; '.join(problems) +
                                      f'. {hint}')
    fitting = {k: v for k, v in state.items()
               if k in own and tuple(getattr(v, 'shape', ())) == tuple(own[k].shape)}
    model.load_state_dict(fitting, strict=False)
    if problems:
        print_log(f'checkpoint {path} loaded partially (strict=False): ' + '; '.join(problems),
                  logger='current', level=30)
    return checkpoint


def trusted_paths() -> Iterable[str]:
    """The files passed to :func:`trust_checkpoint` so far (real paths)."""
    return tuple(sorted(_TRUSTED))
