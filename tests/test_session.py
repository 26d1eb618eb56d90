"""The Session object alone (API.md §3): no middleware, no store."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from sessionware import Session
from sessionware._expiry import Expiry, ExpiryPolicy
from sessionware._keys import is_valid_key


def loaded(**data: object) -> Session:
    return Session(dict(data), "K" * 43)


def test_reading_sets_accessed_but_never_modified() -> None:
    session = loaded(a=1)
    assert not session.accessed
    session.get("a")
    _ = "a" in session, len(session), list(session), session.get("zz", 0)
    assert session.accessed
    assert not session.modified
    with pytest.raises(KeyError):
        session["missing"]
    assert not session.modified


def test_setting_deleting_and_popping_record_the_delta() -> None:
    session = loaded(a=1, b=2, c=3)
    session["a"] = 10
    session["new"] = 4
    del session["b"]
    assert session.pop("c") == 3
    change = session.change(expires_at=0.0)
    assert dict(change.set) == {"a": 10, "new": 4}
    assert change.deleted == {"b", "c"}
    assert not change.cleared
    assert session.modified


def test_set_after_delete_is_a_set_and_delete_after_set_is_a_delete() -> None:
    session = loaded(a=1)
    del session["a"]
    session["a"] = 2
    session["b"] = 1
    del session["b"]
    change = session.change(0.0)
    assert dict(change.set) == {"a": 2}
    assert change.deleted == {"b"}


def test_absent_pop_and_del_do_not_modify() -> None:
    session = loaded()
    assert session.pop("x", "dflt") == "dflt"
    with pytest.raises(KeyError):
        session.pop("x")
    with pytest.raises(KeyError):
        del session["x"]
    assert not session.modified


def test_mapping_helpers_follow_dict_semantics() -> None:
    session = loaded(a=1)
    assert session.setdefault("a", 5) == 1
    assert not session.modified
    assert session.setdefault("b", 2) == 2
    session.update({"c": 3}, d=4)
    assert dict(session.items()) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert set(session.keys()) == {"a", "b", "c", "d"}
    assert sorted(session.values()) == [1, 2, 3, 4]


def test_clear_keeps_the_key_and_is_not_empty() -> None:
    session = loaded(a=1)
    session.clear()
    assert session.modified
    assert len(session) == 0
    assert session.session_key == "K" * 43
    assert not session.is_empty()
    assert session.change(0.0).cleared


def test_flush_drops_data_and_key() -> None:
    session = loaded(a=1)
    session.flush()
    assert session.session_key is None
    assert session.is_empty()
    assert session.modified
    assert session.rotated


def test_cycle_key_generates_a_new_key_at_once_and_keeps_data() -> None:
    session = loaded(a=1)
    session.cycle_key()
    assert session.session_key != "K" * 43
    assert is_valid_key(session.session_key or "")
    assert dict(session.items()) == {"a": 1}
    assert session.rotated
    assert session.modified


def test_create_on_a_new_session_gives_it_a_key() -> None:
    session = Session()
    assert session.is_empty()
    session.create()
    assert session.session_key is not None
    assert not session.is_empty()
    assert not session.rotated  # nothing stored to invalidate


def test_new_session_is_empty_and_unmodified() -> None:
    session = Session()
    assert session.session_key is None
    assert session.is_empty()
    assert not session.modified
    assert not session.accessed


def test_test_cookie_trio() -> None:
    session = Session()
    assert not session.test_cookie_worked()
    session.set_test_cookie()
    assert session.test_cookie_worked()
    assert session["testcookie"] == "worked"
    session.delete_test_cookie()
    assert not session.test_cookie_worked()


def test_expiry_defaults_follow_the_policy() -> None:
    session = Session(policy=ExpiryPolicy(max_age=100))
    assert session.get_expiry_age() == 100
    assert not session.get_expire_at_browser_close()
    browser = Session(policy=ExpiryPolicy(max_age=None))
    assert browser.get_expiry_age() == 1_209_600
    assert browser.get_expire_at_browser_close()
    closing = Session(policy=ExpiryPolicy(expire_at_browser_close=True))
    assert closing.get_expire_at_browser_close()


def test_set_expiry_forms() -> None:
    session = Session(policy=ExpiryPolicy(max_age=100))
    session.set_expiry(30)
    assert session.get_expiry_age() == 30
    assert session.modified
    session.set_expiry(0)
    assert session.get_expire_at_browser_close()
    assert session.get_expiry_age() == 100
    session.set_expiry(dt.timedelta(minutes=2))
    assert 119 <= session.get_expiry_age() <= 120
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    session.set_expiry(when)
    assert session.get_expiry_date() == when
    assert session.get_expiry_date().tzinfo is not None
    session.set_expiry(None)
    assert session.get_expiry_age() == 100


@pytest.mark.parametrize("bad", [-1, True, "10", 1.5, dt.datetime(2030, 1, 1)])
def test_set_expiry_rejects_bad_values(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Session().set_expiry(bad)  # type: ignore[arg-type]


def test_expiry_loaded_from_the_record_is_used() -> None:
    session = Session({}, "K" * 43, expiry=Expiry("at", time.time() + 50))
    assert 48 <= session.get_expiry_age() <= 50


def test_reading_session_key_does_not_mark_accessed() -> None:
    session = loaded(a=1)
    _ = session.session_key
    assert not session.accessed
