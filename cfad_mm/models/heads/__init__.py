from .coarse_tube_head import CoarseTubeHead
from .key_timestamp_selector import KeyTimestampSelector
from .refine_tube_head import RefineTubeHead
from .step_actor_head import StepActorHead
from .temporal_proposal_head import TemporalProposalHead
from .tube_track_head import TubeTrackHead

__all__ = [
    'TemporalProposalHead', 'CoarseTubeHead', 'KeyTimestampSelector', 'RefineTubeHead', 'TubeTrackHead',
    'StepActorHead'
]
