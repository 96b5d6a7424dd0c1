"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` whose files are never left half-written."""
import json
import os
import os.path as osp
from typing import List

from mmaction.registry import HOOKS
from mmengine.dist import get_rank, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

#: Temporary files of this hook are named ``<final name>.cfad-partial<rank or pid>`` and announced by a marker
#: file ``<temporary name>.cfad-marker`` written BEFORE them and removed after the rename. Only a temporary
#: file whose marker exists (and says it was written by this hook) is ever deleted by the clean-up of an
#: interrupted run: a user's ``model.tmp1`` or any other file in the work dir is never touched.
TMP_SUFFIX = '.cfad-partial'
MARKER_SUFFIX = '.cfad-marker'
MARKER_WRITER = 'cfad_mm.engine.AtomicCheckpointHook'


def _fsync(path: str) -> None:
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def partial_path(path: str, tag) -> str:
    """The temporary name of ``path`` while it is being written (``tag``: a rank or a pid)."""
    return f'{path}{TMP_SUFFIX}{tag}'


def _marker_head(partial: str) -> str:
    """The start of the marker text of the temporary file named ``partial``, up to its pid's digits."""
    return json.dumps(dict(writer=MARKER_WRITER, partial=partial))[:-1] + ', "pid": '


def _write_marker(tmp_path: str) -> None:
    with open(tmp_path + MARKER_SUFFIX, 'w') as f:
        f.write(f'{_marker_head(osp.basename(tmp_path))}{os.getpid()}}}')


def _is_cut_short_marker(text: str, partial: str) -> bool:
    """Whether ``text`` is a marker of this hook for ``partial`` that a kill cut short while it was written
    (empty, or a prefix of the full text). The temporary file itself is only opened after its marker is
    complete, so such a marker never announces a file."""
    head = _marker_head(partial)
    return head.startswith(text) or (text.startswith(head) and text[len(head):].isdigit())


def _remove_marker(tmp_path: str) -> None:
    try:
        os.remove(tmp_path + MARKER_SUFFIX)
    except FileNotFoundError:
        pass


def remove_interrupted_writes(folder: str) -> list:
    """Delete the temporary files that this hook (or :func:`atomic_write_text`) left in ``folder`` when a run
    was killed while writing, and their markers.

    A file is deleted only when its marker ``<name>.cfad-marker`` exists, names this hook as its writer and
    names the file, and the file's name has the form ``<final name>.cfad-partial<digits>``. A marker that a
    kill cut short while it was being written (empty, or the start of the text this hook writes for that
    name) is deleted alone: the file it was to announce is only started after its marker is complete.

    Returns:
        list[str]: The names of the deleted temporary files.
    """
    removed = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(MARKER_SUFFIX):
            continue
        marker = osp.join(folder, name)
        partial = name[:-len(MARKER_SUFFIX)]
        if TMP_SUFFIX not in partial or not partial.rsplit(TMP_SUFFIX, 1)[-1].isdigit():
            continue
        try:
            with open(marker) as f:
                text = f.read()
        except (OSError, ValueError):
            continue  # unreadable: not touched
        if _is_cut_short_marker(text, partial):
            os.remove(marker)  # killed while writing the marker: its file was never started
            continue
        try:
            info = json.loads(text)
        except ValueError:
            continue  # not one of ours
        if not isinstance(info, dict) or info.get('writer') != MARKER_WRITER or \
                info.get('partial') != partial:
            continue
        path = osp.join(folder, partial)
        if osp.isfile(path):
            os.remove(path)
            removed.append(partial)
        os.remove(marker)
    return removed


def atomic_write_text(path: str, text: str) -> None:
    """Write a small text file atomically (marked temporary file in the same folder + ``os.replace``)."""
    tmp = partial_path(path, os.getpid())
    _write_marker(tmp)
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _remove_marker(tmp)


class _AtomicSaveRunner:
    """The runner as seen by ``CheckpointHook._save_best_checkpoint``: every attribute is the runner's, except
    that ``save_checkpoint`` goes through :meth:`AtomicCheckpointHook.save_atomically`."""

    def __init__(self, runner, hook: 'AtomicCheckpointHook'):
        self._runner = runner
        self._hook = hook

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        self._hook.save_atomically(self._runner, out_dir, filename, *args, **kwargs)


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` are only recorded (run after the new file is in place)."""

    def __init__(self, backend):
        self._backend = backend
        self.pending: List[str] = []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def remove(self, path: str) -> None:
        self.pending.append(path)

    def rmtree(self, path: str) -> None:
        self.pending.append(path)

    def flush(self, keep: tuple = ()) -> None:
        """Remove the recorded paths, except those in ``keep`` (a path written again meanwhile)."""
        for path in self.pending:
            if path in keep:
                continue
            if self._backend.isfile(path):
                self._backend.remove(path)
            elif self._backend.isdir(path):
                self._backend.rmtree(path)
        self.pending.clear()


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that saves atomically, so that a run killed at any moment can be resumed.

    mmengine writes a checkpoint straight to its final name, removes the oldest / previous best checkpoint
    BEFORE writing the new one, and rewrites ``work_dir/last_checkpoint`` in place; a run killed (SIGKILL,
    out of memory, node preempted) during a save can then leave a truncated ``epoch_N.pth``, an empty
    ``last_checkpoint`` (``--resume auto`` fails) or one checkpoint fewer than ``max_keep_ckpts``. This hook,
    on a local file system:

    1. writes every checkpoint to ``<name>.cfad-partial<rank>`` in the same folder, flushes it to disk and
       renames it with ``os.replace`` (atomic on POSIX): a checkpoint file either is complete or does not
       exist;
    2. updates ``last_checkpoint`` atomically the same way, after the checkpoint is in place;
    3. removes outdated checkpoints (``max_keep_ckpts``, previous best) only after the new one is in place;
    4. deletes the temporary files a killed run left, in ``before_train``: only files named
       ``<name>.cfad-partial<digits>`` whose marker file ``<that name>.cfad-marker`` (written before them)
       says this hook wrote them, and markers a kill cut short (see :func:`remove_interrupted_writes`);
       nothing else in the folder is touched.

    For other storage backends (``backend_args`` with a remote prefix) it behaves as ``CheckpointHook``.
    All arguments are those of :class:`mmengine.hooks.CheckpointHook`; it is the default checkpoint hook of
    ``configs/_base_/default_runtime.py``.

    It overrides private methods of mmengine 0.10.7's ``CheckpointHook`` (``_save_checkpoint_with_step``,
    ``_save_best_checkpoint``) and reads its private state: a stack workaround, whose version guard and
    probe are in :mod:`cfad_mm.compat.mmengine_checkpoint_hook` (``import cfad_mm`` warns when the installed
    mmengine is not the one this was written for, or those methods are gone).
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process() and osp.isdir(self.out_dir):
            for name in remove_interrupted_writes(self.out_dir):
                runner.logger.warning(f'Removed {name}, a checkpoint left half-written by an '
                                      'interrupted run.')

    def _is_local(self) -> bool:
        backend = getattr(self, 'file_backend', None)
        if isinstance(backend, _DeferredRemoval):
            backend = backend._backend
        return isinstance(backend, LocalBackend)

    def save_atomically(self, runner, out_dir: str, filename: str, *args, **kwargs) -> None:
        """``runner.save_checkpoint(out_dir, filename, ...)``, through a temporary file on local storage."""
        if not self._is_local():
            runner.save_checkpoint(out_dir, filename, *args, **kwargs)
            return
        tmp_name = osp.basename(partial_path(filename, get_rank()))
        tmp_path, path = osp.join(out_dir, tmp_name), osp.join(out_dir, filename)
        os.makedirs(out_dir, exist_ok=True)
        _write_marker(tmp_path)
        runner.save_checkpoint(out_dir, tmp_name, *args, **kwargs)
        if is_main_process():
            _fsync(tmp_path)
            os.replace(tmp_path, path)
        elif osp.isfile(tmp_path):  # every rank writes (mmengine); the main process's copy is kept
            os.remove(tmp_path)
        _remove_marker(tmp_path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        """Same bookkeeping as ``CheckpointHook``; new file first, then ``last_checkpoint``, then removals."""
        runner = getattr(runner, '_runner', runner)  # called from _save_best_checkpoint with the proxy
        outdated = []
        if self.max_keep_ckpts > 0:
            # _save_checkpoint and _save_best_checkpoint may both save the same step in one epoch
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated.append(self.keep_ckpt_ids.popleft())
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self.save_atomically(
            runner,
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        save_file = osp.join(runner.work_dir, 'last_checkpoint')
        if self._is_local():
            atomic_write_text(save_file, self.last_ckpt)
        else:
            with open(save_file, 'w') as f:
                f.write(self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if path == self.last_ckpt:
                # a stale ``keep_ckpt_ids`` (e.g. a message hub carried over from another run) can hold the
                # step just saved: never remove the checkpoint that was just written
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """``CheckpointHook``'s logic; the new best is written atomically before the previous one is
        removed."""
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(_AtomicSaveRunner(runner, self), metrics)
        finally:
            self.file_backend = backend
        keep = {getattr(self, 'best_ckpt_path', None), self.last_ckpt}
        keep |= set(getattr(self, 'best_ckpt_path_dict', {}).values())
        deferred.flush(keep=tuple(p for p in keep if p))
