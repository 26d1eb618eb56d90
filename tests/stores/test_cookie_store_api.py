"""CookieStore behind the store API: the cookie is the session, so every operation
succeeds and keeps nothing (the lifecycle never calls them; a composite or a tool may)."""

from __future__ import annotations

import pytest

from sessionware.stores import CookieStore
from sessionware.stores.base import Change, Record


@pytest.mark.anyio
async def test_every_operation_succeeds_and_keeps_nothing() -> None:
    store = CookieStore()
    record, change = Record({"a": b"1"}, 1.0, 2.0), Change(expires_at=2.0)
    assert store.load("k", 1.0) is None
    assert await store.aload("k", 1.0) is None
    for result in (
        store.insert("k", record),
        store.update("k", change, 1.0),
        store.delete("k", 1.0, 2.0),
        store.rotate("k", "n", record, 1.0, 2.0),
        store.renew("k", "n", 1.0, 2.0),
        await store.ainsert("k", record),
        await store.aupdate("k", change, 1.0),
        await store.adelete("k", 1.0, 2.0),
        await store.arotate("k", "n", record, 1.0, 2.0),
        await store.arenew("k", "n", 1.0, 2.0),
    ):
        assert result is True
    assert store.load("k", 1.0) is None  # still nothing


@pytest.mark.anyio
async def test_nothing_to_purge_and_what_a_check_says() -> None:
    seen: list[int] = []
    store = CookieStore(encrypt=True)
    assert store.clear_expired(progress=seen.append) == 0
    assert await store.aclear_expired() == 0
    assert seen == [0]
    assert store.count_expired() == await store.acount_expired() == 0
    (row,) = store.check()
    assert "encrypted cookie" in row[1]
    assert await store.acheck() == store.check()
    await store.aclose()


def test_encrypt_must_be_a_flag() -> None:
    with pytest.raises(TypeError, match="encrypt"):
        CookieStore(encrypt="yes")  # type: ignore[arg-type]
