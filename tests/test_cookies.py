"""The cookie codec: parsing, Set-Cookie building, Vary merging, option validation."""

from __future__ import annotations

import pytest

from sessionware._cookies import DUPLICATED, CookieRules, edit_headers, find_cookie, merge_vary


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        (["a=1; b=2"], None),
        (["sessionid=abc"], "abc"),
        (["a=1;sessionid=abc ; b=2"], "abc"),
        (['sessionid="abc"'], "abc"),
        (["junk; ;=; sessionid=v"], "v"),
        (["sessionid=a", "sessionid=b"], DUPLICATED),
        (["sessionid=a; sessionid=a"], DUPLICATED),
        (["xsessionid=a"], None),
    ],
)
def test_find_cookie(headers: list[str], expected: object) -> None:
    assert find_cookie(headers, "sessionid") == expected


def test_set_cookie_has_every_attribute_and_a_matching_expires() -> None:
    rules = CookieRules("sid", "/p", "example.test", True, True, "none", True)
    header = rules.set_cookie("VALUE", 60, now=0.0)
    assert header == (
        "sid=VALUE; Max-Age=60; Expires=Thu, 01 Jan 1970 00:01:00 GMT; Path=/p; "
        "Domain=example.test; Secure; HttpOnly; SameSite=None; Partitioned"
    )
    assert rules.set_cookie("V", None, 0.0).startswith("sid=V; Path=/p")


def test_delete_cookie_matches_path_and_domain() -> None:
    header = CookieRules("sid", "/p", "example.test").delete_cookie()
    assert header.startswith('sid=""; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT')
    assert "Path=/p" in header
    assert "Domain=example.test" in header


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "sid", "samesite": "none"},
        {"name": "sid", "partitioned": True},
        {"name": "__Host-sid"},
        {"name": "__Host-sid", "secure": True, "path": "/x"},
        {"name": "__Host-sid", "secure": True, "domain": "a.test"},
        {"name": "__Secure-sid"},
        {"name": "bad name"},
        {"name": ""},
        {"name": "sid", "samesite": "loose"},
    ],
)
def test_bad_cookie_options_are_value_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        CookieRules(**kwargs)  # type: ignore[arg-type]


def test_good_prefixed_cookies_are_accepted() -> None:
    CookieRules("__Host-sid", secure=True)
    CookieRules("__Secure-sid", secure=True, domain="a.test")


@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        (None, "Cookie"),
        ("", "Cookie"),
        ("Accept-Encoding", "Accept-Encoding, Cookie"),
        ("accept-encoding, cookie", "accept-encoding, cookie"),
        ("*", "*"),
    ],
)
def test_merge_vary(existing: str | None, merged: str) -> None:
    assert merge_vary(existing) == merged


def test_edit_headers_replaces_only_our_cookie() -> None:
    headers = [("Set-Cookie", "sid=old"), ("Set-Cookie", "other=1"), ("Vary", "Origin"), ("X", "y")]
    edited = edit_headers(headers, True, "sid=new", "sid")
    assert edited == [
        ("Set-Cookie", "other=1"),
        ("X", "y"),
        ("Vary", "Origin, Cookie"),
        ("Set-Cookie", "sid=new"),
    ]
    assert edit_headers(headers, False, None, "sid") == headers
