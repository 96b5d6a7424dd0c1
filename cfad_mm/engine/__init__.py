"""Runtime components for long, unattended runs (registered into mmaction's registries on import).

* :class:`AtomicCheckpointHook` -- checkpoints written to a temporary file and renamed, so that a run killed
  during a save never leaves a corrupt checkpoint or ``last_checkpoint`` behind (``--resume auto`` works).
* :class:`NonFiniteGuardOptimWrapper` (and the AMP variant) -- a NaN/inf loss or gradient skips the optimizer
  step (or raises, configurable), naming the videos of the batch.
* :class:`ReliabilityHook` -- publishes the batch's video ids for the wrapper and reports, at the end of every
  epoch and of the run, how many samples were skipped as unreadable and how many steps as non-finite.
* :class:`TubeVisualizationHook` -- renders the predicted tubes of test clips to mp4
  (``tools/test.py --show-dir``).
* :mod:`cfad_mm.engine.checkpoint` -- the one way checkpoints are loaded: ``weights_only=True`` with a short
  allow-list, a clear refusal (and an explicit opt-in) for anything else, strict fit of the weights to the
  model.
"""
from .hooks import AtomicCheckpointHook, ReliabilityHook, TubeVisualizationHook
from .optimizers import AmpNonFiniteGuardOptimWrapper, NonFiniteGuardOptimWrapper, NonFiniteLossError

__all__ = ['AtomicCheckpointHook', 'ReliabilityHook', 'TubeVisualizationHook', 'NonFiniteGuardOptimWrapper',
           'AmpNonFiniteGuardOptimWrapper', 'NonFiniteLossError']
