"""The lifecycle's decision table (``sessionware._rules``), row by row, with zero I/O.

The flows are driven by a recording runner that answers each store operation from a
script: no store, no server, no framework, no event loop. Each test names its row.
"""

from __future__ import annotations

import gc
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from sessionware import (
    SessionError,
    SessionSerializationError,
    SessionStoreError,
    SessionTooLargeError,
)
from sessionware._flow import Delete, Flow, Insert, Op, Renew, Rotate, Update
from sessionware._formats import Payload
from sessionware._keys import new_key
from sessionware._lifecycle import (
    CloseSocket,
    Lifecycle,
    Outcome,
    Replacement,
    RequestState,
    Session,
)
from sessionware._options import build_settings
from sessionware._records import Moved, Record, Stale
from sessionware._rules import Began
from sessionware.stores import CookieStore, MemoryStore

NOW = 1_800_000_000.0
KEY = "K" * 43
OTHER = "O" * 43
SECRET = "lifecycle-test-secret-0123456789abcdef"

Answer = Callable[[Op[Any]], Any]


def drive(flow: Flow[Any], answer: Answer | None = None) -> tuple[Any, list[Op[Any]]]:
    """Run ``flow`` like ``run_sync`` does, answering each operation with ``answer``."""
    ops: list[Op[Any]] = []
    try:
        op = next(flow)
        while True:
            ops.append(op)
            if answer is None:
                raise AssertionError(f"no store call expected, got {op!r}")
            try:
                result = answer(op)
            except SessionError as exc:
                op = flow.throw(exc)
            else:
                op = flow.send(result)
    except StopIteration as done:
        return done.value, ops


def answers(**by_kind: Any) -> Answer:
    """Answer each operation by its class name (``Load=...``, ``Update=...``); a list
    gives one answer per call, an exception is raised."""

    def answer(op: Op[Any]) -> Any:
        result = by_kind[type(op).__name__]
        if isinstance(result, list):
            result = result.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    return answer


def lifecycle(**options: Any) -> Lifecycle:
    options.setdefault("store", MemoryStore())
    return Lifecycle(build_settings(options))


def stored(
    data: dict[str, bytes] | None = None, issued_at: float = NOW - 10, user: str | None = None
) -> Record:
    return Record(
        data if data is not None else {"user": b'{"user":"ada"}'},
        created_at=NOW - 100,
        expires_at=NOW + 3600,
        key_at=issued_at,
        user=user,
    )


def opened(life: Lifecycle, loaded: Any, cookie: str = KEY, kind: str = "http") -> RequestState:
    """A request carrying ``cookie`` whose load answers ``loaded``."""
    state = life.begin(kind, "/", [f"sessionid={cookie}"])
    assert state is not None
    refusal, _ = drive(life.open(state, NOW), answers(Load=loaded))
    assert refusal is None
    return state


def fresh(life: Lifecycle) -> RequestState:
    state = life.begin("http", "/", [])
    assert state is not None
    return state


def close(
    life: Lifecycle, state: RequestState, answer: Answer | None = None, status: int = 200
) -> tuple[Outcome, list[Op[Any]]]:
    outcome, ops = drive(life.close(state, status, NOW), answer)
    assert isinstance(outcome, Outcome)
    return outcome, ops


def cookie_value(outcome: Outcome) -> str:
    assert outcome.set_cookie is not None
    return outcome.set_cookie.split(";")[0].split("=", 1)[1]


# -- how a request begins -------------------------------------------------------------------


def test_begin_reads_no_cookie_bad_cookies_and_keys_without_io() -> None:
    life = lifecycle(secret_key=SECRET)
    assert fresh(life).began is Began.NO_COOKIE
    for header in (f"sessionid={KEY}", "sessionid=a; sessionid=b", "sessionid=" + "x" * 9000):
        state = life.begin("http", "/", [header])
        assert state is not None
        assert state.began is Began.BAD  # unsigned, duplicated, oversized: no store call
        assert not state.needs_load
    assert life.begin("http", "/static/app.js", []) is not None
    excluded = lifecycle(exclude_paths=["/static"])
    assert excluded.begin("http", "/static/app.js", [f"sessionid={KEY}"]) is None


def test_open_follows_a_renewal_pointer_to_the_live_session() -> None:
    life = lifecycle()
    state = opened(life, [Moved(OTHER, NOW + 30), stored()])
    assert state.began is Began.FOLLOWED
    assert state.session.session_key == OTHER
    assert state.session == {"user": "ada"}


def test_open_of_a_pointer_that_leads_nowhere_is_stale() -> None:
    assert opened(lifecycle(), [Moved(OTHER, NOW + 30), None]).began is Began.STALE
    assert opened(lifecycle(), [Moved(OTHER, NOW + 30), Stale(NOW)]).began is Began.STALE


def test_open_of_an_expired_or_unreadable_record_is_unknown() -> None:
    dead = Record({}, created_at=NOW - 100, expires_at=NOW - 1)
    assert opened(lifecycle(), dead).began is Began.UNKNOWN
    too_old = stored()
    assert opened(lifecycle(absolute_max_age=50), too_old).began is Began.UNKNOWN
    life = lifecycle()
    garbage = opened(life, stored({"user": b"\xff not ours"}))
    assert garbage.session == {}  # decoded at first use: unreadable, so absent
    assert garbage.session.session_key is None
    outcome, ops = close(life, garbage)
    assert garbage.began is Began.UNKNOWN
    assert outcome.set_cookie == life.settings.cookie.delete_cookie()  # rule 7
    assert ops == []


def test_a_loaded_record_is_decoded_at_first_use_only() -> None:
    life = lifecycle()
    state = opened(life, stored())
    assert state.began is Began.LIVE
    assert not state.session.loaded
    assert close(life, state) == (Outcome(None, False), [])  # never used: never decoded
    assert not state.session.loaded
    used = opened(life, stored())
    assert used.session.get("user") == "ada"
    assert used.session.loaded


class _Tracked(Session):
    """A session a weak reference can follow, to see when it is freed."""

    __slots__ = ("__weakref__",)


def test_a_request_that_never_uses_its_session_leaves_no_reference_cycle() -> None:
    from_store = Lifecycle(build_settings({"store": MemoryStore()}), _Tracked)
    from_cookie = Lifecycle(
        build_settings({"store": CookieStore(), "secret_key": SECRET}), _Tracked
    )
    cookie = from_cookie.settings.format.encode(KEY, Payload({"a": 1}, NOW, time.time() + 60))
    gc.disable()  # what a request leaves behind must be freed by reference counting alone
    try:
        loaded = opened(from_store, stored())  # a store's record, decoded at first use
        close(from_store, loaded)
        read = from_cookie.begin("http", "/", [f"sessionid={cookie}"])  # a payload cookie
        assert read is not None
        sessions = [weakref.ref(loaded.session), weakref.ref(read.session)]
        assert not loaded.session.loaded
        assert not read.session.loaded
        del loaded, read
        assert [session() for session in sessions] == [None, None]
    finally:
        gc.enable()


def test_an_unreadable_record_never_used_leaves_the_cookie_alone() -> None:
    life = lifecycle()
    unused = opened(life, stored({"user": b"\xff not ours"}))
    assert close(life, unused) == (Outcome(None, False), [])
    written = opened(life, stored({"user": b"\xff not ours"}))
    written.session["user"] = "grace"  # a stranger's key is never adopted: a new one
    outcome, ops = close(life, written, answers(Insert=True))
    assert [type(op).__name__ for op in ops] == ["Insert"]
    assert cookie_value(outcome) != KEY


def test_the_rules_decode_an_unused_session_when_they_need_its_contents() -> None:
    life = lifecycle(save_every_request=True)
    state = opened(life, stored())
    outcome, ops = close(life, state, answers(Update=True))
    assert [type(op).__name__ for op in ops] == ["Update"]
    assert cookie_value(outcome) == KEY  # the session is saved again: its cookie too
    assert state.session.loaded
    assert dict(state.session) == {"user": "ada"}


def test_a_load_failure_refuses_the_request_and_is_kept() -> None:
    life = lifecycle()
    for kind, expected in (("http", Replacement), ("websocket", CloseSocket)):
        state = life.begin(kind, "/", [f"sessionid={KEY}"])
        assert state is not None
        refusal, _ = drive(life.open(state, NOW), answers(Load=SessionStoreError("down")))
        assert isinstance(refusal, expected)
        assert state.load_error is not None
    assert isinstance(refusal, CloseSocket)
    assert refusal.code == 1011


def test_the_outage_response_is_a_plain_503_with_retry_after() -> None:
    life = lifecycle()
    state = life.begin("http", "/", [f"sessionid={KEY}"])
    assert state is not None
    refusal, _ = drive(life.open(state, NOW), answers(Load=SessionStoreError("down")))
    assert isinstance(refusal, Replacement)
    assert refusal.status == 503
    assert ("Retry-After", "5") in refusal.headers
    assert isinstance(refusal.error, SessionStoreError)


# -- rule 1: a 5xx saves nothing -------------------------------------------------------------


def test_rule_1_a_server_error_saves_nothing_and_sets_no_cookie() -> None:
    life = lifecycle()
    state = fresh(life)
    state.session["a"] = 1
    outcome, ops = close(life, state, status=500)
    assert ops == []
    assert outcome.set_cookie is None
    assert outcome.vary


# -- rule 2: a stale key -----------------------------------------------------------------------


def test_rule_2_a_stale_key_gets_an_empty_session_and_never_a_cookie(
    caplog: pytest.LogCaptureFixture,
) -> None:
    life = lifecycle()
    state = opened(life, Stale(NOW + 60))
    assert state.began is Began.STALE
    assert state.session == {}
    state.session["csrf"] = "token"
    with caplog.at_level(logging.WARNING):
        outcome, ops = close(life, state)
    assert ops == []
    assert outcome.set_cookie is None
    assert "not saved" in caplog.text
    assert KEY not in caplog.text


# -- rule 3: never loaded ----------------------------------------------------------------------


def test_rule_3_a_session_never_loaded_costs_nothing() -> None:
    life = lifecycle()
    state = life.begin("http", "/", [f"sessionid={KEY}"])
    assert state is not None
    state.session.defer(lambda session: None)  # lazy: the app never touched it
    outcome, ops = close(life, state)
    assert (outcome, ops) == (Outcome(), [])


# -- rule 4: nothing to do -------------------------------------------------------------------------


def test_rule_4_an_unchanged_session_writes_nothing() -> None:
    life = lifecycle()
    state = opened(life, stored())
    assert state.session["user"] == "ada"
    outcome, ops = close(life, state)
    assert ops == []
    assert outcome.set_cookie is None
    assert outcome.vary  # it was read
    untouched = opened(life, stored())
    outcome, _ = close(life, untouched)
    assert not outcome.vary


def test_rule_4_a_cookieless_request_that_stores_nothing_needs_no_close() -> None:
    life = lifecycle()
    state = fresh(life)
    assert state.session.get("a") is None
    assert life.needs_close(state)  # accessed: Vary
    outcome, ops = close(life, state)
    assert ops == []
    assert outcome == Outcome(None, True)
    assert not life.needs_close(fresh(life))


def test_rule_3_a_session_never_loaded_needs_no_close_unless_it_must_be_refreshed() -> None:
    # Lazy WSGI loading and ASGI explicit mode: the cookie came, the app never used it.
    for life, needed in (
        (lifecycle(), False),
        (lifecycle(save_every_request=True), True),  # rolling expiry loads at the response
        (lifecycle(renew_after=60), True),  # so does a renewal that may be due
    ):
        state = life.begin("http", "/", [f"sessionid={KEY}"])
        assert state is not None
        assert state.needs_load
        state.session.defer(lambda session: None)  # as the middlewares do: loaded at first use
        assert life.needs_close(state) is needed
        outcome, ops = close(life, state, answers(Load=None))
        if not needed:
            assert (outcome, ops) == (Outcome(None, False), [])  # what closing would give


# -- rule 5: login rotation ---------------------------------------------------------------------


def test_rule_5_cycle_key_rotates_in_one_operation() -> None:
    life = lifecycle(user_key="user")
    state = opened(life, stored())
    state.session.cycle_key()
    new = state.session.session_key
    assert new is not None
    outcome, ops = close(life, state, answers(Rotate=True))
    assert [type(op) for op in ops] == [Rotate]
    rotate = ops[0]
    assert isinstance(rotate, Rotate)
    assert (rotate.key, rotate.new_key) == (KEY, new)
    assert rotate.stale_until == NOW + 60
    assert rotate.record.user == "ada"
    assert cookie_value(outcome) == new
    assert outcome.vary


def test_rule_5_rotation_of_a_record_a_concurrent_logout_removed_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session.cycle_key()
    with caplog.at_level(logging.WARNING):
        outcome, ops = close(life, state, answers(Rotate=False))
    assert [type(op) for op in ops] == [Rotate]
    assert outcome.set_cookie is None  # the browser keeps what the logout sent
    assert "a concurrent request ended its key first" in caplog.text
    assert KEY not in caplog.text


def test_rule_5_rotation_follows_a_concurrent_renewal() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session.cycle_key()
    outcome, ops = close(life, state, answers(Rotate=[Moved(OTHER, NOW + 30), True]))
    assert [op.key for op in ops if isinstance(op, Rotate)] == [KEY, OTHER]
    assert cookie_value(outcome) == state.session.session_key


# -- rule 6: logout -------------------------------------------------------------------------------


def test_rule_6_flush_deletes_the_record_and_the_cookie() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session.flush()
    outcome, ops = close(life, state, answers(Delete=True))
    assert ops == [Delete(KEY, NOW, NOW + 60)]
    assert outcome.set_cookie is not None
    assert "Max-Age=0" in outcome.set_cookie
    assert outcome.vary


def test_rule_6_flush_then_write_starts_a_new_session() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session.flush()
    state.session["theme"] = "dark"
    outcome, ops = close(life, state, answers(Delete=True, Insert=True))
    assert [type(op) for op in ops] == [Delete, Insert]
    insert = ops[1]
    assert isinstance(insert, Insert)
    assert cookie_value(outcome) == insert.key != KEY


def test_rule_6_a_logout_whose_key_was_already_ended_leaves_the_cookie() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session.flush()
    outcome, _ = close(life, state, answers(Delete=False))
    assert outcome.set_cookie is None


def test_rule_6_a_zero_window_forgets_the_key_at_once() -> None:
    life = lifecycle(stale_key_window=0)
    state = opened(life, stored())
    state.session.flush()
    _, ops = close(life, state, answers(Delete=True))
    assert ops == [Delete(KEY, NOW, NOW)]


# -- rule 7: a stranger's cookie ---------------------------------------------------------------


def test_rule_7_a_cookie_leading_nowhere_is_deleted_when_nothing_is_stored() -> None:
    life = lifecycle()
    for state in (opened(life, None), life.begin("http", "/", ["sessionid=garbage!"])):
        assert state is not None
        outcome, ops = close(life, state)
        assert ops == []
        assert outcome.set_cookie is not None
        assert "Max-Age=0" in outcome.set_cookie


def test_rule_7_an_unknown_key_is_never_adopted() -> None:
    life = lifecycle()
    state = opened(life, None)
    state.session["a"] = 1
    outcome, ops = close(life, state, answers(Insert=True))
    insert = ops[0]
    assert isinstance(insert, Insert)
    assert insert.key != KEY
    assert cookie_value(outcome) == insert.key


# -- rule 8: renewal -------------------------------------------------------------------------------


def test_rule_8_an_old_key_is_renewed_on_its_next_request() -> None:
    life = lifecycle(renew_after=3600, renew_grace=30)
    state = opened(life, stored(issued_at=NOW - 4000))
    outcome, ops = close(life, state, answers(Renew=True))
    (renew,) = ops
    assert isinstance(renew, Renew)
    assert (renew.key, renew.grace_until) == (KEY, NOW + 30)
    assert cookie_value(outcome) == renew.new_key
    assert outcome.vary


def test_rule_8_a_renewal_with_changes_updates_the_new_key() -> None:
    life = lifecycle(renew_after=3600)
    state = opened(life, stored(issued_at=NOW - 4000))
    state.session["n"] = 1
    outcome, ops = close(life, state, answers(Renew=True, Update=True))
    renew, update = ops
    assert isinstance(renew, Renew)
    assert isinstance(update, Update)
    assert update.key == renew.new_key
    assert cookie_value(outcome) == renew.new_key


def test_rule_8_concurrent_renewals_follow_the_winner() -> None:
    life = lifecycle(renew_after=3600)
    state = opened(life, stored(issued_at=NOW - 4000))
    outcome, _ = close(life, state, answers(Renew=Moved(OTHER, NOW + 30)))
    assert cookie_value(outcome) == OTHER


def test_rule_8_a_renewal_of_an_ended_key_is_dropped() -> None:
    life = lifecycle(renew_after=3600)
    state = opened(life, stored(issued_at=NOW - 4000))
    outcome, _ = close(life, state, answers(Renew=False))
    assert outcome.set_cookie is None


def test_rule_8_no_renewal_in_a_websocket() -> None:
    life = lifecycle(renew_after=3600)
    state = opened(life, stored(issued_at=NOW - 4000), kind="websocket")
    _, ops = close(life, state)
    assert ops == []


# -- rule 9: the loaded key is kept --------------------------------------------------------------


def test_rule_9_a_change_is_saved_as_a_delta() -> None:
    life = lifecycle(user_key="user")
    state = opened(life, stored({"user": b'{"user":"ada"}', "cart": b'{"cart":[1]}'}))
    state.session["n"] = 2
    del state.session["cart"]
    outcome, ops = close(life, state, answers(Update=True))
    (update,) = ops
    assert isinstance(update, Update)
    assert update.key == KEY
    assert dict(update.change.set) == {"n": b'{"n":2}'}
    assert update.change.deleted == {"cart"}
    assert not update.change.user_changed
    assert cookie_value(outcome) == KEY


def test_rule_9_a_concurrent_logout_drops_the_save_and_leaves_the_cookie() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session["n"] = 2
    outcome, _ = close(life, state, answers(Update=False))
    assert outcome.set_cookie is None
    assert outcome.vary


def test_rule_9_a_save_follows_a_concurrent_renewal() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session["n"] = 2
    outcome, ops = close(life, state, answers(Update=[Moved(OTHER, NOW + 30), True]))
    assert [op.key for op in ops if isinstance(op, Update)] == [KEY, OTHER]
    assert cookie_value(outcome) == OTHER
    assert state.session.session_key == OTHER


def test_rule_9_a_followed_pointer_sends_the_new_key_without_writing() -> None:
    life = lifecycle()
    state = opened(life, [Moved(OTHER, NOW + 30), stored()])
    outcome, ops = close(life, state)
    assert ops == []
    assert cookie_value(outcome) == OTHER
    assert outcome.vary


def test_rule_9_an_old_secret_is_resigned_without_a_write() -> None:
    old = lifecycle(secret_key="old-" + SECRET)
    signed_old = old.settings.format.encode(KEY, None)
    life = lifecycle(secret_key=[SECRET, "old-" + SECRET])
    state = opened(life, stored(), cookie=signed_old)
    outcome, ops = close(life, state)
    assert ops == []
    value = cookie_value(outcome)
    assert value != signed_old
    assert value == life.settings.format.encode(KEY, None)


def test_rule_9_save_every_request_refreshes_and_keeps_in_place_changes() -> None:
    life = lifecycle(save_every_request=True)
    state = opened(life, stored({"cart": b'{"cart":[1]}', "name": b'{"name":"x"}'}))
    state.session["cart"].append(2)
    assert state.session["name"] == "x"
    outcome, ops = close(life, state, answers(Update=True))
    (update,) = ops
    assert isinstance(update, Update)
    assert dict(update.change.set) == {"cart": b'{"cart":[1,2]}'}  # not the unchanged str
    assert outcome.set_cookie is not None
    assert outcome.vary


def test_rule_9_modified_true_saves_values_changed_in_place() -> None:
    life = lifecycle()
    state = opened(life, stored({"cart": b'{"cart":["apple"]}', "other": b'{"other":[0]}'}))
    state.session["cart"].append("pear")
    state.session.modified = True
    _, ops = close(life, state, answers(Update=True))
    (update,) = ops
    assert isinstance(update, Update)
    assert dict(update.change.set) == {"cart": b'{"cart":["apple","pear"]}'}


# -- rule 10: a new session --------------------------------------------------------------------


def test_rule_10_new_data_is_inserted_under_a_new_key() -> None:
    life = lifecycle(user_key="uid")
    state = fresh(life)
    state.session["uid"] = 42
    outcome, ops = close(life, state, answers(Insert=True))
    (insert,) = ops
    assert isinstance(insert, Insert)
    assert insert.record.user == "42"
    assert dict(insert.record.fields) == {"uid": b'{"uid":42}'}
    assert cookie_value(outcome) == insert.key
    assert state.session.session_key == insert.key


def test_rule_10_a_taken_key_is_replaced_by_a_fresh_one() -> None:
    life = lifecycle()
    state = fresh(life)
    state.session["a"] = 1
    outcome, ops = close(life, state, answers(Insert=[False, True]))
    first, second = ops
    assert isinstance(first, Insert)
    assert isinstance(second, Insert)
    assert first.key != second.key
    assert cookie_value(outcome) == second.key


# -- failures: nothing half-done ----------------------------------------------------------------


def test_a_save_failure_is_a_503_and_no_cookie() -> None:
    life = lifecycle()
    state = fresh(life)
    state.session["a"] = 1
    outcome, _ = close(life, state, answers(Insert=SessionStoreError("down")))
    assert outcome.set_cookie is None
    assert outcome.replacement is not None
    assert outcome.replacement.status == 503


def test_on_save_error_keep_sends_the_apps_response_without_a_cookie(
    caplog: pytest.LogCaptureFixture,
) -> None:
    life = lifecycle(on_save_error="keep")
    state = opened(life, stored())
    state.session["a"] = 1
    with caplog.at_level(logging.ERROR):
        outcome, _ = close(life, state, answers(Update=SessionStoreError("down")))
    assert outcome.replacement is None
    assert outcome.set_cookie is None
    assert "session save failed" in caplog.text


def test_an_unserializable_value_fails_before_any_store_call() -> None:
    life = lifecycle()
    state = opened(life, stored())
    state.session.cycle_key()
    state.session["when"] = object()
    with pytest.raises(SessionSerializationError, match="'when'") as raised:
        close(life, state, answers(Rotate=True))
    assert isinstance(raised.value, TypeError)
    assert "object" in str(raised.value)


def test_a_nested_unserializable_value_names_its_key_and_type() -> None:
    life = lifecycle()
    state = fresh(life)
    state.session["cart"] = {"items": [1, {2, 3}, {"lock": time}]}
    with pytest.raises(SessionSerializationError, match=r"'cart'.*module"):
        drive(life.close(state, 200, NOW))


def test_a_session_over_the_stores_limit_is_a_500_before_any_store_call() -> None:
    store = MemoryStore()
    store.max_data_bytes = 100
    life = lifecycle(store=store)
    state = fresh(life)
    state.session["big"] = "x" * 200
    outcome, ops = close(life, state)
    assert ops == []
    assert outcome.replacement is not None
    assert outcome.replacement.status == 500


def test_a_payload_cookie_over_4093_bytes_is_a_500_before_anything_else() -> None:
    life = lifecycle(store=CookieStore(), secret_key=SECRET)
    state = fresh(life)
    state.session["big"] = "x" * 5000
    outcome, ops = close(life, state)
    assert ops == []
    assert outcome.replacement is not None
    assert outcome.replacement.status == 500
    assert outcome.set_cookie is None


def test_every_new_key_is_a_fresh_one() -> None:
    life = lifecycle()
    keys = set()
    for _ in range(20):
        state = fresh(life)
        state.session["a"] = 1
        outcome, _ = close(life, state, answers(Insert=True))
        keys.add(cookie_value(outcome))
    assert len(keys) == 20
    assert new_key() not in keys


def test_a_size_refusal_from_the_store_itself_is_a_500_not_an_outage() -> None:
    life = lifecycle()
    state = fresh(life)
    state.session["big"] = "x"
    refusal = SessionTooLargeError("session data", 10, 5, "store less")
    outcome, _ = close(life, state, answers(Insert=refusal))
    assert outcome.replacement is not None
    assert outcome.replacement.status == 500
    assert outcome.set_cookie is None


def test_rule_10_a_login_from_a_stale_cookie_starts_a_fresh_session() -> None:
    """After a login or logout whose 503 hid that the store did apply it, the browser
    still holds an ended key: its next login must work, not be dropped as stale."""
    life = lifecycle(user_key="user")
    state = opened(life, Stale(NOW + 60))
    state.session.cycle_key()
    state.session["user"] = "ada"
    outcome, ops = close(life, state, answers(Insert=True))
    (insert,) = ops
    assert isinstance(insert, Insert)
    assert insert.key == state.session.session_key != KEY
    assert insert.record.user == "ada"
    assert cookie_value(outcome) == insert.key
