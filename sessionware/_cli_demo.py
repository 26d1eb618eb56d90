"""``sessionware demo``: the demo web app on uvicorn.

Everything that can go wrong is found before the URL is printed, each as one line: the
``demo`` extra missing (exit 1), a host that does not resolve (exit 2), a port that
cannot be listened on, e.g. one in use (exit 1). The command binds the socket itself and
hands it to uvicorn, so a port in use is reported here rather than as uvicorn's
traceback after the URL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import tempfile
from pathlib import Path
from typing import Any

from ._cli_store import UsageError
from .stores._urls import redact, store_from_url

DEMO_DB = "demo.db"
SECRET_ENV = "SESSIONWARE_SECRET_KEY"
EXTRA = "pip install 'sessionware[demo]'"


class DemoUnavailable(Exception):
    """The demo cannot run here (its extra is missing, its port is taken): exit 1."""


def run_demo(args: argparse.Namespace) -> int:
    _require_extra()
    family, address = resolve(args.host, args.port)
    url = args.store if args.store is not None else default_demo_store()
    try:
        store = store_from_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from .demo import create_app

    listener = listen(family, address, args.host, args.port)
    with listener:
        secret_key: str | None = args.secret_key
        if not store.server_side and secret_key is None:
            # Signing needs a secret; a throwaway one keeps the demo a one-liner.
            secret_key = secrets.token_urlsafe(32)
            print(
                "cookie:// needs a secret key: using a random one for this run "
                f"(give --secret-key or ${SECRET_ENV} to keep sessions across restarts)"
            )
        app = create_app(store, secret_key=secret_key, renew_after=args.renew_after)
        where = _browser_url(args.host, args.port)
        print(f"sessionware demo: open {where} (store: {redact(url)})", flush=True)
        serve(app, listener)
    return 0


def _require_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DemoUnavailable(f"the demo needs {exc.name}: {EXTRA}") from None


def resolve(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """The first address ``host`` resolves to for listening; ``UsageError`` if none."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"--host {host!r} does not resolve: {reason}") from None
    family, _type, _proto, _name, address = found[0]
    return family, address


def listen(family: socket.AddressFamily, address: Any, host: str, port: int) -> socket.socket:
    """A socket bound to ``address`` (listening starts when uvicorn serves it)."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        listener.bind(address)
    except OSError as exc:
        listener.close()
        raise DemoUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listener


def serve(app: Any, listener: socket.socket) -> None:
    """Serve ``app`` on the bound socket until interrupted (uvicorn's own shutdown)."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[listener])


def default_demo_store() -> str:
    """SQLite in the user's cache directory, so the demo leaves no file in the working
    directory (a clone of the project stays clean); the system temp directory when the
    cache directory cannot be made."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        directory = Path(tempfile.gettempdir())
    return f"sqlite:///{(directory / DEMO_DB).as_posix()}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sessionware"


def _browser_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # listening everywhere, so reachable on loopback too
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
