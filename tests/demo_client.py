"""Driving the demo app over HTTP like a browser: cookies kept, forms posted, redirects
followed, and the stable element ids of its pages read back."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp

BASE = "http://testserver"
SECRET = "demo-test-secret-0123456789abcdef"
NO_SESSION = "none (no stored session)"  # what #session-key shows without a stored session


@dataclass
class Demo:
    app: ASGIApp
    server_side: bool


def browser(demo: Demo) -> httpx.AsyncClient:
    """A client that keeps cookies, like a browser tab."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=demo.app), base_url=BASE)


def text(page: httpx.Response, ident: str) -> str:
    """The unescaped text directly inside the element with ``id=ident``."""
    found = re.search(rf'id="{re.escape(ident)}"[^>]*>([^<]*)', page.text)
    assert found is not None, f"no element #{ident} on {page.url}"
    return html.unescape(found.group(1))


def has(page: httpx.Response, ident: str) -> bool:
    """Whether the page has an element with ``id=ident``."""
    return f'id="{ident}"' in page.text


def session_cookie(response: httpx.Response) -> str | None:
    """The response's ``Set-Cookie`` for the session, or ``None``."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("sessionid="):
            return header
    return None


async def post(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """Submit a form; check redirect-after-post; return the page it leads to."""
    response = await client.post(path, data=fields)
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    page.history = [response]
    return page
