"""Generated blocks inside documentation files.

Several tools write into the same markdown file (``docs/results.md``, ``docs/benchmarks.md``, the README):
each owns the text between its two markers ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, and a tool that
rewrites a whole file carries the other tools' blocks over (:func:`carry_blocks`), so that no tool erases what
another one measured.
"""
import os
import os.path as osp
import re
import shlex
from typing import Dict, Iterable, Sequence

_BLOCK = re.compile(r'<!-- ([A-Za-z0-9_.-]+):start -->\n.*?<!-- \1:end -->', re.S)


def block_markers(name: str):
    """The start and end markers of block ``name``."""
    if not re.fullmatch(r'[A-Za-z0-9_.-]+', name):
        raise ValueError(f'block name {name!r}: use letters, digits, "_", "." and "-" only')
    return f'<!-- {name}:start -->', f'<!-- {name}:end -->'


def find_blocks(text: str) -> Dict[str, str]:
    """``{name: whole block including its markers}`` of every generated block of ``text``."""
    return {m.group(1): m.group(0) for m in _BLOCK.finditer(text)}


def render_block(name: str, body: str) -> str:
    """Block ``name`` with ``body`` between its markers."""
    start, end = block_markers(name)
    return f'{start}\n{body.rstrip()}\n{end}'


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with block ``name`` set to ``body``; a block not in ``text`` yet is appended at its end."""
    block = render_block(name, body)
    start, end = block_markers(name)
    if (start in text) != (end in text):
        raise ValueError(f'the markers of block {name!r} are not paired (one of {start} / {end} is missing)')
    if start in text:
        head, rest = text.split(start, 1)
        if end not in rest:
            raise ValueError(f'the markers of block {name!r} are not paired ({end} comes before {start})')
        _, tail = rest.split(end, 1)
        return head + block + tail
    return text.rstrip('\n') + '\n\n' + block + '\n'


def carry_blocks(old_text: str, new_text: str) -> str:
    """``new_text`` (a whole file written by one tool) with the blocks of ``old_text`` that it lacks
    appended, in their old order: rewriting a file keeps what other tools wrote into it."""
    have = find_blocks(new_text)
    out = new_text
    for name, block in find_blocks(old_text).items():
        if name not in have:
            out = out.rstrip('\n') + '\n\n' + block + '\n'
    return out


def cited_command(tool: str, argv: Sequence[str], drop: Iterable[str] = ('--doc', '--block')) -> str:
    """``python TOOL ARGS`` as a generated block cites the run that wrote it: ``argv`` quoted for the shell,
    without the options of ``drop`` and their values (``--opt VALUE`` and ``--opt=VALUE``), which say where
    the output goes rather than what was measured."""
    drop, out = set(drop), []
    it = iter(argv)
    for a in it:
        if a.split('=')[0] in drop:
            if '=' not in a:
                next(it, None)
            continue
        out.append(shlex.quote(a))
    return ' '.join(['python', tool] + out)


def write_block(path: str, name: str, body: str) -> None:
    """Set block ``name`` of the markdown file ``path`` to ``body`` (the file is created if missing); the rest
    of the file is left as it is."""
    text = ''
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            text = f.read()
    text = replace_block(text, name, body)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def write_keeping_blocks(path: str, text: str) -> None:
    """Write the whole file ``path`` as ``text``, keeping the generated blocks of its previous content that
    ``text`` does not have (see :func:`carry_blocks`)."""
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            text = carry_blocks(f.read(), text)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def markdown_table(header, rows) -> str:
    """A markdown table of a header row and rows of cells (strings)."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return '\n'.join(lines + ['| ' + ' | '.join(r) + ' |' for r in rows])
