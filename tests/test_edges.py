"""Edges of the core that the request-level suites do not reach: the store base class's
contract, rarer dict operations of the session, custom serializers, tagged subclasses."""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from sessionware import Session, SessionSerializationError
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware._tagged import tag
from sessionware.stores.base import Change, Record, SessionStore


def test_the_base_store_names_what_a_subclass_must_implement() -> None:
    store = SessionStore()
    record, change = Record({}, 1.0, 2.0), Change(expires_at=2.0)
    calls: list[Callable[[], object]] = [
        lambda: store.load("k", 1.0),
        lambda: store.insert("k", record),
        lambda: store.update("k", change, 1.0),
        lambda: store.delete("k", 1.0, 2.0),
        lambda: store.rotate("k", "n", record, 1.0, 2.0),
        lambda: store.renew("k", "n", 1.0, 2.0),
        store.clear_expired,
        store.count_expired,
        store.check,
        lambda: store.user_sessions("u"),
        lambda: store.revoke_session("u", "id"),
        lambda: store.revoke_user("u"),
    ]
    for call in calls:
        with pytest.raises(NotImplementedError):
            call()
    store.close()  # nothing to release


def test_the_base_async_twins_run_the_sync_method_in_a_thread() -> None:
    threads: list[str] = []

    class Sync(SessionStore):
        def count_expired(self, now: float | None = None) -> int:
            threads.append(threading.current_thread().name)
            return 7

    assert anyio.run(Sync().acount_expired) == 7
    assert threads != [threading.current_thread().name]


def test_rarer_dict_operations_record_what_they_read_and_write() -> None:
    session = Session({"a": 1, "b": [2]}, "K" * 43)
    assert list(reversed(session)) == ["b", "a"]
    assert session.accessed
    assert session != {"a": 2}
    assert session.__or__(5) is NotImplemented
    assert session.__ror__(5) is NotImplemented
    session.update(collections.UserDict({"c": 3}))  # a mapping that is not a dict
    session.update([("d", 4)], e=5)  # pairs and keywords
    assert sorted(session.names_to_save(with_reads=False)) == ["c", "d", "e"]
    assert "b" in session.names_to_save(with_reads=True)  # a list was handed out


class _Keys:
    """An object with ``keys()`` and item access, as ``dict.update`` accepts."""

    def keys(self) -> list[str]:
        return ["x"]

    def __getitem__(self, name: str) -> int:
        return 9


def test_update_takes_any_object_with_keys() -> None:
    session = Session()
    session.update(_Keys())
    assert session == {"x": 9}


def test_a_websocket_guard_refuses_writes_that_need_a_new_key() -> None:
    session = Session()
    session.guard("no cookie here")
    with pytest.raises(RuntimeError, match="no cookie here"):
        session["a"] = 1
    with pytest.raises(RuntimeError, match="no cookie here"):
        session.set_expiry(60)
    keyed = Session({"a": 1}, "K" * 43)
    keyed.guard("no cookie here")
    keyed["b"] = 2  # a stored session may still change
    with pytest.raises(RuntimeError, match="no cookie here"):
        keyed.cycle_key()


class _Broken:
    def dumps(self, data: dict[str, Any]) -> bytes:
        raise RuntimeError("broken")

    def loads(self, raw: bytes) -> dict[str, Any]:
        return {}


class _Text:
    def dumps(self, data: dict[str, Any]) -> str:
        return "{}"

    def loads(self, raw: bytes) -> dict[str, Any]:
        return {}


def test_a_serializer_is_checked_once_and_named_when_it_fails() -> None:
    with pytest.raises(ValueError, match="failed"):
        FieldCodec(_Broken()).check()
    with pytest.raises(TypeError, match="must return bytes"):
        FieldCodec(_Text()).check()  # type: ignore[arg-type]
    with pytest.raises(SessionSerializationError, match="did not return bytes"):
        FieldCodec(_Text()).encode("a", 1)  # type: ignore[arg-type]


def test_subclasses_of_tagged_types_keep_their_tags() -> None:
    class Moment(dt.datetime):
        pass

    class Names(list[str]):
        pass

    class Table(dict[str, int]):
        pass

    moment = Moment(2026, 1, 2, tzinfo=dt.UTC)
    assert tag(moment) == {"$dt": moment.isoformat()}
    assert tag(Names(["a", "b"])) == ["a", "b"]
    assert tag(Table(a=1)) == {"a": 1}
    codec = FieldCodec(JSONSerializer())
    assert codec.decode(codec.encode_all({"k": {(1, 2): {1, 2}}})) == {"k": {(1, 2): {1, 2}}}
