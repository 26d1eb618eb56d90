"""What ``user_key`` costs on Redis, in round trips through the middleware (API §9): at
most one more on a request that changes the session's user (login, logout), none on the
others. Counted with ``MONITOR`` (``CommandLog``): one command the client sent is one
round trip (no ``wait_replicas``, so nothing is pipelined)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import SessionMiddleware, get_session
from sessionware.stores import RedisStore
from tests.servers import REDIS_URL, require_server
from tests.stores.factories import unique
from tests.stores.test_redis import CommandLog

pytestmark = pytest.mark.redis

# Each route, in the order a visitor takes them: anonymous writes, then a login, reads
# and writes as that user, then a logout.
STEPS = ("/write", "/login", "/read", "/write", "/logout")


async def _write(request: Request) -> PlainTextResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    return PlainTextResponse("ok")


async def _read(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request.session.get("n")))


async def _login(request: Request) -> PlainTextResponse:
    session = get_session(request)
    session.cycle_key()
    session["user_id"] = "ada"
    return PlainTextResponse("ok")


async def _logout(request: Request) -> PlainTextResponse:
    get_session(request).flush()
    return PlainTextResponse("ok")


ROUTES = [
    Route("/write", _write),
    Route("/read", _read),
    Route("/login", _login),
    Route("/logout", _logout),
]


@pytest.fixture
def prefix() -> Iterator[str]:
    require_server("redis")
    made = unique("swtest") + ":"
    yield made
    cleaner = RedisStore(REDIS_URL, prefix=made)
    cleaner.delete_all()
    cleaner.close()


def _round_trips(prefix: str, user_key: str | None) -> dict[str, int]:
    """Commands sent per step of ``STEPS`` (a step's name once per occurrence)."""
    store = RedisStore(REDIS_URL, prefix=prefix)
    app = SessionMiddleware(Starlette(routes=ROUTES), store=store, user_key=user_key)
    counts: dict[str, int] = {}
    with TestClient(app) as client:
        client.get("/write")  # scripts loaded and the connection open before counting
        client.get("/logout")
        for number, path in enumerate(STEPS):
            with CommandLog(prefix) as log:
                assert client.get(path).status_code == 200
            counts[f"{number}{path}"] = len(log.commands)
    store.close()
    return counts


def test_user_key_costs_one_round_trip_at_most_and_only_when_the_user_changes(
    prefix: str,
) -> None:
    without = _round_trips(prefix + "plain:", None)
    with_user = _round_trips(prefix + "users:", "user_id")
    extra = {step: with_user[step] - without[step] for step in without}
    assert extra["2/read"] == extra["3/write"] == extra["0/write"] == 0
    assert 0 <= extra["1/login"] <= 1
    assert 0 <= extra["4/logout"] <= 1
    # And what the rounds are: a read loads once; a write loads once and saves once.
    assert with_user["2/read"] == 1
    assert with_user["3/write"] == 2
