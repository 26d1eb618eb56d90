"""The chrome every demo page shares: nav bar, flash, and the session as it stands.

Every value that comes from a user or the session passes through ``esc`` (``html.escape``);
the page bodies follow the same rule, so no template engine is needed to stay safe.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .. import Session
from .web import Flash

SITE = "sessionware demo"

NAV = (
    ("/", "home", "Home"),
    ("/login", "login", "Log in"),
    ("/devices", "devices", "Your devices"),
    ("/cart", "cart", "Cart"),
    ("/preferences", "preferences", "Preferences"),
    ("/tools", "tools", "Session tools"),
    ("/test-cookie", "test-cookie", "Test cookie"),
    ("/expiry", "expiry", "Expiry"),
    ("/about", "about", "About"),
)

_LOGOUT = ("/logout", "logout", "Log out")
# One tab holds "Log in" or "Log out" (whichever applies); it is the active tab on both pages.
_ACCOUNT_PAGES = frozenset({"login", "logout"})

# A cookie, drawn in SVG: small enough to inline, and no 404 for the browser's icon request.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<circle cx="16" cy="16" r="14" fill="#d9a55b"/>'
    '<circle cx="11" cy="11" r="2.5" fill="#6b3f16"/><circle cx="20" cy="9" r="2" fill="#6b3f16"/>'
    '<circle cx="21" cy="19" r="2.5" fill="#6b3f16"/><circle cx="12" cy="21" r="2" fill="#6b3f16"/>'
    "</svg>"
)

CSS = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
body.dark{color:#e6e8ee;background:#161a22}
nav{display:flex;flex-wrap:wrap;gap:.25rem;align-items:center;padding:.6rem 1rem;background:#24304a}
nav a{color:#dfe6f5;text-decoration:none;padding:.25rem .6rem;border-radius:4px}
nav a.active,nav a:hover{background:#3d5080;color:#fff}
nav .user{margin-left:auto;color:#b8c4de}
main{max-width:60rem;margin:0 auto;padding:1rem}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
body.dark section{background:#1f2430;border-color:#333b4d}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dde1e8;vertical-align:top}
code{font:14px ui-monospace,monospace;word-break:break-all}
form{display:inline-flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.25rem 0}
input{font:inherit;padding:.2rem .4rem}
button{font:inherit;padding:.25rem .8rem;border-radius:4px;border:1px solid #3d5080;
background:#3d5080;color:#fff;cursor:pointer}
button.danger{background:#a33;border-color:#a33}
#flash{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;background:#e3f4e6;color:#1d2330}
#flash.info{background:#e6eef9}#flash.error{background:#fbe4e4}
body.dark th,body.dark td{border-bottom-color:#333b4d}
body.dark #flash{background:#1f3a2a;color:#e6e8ee}body.dark #flash.info{background:#1f2d45}
body.dark #flash.error{background:#4a2326}
.note{color:#6b7385;font-size:.9em}
.badge{display:inline-block;margin-left:.4rem;padding:0 .45rem;border-radius:4px;
background:#3d5080;color:#fff;font-size:.8em}
tr.current{background:#eef3ff}body.dark tr.current{background:#26304a}
"""


def esc(value: object) -> str:
    """Text safe inside HTML elements and quoted attributes."""
    return escape(str(value), quote=True)


def show(value: Any) -> str:
    """A session value as JSON text, the way it is stored (escaped by the caller)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


def form(action: str, label: str, ident: str | None, fields: str = "", danger: bool = False) -> str:
    """A POST form that works without JavaScript; ``fields`` is trusted markup.

    ``ident`` names the form ``{ident}-form`` and its button ``{ident}-button``.
    """
    form_id = f' id="{ident}-form"' if ident else ""
    button_id = f' id="{ident}-button"' if ident else ""
    css = ' class="danger"' if danger else ""
    return (
        f'<form method="post" action="{esc(action)}"{form_id}>{fields}'
        f'<button type="submit"{button_id}{css}>{esc(label)}</button></form>'
    )


def page(
    *,
    title: str,
    active: str,
    body: str,
    session: Session,
    flash: Flash | None,
    store: str,
    panel_note: str = "",
) -> str:
    """A whole HTML document: nav, flash, the page's own body, then the session panel.

    ``panel_note`` is trusted markup shown in the session panel (why it is empty).
    """
    username = session.get("username")
    theme = ' class="dark"' if session.get("theme") == "dark" else ""
    head_title = SITE if title == SITE else f"{title} · {SITE}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        f"<title>{esc(head_title)}</title><style>{CSS}</style></head>"
        f"<body{theme}>{_nav(active, username)}<main>"
        f'<h1 id="page-title">{esc(title)}</h1>{_flash(flash)}{body}'
        f"{_session_panel(session, panel_note)}"
        f'<p class="note" id="store">Store: {esc(store)}</p></main></body></html>'
    )


def _nav(active: str, username: object) -> str:
    links = []
    entries = NAV if username is None else tuple(_LOGOUT if e[1] == "login" else e for e in NAV)
    for href, name, label in entries:
        current = name == active or (name in _ACCOUNT_PAGES and active in _ACCOUNT_PAGES)
        css = ' class="active"' if current else ""
        links.append(f'<a href="{href}" id="nav-{name}"{css}>{label}</a>')
    user = (
        f'<span class="user" id="nav-user">Signed in as {esc(username)}</span>'
        if username is not None
        else '<span class="user" id="nav-user">Not signed in</span>'
    )
    return f'<nav id="nav">{"".join(links)}{user}</nav>'


def _flash(flash: Flash | None) -> str:
    if flash is None:
        return ""
    rows = "".join(
        f'<tr><th>{esc(label)}</th><td><code id="{esc(ident)}">{esc(value)}</code></td></tr>'
        for ident, label, value in flash.details
    )
    table = f"<table>{rows}</table>" if rows else ""
    return (
        f'<div id="flash" class="{flash.kind}" role="status">'
        f'<p id="flash-message">{esc(flash.message)}</p>{table}</div>'
    )


def _session_panel(session: Session, note: str) -> str:
    key = session.session_key
    items = sorted(session.items())
    if key is not None:
        key_html = f'<code id="session-key">{esc(key)}</code>'
    else:
        key_html = '<code id="session-key">none (no stored session)</code>'
        if items and not note:  # with a note, the write may be dropped (a stale key)
            key_html += (
                ' <span class="note">: this response stores the session and gives it '
                "a key; reload to see it</span>"
            )
    rows = "".join(
        f'<tr data-key="{esc(name)}"><td><code>{esc(name)}</code></td>'
        f"<td><code>{esc(show(value))}</code></td></tr>"
        for name, value in items
    )
    if not rows:
        rows = '<tr id="session-empty"><td colspan="2">The session holds no data.</td></tr>'
    return (
        '<section id="session-panel"><h2>The session</h2>'
        f"<p>session_key: {key_html}</p>{note}"
        '<table id="session-data"><thead><tr><th>key</th><th>value (as stored, JSON)</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )
