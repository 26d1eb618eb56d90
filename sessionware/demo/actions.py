"""The demo's POST actions: each does one thing to the session and redirects back (303).

Each action's flash says what the Django call did, including the cases Django users
trip over: ``pop`` of a missing key returns the default, ``del`` raises ``KeyError``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import Session, get_session
from .web import Flash, demo_state, int_field, read_form, redirect, seconds, text_field

MAX_SECONDS = 315_360_000  # ten years


def cart_items(session: Session) -> dict[str, int]:
    """``session['cart']`` as a fresh dict, ignoring whatever else a user stored there."""
    raw: Any = session.get("cart")
    if not isinstance(raw, dict):
        return {}
    return {
        str(name): qty
        for name, qty in raw.items()
        if isinstance(qty, int) and not isinstance(qty, bool)
    }


def _keys(before: str | None, after: str | None) -> tuple[tuple[str, str, str], ...]:
    return (
        ("key-before", "key before", before or "none"),
        ("key-after", "key after", after or "none (no stored session)"),
    )


def _old_key_fate(request: Request) -> str:
    state = demo_state(request)
    if state.server_side:
        return (
            f"; the old key is now stale for {seconds(state.stale_key_window)}: a request "
            "still carrying it (one your browser sent before it saw the new cookie) gets an "
            "empty session and leaves the new cookie alone; after that the key is unknown."
        )
    return "; the cookie store cannot revoke the old cookie, which stays valid until it expires."


async def login(request: Request) -> Response:
    session = get_session(request)
    username = text_field(await read_form(request), "username", 50)
    if username is None:
        return redirect("/login", Flash("Enter a username of 1 to 50 characters.", "error"))
    before = session.session_key
    session.cycle_key()
    session["username"] = username
    message = f"Logged in as {username}. cycle_key() kept the data under a new key"
    message += _old_key_fate(request) if before else "."
    return redirect("/login", Flash(message, "ok", _keys(before, session.session_key)))


async def logout(request: Request) -> Response:
    message = "Logged out: flush() deleted the data and the stored session; the cookie is gone."
    return await _flush_then(request, "/login", message + _flushed_key_fate(request))


def _flushed_key_fate(request: Request) -> str:
    state = demo_state(request)
    if not state.server_side:
        return ""
    return (
        f" The old key is stale for {seconds(state.stale_key_window)}: a slow request still "
        "carrying it cannot bring the session back, and its response leaves the cookie alone."
    )


async def _flush_then(request: Request, page: str, message: str) -> Response:
    """``flush()``, then back to ``page`` saying what happened to the old key."""
    session = get_session(request)
    await read_form(request)
    before = session.session_key
    session.flush()
    if before is None:
        return redirect(
            page, Flash("There was no stored session; flush() had nothing to delete.", "info")
        )
    return redirect(page, Flash(message, "ok", _keys(before, None)))


async def cart_add(request: Request) -> Response:
    session = get_session(request)
    form = await read_form(request)
    name = text_field(form, "name", 50)
    quantity = int_field(form, "quantity", 1, 999)
    if name is None or quantity is None:
        return redirect("/cart", Flash("Give an item name and a quantity from 1 to 999.", "error"))
    cart = cart_items(session)
    cart[name] = min(cart.get(name, 0) + quantity, 999)
    session["cart"] = cart  # reassigned, so the session knows it changed
    return redirect("/cart", Flash(f"Added {quantity} x {name}; the cart now has {cart[name]}."))


async def cart_remove(request: Request) -> Response:
    session = get_session(request)
    name = (await read_form(request)).get("name", "").strip()
    cart = cart_items(session)
    removed = cart.pop(name, None)
    if removed is None:
        message = f"No {name!r} in the cart: cart.pop({name!r}, None) returned None, no error."
        return redirect("/cart", Flash(message + " Nothing changed, nothing saved.", "info"))
    session["cart"] = cart
    return redirect("/cart", Flash(f"Removed {name} (quantity {removed}) with cart.pop()."))


async def cart_empty(request: Request) -> Response:
    session = get_session(request)
    await read_form(request)
    if session.pop("cart", None) is None:
        return redirect(
            "/cart",
            Flash("The cart was already empty: session.pop('cart', None) returned None.", "info"),
        )
    return redirect("/cart", Flash("Emptied the cart with session.pop('cart')."))


async def pref_set(request: Request) -> Response:
    session = get_session(request)
    form = await read_form(request)
    key = text_field(form, "key", 50)
    value = form.get("value", "")
    if key is None or len(value) > 200:
        return redirect(
            "/preferences",
            Flash("Give a key (1 to 50 characters) and a value of at most 200.", "error"),
        )
    if key in session:
        message = f"Changed {key}: {session[key]!r} → {value!r}."
    else:
        message = f"Set {key} = {value!r}."
    session[key] = value
    return redirect("/preferences", Flash(message))


async def pref_delete(request: Request) -> Response:
    session = get_session(request)
    key = (await read_form(request)).get("key", "").strip()
    try:
        del session[key]
    except KeyError:
        message = f"No such key {key!r}: del session[{key!r}] raised KeyError (caught)."
        return redirect("/preferences", Flash(message, "error"))
    return redirect("/preferences", Flash(f"Deleted {key!r} with del session[{key!r}]."))


async def pref_pop(request: Request) -> Response:
    session = get_session(request)
    key = (await read_form(request)).get("key", "").strip()
    if key not in session:
        message = f"No such key {key!r}: session.pop({key!r}, None) returned None, no error."
        return redirect("/preferences", Flash(message, "info"))
    value = session.pop(key, None)
    return redirect(
        "/preferences", Flash(f"session.pop({key!r}, None) removed it and returned {value!r}.")
    )


async def clear(request: Request) -> Response:
    session = get_session(request)
    await read_form(request)
    key, count = session.session_key, len(session)
    session.clear()
    if key is None:
        return redirect(
            "/tools", Flash("There was no stored session; clear() had nothing to do.", "info")
        )
    message = f"clear() removed {count} key{'' if count == 1 else 's'}; the session keeps its key."
    return redirect("/tools", Flash(message, "ok", _keys(key, session.session_key)))


async def create(request: Request) -> Response:
    session = get_session(request)
    await read_form(request)
    before = session.session_key
    session.create()
    message = "create() gave the session a new key at once; its data is kept"
    message += _old_key_fate(request) if before else "."
    return redirect("/tools", Flash(message, "ok", _keys(before, session.session_key)))


async def flush(request: Request) -> Response:
    message = "flush() deleted the data and the stored session, and the cookie."
    return await _flush_then(request, "/tools", message + _flushed_key_fate(request))


async def set_test_cookie(request: Request) -> Response:
    session = get_session(request)
    await read_form(request)
    session.set_test_cookie()
    message = "set_test_cookie() stored testcookie = 'worked'. Step 2 checks it came back."
    return redirect("/test-cookie/check", Flash(message))


async def delete_test_cookie(request: Request) -> Response:
    session = get_session(request)
    await read_form(request)
    try:
        session.delete_test_cookie()
    except KeyError:
        message = "There was no test cookie: delete_test_cookie() raised KeyError (caught)."
        return redirect("/test-cookie", Flash(message, "error"))
    return redirect("/test-cookie", Flash("delete_test_cookie() removed the test cookie."))


async def expiry_browser_close(request: Request) -> Response:
    await read_form(request)
    return _set_expiry(get_session(request), 0, "0")


async def expiry_seconds(request: Request) -> Response:
    seconds = int_field(await read_form(request), "seconds", 0, MAX_SECONDS)
    if seconds is None:
        message = f"Give a whole number of seconds, 0 to {MAX_SECONDS}."
        return redirect("/expiry", Flash(message, "error"))
    return _set_expiry(get_session(request), seconds, str(seconds))


async def expiry_date(request: Request) -> Response:
    raw = (await read_form(request)).get("when", "").strip()
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        return redirect("/expiry", Flash("Give a date and time, e.g. 2030-01-31T12:00.", "error"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # the form's datetime-local has no zone: UTC
    try:
        return _set_expiry(get_session(request), when, f"datetime {when.isoformat()}")
    except ValueError as exc:  # beyond ten years ahead: set_expiry says so
        return redirect("/expiry", Flash(f"{exc}.", "error"))


async def expiry_default(request: Request) -> Response:
    await read_form(request)
    return _set_expiry(get_session(request), None, "None")


def _set_expiry(session: Session, value: int | dt.datetime | None, shown: str) -> Response:
    session.set_expiry(value)
    age = session.get_expiry_age()
    if isinstance(value, dt.datetime) and value <= dt.datetime.now(dt.UTC):
        note = " That moment has passed, so the session ends with this response."
    elif session.get_expire_at_browser_close():
        note = (
            " The cookie now has no Max-Age: it ends when the browser closes. "
            f"get_expiry_age() still says {age}: as in Django, a browser-session cookie "
            "reports the default age (max_age), which is how long the server keeps the "
            "session if the browser stays open."
        )
    else:
        note = f" The cookie's Max-Age is now {age}."
    details = (
        ("flash-expiry-age", "get_expiry_age()", str(age)),
        ("flash-expiry-date", "get_expiry_date()", session.get_expiry_date().isoformat()),
        (
            "flash-expiry-browser-close",
            "get_expire_at_browser_close()",
            str(session.get_expire_at_browser_close()),
        ),
    )
    return redirect("/expiry", Flash(f"set_expiry({shown}) saved.{note}", "ok", details))
