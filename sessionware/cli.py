"""The ``sessionware`` command: serve the demo, and look after a store from a shell or
cron (purge expired sessions, check a store, list and end a user's sessions).

Exit codes: 0 done, 1 the store failed (one line on stderr, no traceback: cron mails
stay readable), 2 a usage mistake: an unknown store URL scheme or option, a store that a
command cannot reach (``memory://``, ``cookie://``), a location that does not exist.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from ._cli_demo import (
    DEMO_DB,
    SECRET_ENV,
    DemoUnavailable,
    cache_dir,
    default_demo_store,
    run_demo,
)
from ._cli_store import UsageError, check, clear_expired, open_store, revoke, sessions
from ._errors import SessionStoreError
from .stores._urls import SUPPORTED, redact

# Importable from here: the demo's default store and the URL redaction are part of what
# the command promises (tests and the docs use them).
__all__ = ["SECRET_ENV", "default_demo_store", "main", "redact"]

_PORTS = range(1, 65536)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``python -m sessionware`` exits with it)."""
    args = _parser().parse_args(_ids_joined(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "demo":
            return run_demo(args)
        return _store_command(args)
    except UsageError as exc:
        return _fail(exc, 2)
    except (SessionStoreError, DemoUnavailable, ImportError, OSError) as exc:
        return _fail(exc, 1)
    except KeyboardInterrupt:
        print("sessionware: interrupted", file=sys.stderr)
        return 130


# Options whose value is an id: a session id (base64url) or a user id may begin with
# "-", which argparse would take for an option unless it is joined with "=".
_ID_OPTIONS = ("--user", "--except-id")


def _ids_joined(argv: Sequence[str]) -> list[str]:
    joined: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in _ID_OPTIONS:
            value = next(args, None)
            joined.append(arg if value is None else f"{arg}={value}")
        else:
            joined.append(arg)
    return joined


def _store_command(args: argparse.Namespace) -> int:
    store = open_store(args.store, args.command)
    try:
        if args.command == "clear-expired":
            return clear_expired(store, args.dry_run, sys.stdout)
        if args.command == "check":
            return check(store, sys.stdout)
        if args.command == "sessions":
            return sessions(store, args.user, sys.stdout)
        return revoke(store, args.user, args.except_id, sys.stdout)
    finally:
        store.close()


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
        metavar="URL",
        help=f"store URL (default: SQLite in the user's cache directory, {cache_dir() / DEMO_DB})",
    )
    demo.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="port, 1-65535 (default: 8000)")
    demo.add_argument(
        "--secret-key",
        default=os.environ.get(SECRET_ENV) or None,
        metavar="KEY",
        help=f"sign the session cookie (default: ${SECRET_ENV}; "
        "random per run for cookie://, whose sessions then end with the server)",
    )
    demo.add_argument(
        "--renew-after",
        type=_positive_seconds,
        metavar="SECONDS",
        help="give a session a new key once its key is this old (default: off)",
    )

    clear = _store_parser(
        commands,
        "clear-expired",
        "remove expired sessions, print how many (a progress bar on a terminal)",
    )
    clear.add_argument(
        "--dry-run", action="store_true", help="count the expired sessions, remove nothing"
    )
    _store_parser(
        commands,
        "check",
        "connect, create nothing, and report what the store holds",
    )
    listing = _store_parser(
        commands, "sessions", "list a user's live sessions (id, created, updated, expires)"
    )
    listing.add_argument("--user", required=True, metavar="ID", help="the user's id")
    ending = _store_parser(
        commands,
        "revoke",
        "end a user's sessions, print how many",
        "Without --except-id every session of the user ends at once, including one "
        "started while the command runs. With --except-id the user's sessions are listed, "
        "then each other one is ended by its id: a session started meanwhile survives.",
    )
    ending.add_argument("--user", required=True, metavar="ID", help="the user's id")
    ending.add_argument(
        "--except-id",
        metavar="ID",
        help="keep this session (an id from `sessionware sessions`)",
    )
    return parser


def _store_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    details: str | None = None,
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=summary, description=details or summary)
    command.add_argument("--store", required=True, metavar="URL", help="store URL")
    return command


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if port not in _PORTS:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, not {port}")
    return port


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {value}")
    return seconds


def _fail(exc: BaseException, code: int) -> int:
    """One line on stderr: the store's message, prefixed by the class when not our own."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    ours = SessionStoreError | ValueError | ImportError | UsageError | DemoUnavailable
    if not isinstance(exc, ours):
        text = f"{type(exc).__name__}: {text}"
    print(f"sessionware: error: {text}", file=sys.stderr)
    return code
