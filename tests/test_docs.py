"""Every code block of the README and the docs is type-checked, run, or checked against
the file it quotes (``tests/docs_blocks.py`` says how a block is marked); the option
table and the rules page match the code."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient as FastAPIClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client as WerkzeugClient

from sessionware import SessionMiddleware, get_session
from sessionware._options import DEFAULTS
from sessionware.cli import _parser
from sessionware.testing import edit_session
from tests.docs_blocks import (
    LANGUAGES,
    ROOT,
    Block,
    blocks,
    commands,
    doc_files,
    excerpt_found,
    module_name,
    python_units,
)

ALL_BLOCKS = [block for path in doc_files() for block in blocks(path)]
UNITS = python_units(ALL_BLOCKS)
RUNNABLE = [unit for unit in UNITS if "no-run" not in unit.flags]
SHELL = [block for block in ALL_BLOCKS if block.language == "sh"]
EXCERPTS = [block for block in ALL_BLOCKS if "excerpt" in block.flags]
# Commands the docs describe ahead of the command line that is being extended: checked by
# the parser once it knows them, expected to fail until then.
PENDING: frozenset[str] = frozenset()


def _ids(items: list[Block]) -> list[str]:
    return [item.where for item in items]


def test_every_block_has_a_known_language() -> None:
    unknown = [
        f"{block.where}: {block.language or '(none)'}"
        for block in ALL_BLOCKS
        if block.language not in LANGUAGES
    ]
    assert not unknown, f"give each block one of {sorted(LANGUAGES)}: {unknown}"


def test_every_snippet_include_names_a_checked_file() -> None:
    checked = set(doc_files())
    for path in doc_files():
        for target in re.findall(r'^--8<-- "([^"]+)"$', path.read_text(), flags=re.M):
            assert ROOT / target in checked, f"{path}: includes {target}, which no test checks"


def test_readme_links_lead_to_files_of_the_repository() -> None:
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "the README links to the guides"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing


def test_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    files = {}
    for unit in UNITS:
        file = tmp_path / f"{module_name(unit)}.py"
        file.write_text(unit.source)
        files[file.name] = unit
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "pyproject.toml"]
        + [str(tmp_path / name) for name in sorted(files)],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    errors = []
    for line in checked.stdout.splitlines():
        match = re.match(r"^.*?([\w]+\.py):(\d+): (.*)$", line)
        if match and match[1] in files:
            unit = files[match[1]]
            errors.append(f"{unit.where} (block line {match[2]}): {match[3]}")
    assert checked.returncode == 0, "\n".join(errors) or checked.stdout + checked.stderr


@pytest.mark.parametrize("block", EXCERPTS, ids=_ids(EXCERPTS))
def test_excerpts_match_the_file_they_quote(block: Block) -> None:
    assert excerpt_found(block), f"{block.where} no longer matches {block.flags['excerpt']}"


@pytest.mark.parametrize("unit", RUNNABLE, ids=_ids(RUNNABLE))
def test_python_blocks_run(unit: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = unit.flags.get("name", "")
    if "isolated" in unit.flags:
        script = tmp_path / "block.py"
        script.write_text(unit.source)
        ran = subprocess.run(
            [sys.executable, str(script)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        if name in ISOLATED_CHECKS:
            ISOLATED_CHECKS[name](ran.stdout)
        return
    with _Module(unit, tmp_path) as namespace:
        for test in [value for key, value in namespace.items() if key.startswith("test_")]:
            result = test()
            if inspect.iscoroutine(result):
                asyncio.run(result)
        if name in CHECKS:
            CHECKS[name](namespace)


class _Module:
    """The block executed as a module of its own, importable while it runs (Flask needs that)."""

    def __init__(self, unit: Block, directory: Path) -> None:
        self.name = module_name(unit)
        self.module = types.ModuleType(self.name)
        self.module.__file__ = str(directory / f"{self.name}.py")
        self.code = compile(unit.source, unit.where, "exec")

    def __enter__(self) -> dict[str, Any]:
        sys.modules[self.name] = self.module
        exec(self.code, self.module.__dict__)
        return self.module.__dict__

    def __exit__(self, *exc: object) -> None:
        sys.modules.pop(self.name, None)


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_blocks_parse(block: Block) -> None:
    parsed = subprocess.run(
        ["bash", "-n"], input=block.source, capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, f"{block.where}: {parsed.stderr}"


SESSIONWARE_COMMANDS = [(block, argv) for block in SHELL for argv in commands(block)]


@pytest.mark.parametrize(
    ("block", "argv"),
    SESSIONWARE_COMMANDS,
    ids=[f"{block.where} {' '.join(argv)[:60]}" for block, argv in SESSIONWARE_COMMANDS],
)
def test_sessionware_commands_in_the_docs_parse(block: Block, argv: list[str]) -> None:
    parser = _parser()
    known = _known_words(parser)
    missing = [word for word in argv if word in PENDING and word not in known]
    if missing:
        pytest.xfail(f"{block.where}: the command line does not have {missing} yet")
    if "--help" in argv:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(argv)
        assert exited.value.code == 0
    else:
        parser.parse_args(argv)  # argparse exits (and the test fails) on what it refuses


def _known_words(parser: Any) -> set[str]:
    words: set[str] = set()
    for action in parser._actions:
        words.update(action.option_strings)
        for name, sub in (action.choices or {}).items() if isinstance(action.choices, dict) else ():
            words.add(name)
            words |= _known_words(sub)
    return words


# -- the option table and the rules page -------------------------------------------------------


def _option_rows() -> dict[str, str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text.split("## Every option", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def _shown(default: object) -> str:
    if isinstance(default, str):
        return f'`"{default}"`'
    return f"`{default!r}`"


def test_configuration_lists_every_option_with_its_default() -> None:
    rows = _option_rows()
    assert list(rows) == list(DEFAULTS)
    for option, default in DEFAULTS.items():
        assert _shown(default) in rows[option], f"{option}: the table says {rows[option]}"


def test_the_rules_page_renders_every_rule_of_the_decision_table() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    rendered = hooks.rules_markdown()
    source = (ROOT / "sessionware" / "_rules.py").read_text()
    numbers = {int(n) for n in re.findall(r"Plan\(rule=(\d+)", source)}
    rows = [int(n) for n in re.findall(r"^\| (\d+) \|", rendered, flags=re.M)]
    assert rows == sorted(numbers) == list(range(1, 11))
    assert hooks.RULES_MARKER in (ROOT / "docs" / "rules.md").read_text()
    assert "| rule | when | store | cookie |" in rendered
    assert "- `STALE`:" in rendered


# -- what named blocks built, exercised -----------------------------------------------------------


def _visits(namespace: dict[str, Any]) -> None:
    client = TestClient(namespace["app"])
    assert client.get("/").text == "visit 1"
    assert client.get("/").text == "visit 2"


def _fastapi(namespace: dict[str, Any]) -> None:
    client = FastAPIClient(namespace["app"])
    assert client.post("/login", params={"username": "ada"}).json() == {"username": "ada"}
    assert client.get("/me").json() == {"username": "ada"}
    assert client.post("/logout").json() == {"logged_out": True}
    assert client.get("/me").json() == {"username": None}


def _session_dep(namespace: dict[str, Any]) -> None:
    client = FastAPIClient(namespace["app"])
    assert client.get("/me").status_code == 401
    client.post("/login/7")
    assert client.get("/me").json() == {"user_id": 7}


def _explicit(namespace: dict[str, Any]) -> None:
    client = FastAPIClient(namespace["app"])
    assert client.get("/healthz").json() == "ok"
    assert client.get("/cart").json() == []


def _flask(namespace: dict[str, Any]) -> None:
    client = namespace["app"].test_client()
    assert client.get("/").text == "visit 1"
    assert client.get("/").text == "visit 2"


def _wsgi(namespace: dict[str, Any]) -> None:
    client = WerkzeugClient(namespace["app"])
    assert client.get("/").text == "count: 1"
    assert client.get("/").text == "count: 2"


def _lifespan(namespace: dict[str, Any]) -> None:
    with TestClient(namespace["app"]) as client:  # runs startup and shutdown
        assert client.get("/").status_code == 404


def _devices(namespace: dict[str, Any]) -> None:
    async def login(request: Request) -> PlainTextResponse:
        get_session(request)["user_id"] = 42
        return PlainTextResponse("in")

    app = SessionMiddleware(
        Starlette(routes=[Route("/login", login)]), store=namespace["store"], user_key="user_id"
    )
    laptop, phone = TestClient(app), TestClient(app)
    laptop.get("/login")
    phone.get("/login")
    with edit_session(laptop, app) as session:
        listed = namespace["devices"](session, 42)
        assert [row["this_device"] for row in listed].count(True) == 1
        assert len(listed) == 2
        assert namespace["sign_out_everywhere_else"](session, 42) == 1
        assert len(namespace["devices"](session, 42)) == 1


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "starlette": _visits,
    "home": _visits,
    "fastapi": _fastapi,
    "session-dep": _session_dep,
    "explicit": _explicit,
    "flask": _flask,
    "wsgi": _wsgi,
    "lifespan": _lifespan,
    "devices": _devices,
}


def _spans_printed(output: str) -> None:
    assert '"name": "sessionware.store.insert"' in output
    assert "sessionware.sessions.created" in output


ISOLATED_CHECKS: dict[str, Callable[[str], None]] = {"otel": _spans_printed}


def test_every_named_check_has_its_block() -> None:
    names = {unit.flags.get("name") for unit in UNITS}
    assert set(CHECKS) | set(ISOLATED_CHECKS) <= names
