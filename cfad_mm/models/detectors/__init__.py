from .cfad import CFAD

__all__ = ['CFAD']
