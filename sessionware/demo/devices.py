"""The "Your devices" page: every session of the signed-in user, and signing them out.

The demo passes ``user_key="username"``, so a server-side store keeps an index from a
username to its live sessions (API.md §9). The page lists them with
``auser_sessions()``, marks this browser's own with ``session.info_id``, and ends the
others with ``arevoke_session()`` / ``arevoke_user()``. A revoked key becomes a stale key
(§5): for ``stale_key_window`` seconds a request still carrying it gets an empty session
and leaves that browser's cookie alone; after that the key is simply unknown.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from .. import get_session
from ..stores.base import SessionInfo
from .layout import esc, form
from .web import DemoState, Flash, demo_state, read_form, redirect, seconds

PAGE = "/devices"
LOG_IN_FIRST = "Log in first: only your own devices can be signed out."
NO_INDEX = "This store cannot list or end sessions: see below."


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _stale_note(state: DemoState) -> str:
    return (
        f"its key is now stale for {seconds(state.stale_key_window)}: a request still "
        "carrying it gets an empty session and leaves that browser's cookie alone; after "
        "that the key is unknown and the cookie is deleted."
    )


def unsupported_page(state: DemoState) -> str:
    """Why there is no list: the cookie store keeps nothing on the server to list."""
    if state.server_side:
        reason = (
            f"{esc(state.store_label)} keeps no index from users to their sessions, so "
            "the demo runs without <code>user_key</code>."
        )
    else:
        reason = (
            "This demo runs on the cookie store: each session lives only in its browser's "
            "signed cookie. The server keeps no list of them and cannot end one early, so "
            "sessionware refuses <code>user_key</code> with <code>CookieStore</code>."
        )
    return (
        f'<section id="devices-unsupported"><p>{reason}</p><p>Start the demo on a store '
        "that can list and end sessions to try this page, e.g. <code>sessionware demo "
        "--store sqlite:///sessions.db</code> or <code>--store redis://127.0.0.1:6379/0"
        "</code>.</p></section>"
    )


def signed_out_page() -> str:
    return (
        '<section id="devices-signed-out"><p>You are not signed in. <a href="/login">Log '
        "in</a>, then log in as the same user in another browser (or a private window): "
        "this page lists both and can sign either out.</p></section>"
    )


def devices_page(username: str, infos: list[SessionInfo], current: str | None) -> str:
    """The table of ``username``'s sessions; ``current`` is this browser's ``info_id``."""
    rows = "".join(_row(info, info.id == current) for info in infos)
    if not rows:
        rows = '<tr id="devices-none"><td colspan="5">No live session is listed.</td></tr>'
    others = sum(info.id != current for info in infos)
    everywhere = form(
        f"{PAGE}/revoke-others", "Sign out everywhere else", "revoke-others", danger=True
    )
    return (
        f'<section><p id="devices-intro">You are signed in as <strong>{esc(username)}'
        f'</strong> on <strong id="devices-count">{len(infos)}</strong> '
        f"device{'' if len(infos) == 1 else 's'}. The demo passes "
        '<code>user_key="username"</code>, so the store keeps an index from each username '
        "to its live sessions; this list is <code>await store.auser_sessions(username)"
        "</code>, newest first. Each id is <code>SessionInfo.id</code>, a handle that "
        "cannot be turned back into the key; <code>session.info_id</code> marks this "
        "device.</p>"
        '<table id="devices"><thead><tr><th>id</th><th>created</th><th>last saved</th>'
        f"<th>expires</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        '<p class="note">"Last saved" moves when a request changes the session; the pages '
        "that only read do not write, so they leave it alone.</p></section>"
        "<section><h2>Sign out everywhere else</h2><p><code>await store.arevoke_user("
        "username, except_key=session.session_key)</code> ends every other session of "
        f"this user at once, in every process ({others} now).</p>{everywhere}</section>"
    )


def _row(info: SessionInfo, current: bool) -> str:
    ident = esc(info.id)
    hidden = f'<input type="hidden" name="id" value="{ident}">'
    button = form(f"{PAGE}/revoke", "Sign out this device", None, hidden, danger=True)
    badge = ' <span class="badge" id="this-device">this device</span>' if current else ""
    css = ' class="current"' if current else ""
    return (
        f'<tr data-device="{ident}"{css}><td><code>{ident}</code>{badge}</td>'
        f"<td>{_when(info.created_at)}</td><td>{_when(info.updated_at)}</td>"
        f"<td>{_when(info.expires_at)}</td><td>{button}</td></tr>"
    )


async def revoke(request: Request) -> Response:
    """Sign out one device: this one by ``flush()`` (its cookie goes too), another by id."""
    session = get_session(request)
    state = demo_state(request)
    target = (await read_form(request)).get("id", "")
    username = session.get("username")
    if state.user_key is None:
        return redirect(PAGE, Flash(NO_INDEX, "error"))
    if username is None:
        return redirect(PAGE, Flash(LOG_IN_FIRST, "error"))
    if target and target == session.info_id:
        session.flush()
        message = (
            "Signed out this device: flush() ended this session and deleted its cookie, as "
            f"logging out does; the old key is stale for {seconds(state.stale_key_window)}."
        )
        return redirect(PAGE, Flash(message))
    ended = await state.store.arevoke_session(
        str(username), target, stale_for=state.stale_key_window
    )
    if not ended:
        message = (
            "No live session of yours has that id (it was signed out, or it expired): "
            "revoke_session() returned False and changed nothing."
        )
        return redirect(PAGE, Flash(message, "info"))
    message = f"Signed out that device: revoke_session() returned True; {_stale_note(state)}"
    return redirect(PAGE, Flash(message))


async def revoke_others(request: Request) -> Response:
    """Sign out every other device of this user; this one stays signed in."""
    session = get_session(request)
    state = demo_state(request)
    await read_form(request)
    username = session.get("username")
    key = session.session_key
    if state.user_key is None:
        return redirect(PAGE, Flash(NO_INDEX, "error"))
    if username is None or key is None:
        return redirect(PAGE, Flash(LOG_IN_FIRST, "error"))
    count = await state.store.arevoke_user(
        str(username), except_key=key, stale_for=state.stale_key_window
    )
    if count == 0:
        return redirect(PAGE, Flash("No other device was signed in: nothing to end.", "info"))
    message = (
        f"Signed out {count} other device{'' if count == 1 else 's'}: revoke_user() ended "
        f"{'its session' if count == 1 else 'their sessions'}, and this one stays signed "
        f"in. Each ended session is dead at once; {_stale_note(state)}"
    )
    return redirect(PAGE, Flash(message, "ok", (("revoked-count", "sessions ended", str(count)),)))
