"""Sections of docs/BENCHMARKS.md that other bench commands own.

``python -m bench all --out`` writes the page; the soak, the API fuzz and other commands
write one section each, between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``. Each
command replaces only its own section, and a rewrite of the page keeps the others, so
every figure on the page stays the one its command last produced.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n.*?<!-- /bench:(?P=name) -->\n", re.S)


def wrap(name: str, markdown: str) -> str:
    """``markdown`` as the section ``name``."""
    return f"<!-- bench:{name} -->\n{markdown.rstrip()}\n<!-- /bench:{name} -->\n"


def sections(text: str) -> dict[str, str]:
    """The sections of a page, by name, markers included."""
    return {match["name"]: match[0] for match in _SECTION.finditer(text)}


def write_section(path: Path, name: str, markdown: str) -> None:
    """Put ``markdown`` in the page at ``path`` as section ``name`` (replaced, or appended)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = wrap(name, markdown)
    if name in sections(text):
        text = _SECTION.sub(lambda m: block if m["name"] == name else m[0], text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def carry_over(old: str, page: str) -> str:
    """``page`` with the sections of ``old`` it lacks appended (a rewrite keeps them)."""
    kept = [block for name, block in sections(old).items() if name not in sections(page)]
    return page if not kept else page.rstrip("\n") + "\n\n" + "\n".join(kept)
