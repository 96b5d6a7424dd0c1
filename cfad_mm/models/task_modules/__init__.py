"""Task modules: the tube coders (tube parameterizations) and the tube assigner."""
from .peak_tracker import PeakTracker
from .spline_tube_coder import SplineTubeCoder, cubic_bspline
from .tube_assigner import TubeAssigner
from .tube_coder import (
    BaseTubeCoder,
    PolyTubeCoder,
    cxcy_logwh_to_xyxy,
    legendre_basis,
    solve_spd,
    xyxy_to_cxcy_logwh,
)

__all__ = [
    'BaseTubeCoder', 'PeakTracker', 'PolyTubeCoder', 'SplineTubeCoder', 'TubeAssigner', 'legendre_basis',
    'cubic_bspline',
    'xyxy_to_cxcy_logwh', 'cxcy_logwh_to_xyxy', 'solve_spd'
]
