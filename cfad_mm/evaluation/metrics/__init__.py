"""mmengine metrics of cfad-mm."""
from .tube_metric import TubeMetric, data_samples_to_clip_predictions

__all__ = ['TubeMetric', 'data_samples_to_clip_predictions']
