"""Reaching the real servers: skip with a reason locally, fail under CI=true."""

from __future__ import annotations

import os
import socket

import pytest

REDIS_URL = os.environ.get("SESSIONWARE_TEST_REDIS", "redis://127.0.0.1:6379/9")
POSTGRES_URL = os.environ.get(
    "SESSIONWARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONWARE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")

_PORTS = {"redis": 6379, "postgres": 5432, "mysql": 3306}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(name: str) -> None:
    """Skip (locally) or fail (in CI) when the named server does not answer on 127.0.0.1."""
    try:
        with socket.create_connection(("127.0.0.1", _PORTS[name]), timeout=1.0):
            return
    except OSError as exc:
        message = f"{name} server on 127.0.0.1:{_PORTS[name]} does not answer: {exc}"
        if in_ci():
            pytest.fail(message + " (CI=true: server tests must run)")
        pytest.skip(message)
