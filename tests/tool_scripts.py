"""The scripts of ``tools/`` are not a package: tests import one as a module with :func:`load_tool` (its
``if __name__ == '__main__'`` block does not run)."""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relpath: str, name: str = None):
    """The module of the script ``relpath`` (relative to the repository, e.g.
    ``'tools/analysis/span_sweep.py'``), executed afresh; ``name`` defaults to ``tool_<file stem>``."""
    path = osp.join(REPO, relpath)
    spec = importlib.util.spec_from_file_location(name or f'tool_{osp.splitext(osp.basename(path))[0]}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
