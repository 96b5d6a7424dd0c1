from .atomic_checkpoint_hook import AtomicCheckpointHook
from .reliability_hook import ReliabilityHook
from .tube_visualization_hook import TubeVisualizationHook

__all__ = ['AtomicCheckpointHook', 'ReliabilityHook', 'TubeVisualizationHook']
