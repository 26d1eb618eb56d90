"""The demo site: every Django session scenario as a page a person can click through.

Only Home writes on a plain visit (its visit counter); every other page reads, and
writes only when a button is pressed, so "no cookie until something is stored" can be
seen on ``/about`` or ``/tools``. ``/healthz`` is excluded from the middleware altogether.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .. import SessionMiddleware, get_session
from ..stores._cookie import CookieStore
from ..stores.base import SessionStore
from . import actions, layout, pages
from .web import FLASH_COOKIE, server_side, take_flash

NO_SESSION_PATHS = ("/healthz",)


def create_app(store: SessionStore | CookieStore, secret_key: str | None = None) -> ASGIApp:
    """The demo wrapped in ``SessionMiddleware``; the store is closed at server shutdown.

    ``secret_key`` signs the cookie; ``CookieStore`` requires one (a ``ValueError`` now,
    like every configuration mistake, rather than at the first request).
    """

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.aclose()

    site = Starlette(routes=ROUTES, lifespan=lifespan)
    label = type(store).__name__
    if secret_key is not None and not isinstance(store, CookieStore):
        label += ", signed cookie"
    site.state.store_label = label
    site.state.server_side = not isinstance(store, CookieStore)
    return SessionMiddleware(
        site, store=store, secret_key=secret_key, exclude_paths=NO_SESSION_PATHS
    )


def render(request: Request, active: str, title: str, body: str) -> HTMLResponse:
    """The page with its chrome; a shown flash is dropped so it appears only once."""
    flash, had_flash = take_flash(request)
    html = layout.page(
        title=title,
        active=active,
        body=body,
        session=get_session(request),
        flash=flash,
        store=request.app.state.store_label,
    )
    # Pages show session data: never cache them, in the browser or on the way.
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
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
    return render(request, "home", "sessionware demo", pages.home(visits))


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


async def about_page(request: Request) -> Response:
    body = pages.about(request.app.state.store_label)
    if not server_side(request):
        body += (
            '<p class="note">With the cookie store, a key rotated away or flushed cannot be '
            "revoked: a copied old cookie stays valid until it expires.</p>"
        )
    return render(request, "about", "About this demo", body)


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


ROUTES = [
    Route("/", home),
    Route("/login", login_page),
    Route("/login", actions.login, methods=["POST"]),
    Route("/logout", logout_page),
    Route("/logout", actions.logout, methods=["POST"]),
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
]
