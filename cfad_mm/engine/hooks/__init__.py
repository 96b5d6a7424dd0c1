from .atomic_checkpoint_hook import AtomicCheckpointHook
from .reliability_hook import ReliabilityHook

__all__ = ['AtomicCheckpointHook', 'ReliabilityHook']
