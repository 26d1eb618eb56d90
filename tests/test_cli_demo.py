"""``sessionware demo``: what it serves, and its mistakes found before any URL is printed
(the demo site itself: test_demo.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sessionware import _cli_demo, cli
from sessionware.cli import main
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


class _FakeServer:
    """Stands in for uvicorn serving the bound socket: records what would be served."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, int]] = []

    def __call__(self, app: Any, listener: socket.socket) -> None:
        host, port = listener.getsockname()[:2]
        self.calls.append((app, host, port))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> _FakeServer:
    fake = _FakeServer()
    monkeypatch.setattr(_cli_demo, "serve", fake)
    return fake


def demo(*argv: str) -> list[str]:
    return ["demo", "--port", str(free_port()), *argv]


def test_demo_prints_the_url_and_serves_the_app(
    server: _FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    assert main(["demo", "--store", "memory://", "--port", str(port)]) == 0
    assert f"http://127.0.0.1:{port}/" in capsys.readouterr().out
    other = free_port()
    assert main(["demo", "--store", "memory://", "--host", "0.0.0.0", "--port", str(other)]) == 0
    assert f"http://127.0.0.1:{other}/" in capsys.readouterr().out
    assert [(host, bound) for _, host, bound in server.calls] == [
        ("127.0.0.1", port),
        ("0.0.0.0", other),
    ]


def test_demo_turns_key_renewal_on(server: _FakeServer) -> None:
    assert main([*demo("--store", "memory://", "--renew-after", "30")]) == 0
    app = server.calls[0][0]
    assert app.settings.renew_after == 30.0
    assert main(demo("--store", "memory://")) == 0
    assert server.calls[1][0].settings.renew_after is None


def test_the_demo_store_defaults_to_the_users_cache_directory(
    server: _FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(demo()) == 0
    database = tmp_path / "cache" / "sessionware" / "demo.db"
    assert f"sqlite:///{database}" in capsys.readouterr().out
    assert cli.default_demo_store() == f"sqlite:///{database}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache"]


def test_the_demo_store_falls_back_to_the_temp_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a cache "directory" under a file cannot be made
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert cli.default_demo_store() == f"sqlite:///{tmp_path / 'tmp' / 'demo.db'}"


def test_demo_on_the_cookie_store_makes_up_a_secret(
    server: _FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cli.SECRET_ENV, raising=False)
    assert main(demo("--store", "cookie://")) == 0
    assert "using a random one" in capsys.readouterr().out


def test_demo_hides_the_store_password(
    server: _FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(demo("--store", "redis://:hunter2@127.0.0.1:1/0")) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "redis://:***@127.0.0.1:1/0" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--port", "x"],
        ["demo", "--port", "0"],
        ["demo", "--port", "-1"],
        ["demo", "--port", "65536"],
        ["demo", "--port", "99999"],
        ["demo", "--renew-after", "0"],
        ["demo", "--renew-after", "soon"],
        ["demo", "--renew-after", "nan"],
    ],
)
def test_usage_mistakes_exit_2_before_any_url(
    argv: list[str], server: _FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert capsys.readouterr().out == ""
    assert server.calls == []


def test_a_host_that_does_not_resolve_exits_2_before_any_url(
    server: _FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(demo("--store", "memory://", "--host", "no-such-host.invalid")) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("sessionware: error: --host 'no-such-host.invalid' does not resolve")
    assert len(err.strip().splitlines()) == 1
    assert server.calls == []


def test_a_port_in_use_is_one_line_and_exit_1(
    server: _FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--store", "memory://", "--port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no URL for a server that never started
    assert err == f"sessionware: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert server.calls == []


def test_a_port_in_use_for_the_real_command_has_no_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["demo", "--store", "memory://", "--port", str(port)]
        done = subprocess.run(
            [sys.executable, "-m", "sessionware", *argv],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"sessionware: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize("missing", ["uvicorn", "starlette"])
def test_demo_without_its_extra_names_the_install_command(missing: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.modules[{missing!r}] = None\n"
            "from sessionware.cli import main\n"
            "raise SystemExit(main(['demo', '--store', 'memory://']))\n",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert "pip install 'sessionware[demo]'" in line
    assert missing in line
