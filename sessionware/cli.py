"""The ``sessionware`` command: serve the demo, and purge expired sessions from cron.

Exit codes: 0 done, 1 the store failed (one line on stderr, no traceback: cron mails
stay readable), 2 a usage mistake such as an unknown store URL scheme.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import __version__
from ._errors import SessionStoreError
from .stores._cookie import CookieStore
from .stores._urls import SUPPORTED, store_from_url
from .stores.base import SessionStore

DEFAULT_DEMO_STORE = "sqlite:///sessionware-demo.db"
SECRET_ENV = "SESSIONWARE_SECRET_KEY"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``python -m sessionware`` exits with it)."""
    args = _parser().parse_args(argv)
    try:
        store = store_from_url(args.store)
    except ValueError as exc:
        return _fail(exc, 2)
    except ImportError as exc:  # the store names the extra to install
        return _fail(exc, 1)
    if args.command == "demo":
        return _demo(store, args.store, args.host, args.port, args.secret_key)
    return _clear_expired(store)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionware",
        description="Server-side sessions for ASGI and WSGI apps.",
        epilog="store URLs: " + ", ".join(SUPPORTED),
    )
    parser.add_argument("--version", action="version", version=f"sessionware {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="serve the demo web app (uvicorn)")
    demo.add_argument(
        "--store",
        default=DEFAULT_DEMO_STORE,
        metavar="URL",
        help=f"store URL (default: {DEFAULT_DEMO_STORE})",
    )
    demo.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    demo.add_argument(
        "--secret-key",
        default=os.environ.get(SECRET_ENV) or None,
        metavar="KEY",
        help=f"sign the session cookie (default: ${SECRET_ENV}; "
        "random per run for cookie://, whose sessions then end with the server)",
    )

    clear = commands.add_parser("clear-expired", help="remove expired sessions, print how many")
    clear.add_argument("--store", required=True, metavar="URL", help="store URL")
    return parser


def _clear_expired(store: SessionStore | CookieStore) -> int:
    try:
        removed = store.clear_expired()
    except (SessionStoreError, ImportError, OSError) as exc:
        return _fail(exc, 1)
    finally:
        store.close()
    print(f"removed {removed} expired session{'' if removed == 1 else 's'}")
    return 0


def _demo(
    store: SessionStore | CookieStore, url: str, host: str, port: int, secret_key: str | None
) -> int:
    import uvicorn

    from .demo import create_app

    if isinstance(store, CookieStore) and secret_key is None:
        # Signing needs a secret; a throwaway one keeps the demo a one-liner.
        secret_key = secrets.token_urlsafe(32)
        print(
            "cookie:// needs a secret key: using a random one for this run "
            f"(give --secret-key or ${SECRET_ENV} to keep sessions across restarts)"
        )
    app = create_app(store, secret_key=secret_key)
    print(f"sessionware demo: open {_browser_url(host, port)} (store: {redact(url)})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


def redact(url: str) -> str:
    """The URL with its passwords hidden (a cached+ URL's inner one too), safe to print."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    has_inner = any(name == "store" for name, _ in query)
    if parts.password is None and not has_inner:
        return url  # untouched: urlunsplit would turn sqlite:///x.db into sqlite:/x.db
    if has_inner:
        inner = [(name, redact(value) if name == "store" else value) for name, value in query]
        parts = parts._replace(query=urlencode(inner))
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    return urlunsplit(parts)


def _browser_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # listening everywhere, so reachable on loopback too
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _fail(exc: BaseException, code: int) -> int:
    """One line on stderr: the store's message, prefixed by the class when not our own."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, SessionStoreError | ValueError | ImportError):
        text = f"{type(exc).__name__}: {text}"
    print(f"sessionware: error: {text}", file=sys.stderr)
    return code
