from .nonfinite_guard import AmpNonFiniteGuardOptimWrapper, NonFiniteGuardOptimWrapper, NonFiniteLossError

__all__ = ['NonFiniteGuardOptimWrapper', 'AmpNonFiniteGuardOptimWrapper', 'NonFiniteLossError']
