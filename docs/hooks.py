"""MkDocs hooks: pages that quote the code, and links that leave the docs directory.

- ``<!-- rules-table -->`` in a page becomes the decision table of ``sessionware._rules``
  (its module docstring, whose reStructuredText tables turn into Markdown ones), so the
  response rules have one source: the code that applies them.
- A link from a page to a file of the repository outside ``docs/`` (``../bench/...``)
  works when the Markdown is read on a forge, not on the site: there it becomes the
  link text followed by the file's path.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES_MARKER = "<!-- rules-table -->"
_BORDER = re.compile(r"^=+( +=+)+$")
_OUTSIDE_LINK = re.compile(r"(!?)\[([^\]]+)\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")


def rules_docstring() -> str:
    """The module docstring of ``sessionware/_rules.py``, read without importing it."""
    source = (ROOT / "sessionware" / "_rules.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    if docstring is None:
        raise ValueError("sessionware/_rules.py has no module docstring")
    return docstring


def rst_tables_to_markdown(text: str) -> str:
    """Turn the reStructuredText simple tables of ``text`` into Markdown tables.

    A simple table is a border of ``=`` runs, rows, and a closing border followed by a
    blank line; a table with a header has one more border between header and rows. A
    row whose first column is blank continues the row above it. A table without a
    header becomes a list of terms.
    """
    lines = [*text.splitlines(), ""]
    out: list[str] = []
    index = 0
    while index < len(lines):
        if not _BORDER.match(lines[index]):
            out.append(lines[index])
            index += 1
            continue
        borders = [index]
        cursor = index + 1
        while True:
            while not _BORDER.match(lines[cursor]):
                cursor += 1
            borders.append(cursor)
            if not lines[cursor + 1].strip():
                break
            cursor += 1
        starts = [match.start() for match in re.finditer(r"=+", lines[index])]
        sections = [
            _rows(lines[first + 1 : last], starts) for first, last in itertools.pairwise(borders)
        ]
        if len(sections) > 1:
            out.append("| " + " | ".join(sections[0][0]) + " |")
            out.append("|" + "---|" * len(starts))
            out.extend("| " + " | ".join(row) + " |" for row in sections[-1])
        else:  # no header: a term and what it means, one per line
            out.extend(f"- `{row[0]}`: {' '.join(row[1:])}" for row in sections[-1])
        index = borders[-1] + 1
    return "\n".join(out[:-1])


def _rows(lines: list[str], starts: list[int]) -> list[list[str]]:
    """Cells cut at each column's start, so text running past a border still belongs to
    its column."""
    ends = [*starts[1:], None]
    rows: list[list[str]] = []
    for line in lines:
        cells = [
            line[start:end].strip().replace("|", "\\|")
            for start, end in zip(starts, ends, strict=True)
        ]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
    return rows


def rules_markdown() -> str:
    """The decision table as the docs show it (the docstring without its summary line)."""
    _summary, _, body = rules_docstring().partition("\n\n")
    return rst_tables_to_markdown(body)


def outside_links_to_text(markdown: str, page_dir: str = "") -> str:
    """``[text](../path)`` leaving ``docs/`` (from a page in ``page_dir``, relative to
    ``docs/``) becomes ``text (`path` in the repository)``; an image, its alt text."""
    docs = ROOT / "docs"

    def replace(match: re.Match[str]) -> str:
        image, label, target, _anchor = match.groups()
        resolved = (docs / page_dir / target).resolve()
        if resolved.is_relative_to(docs):
            return match.group(0)
        path = resolved.relative_to(ROOT).as_posix()
        return f"*{label}* (`{path}`)" if image else f"{label} (`{path}` in the repository)"

    return _OUTSIDE_LINK.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs: fill in the rules table; turn links out of ``docs/`` into plain paths."""
    if RULES_MARKER in markdown:
        markdown = markdown.replace(RULES_MARKER, rules_markdown())
    page_dir = Path(page.file.src_uri).parent.as_posix()
    return outside_links_to_text(markdown, "" if page_dir == "." else page_dir)
