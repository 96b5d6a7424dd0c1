"""mmaction2 1.2.0: the PyPI wheel lacks ``mmaction/models/localizers/drn`` (upstream issue 2714).

``import mmaction.models`` then raises ``ModuleNotFoundError``. :func:`register_missing_drn` registers a
placeholder package ``mmaction.models.localizers.drn`` whose ``DRN`` class raises a clear error when someone
tries to build it; nothing else in mmaction depends on it. It does nothing when the folder exists (an
install from source), and :data:`WORKAROUND`'s probe then reports that the workaround no longer applies.
"""
import os.path as osp
import sys
import types
from typing import List

from .workaround import Workaround

DRN_MODULE = 'mmaction.models.localizers.drn'


class MissingDRN:
    """Stands in for mmaction's DRN localizer, which the mmaction2 1.2.0 wheel does not ship."""

    def __init__(self, *args, **kwargs):
        raise ImportError('mmaction.models.localizers.drn is missing from the mmaction2 1.2.0 wheel on PyPI '
                          '(upstream issue 2714); install mmaction2 from source to use DRN.')


def _mmaction_roots() -> List[str]:
    """mmaction's package folders, found without importing it (``[]`` if mmaction is absent)."""
    import importlib.util
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return []
    return list(spec.submodule_search_locations)


def drn_folder_missing() -> bool:
    """Whether mmaction is installed without its ``models/localizers/drn`` folder.

    Looks at the folder, not at the submodule: ``find_spec`` of the submodule would import
    ``mmaction.models``, which is exactly what fails.
    """
    roots = _mmaction_roots()
    return bool(roots) and not any(osp.isdir(osp.join(r, 'models', 'localizers', 'drn')) for r in roots)


def register_missing_drn() -> None:
    """Put a placeholder ``drn`` package into ``sys.modules`` if mmaction lacks it (idempotent)."""
    if DRN_MODULE in sys.modules or not drn_folder_missing():
        return
    pkg = types.ModuleType(DRN_MODULE)
    pkg.__path__ = []  # a package, so that ``from .drn.drn import DRN`` resolves the submodule below
    sub = types.ModuleType(DRN_MODULE + '.drn')
    sub.DRN = MissingDRN
    pkg.drn = sub
    sys.modules[DRN_MODULE] = pkg
    sys.modules[DRN_MODULE + '.drn'] = sub


WORKAROUND = Workaround(
    name='mmaction-missing-drn',
    summary='the mmaction2 wheel lacks mmaction/models/localizers/drn, so import mmaction.models fails',
    written_for=('mmaction2==1.2.0', ),
    files=('cfad_mm/compat/mmaction_drn.py', ),
    implemented_by='cfad_mm.compat.mmaction_drn.register_missing_drn',
    still_needed=drn_folder_missing,
    probe='mmaction/models/localizers/drn exists in the installed mmaction2')
