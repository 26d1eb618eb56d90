"""The body of each demo page: what it demonstrates, in Django's words, and its forms.

Pure functions of plain values, so the markup can be read (and tested) without a server.
"""

from __future__ import annotations

from .layout import esc, form, show

PREFERENCE_KEYS = ("theme", "language", "timezone", "username", "email")

_OVERVIEW = (
    ("/login", "Log in / out", "<code>cycle_key()</code> at login against session fixation, "
     "<code>flush()</code> at logout"),
    ("/devices", "Your devices", "every session of the signed-in user (<code>user_key</code>"
     "), <code>user_sessions()</code>, and signing one or all others out with "
     "<code>revoke_session()</code> / <code>revoke_user()</code>"),
    ("/cart", "Cart", "a dict in the session; remove an item with <code>pop()</code>, which "
     "never raises"),
    ("/preferences", "Preferences", "add and change any key; delete it with "
     "<code>del session[key]</code> (KeyError if absent) or <code>pop(key, None)</code>"),
    ("/tools", "Session tools", "<code>clear()</code>, <code>create()</code>, "
     "<code>flush()</code>, <code>session_key</code>, <code>'username' in session</code>, "
     "<code>get('username', 'Guest')</code>"),
    ("/test-cookie", "Test cookie", "<code>set_test_cookie()</code>, "
     "<code>test_cookie_worked()</code>, <code>delete_test_cookie()</code>"),
    ("/expiry", "Expiry", "<code>set_expiry()</code> with 0, seconds, a date or None"),
    ("/about", "About", "how the demo works, and how keys end (stale keys, renewal); this "
     "page never writes to the session"),
)  # fmt: skip


def home(visits: int) -> str:
    items = "".join(
        f'<li><a href="{href}">{label}</a>: {what}</li>' for href, label, what in _OVERVIEW
    )
    return (
        '<section id="visits-section"><p>You have loaded this page '
        f'<strong id="visits">{visits}</strong> time{"" if visits == 1 else "s"} in this '
        "session. Each visit runs <code>session['visits'] = session.get('visits', 0) + 1</code>"
        ": reload to see it persist. The first visit creates the session (and its cookie); "
        "the other pages only write when you press a button.</p></section>"
        f'<section><h2>What each page demonstrates</h2><ul id="overview">{items}</ul></section>'
    )


def login(username: object) -> str:
    field = (
        '<label for="username">Username</label><input id="username" name="username" '
        'required maxlength="50" autocomplete="username">'
    )
    login_form = f"<section>{form('/login', 'Log in', 'login', field)}</section>"
    if username is not None:
        return (
            f'<section><p id="login-state">You are logged in as <strong>{esc(username)}'
            "</strong>. Logging in again rotates the key once more.</p>"
            f"{_logout_form()}</section>{login_form}"
        )
    return (
        '<section><p id="login-state">You are not logged in. Logging in stores '
        "<code>username</code> after <code>session.cycle_key()</code>: the data stays, the "
        "key changes, and the key from before login stops working (session fixation "
        "defence). The result shows the key before and after.</p></section>"
        f"{login_form}"
    )


def _logout_form() -> str:
    return form("/logout", "Log out: flush()", "logout", danger=True)


def logout(username: object) -> str:
    who = f"logged in as <strong>{esc(username)}</strong>" if username else "not logged in"
    return (
        f'<section><p id="logout-state">You are {who}. Logging out calls '
        "<code>session.flush()</code>: the data and the stored record are deleted, and the "
        "response deletes the session cookie. With a server-side store the old key never "
        "works again.</p>"
        f"{_logout_form()}</section>"
    )


def cart(items: dict[str, int]) -> str:
    rows = "".join(
        f'<tr data-item="{esc(name)}"><td>{esc(name)}</td><td>{quantity}</td><td>'
        + form(
            "/cart/remove", "Remove", None, f'<input type="hidden" name="name" value="{esc(name)}">'
        )
        + "</td></tr>"
        for name, quantity in sorted(items.items())
    )
    if not rows:
        rows = '<tr id="cart-empty"><td colspan="3">The cart is empty.</td></tr>'
    add_fields = (
        '<label for="item-name">Item</label><input id="item-name" name="name" required '
        'maxlength="50"><label for="item-quantity">Quantity</label><input id="item-quantity" '
        'name="quantity" type="number" min="1" max="999" value="1" required>'
    )
    remove_fields = (
        '<label for="remove-name">Item</label>'
        '<input id="remove-name" name="name" required maxlength="50">'
    )
    add = form("/cart/add", "Add", "cart-add", add_fields)
    remove = form("/cart/remove", "Remove", "cart-remove", remove_fields)
    empty = form("/cart/empty", "Empty cart", "cart-empty", danger=True)
    return (
        "<section><p>The cart is <code>session['cart']</code>, a dict. Changing the dict in "
        "place would not mark the session modified, so each change reassigns it: "
        "<code>cart = session.get('cart', {}); cart.pop(item, None); session['cart'] = cart"
        "</code>.</p>"
        '<table id="cart"><thead><tr><th>item</th><th>quantity</th><th></th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
        f"<section><h2>Add an item</h2>{add}</section>"
        "<section><h2>Remove an item with pop()</h2><p>Any name, even one not in the cart: "
        f"<code>cart.pop(item, None)</code> returns None instead of raising.</p>{remove}"
        "</section><section><h2>Empty the cart</h2><p><code>session.pop('cart', None)</code>"
        f"</p>{empty}</section>"
    )


def preferences() -> str:
    options = "".join(f'<option value="{key}">' for key in PREFERENCE_KEYS)
    key_input = (
        '<label for="{id}">Key</label><input id="{id}" name="key" list="pref-keys" '
        'required maxlength="50">'
    )
    value = (
        '<label for="pref-value">Value</label><input id="pref-value" name="value" maxlength="200">'
    )
    set_form = form("/preferences/set", "Save", "pref-set", key_input.format(id="pref-key") + value)
    del_form = form(
        "/preferences/delete",
        "del session[key]",
        "pref-del",
        key_input.format(id="pref-del-key"),
        danger=True,
    )
    pop_form = form(
        "/preferences/pop",
        "session.pop(key, None)",
        "pref-pop",
        key_input.format(id="pref-pop-key"),
        danger=True,
    )
    return (
        f'<datalist id="pref-keys">{options}</datalist>'
        "<section><h2>Set or change a key</h2><p><code>session[key] = value</code> adds the "
        "key or replaces its value. Try <code>theme</code> = <code>dark</code>.</p>"
        f"{set_form}</section><section><h2>Delete a key</h2><p><code>del session[key]</code> "
        "raises <code>KeyError</code> for a missing key (caught here and reported); "
        "<code>session.pop(key, None)</code> never raises. Any key of the session works, "
        f"e.g. <code>visits</code>.</p><p>{del_form}</p><p>{pop_form}</p></section>"
    )


def tools(key: str | None, has_username: bool, username: object) -> str:
    welcome = (
        f"Welcome back, {esc(username)}!"
        if has_username
        else "Session data not found. Please log in."
    )
    default = show(username) if has_username else "'Guest'"
    return (
        "<section><h2>Read</h2><table>"
        "<tr><th><code>session.session_key</code></th>"
        f'<td><code id="tools-session-key">{esc(key) if key else "None"}</code></td></tr>'
        "<tr><th><code>'username' in session</code></th>"
        f'<td><code id="check-exists">{has_username}</code>: {welcome}</td></tr>'
        "<tr><th><code>session.get('username', 'Guest')</code></th>"
        f'<td><code id="get-default">{esc(default)}</code></td></tr></table>'
        '<p class="note">Reading never modifies the session: this page writes nothing until '
        "you press a button.</p></section>"
        "<section><h2>clear()</h2><p>Removes every key; the session keeps its key and is "
        f"saved empty.</p>{form('/tools/clear', 'clear()', 'clear', danger=True)}</section>"
        "<section><h2>create()</h2><p>A new key at once for the current data; the previous "
        f"key stops working.</p>{form('/tools/create', 'create()', 'create')}</section>"
        "<section><h2>flush()</h2><p>Deletes the data, the stored record and the cookie (what "
        f"logout does).</p>{form('/tools/flush', 'flush()', 'flush', danger=True)}</section>"
    )


def test_cookie_start() -> str:
    step1 = form("/test-cookie", "Step 1: set_test_cookie()", "set-test-cookie")
    return (
        "<section><p>Step 1 calls <code>session.set_test_cookie()</code> and sends you to "
        "step 2, which asks <code>session.test_cookie_worked()</code>: true only if your "
        f"browser sent the session cookie back.</p>{step1}</section>"
        '<p><a href="/test-cookie/check" id="check-link">Go to step 2 directly</a></p>'
    )


def test_cookie_check(worked: bool) -> str:
    result = (
        "Your browser accepts cookies."
        if worked
        else "Your browser does not accept cookies (or step 1 was not done)."
    )
    delete = form("/test-cookie/delete", "delete_test_cookie()", "delete-test-cookie")
    return (
        "<section><p><code>session.test_cookie_worked()</code> is "
        f'<code id="test-cookie-worked">{worked}</code>.</p>'
        f'<p id="test-cookie-result"><strong>{result}</strong></p>'
        f"<p>Clean up with <code>session.delete_test_cookie()</code>.</p>{delete}</section>"
        '<p><a href="/test-cookie">Back to step 1</a></p>'
    )


def expiry(age: int, date: str, browser_close: bool) -> str:
    seconds = (
        '<label for="expiry-seconds">Seconds</label><input id="expiry-seconds" name="seconds" '
        'type="number" min="0" max="315360000" value="300" required>'
    )
    when = (
        '<label for="expiry-when">Date and time (UTC)</label>'
        '<input id="expiry-when" name="when" type="datetime-local" required>'
    )
    choices = (
        form("/expiry/browser-close", "set_expiry(0): until the browser closes", "expiry-zero"),
        form("/expiry/seconds", "set_expiry(seconds)", "expiry-seconds", seconds),
        form("/expiry/date", "set_expiry(datetime)", "expiry-date", when),
        form("/expiry/default", "set_expiry(None): back to the default", "expiry-default"),
    )
    buttons = "".join(f"<p>{choice}</p>" for choice in choices)
    return (
        "<section><h2>Now</h2><table>"
        "<tr><th><code>get_expiry_age()</code></th>"
        f'<td><code id="expiry-age">{age}</code> seconds</td></tr>'
        "<tr><th><code>get_expiry_date()</code></th>"
        f'<td><code id="expiry-date">{esc(date)}</code></td></tr>'
        "<tr><th><code>get_expire_at_browser_close()</code></th>"
        f'<td><code id="expiry-browser-close">{browser_close}</code></td></tr></table>'
        f"{_browser_close_note(age) if browser_close else ''}</section>"
        "<section><h2>set_expiry()</h2><p>Each choice is saved with the session and changes "
        f"the cookie's <code>Max-Age</code>.</p>{buttons}</section>"
    )


def _browser_close_note(age: int) -> str:
    return (
        '<p class="note" id="expiry-age-note">The cookie ends when the browser closes, yet '
        f"<code>get_expiry_age()</code> says {age}: as in Django, a browser-session cookie "
        "reports the default age (<code>max_age</code>), which is how long the server keeps "
        "the session while the browser stays open.</p>"
    )


def about(store: str) -> str:
    return (
        '<section id="about"><p>This demo is a small Starlette site wrapped in sessionware\'s '
        "<code>SessionMiddleware</code>. Each page reads <code>request.session</code>, which "
        "behaves like Django's.</p><ul>"
        f"<li>Sessions are kept in <strong>{esc(store)}</strong>; run "
        "<code>sessionware demo --store URL</code> with <code>memory://</code>, "
        "<code>file:///dir</code>, <code>sqlite:///file.db</code>, "
        "<code>redis://…</code> or <code>cookie://</code> to compare.</li>"
        "<li>The browser holds only a cookie naming the session (or, with "
        "<code>cookie://</code>, the signed session itself).</li>"
        "<li>A session is stored, and the cookie set, only once something is written: "
        "this page only reads, so visiting it first sets no cookie.</li>"
        "<li>Every action is a plain HTML form that redirects back (303), so reloading never "
        "repeats it.</li></ul></section>"
    )
