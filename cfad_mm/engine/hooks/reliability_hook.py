"""``ReliabilityHook``: nothing a run skips goes unreported."""
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mmaction.registry import HOOKS
from mmengine.hooks import Hook

from cfad_mm.datasets.tube_dataset import BAD_SAMPLES_KEY
from ..optimizers.nonfinite_guard import BATCH_VIDEOS_KEY, SKIPPED_STEPS_KEY


def _metainfo(sample) -> dict:
    if isinstance(sample, dict):
        return sample
    return getattr(sample, 'metainfo', {}) or {}


def _datasets(dataset) -> list:
    """``dataset`` and the datasets inside wrappers (ConcatDataset, RepeatDataset, ...)."""
    found, stack = [], [dataset]
    while stack:
        ds = stack.pop()
        found.append(ds)
        if hasattr(ds, 'datasets'):
            stack.extend(ds.datasets)
        elif hasattr(ds, 'dataset'):
            stack.append(ds.dataset)
    return found


def summarise_bad_samples(records: Sequence[dict], max_videos: int = 10) -> str:
    """``'N clip(s) of M video(s): video (k clips): reason; ...'`` for skip records of a dataset."""
    per_video: Dict[str, int] = Counter(r['video'] for r in records)
    reasons = {}
    for r in records:
        reasons.setdefault(r['video'], r['error'])
    shown = '; '.join(f'{v} ({n}x): {reasons[v][:200]}' for v, n in list(per_video.items())[:max_videos])
    more = f'; ... and {len(per_video) - max_videos} more video(s)' if len(per_video) > max_videos else ''
    return f'{len(records)} sample(s) of {len(per_video)} video(s): {shown}{more}'


@HOOKS.register_module()
class ReliabilityHook(Hook):
    """Reports what a run skipped: unreadable samples (``on_bad_sample='skip'``) and non-finite steps.

    * ``before_train_iter``: publishes the video ids of the batch in the message hub (key
      ``batch_video_ids``), so that :class:`cfad_mm.engine.NonFiniteGuardOptimWrapper` can name them, and
      collects the skip records that :class:`cfad_mm.datasets.TubeDataset` attaches to served samples
      (metainfo ``bad_samples``; this also covers skips made inside dataloader worker processes).
    * ``after_train_epoch``: a warning with the number of training samples skipped in the epoch (per video,
      with the reason) and of optimizer steps skipped for a NaN/inf loss or gradient.
    * ``after_val_epoch`` / ``after_test_epoch``: a warning listing the videos the evaluation dataset left
      out.
    * ``after_run``: the totals of the run (a line saying that nothing was skipped when nothing was).

    Enabled by ``custom_hooks`` in ``configs/_base_/default_runtime.py``.

    Args:
        max_videos (int): Videos listed per summary. Defaults to 10.
    """

    priority = 'VERY_LOW'

    def __init__(self, max_videos: int = 10):
        self.max_videos = max_videos
        self.epoch_bad: List[dict] = []
        self.run_bad: List[dict] = []
        self.eval_bad: Dict[str, int] = {}
        self._steps_at_epoch_start = 0

    # ------------------------------------------------------------------ training
    def before_train_epoch(self, runner) -> None:
        self.epoch_bad = []
        self._steps_at_epoch_start = runner.message_hub.get_info(SKIPPED_STEPS_KEY, 0)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
        samples = samples or []
        videos = []
        for sample in samples:
            meta = _metainfo(sample)
            videos.append(meta.get('video_id', '?'))
            records = meta.get(BAD_SAMPLES_KEY)
            if records:
                self.epoch_bad.extend(records)
                self.run_bad.extend(records)
        runner.message_hub.update_info(BATCH_VIDEOS_KEY, videos)

    def after_train_epoch(self, runner) -> None:
        steps = runner.message_hub.get_info(SKIPPED_STEPS_KEY, 0) - self._steps_at_epoch_start
        if self.epoch_bad:
            runner.logger.warning(f'Epoch {runner.epoch}: skipped unreadable training '
                                  f'{summarise_bad_samples(self.epoch_bad, self.max_videos)}')
        if steps:
            runner.logger.warning(f'Epoch {runner.epoch}: {steps} optimizer step(s) skipped for a non-finite '
                                  'loss or gradient (each one is logged above with its videos)')

    # ------------------------------------------------------------------ evaluation
    def _eval_report(self, runner, loop_name: str) -> None:
        loop = getattr(runner, f'{loop_name}_loop', None)
        dataloader = getattr(loop, 'dataloader', None)
        if dataloader is None:
            return
        records = []
        for ds in _datasets(dataloader.dataset):
            records.extend(getattr(ds, 'bad_samples', None) or [])
        if records:
            self.eval_bad[loop_name] = len(records)
            runner.logger.warning(f'{loop_name}: the dataset left out unreadable '
                                  f'{summarise_bad_samples(records, self.max_videos)} (their ground truth '
                                  'counts as missed in the metrics)')

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._eval_report(runner, 'val')

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._eval_report(runner, 'test')

    # ------------------------------------------------------------------ end of run
    def after_run(self, runner) -> None:
        steps = runner.message_hub.get_info(SKIPPED_STEPS_KEY, 0)
        parts = []
        if self.run_bad:
            parts.append(f'{len(self.run_bad)} unreadable training sample(s) skipped '
                         f'({summarise_bad_samples(self.run_bad, self.max_videos)})')
        if steps:
            parts.append(f'{steps} optimizer step(s) skipped for a non-finite loss or gradient')
        for name, n in self.eval_bad.items():
            parts.append(f'{n} unreadable {name} video(s) left out')
        if parts:
            runner.logger.warning('Skipped in this run: ' + '; '.join(parts))
        else:
            runner.logger.info('Skipped in this run: nothing (no unreadable sample, no non-finite step)')
