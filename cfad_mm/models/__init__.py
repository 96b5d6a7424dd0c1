"""CFAD model components: detector, neck, heads, task modules (coders, assigners) and shared feature
sampling."""
from . import task_modules  # noqa: F401
from .detectors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
