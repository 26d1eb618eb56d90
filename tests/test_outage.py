"""A store that does not answer: 503 with Retry-After where the session is needed, untouched
requests unaffected, and no traceback (which could quote keys) in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from sessionware.stores import RedisStore, SessionStore, SQLStore
from tests.conftest import MakeClient


def store_on_a_closed_port(kind: str) -> SessionStore:
    if kind == "redis":
        return RedisStore("redis://127.0.0.1:1/0", timeout=0.3)
    return SQLStore("postgresql://postgres@127.0.0.1:1/test", timeout=0.3)


@pytest.fixture(params=["redis", "postgres"])
def down_store(request: pytest.FixtureRequest) -> Iterator[SessionStore]:
    store = store_on_a_closed_port(request.param)
    yield store
    store.close()


PLANTED = "sessionid=" + "A" * 43  # a well-formed key: the store must be asked


def test_loading_through_a_dead_store_answers_503(
    make_client: MakeClient, down_store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(store=down_store)
    with caplog.at_level(logging.ERROR, logger="sessionware"):
        response = client.get("/read", headers={"Cookie": PLANTED})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in response.headers
    (record,) = [r for r in caplog.records if r.name.startswith("sessionware")]
    assert "session load failed: SessionStoreError" in record.getMessage()
    assert record.exc_info is None
    assert "A" * 43 not in record.getMessage()


def test_saving_through_a_dead_store_answers_503_instead_of_the_app(
    make_client: MakeClient, down_store: SessionStore
) -> None:
    client = make_client(store=down_store)
    response = client.get("/set?k=user&v=ada")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "set-cookie" not in response.headers
    assert b"ada" not in response.content  # the app's own body is not sent


def test_requests_that_need_no_store_are_unaffected(
    make_client: MakeClient, down_store: SessionStore
) -> None:
    client = make_client(store=down_store)
    for path in ("/noop", "/read", "/expiry-info"):
        assert client.get(path).status_code == 200


def test_excluded_paths_skip_the_store_even_with_a_cookie(
    make_client: MakeClient, down_store: SessionStore
) -> None:
    client = make_client(store=down_store, exclude_paths=["/noop"])
    assert client.get("/noop", headers={"Cookie": PLANTED}).status_code == 200
    assert client.get("/read", headers={"Cookie": PLANTED}).status_code == 503
