"""Task modules: the tube coder (polynomial tube parameterization) and the tube assigner."""
from .tube_assigner import TubeAssigner
from .tube_coder import PolyTubeCoder, cxcy_logwh_to_xyxy, legendre_basis, xyxy_to_cxcy_logwh

__all__ = ['PolyTubeCoder', 'TubeAssigner', 'legendre_basis', 'xyxy_to_cxcy_logwh', 'cxcy_logwh_to_xyxy']
