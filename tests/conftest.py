"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from sessionware._options import Options
from tests.apps import ALL_KINDS, ASGI_KINDS, build_app
from tests.clients import Client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=ALL_KINDS)
def app_kind(request: pytest.FixtureRequest) -> str:
    """Every behaviour test runs on Starlette, FastAPI, raw ASGI, Flask and plain WSGI."""
    kind: str = request.param
    return kind


MakeClient = Callable[..., Client]


@pytest.fixture
def make_client(app_kind: str) -> Iterator[MakeClient]:
    """``make_client(**options)``: the test app of this kind behind a middleware, and a client."""
    with ExitStack() as stack:

        def make(**options: Any) -> Client:
            app = build_app(app_kind, Options(**options))  # type: ignore[typeddict-item]
            return Client(app, app_kind in ASGI_KINDS, stack)

        yield make
