"""The cookie store: what the client can read, tampering, rotation and the size limit."""

from __future__ import annotations

import base64
import logging
import re
import time

import pytest

from sessionware._cookies import MAX_COOKIE_SIZE
from sessionware._formats import CookieFormat, Payload
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import CookieStore
from tests.conftest import MakeClient
from tests.security.support import (
    B64_ALPHABET,
    EMPTY,
    as_json,
    base64_needles,
    flip_byte_bit,
    flip_char_bit,
    is_deletion,
    replay,
    sent_value,
    session_cookies,
    tampered_variants,
)

SECRET = "cookie-store-secret-0123456789abcdef"
NEW = "cookie-store-secret-new-0123456789ab"
SECRET_VALUE = "hunter2-card-4111-1111-1111-1111"
SECRET_NAME = "payment_note"


@pytest.fixture(params=[False, True], ids=["signed", "encrypted"])
def encrypt(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def codec(encrypt: bool, *secrets: str) -> CookieFormat:
    fields = FieldCodec(JSONSerializer())
    return CookieStore(encrypt=encrypt).cookie_format([s.encode() for s in secrets], fields)


def holding_a_secret(make_client: MakeClient, encrypt: bool) -> tuple[str, str]:
    """A cookie-store session with ``SECRET_NAME=SECRET_VALUE``: ``(cookie value, key)``."""
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    value = sent_value(client.get("/set", params={"k": SECRET_NAME, "v": SECRET_VALUE}))
    key = as_json(replay(client, value))["key"]
    return value, key


def leaks(cookie: str, key: str) -> list[str]:
    """Every plaintext, or base64 of a plaintext, of the session found in the cookie."""
    plain = [SECRET_VALUE, SECRET_NAME, key, f'"{SECRET_NAME}":"{SECRET_VALUE}"']
    found = [p for p in plain if p in cookie]
    for text in plain:
        found += [n for n in base64_needles(text.encode()) if n in cookie]
    return found


# -- what an encrypted cookie hides --------------------------------------------------------------


def test_an_encrypted_cookie_reveals_nothing_of_the_data(make_client: MakeClient) -> None:
    value, key = holding_a_secret(make_client, encrypt=True)
    assert leaks(value, key) == []
    token = base64.urlsafe_b64decode(value)
    assert token[0] == 0x80  # a Fernet token: version, timestamp, IV, ciphertext, HMAC
    for text in (SECRET_VALUE, SECRET_NAME, key):
        assert text.encode() not in token


def test_the_leak_detector_finds_the_data_of_a_signed_only_cookie(
    make_client: MakeClient,
) -> None:
    """The signed cookie store is readable by its holder (SECURITY.md), and proves that
    ``leaks`` would catch an encrypted cookie that exposed its data."""
    value, key = holding_a_secret(make_client, encrypt=False)
    assert leaks(value, key) != []


# -- rotation -----------------------------------------------------------------------------------


def test_rotation_accepts_the_old_secret_and_re_sends_under_the_first(
    make_client: MakeClient, encrypt: bool
) -> None:
    old_value, key = holding_a_secret(make_client, encrypt)
    rotated = make_client(store=CookieStore(encrypt=encrypt), secret_key=[NEW, SECRET])
    response = replay(rotated, old_value)
    assert as_json(response) == {"key": key, "data": {SECRET_NAME: SECRET_VALUE}}
    new_value = sent_value(response)
    decoded = codec(encrypt, NEW).decode(new_value)
    assert decoded is not None
    assert decoded.key == key
    assert decoded.payload is not None
    assert decoded.payload.data() == {SECRET_NAME: SECRET_VALUE}
    assert codec(encrypt, SECRET).decode(new_value) is None  # the first secret made it
    assert session_cookies(replay(rotated, new_value)) == []
    retired = make_client(store=CookieStore(encrypt=encrypt), secret_key=[NEW])
    assert as_json(replay(retired, old_value)) == EMPTY
    assert as_json(replay(retired, new_value))["data"] == {SECRET_NAME: SECRET_VALUE}


# -- tampering ----------------------------------------------------------------------------------


def test_every_variant_family_is_generated_for_both_codecs() -> None:
    record = Payload({"a": 1}, 1.0, 2.0)
    for encrypt in (False, True):
        names = tampered_variants(codec(encrypt, SECRET).encode("k" * 43, record))
        for family in ("char", "segment0-byte", "truncated-", "appended-"):
            assert any(n.startswith(family) for n in names), (encrypt, family)


def test_any_tampering_gives_an_empty_session(make_client: MakeClient, encrypt: bool) -> None:
    value, _ = holding_a_secret(make_client, encrypt)
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    accepted = []
    for name, variant in tampered_variants(value).items():
        response = replay(client, variant)
        assert response.status_code == 200, name
        if response.json() != EMPTY:
            accepted.append(name)
        else:
            assert is_deletion(response), name
    assert accepted == []
    assert as_json(replay(client, value))["data"] == {SECRET_NAME: SECRET_VALUE}


def test_every_single_bit_flip_of_the_cookie_text_is_refused(encrypt: bool) -> None:
    """Exhaustive on the codec: each character of the cookie, each of its 6 base64 bits."""
    now = time.time()
    good = codec(encrypt, SECRET)
    value = good.encode("k" * 43, Payload({SECRET_NAME: SECRET_VALUE}, now, now + 60))
    accepted = [
        (position, bit)
        for position, char in enumerate(value)
        if char in B64_ALPHABET
        for bit in range(6)
        if good.decode(flip_char_bit(value, position, bit)) is not None
    ]
    assert accepted == []


def test_every_single_bit_flip_of_the_cookie_bytes_is_refused(encrypt: bool) -> None:
    """Exhaustive on the codec: each bit of each decoded byte of every segment."""
    now = time.time()
    good = codec(encrypt, SECRET)
    value = good.encode("k" * 43, Payload({SECRET_NAME: SECRET_VALUE}, now, now + 60))
    accepted = []
    segments = value.split(".")
    for number, segment in enumerate(segments):
        size = len(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        for index in range(size):
            for bit in range(8):
                changed = segments.copy()
                changed[number] = flip_byte_bit(segment, index, bit)
                if good.decode(".".join(changed)) is not None:
                    accepted.append((number, index, bit))
    assert accepted == []


# -- the size limit -----------------------------------------------------------------------------


def test_an_oversized_cookie_fails_loudly_with_a_500_naming_size_and_limit(
    make_client: MakeClient, encrypt: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    before = sent_value(client.get("/set?k=small&v=1"))
    with caplog.at_level(logging.ERROR, logger="sessionware"):
        response = replay(client, before, "/set?k=big&v=" + "x" * 5000)
    assert response.status_code == 500
    assert session_cookies(response) == []  # never a cookie the browser would drop
    (record,) = [r for r in caplog.records if r.name.startswith("sessionware")]
    assert record.levelno == logging.ERROR
    logged = logging.Formatter().format(record)  # the message, and a traceback if any
    numbers = {int(n) for n in re.findall(r"\d+", logged)}
    assert MAX_COOKIE_SIZE == 4093
    assert 4093 in numbers  # the limit
    assert [n for n in numbers if 5000 < n < 10_000] != []  # the cookie's size
    assert as_json(replay(client, before))["data"] == {"small": "1"}  # the old one still works


def test_the_largest_accepted_cookie_fits_the_limit(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    low, high = 0, 5000  # value lengths: accepted at ``low``, refused at ``high``
    largest = session_cookies(client.get("/set?k=v&v="))
    assert client.get("/set?k=v&v=" + "x" * high).status_code == 500
    while high - low > 1:
        middle = (low + high) // 2
        client.cookies.clear()
        response = client.get("/set?k=v&v=" + "x" * middle)
        if response.status_code == 200:
            low, largest = middle, session_cookies(response)
        else:
            assert response.status_code == 500
            high = middle
    (header,) = largest
    assert len(header.encode("latin-1")) <= MAX_COOKIE_SIZE
    assert low > 2000  # the limit is the browsers', not a much smaller one of ours
