"""The Session object alone (API.md §3): no middleware, no store."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from starlette.responses import JSONResponse

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
    assert sorted(session.names_to_save(with_reads=False)) == ["a", "new"]
    assert session.deleted_names == {"b", "c"}
    assert not session.cleared
    assert session.modified


def test_set_after_delete_is_a_set_and_delete_after_set_is_a_delete() -> None:
    session = loaded(a=1)
    del session["a"]
    session["a"] = 2
    session["b"] = 1
    del session["b"]
    assert session.names_to_save(with_reads=False) == ["a"]
    assert session.deleted_names == {"b"}


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
    assert session.cleared


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


@pytest.mark.parametrize("bad", [True, "10", 1.5, dt.datetime(2030, 1, 1)])
def test_set_expiry_rejects_values_of_the_wrong_kind(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Session().set_expiry(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "huge",
    [
        10**12,
        -(10**12),
        dt.timedelta.max,
        dt.timedelta(days=3651),
        dt.datetime.max.replace(tzinfo=dt.UTC),
        dt.datetime(9000, 1, 1, tzinfo=dt.UTC),
    ],
)
def test_set_expiry_refuses_what_no_store_can_hold(huge: object) -> None:
    session = loaded(a=1)
    with pytest.raises(ValueError, match="ten years"):
        session.set_expiry(huge)  # type: ignore[arg-type]
    assert not session.modified
    assert session.expiry is None


def test_negative_seconds_save_the_session_already_expired() -> None:
    session = loaded(a=1)
    session.set_expiry(-30)
    assert session.modified
    assert session.get_expiry_age() == -30


def test_expiry_loaded_from_the_record_is_used() -> None:
    session = Session({}, "K" * 43, expiry=Expiry("at", time.time() + 50))
    assert 48 <= session.get_expiry_age() <= 50


def test_reading_session_key_does_not_mark_accessed() -> None:
    session = loaded(a=1)
    _ = session.session_key
    assert not session.accessed


# -- a real dict (API.md §3) -------------------------------------------------------------------


def test_a_session_is_a_dict_and_serializes_like_one() -> None:
    session = loaded(user="ada", cart=[1, 2])
    assert isinstance(session, dict)
    assert json.dumps(session) == '{"user": "ada", "cart": [1, 2]}'
    assert session.accessed  # json reads every value
    assert session == {"user": "ada", "cart": [1, 2]}
    assert {"user": "ada", "cart": [1, 2]} == session  # noqa: SIM300 - the reflected ==
    assert session != {"user": "eve"}
    body = JSONResponse(session).body
    assert json.loads(bytes(body)) == {"user": "ada", "cart": [1, 2]}


def test_union_gives_a_plain_dict_and_in_place_union_records_the_change() -> None:
    session = loaded(a=1)
    merged = session | {"b": 2}
    assert merged == {"a": 1, "b": 2}
    assert type(merged) is dict
    assert ({"z": 0} | session) == {"z": 0, "a": 1}
    assert not session.modified
    session |= {"b": 2, "c": 3}
    assert isinstance(session, Session)
    assert session.modified
    assert sorted(session.names_to_save(with_reads=False)) == ["b", "c"]


def test_popitem_removes_the_last_item_as_a_dict_does() -> None:
    session = loaded(first=1, last=2)
    assert session.popitem() == ("last", 2)
    assert session.deleted_names == {"last"}
    assert session.modified


def test_copy_is_a_plain_dict_of_its_own() -> None:
    session = loaded(a=[1])
    copied = session.copy()
    assert type(copied) is dict
    assert copied == {"a": [1]}
    copied["b"] = 2
    assert "b" not in session
    assert not session.modified


def test_dict_of_a_session_and_unpacking_read_through_the_session() -> None:
    session = loaded(a=1, b=2)
    assert dict(session) == {"a": 1, "b": 2}
    assert {**session} == {"a": 1, "b": 2}
    assert session.accessed


def test_a_lazily_loaded_session_loads_on_first_use_even_through_json() -> None:
    session = Session()

    def load(loading: Session) -> None:
        assert loading is session  # given the session, so it need not hold it
        loading.fill({"user": "ada"}, "K" * 43, expiry=None, created_at=0.0)
        loading.resolved()

    session.defer(load)
    assert repr(session) == "<Session (not loaded yet)>"
    assert json.dumps(session) == '{"user": "ada"}'
    assert session.session_key == "K" * 43


def test_an_unloaded_session_in_explicit_mode_raises_a_clear_error() -> None:
    def refuse(session: Session) -> None:
        raise RuntimeError("call load_session first")

    session = Session()
    session.defer(refuse)
    for use in (lambda: session["a"], lambda: json.dumps(session), lambda: len(session)):
        with pytest.raises(RuntimeError, match="load_session"):
            use()


def test_in_place_changes_are_saved_only_when_flagged() -> None:
    session = loaded(cart=["apple"], name="x", pair=(1, 2))
    session["cart"].append("pear")
    assert session["name"] == "x"
    assert session["pair"] == (1, 2)
    assert not session.modified
    assert session.names_to_save(with_reads=True) == ["cart"]  # mutable values read
    session.modified = True
    assert session.flagged
