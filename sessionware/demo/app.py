"""The demo site: every Django session scenario as a page a person can click through.

Only Home writes on a plain visit (its visit counter); every other page reads, and
writes only when a button is pressed, so "no cookie until something is stored" can be
seen on ``/about`` or ``/tools``. ``/healthz`` and the icon are excluded from the
middleware altogether.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from .. import SessionMiddleware, get_session
from ..stores.base import DEFAULT_STALE_WINDOW, SessionStore
from . import actions, devices, key_notes, layout, pages
from .web import FLASH_COOKIE, SESSION_COOKIE, DemoState, demo_state, take_flash

NO_SESSION_PATHS = ("/healthz", "/favicon.")
USER_KEY = "username"  # the session key that names the signed-in user
RENEW_GRACE = 30.0


def create_app(
    store: SessionStore,
    secret_key: str | None = None,
    *,
    renew_after: float | None = None,
    routes: Sequence[BaseRoute] = (),
) -> ASGIApp:
    """The demo wrapped in ``SessionMiddleware``; the store is closed at server shutdown.

    ``secret_key`` signs the cookie; ``CookieStore`` requires one (a ``ValueError`` now,
    like every configuration mistake, rather than at the first request). ``renew_after``
    turns key renewal on. ``routes`` are served before the demo's own, under the same
    middleware (an app that embeds the demo, or tests that add slow writers).
    """

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.aclose()

    site = Starlette(
        routes=[*routes, *ROUTES], lifespan=lifespan, exception_handlers={404: not_found}
    )
    label = type(store).__name__
    if secret_key is not None and store.server_side:
        label += ", signed cookie"
    # A store that cannot list or end sessions (the cookie store) refuses user_key.
    user_key = USER_KEY if store.server_side and store.supports_users else None
    if not store.server_side:
        renew_after = None  # nothing on the server to renew
    site.state.demo = DemoState(
        store=store,
        store_label=label,
        user_key=user_key,
        stale_key_window=DEFAULT_STALE_WINDOW,
        renew_after=renew_after,
        renew_grace=RENEW_GRACE,
    )
    return SessionMiddleware(
        site,
        store=store,
        secret_key=secret_key,
        cookie_name=SESSION_COOKIE,
        exclude_paths=NO_SESSION_PATHS,
        user_key=user_key,
        stale_key_window=DEFAULT_STALE_WINDOW,
        renew_after=renew_after,
        renew_grace=RENEW_GRACE,
    )


def render(request: Request, active: str, title: str, body: str, status: int = 200) -> HTMLResponse:
    """The page with its chrome; a shown flash is dropped so it appears only once."""
    flash, had_flash = take_flash(request)
    session = get_session(request)
    state = demo_state(request)
    # A cookie came, yet the session has no key: the cookie named no live session.
    ended = SESSION_COOKIE in request.cookies and session.session_key is None
    html = layout.page(
        title=title,
        active=active,
        body=body,
        session=session,
        flash=flash,
        store=state.store_label,
        panel_note=key_notes.ended_cookie(state) if ended else "",
    )
    # Pages show session data: never cache them, in the browser or on the way.
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    if had_flash:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="lax")
    return response


async def home(request: Request) -> Response:
    session = get_session(request)
    visits = session.get("visits")
    if not isinstance(visits, int) or isinstance(visits, bool):
        visits = 0  # absent, or replaced by hand on the preferences page
    if request.method == "GET":  # a HEAD (link checkers) does not count as a visit
        visits += 1
        session["visits"] = visits
    return render(request, "home", layout.SITE, pages.home(visits))


async def login_page(request: Request) -> Response:
    body = pages.login(get_session(request).get("username"))
    return render(request, "login", "Log in", body)


async def logout_page(request: Request) -> Response:
    body = pages.logout(get_session(request).get("username"))
    return render(request, "logout", "Log out", body)


async def cart_page(request: Request) -> Response:
    items = actions.cart_items(get_session(request))
    return render(request, "cart", "Cart", pages.cart(items))


async def preferences_page(request: Request) -> Response:
    return render(request, "preferences", "Preferences", pages.preferences())


async def tools_page(request: Request) -> Response:
    session = get_session(request)
    has_username = "username" in session
    body = pages.tools(session.session_key, has_username, session.get("username", "Guest"))
    return render(request, "tools", "Session tools", body)


async def test_cookie_page(request: Request) -> Response:
    return render(request, "test-cookie", "Test cookie: step 1", pages.test_cookie_start())


async def test_cookie_check(request: Request) -> Response:
    worked = get_session(request).test_cookie_worked()
    return render(request, "test-cookie", "Test cookie: step 2", pages.test_cookie_check(worked))


async def expiry_page(request: Request) -> Response:
    session = get_session(request)
    body = pages.expiry(
        session.get_expiry_age(),
        session.get_expiry_date().isoformat(timespec="seconds"),
        session.get_expire_at_browser_close(),
    )
    return render(request, "expiry", "Expiry", body)


async def devices_page(request: Request) -> Response:
    state = demo_state(request)
    session = get_session(request)
    username = session.get("username")
    if state.user_key is None:
        body = devices.unsupported_page(state)
    elif username is None:
        body = devices.signed_out_page()
    else:
        infos = await state.store.auser_sessions(str(username))
        body = devices.devices_page(str(username), infos, session.info_id)
    return render(request, "devices", "Your devices", body)


async def about_page(request: Request) -> Response:
    state = demo_state(request)
    body = pages.about(state.store_label) + key_notes.how_keys_end(state)
    return render(request, "about", "About this demo", body)


async def not_found(request: Request, _exc: Exception) -> Response:
    """A 404 in the demo's own layout, so a mistyped address still shows where to go."""
    if "session" not in request.scope:  # under an excluded path: no session, no layout
        return PlainTextResponse("Not Found", status_code=404)
    body = (
        '<section id="not-found"><p>There is no page at <code>'
        f"{layout.esc(request.url.path)}</code>. The tabs above list every page; "
        '<a href="/">Home</a> says what each one demonstrates.</p></section>'
    )
    return render(request, "", "Page not found", body, status=404)


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def favicon(_request: Request) -> Response:
    return Response(
        layout.FAVICON_SVG,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


ROUTES = [
    Route("/", home),
    Route("/login", login_page),
    Route("/login", actions.login, methods=["POST"]),
    Route("/logout", logout_page),
    Route("/logout", actions.logout, methods=["POST"]),
    Route("/devices", devices_page),
    Route("/devices/revoke", devices.revoke, methods=["POST"]),
    Route("/devices/revoke-others", devices.revoke_others, methods=["POST"]),
    Route("/cart", cart_page),
    Route("/cart/add", actions.cart_add, methods=["POST"]),
    Route("/cart/remove", actions.cart_remove, methods=["POST"]),
    Route("/cart/empty", actions.cart_empty, methods=["POST"]),
    Route("/preferences", preferences_page),
    Route("/preferences/set", actions.pref_set, methods=["POST"]),
    Route("/preferences/delete", actions.pref_delete, methods=["POST"]),
    Route("/preferences/pop", actions.pref_pop, methods=["POST"]),
    Route("/tools", tools_page),
    Route("/tools/clear", actions.clear, methods=["POST"]),
    Route("/tools/create", actions.create, methods=["POST"]),
    Route("/tools/flush", actions.flush, methods=["POST"]),
    Route("/test-cookie", test_cookie_page),
    Route("/test-cookie", actions.set_test_cookie, methods=["POST"]),
    Route("/test-cookie/check", test_cookie_check),
    Route("/test-cookie/delete", actions.delete_test_cookie, methods=["POST"]),
    Route("/expiry", expiry_page),
    Route("/expiry/browser-close", actions.expiry_browser_close, methods=["POST"]),
    Route("/expiry/seconds", actions.expiry_seconds, methods=["POST"]),
    Route("/expiry/date", actions.expiry_date, methods=["POST"]),
    Route("/expiry/default", actions.expiry_default, methods=["POST"]),
    Route("/about", about_page),
    Route("/healthz", healthz),
    Route("/favicon.svg", favicon),
    Route("/favicon.ico", favicon),  # browsers ask for it by this name when a page names none
]
