"""What the demo says about keys that end: stale keys, renewal, and a cookie that names
no live session (API.md §5, §10). Pure functions of the demo's settings."""

from __future__ import annotations

from .web import DemoState, seconds


def ended_cookie(state: DemoState) -> str:
    """The session panel's note when the browser sent a cookie but no session came of it."""
    if not state.server_side:
        return (
            '<p class="note" id="session-ended">Your browser sent a session cookie, but no '
            "session came of it: it expired, or its signature does not match this server's "
            "secret. The response deletes it.</p>"
        )
    return (
        '<p class="note" id="session-ended">Your browser sent a session cookie, but it names '
        "no live session: its key was ended (a logout, a login rotating the key, a sign-out "
        "from another device), it expired, or this server never issued it. For "
        f"{seconds(state.stale_key_window)} after a key ends it is a stale key: "
        "responses leave its cookie alone (a newer cookie may be on its way to your browser) "
        "and drop what the page writes. After that the key is unknown and the response "
        "deletes the cookie.</p>"
    )


def how_keys_end(state: DemoState) -> str:
    """The About page's table of the middleware options that govern ended and old keys."""
    if not state.server_side:
        return (
            '<section id="key-lifetimes"><h2>How a key ends</h2><p>The cookie store keeps '
            "nothing on the server, so it cannot remember ended keys, renew keys or list "
            "devices: a copied old cookie stays valid until it expires.</p></section>"
        )
    if state.renew_after is None:
        renewal = (
            "Key renewal is off. Start the demo with <code>sessionware demo --renew-after 30"
            "</code> and reload a page after 30 s: the session panel shows a new key."
        )
    else:
        renewal = (
            f"{seconds(state.renew_after)}: a session whose key is older gets a new key on "
            "its next request (watch the session panel); the data moves and the cookie is "
            "re-sent, as OWASP recommends for long sessions."
        )
    renew_value = "off" if state.renew_after is None else seconds(state.renew_after)
    rows = (
        (
            "stale_key_window",
            seconds(state.stale_key_window),
            "A key ended by logout (<code>flush()</code>), login (<code>cycle_key()</code>), "
            "<code>create()</code> or a sign-out from another device is remembered this "
            "long. A request still carrying it (one the browser sent before it saw the new "
            "cookie, or a slow one that began earlier) gets an empty session, its writes are "
            "dropped with a warning, and its response never touches the cookie: it cannot "
            "undo a login or a logout. Afterwards the key is unknown and its cookie deleted.",
        ),
        ("renew_after", renew_value, renewal),
        (
            "renew_grace",
            seconds(state.renew_grace),
            "After a renewal the old key points to the new one this long, so requests still "
            "carrying it read and write the renewed session and are sent the new cookie. A "
            "login's rotation never leaves such a pointer: it would reopen session fixation.",
        ),
    )
    body = "".join(
        f'<tr id="option-{name}"><th><code>{name}</code></th><td><code>{value}</code></td>'
        f"<td>{text}</td></tr>"
        for name, value, text in rows
    )
    return (
        '<section id="key-lifetimes"><h2>How a key ends</h2><p>The demo\'s middleware '
        f"options for keys that end or grow old:</p><table>{body}</table></section>"
    )
