"""The fenced code blocks of the README and the docs, as ``tests/test_docs.py`` checks them.

A block may be preceded by a marker comment, invisible once rendered::

    <!-- docs: no-run, name=fastapi -->

- no marker: a Python block is type-checked with ``mypy --strict`` and run;
- ``no-run``: type-checked only (it starts a server, or needs one that tests must not
  touch, such as Redis database 0);
- ``isolated``: run in a fresh interpreter (it sets process-wide state, such as the
  OpenTelemetry providers);
- ``continue``: the block goes on from the previous Python block of the page; both are
  checked and run as one;
- ``excerpt=PATH``: the block is quoted from ``PATH`` (a file that is type-checked and
  tested itself), and must appear there verbatim (between ``<!-- fmt: off -->`` and
  ``<!-- fmt: on -->``, so that ``ruff format`` keeps its indentation);
- ``name=NAME``: after running, ``tests/test_docs.py`` exercises what the block built;
- text in parentheses is a comment for the reader of the Markdown.

Shell blocks (``sh``) are parsed by ``bash -n``, and their ``sessionware`` commands by
the command line's own argument parser.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = frozenset({"python", "sh", "text"})
_FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
_MARKER = re.compile(r"^<!--\s*docs:(?P<flags>.*?)-->$")
_FLAG = re.compile(r"([a-z-]+)(?:=(\S+))?")
# ruff formats the Python blocks of Markdown files; an excerpt keeps its file's layout.
_FMT = re.compile(r"^<!--\s*fmt:\s*(on|off)\s*-->$")
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SCHEDULE = re.compile(r"^[0-9*/,-]+$")


def doc_files() -> list[Path]:
    """Every Markdown file whose code blocks the tests check."""
    pages = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "CHANGELOG.md", *pages]


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    source: str
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, with the flags of their marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = "\n".join(line[indent:] for line in lines[index + 1 : end])
        language = opening["info"].strip().split(" ")[0]
        found.append(Block(path, index + 1, language, body + "\n", _flags(lines, index)))
        index = end + 1
    return found


def _flags(lines: list[str], fence: int) -> dict[str, str]:
    previous = fence - 1
    while previous >= 0 and (not lines[previous].strip() or _FMT.match(lines[previous])):
        previous -= 1
    marker = _MARKER.match(lines[previous].strip()) if previous >= 0 else None
    if marker is None:
        return {}
    text = re.sub(r"\([^)]*\)", "", marker["flags"])
    return {match[1]: match[2] or "" for match in _FLAG.finditer(text)}


def python_units(all_blocks: list[Block]) -> list[Block]:
    """Python blocks to check, a ``continue`` block joined onto the one before it."""
    units: list[Block] = []
    for block in all_blocks:
        if block.language != "python" or "excerpt" in block.flags:
            continue
        if "continue" in block.flags:
            if not units or units[-1].path != block.path:
                raise ValueError(f"{block.where}: 'continue' with no Python block before it")
            previous = units[-1]
            units[-1] = Block(
                previous.path,
                previous.line,
                "python",
                previous.source + "\n" + block.source,
                {**previous.flags, **{k: v for k, v in block.flags.items() if k != "continue"}},
            )
            continue
        units.append(block)
    return units


def module_name(block: Block) -> str:
    """A module name for the block, unique across the docs."""
    stem = re.sub(r"\W", "_", block.path.relative_to(ROOT).with_suffix("").as_posix())
    return f"docs_{stem}_{block.line}"


def excerpt_found(block: Block) -> bool:
    """Whether the block appears, line for line, in the file it quotes."""
    quoted = (ROOT / block.flags["excerpt"]).read_text(encoding="utf-8")
    wanted = [line.rstrip() for line in block.source.strip("\n").splitlines()]
    have = [line.rstrip() for line in quoted.splitlines()]
    return any(have[i : i + len(wanted)] == wanted for i in range(len(have)))


def commands(block: Block) -> list[list[str]]:
    """The ``sessionware`` commands of a shell block, as argument lists (``[x]`` is ``x``)."""
    found: list[list[str]] = []
    for line in block.source.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in _SEPARATORS:
                arguments = _sessionware_arguments(command)
                if arguments is not None:
                    found.append([word.strip("[]") for word in arguments if word.strip("[]…")])
                command = []
            else:
                command.append(token)
    return found


def _sessionware_arguments(command: list[str]) -> list[str] | None:
    """The arguments if ``command`` runs sessionware (``sessionware …``, ``python -m
    sessionware …``), after environment assignments and a crontab line's schedule."""
    words = list(command)
    while words and (_ASSIGNMENT.match(words[0]) or _SCHEDULE.match(words[0])):
        words.pop(0)
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    if program == "sessionware":
        return words[1:]
    if program.startswith("python") and words[1:3] == ["-m", "sessionware"]:
        return words[3:]
    return None
