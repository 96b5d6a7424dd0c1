"""cfad-mm: CFAD (Coarse-to-Fine Action Detector, ECCV 2020) as an MMAction2 plugin.

Importing this package applies the stack workarounds of :mod:`cfad_mm.compat` and registers every component
(datasets, transforms, models, task modules, metrics) into mmaction2's registries, so that configs only need::

    custom_imports = dict(imports=['cfad_mm'], allow_failed_imports=False)
    default_scope = 'mmaction'
"""
from .compat import apply_compat_patches

apply_compat_patches()

# The subpackages register their components in this order, after the patches above.
# isort: off
from . import structures  # noqa: E402,F401
from . import datasets  # noqa: E402,F401
from . import evaluation  # noqa: E402,F401
from . import models  # noqa: E402,F401
from . import engine  # noqa: E402,F401
# isort: on
from .version import __version__  # noqa: E402

__all__ = ['__version__']
