"""Fixtures of the evaluation tests."""
import pytest
from tube_eval_data import make_ann, tube


@pytest.fixture
def two_video_ann():
    """Test videos a/v1 (40 frames: a 'walk' tube moving right, a 'run' tube) and b/v2 (30 frames: 'walk')."""
    return make_ann({
        'a/v1': (40, {
            0: [tube(range(1, 41), (10, 10, 50, 60), (1.0, 0.0))],
            1: [tube(range(5, 31), (90, 20, 140, 100), (0.0, 0.5))]
        }),
        'b/v2': (30, {
            0: [tube(range(3, 29), (30, 30, 80, 90), (0.5, 0.5))]
        }),
    })
