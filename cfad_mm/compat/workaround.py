"""The :class:`Workaround` record and the version guard that checks it against the installed stack.

Every workaround of :mod:`cfad_mm.compat` declares one record: the library versions it was written for
(requirement strings such as ``'mmcv==2.1.0'``), the files that implement it and, where it can be checked
cheaply, a ``still_needed()`` probe. :func:`workaround_problems` says why a workaround may no longer apply;
:func:`cfad_mm.compat.check_workarounds` turns that into one :class:`StackWorkaroundWarning` per workaround.

Versions are read with ``importlib.metadata`` (no library is imported for the check) and compared with
``packaging``'s specifiers when ``packaging`` is installed (mmcv depends on it), else with a plain
comparison of release numbers. A local version label (``2.13.0+cpu``) is ignored, as in PEP 440.
"""
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

__all__ = [
    'Workaround', 'StackWorkaroundWarning', 'installed_version', 'version_matches', 'parse_requirement',
    'workaround_problems'
]


class StackWorkaroundWarning(UserWarning):
    """A workaround of :mod:`cfad_mm.compat` runs on library versions it was not written for, or its probe
    says it no longer applies. See docs/troubleshooting.md ("Stack workaround warnings")."""


@dataclass(frozen=True)
class Workaround:
    """One workaround of the pinned stack.

    Attributes:
        name (str): Short identifier, used in the warning.
        summary (str): What breaks without it (one line).
        written_for (tuple[str, ...]): Requirement strings of the versions it was written and tested for,
            e.g. ``('mmcv==2.1.0',)`` or ``('mmengine==0.10.7', 'torch>=2.6')``.
        files (tuple[str, ...]): The files to review when it no longer applies (repository paths), the
            implementation first.
        implemented_by (str): The function / class that implements it (dotted name).
        still_needed (callable, optional): A cheap probe returning ``False`` when the workaround no longer
            applies: the problem is fixed in the installed library, or the library internals it relies on
            are gone. ``None``: only the version guard.
        probe (str): What ``still_needed`` checks, quoted in the warning.
    """
    name: str
    summary: str
    written_for: Tuple[str, ...]
    files: Tuple[str, ...]
    implemented_by: str
    still_needed: Optional[Callable[[], bool]] = None
    probe: str = ''

    @property
    def packages(self) -> Tuple[str, ...]:
        """The distribution names of :attr:`written_for`."""
        return tuple(parse_requirement(r)[0] for r in self.written_for)


def installed_version(dist: str) -> Optional[str]:
    """The installed version of the distribution ``dist`` (e.g. ``'mmaction2'``), ``None`` if absent."""
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


_REQ_RE = re.compile(r'^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$')
_CLAUSE_RE = re.compile(r'^\s*(==|!=|>=|<=|>|<)\s*([0-9][0-9A-Za-z.+!-]*)\s*$')


def parse_requirement(requirement: str) -> Tuple[str, str]:
    """``'mmcv==2.1.0'`` -> ``('mmcv', '==2.1.0')``."""
    match = _REQ_RE.match(requirement)
    if match is None:
        raise ValueError(f'not a requirement string: {requirement!r}')
    return match.group(1), match.group(2).strip()


def _release(version: str) -> Tuple[int, ...]:
    """The release numbers of ``version``: ``'2.13.0+cpu'`` -> ``(2, 13, 0)``, ``'1.0rc1'`` -> ``(1, 0)``."""
    nums = []
    for part in version.split('+', 1)[0].split('.'):
        digits = re.match(r'\d+', part)
        if digits is None:
            break
        nums.append(int(digits.group()))
        if digits.group() != part:
            break
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    return tuple(nums)


def _simple_matches(version: str, specifier: str) -> bool:
    """Comparison of release numbers for ``==, !=, >=, <=, >, <`` clauses (no ``packaging``)."""
    ops = {'==': lambda a, b: a == b, '!=': lambda a, b: a != b, '>=': lambda a, b: a >= b,
           '<=': lambda a, b: a <= b, '>': lambda a, b: a > b, '<': lambda a, b: a < b}
    have = _release(version)
    for clause in filter(None, (c.strip() for c in specifier.split(','))):
        match = _CLAUSE_RE.match(clause)
        if match is None:
            raise ValueError(f'unsupported version specifier {clause!r} (install packaging)')
        if not ops[match.group(1)](have, _release(match.group(2))):
            return False
    return True


def version_matches(version: str, specifier: str) -> bool:
    """Whether ``version`` satisfies ``specifier`` (``'==2.1.0'``, ``'>=2.6,<3'``; empty: any version)."""
    if not specifier:
        return True
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return _simple_matches(version, specifier)
    return SpecifierSet(specifier).contains(version, prereleases=True)


def workaround_problems(workaround: Workaround,
                        version_of: Optional[Callable[[str], Optional[str]]] = None) -> List[str]:
    """Why ``workaround`` may no longer apply: one phrase per installed package outside its written-for
    range, plus the probe's verdict. Empty when all is as it was written for. A package that is not installed
    is skipped, and so is the whole record when none of its packages is (the workaround is inert then).

    Args:
        workaround (Workaround): The record.
        version_of (callable, optional): Distribution name -> installed version. Defaults to
            :func:`installed_version`.
    """
    version_of = version_of or installed_version
    versions = {d: version_of(d) for d in workaround.packages}
    if not any(versions.values()):
        return []  # none of its libraries is installed: the workaround is inert
    problems = []
    for requirement in workaround.written_for:
        dist, spec = parse_requirement(requirement)
        version = versions[dist]
        if version is not None and not version_matches(version, spec):
            problems.append(f'{dist} {version} is installed, it was written for {requirement}')
    if workaround.still_needed is not None and not workaround.still_needed():
        installed = ', '.join(f'{d} {v}' for d, v in versions.items() if v)
        problems.append(f'its probe says it no longer applies ({workaround.probe}; installed: {installed}; '
                        f'written for {", ".join(workaround.written_for)})')
    return problems
