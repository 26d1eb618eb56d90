"""Signed session keys with a server-side store (API.md §1 ``secret_key``), both middlewares.

The cookie carries ``key.signature``; the first secret of the list signs, every secret
verifies; a cookie whose signature fails is no cookie at all and costs no store call.
"""

from __future__ import annotations

import hashlib
import hmac

import itsdangerous
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sessionware._keys import KeySigner, _Hmac, is_valid_key, new_key
from sessionware.stores import MemoryStore
from tests.conftest import MakeClient
from tests.counting import CountingStore
from tests.security.support import (
    B64_ALPHABET,
    EMPTY,
    as_json,
    b64decode_loose,
    flip_char_bit,
    is_deletion,
    replay,
    sent_value,
    session_cookies,
)

NEW = "signing-secret-new-0123456789abcdef"
MIDDLE = "signing-secret-middle-0123456789ab"
OLD = "signing-secret-old-0123456789abcdef"


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStore())


def signer(*secrets: str) -> KeySigner:
    return KeySigner([s.encode() for s in secrets])


def logged_in(make_client: MakeClient, store: CountingStore, secret: object) -> tuple[str, str]:
    """A session holding ``user=ada`` under ``secret``: ``(cookie value, session key)``."""
    client = make_client(store=store, secret_key=secret)
    value = sent_value(client.get("/set?k=user&v=ada"))
    key = as_json(client.get("/read"))["key"]
    return value, key


def test_the_cookie_carries_the_key_and_an_hmac_made_with_the_first_secret(
    make_client: MakeClient, store: CountingStore
) -> None:
    value, key = logged_in(make_client, store, [NEW, OLD])
    assert is_valid_key(key)
    signed_key, dot, signature = value.rpartition(".")
    assert (signed_key, dot) == (key, ".")
    assert len(b64decode_loose(signature)) == 32  # an HMAC-SHA256 tag
    assert signer(NEW).unsign(value) == (key, False)
    assert signer(OLD).unsign(value) is None  # only the first secret signs


def _tamperings(value: str, key: str) -> dict[str, str]:
    signed_key, _, signature = value.rpartition(".")
    middle = len(signed_key) + 1 + len(signature) // 2
    return {
        "bare-key": key,  # the real key of a live record, without its signature
        "foreign-secret": signer("an-attacker-secret").sign(key),
        "signature-of-another-key": new_key() + "." + signature,
        "key-bit-flipped": flip_char_bit(value, 5, 0),
        "signature-bit-flipped": flip_char_bit(value, middle, 0),
        "signature-truncated": value[:-4],
        "signature-empty": signed_key + ".",
        "signature-doubled": value + "." + signature,
        "signed-twice": signer(NEW).sign(value),
    }


TAMPERINGS = list(_tamperings(signer(NEW).sign(new_key()), new_key()))


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_a_bad_signature_is_no_cookie_at_all_and_asks_the_store_nothing(
    make_client: MakeClient, store: CountingStore, tampering: str
) -> None:
    value, key = logged_in(make_client, store, NEW)
    forged = _tamperings(value, key)[tampering]
    client = make_client(store=store, secret_key=NEW)
    store.reset()
    response = replay(client, forged)
    assert as_json(response) == EMPTY
    assert is_deletion(response)  # the browser is told to drop it (API.md §4.3)
    assert store.total == 0, store.calls
    store.reset()
    written = replay(client, forged, "/set?k=planted&v=1")
    assert store.calls == {"insert": 1}  # a fresh session: the forged key was never looked up
    new_value = sent_value(written)
    assert signer(NEW).unsign(new_value) is not None
    assert new_value.rpartition(".")[0] != key


def _lenient_encodings(value: str) -> dict[str, str]:
    """The exact signature written differently: junk the base64 decoder skips, padding,
    and the last character with a flipped bit that base64 decoding ignores."""
    last = B64_ALPHABET.index(value[-1])
    ignored_bit_flip = value[:-1] + B64_ALPHABET[last ^ 1]
    return {
        "appended-bangs": value + "!!",
        "appended-padding": value + "=",
        "appended-non-ascii": value + "\u00e9",
        "inserted-bangs": value[:-2] + "!!" + value[-2:],
        "last-char-low-bit": ignored_bit_flip,
    }


@pytest.mark.parametrize("encoding", list(_lenient_encodings("x.y")))
def test_only_the_exact_signature_string_verifies(
    make_client: MakeClient, store: CountingStore, encoding: str
) -> None:
    value, _ = logged_in(make_client, store, NEW)
    variant = _lenient_encodings(value)[encoding]
    assert variant != value
    client = make_client(store=store, secret_key=NEW)
    store.reset()
    response = replay(client, variant)
    assert as_json(response) == EMPTY
    assert store.total == 0, store.calls


@pytest.mark.parametrize("signed_with", [MIDDLE, OLD])
def test_a_cookie_signed_with_an_older_secret_is_accepted_and_re_signed_without_a_write(
    make_client: MakeClient, store: CountingStore, signed_with: str
) -> None:
    old_value, key = logged_in(make_client, store, signed_with)
    rotated = make_client(store=store, secret_key=[NEW, MIDDLE, OLD])
    store.reset()
    response = replay(rotated, old_value)
    assert as_json(response) == {"key": key, "data": {"user": "ada"}}
    new_value = sent_value(response)
    assert signer(NEW).unsign(new_value) == (key, False)  # re-sent, signed with the first
    assert store.calls == {"load": 1}  # no store write for a re-signature
    store.reset()
    again = replay(rotated, new_value)
    assert as_json(again) == {"key": key, "data": {"user": "ada"}}
    assert session_cookies(again) == []  # signed with the first secret: nothing to re-send
    assert store.calls == {"load": 1}


def test_a_secret_removed_from_the_list_no_longer_verifies(
    make_client: MakeClient, store: CountingStore
) -> None:
    old_value, _ = logged_in(make_client, store, OLD)
    retired = make_client(store=store, secret_key=[NEW])
    store.reset()
    assert as_json(replay(retired, old_value)) == EMPTY
    assert store.total == 0


def test_a_remembered_cookie_accepts_no_altered_copy_of_it(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store, secret_key=NEW)
    value = sent_value(client.get("/set?k=user&v=ada"))  # issued here, so remembered
    key = as_json(client.get("/read"))["key"]
    assert as_json(replay(client, value)) == {"key": key, "data": {"user": "ada"}}
    variants = {**_tamperings(value, key), **_lenient_encodings(value)}
    for name, variant in variants.items():
        store.reset()
        assert as_json(replay(client, variant)) == EMPTY, name
        assert store.total == 0, (name, store.calls)
    assert as_json(replay(client, value)) == {"key": key, "data": {"user": "ada"}}


def test_a_remembered_cookie_of_an_older_secret_is_re_signed_every_time(
    make_client: MakeClient, store: CountingStore
) -> None:
    old_value, key = logged_in(make_client, store, OLD)
    rotated = make_client(store=store, secret_key=[NEW, OLD])
    for _ in range(3):  # verified once, then remembered: still known to be old
        response = replay(rotated, old_value)
        assert as_json(response) == {"key": key, "data": {"user": "ada"}}
        assert signer(NEW).unsign(sent_value(response)) == (key, False)


@given(key=st.binary(max_size=200), message=st.binary(max_size=5000))
@example(key=b"", message=b"")
@example(key=bytes(64), message=b"x")  # exactly one block: used as it is
@example(key=bytes(65), message=b"x")  # longer than a block: hashed first
def test_the_prepared_hmac_gives_the_standard_digest(key: bytes, message: bytes) -> None:
    assert _Hmac(key).digest(message) == hmac.digest(key, message, "sha256")


def test_a_signature_is_itsdangerous_signer_with_no_key_derivation() -> None:
    """Cookies stay readable by (and from) the format the docs name."""
    derived = hmac.new(NEW.encode(), b"sessionware.key", hashlib.sha256).digest()
    theirs = itsdangerous.Signer(
        derived, key_derivation="none", digest_method=hashlib.sha256, sep="."
    )
    key = new_key()
    assert signer(NEW).sign(key) == theirs.sign(key).decode()
    assert signer(NEW).unsign(theirs.sign(key).decode()) == (key, False)
