"""Cookie formats: what the session cookie's value is, and how to read it back.

Four formats, each with ``encode`` and ``decode``:

- ``PlainKey``: the session key itself (a server-side store, no ``secret_key``);
- ``SignedKey``: the key and an HMAC, so a forged cookie is refused without a store call;
- ``SignedPayload``: the whole session, signed (``CookieStore()``);
- ``EncryptedPayload``: the whole session, encrypted and authenticated
  (``CookieStore(encrypt=True)``).

``decode`` never raises on what a client sends: anything not ours is ``None``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._expiry import Expiry
from ._keys import KeySigner, is_valid_key
from ._records import check_timestamp
from ._serializers import FieldCodec, dumps_plain
from ._tagged import fresh_copy, known_decode

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

_SALT = b"sessionware.cookie"
# Cookie values a format remembers verified (see ``_Remembered``): the clients active at
# one moment on one worker; at most a few MB, as cookies stay under 4 KB.
_REMEMBERED = 512
T = TypeVar("T")


@dataclass(slots=True)
class Payload:
    """A whole session as a payload cookie carries it."""

    data: dict[str, Any]
    created_at: float
    expires_at: float
    expiry: Expiry | None = None


class CookiePayload:
    """The session a verified payload cookie carries: its times at once, its data on
    demand, as a fresh copy for each call, so no two requests share an object.

    The first call gets what reading the cookie decoded (or decodes it, for a cookie
    this worker issued). When the same cookie comes again, its bytes are decoded once
    more; with the default serializer that result is kept and copied from then on, which
    gives the same values faster.
    """

    __slots__ = (
        "_copies",
        "_first",
        "_loads",
        "_raw",
        "_sent_again",
        "_template",
        "created_at",
        "expires_at",
        "expiry",
    )

    def __init__(
        self,
        created_at: float,
        expires_at: float,
        expiry: Expiry | None,
        *,
        first: dict[str, Any] | None,
        raw: bytes,
        loads: Callable[[bytes], dict[str, Any]],
        copies: bool,
    ) -> None:
        self.created_at = created_at
        self.expires_at = expires_at
        self.expiry = expiry
        # What reading the cookie decoded; list.pop() is atomic: one request only gets it.
        self._first = [] if first is None else [first]
        self._raw = raw
        self._loads = loads
        self._copies = copies
        self._template: dict[str, Any] | None = None
        self._sent_again = first is not None  # a decode from here on is the cookie's second

    def data(self) -> dict[str, Any]:
        if self._first:  # checked first: raising IndexError costs more than a decode step
            try:
                return self._first.pop()
            except IndexError:  # pragma: no cover - another thread took it meanwhile
                pass
        template = self._template
        if template is None:
            decoded: dict[str, Any] = self._loads(self._raw)["d"]
            if not (self._copies and self._sent_again):
                self._sent_again = True
                return decoded
            self._template = template = decoded  # threads may both set it: same values
        copied: dict[str, Any] = fresh_copy(template)
        return copied


@dataclass(slots=True)  # formats remember and share them among requests: never changed
class FromCookie:
    """What a cookie value says: the key, the session itself for payload formats, and
    whether it was signed with an older secret (re-sent signed with the first)."""

    key: str
    old_secret: bool = False
    payload: CookiePayload | None = None


class CookieFormat(Protocol):
    #: Whether the cookie holds the session itself (so the store holds nothing).
    carries_payload: bool

    def encode(self, key: str, payload: Payload | None) -> str: ...

    def decode(self, value: str) -> FromCookie | None: ...


class PlainKey:
    """The cookie is the key."""

    carries_payload = False

    def encode(self, key: str, payload: Payload | None) -> str:
        return key

    def decode(self, value: str) -> FromCookie | None:
        return FromCookie(value) if is_valid_key(value) else None


_UNREAD: Any = object()


class _Document:
    """A remembered payload cookie: the serializer's bytes, and what they say once read."""

    __slots__ = ("old", "raw", "read")

    def __init__(self, raw: bytes, old: bool) -> None:
        self.raw = raw
        self.old = old
        self.read: FromCookie | None = _UNREAD  # threads may both read it: same result


class _Remembered(Generic[T]):
    """Cookie values this worker issued or verified, with what they said.

    A client sends the same cookie back request after request, and verifying its HMAC
    again each time is most of the cost of reading it. Only exact values that verified
    are kept, so a lookup cannot accept anything the signature would refuse (str hashes
    are keyed per process, so the lookup's timing tells a client nothing). Reads take no
    lock; at most ``_REMEMBERED`` values are kept, the oldest dropped first.
    """

    __slots__ = ("_items", "_lock")

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()  # WSGI servers call one format from many threads

    def get(self, value: str) -> T | None:
        return self._items.get(value)

    def put(self, value: str, item: T) -> None:
        with self._lock:
            items = self._items
            items[value] = item
            if len(items) > _REMEMBERED:
                del items[next(iter(items))]


class SignedKey:
    """The cookie is the key plus an HMAC: the first secret signs, every secret verifies."""

    carries_payload = False

    def __init__(self, secrets: list[bytes]) -> None:
        self._signer = KeySigner(secrets)
        self._recent: _Remembered[FromCookie] = _Remembered()

    def encode(self, key: str, payload: Payload | None) -> str:
        value = self._signer.sign(key)
        self._recent.put(value, FromCookie(key))
        return value

    def decode(self, value: str) -> FromCookie | None:
        known = self._recent.get(value)
        if known is not None:
            return known
        verified = self._signer.unsign(value)
        if verified is None or not is_valid_key(verified[0]):
            return None
        known = FromCookie(verified[0], verified[1])
        self._recent.put(value, known)
        return known


class _PayloadFormat:
    """Shared by the two payload formats: the document, and remembering verified cookies.

    Verified values are remembered (``_Remembered``) with the serializer's bytes and,
    once read, the document they hold. Each request gets a fresh copy of the data (with
    the default serializer, a copy of what decoding gave, which is the same values; with
    another, a decode of the same bytes), so every worker reads the same values.
    """

    carries_payload = True

    def __init__(self, codec: FieldCodec) -> None:
        self._codec = codec
        self._recent: _Remembered[_Document] = _Remembered()

    def encode(self, key: str, payload: Payload | None) -> str:
        if payload is None:
            raise ValueError("a payload cookie needs the session")
        document: dict[str, Any] = {
            "k": key,
            "c": payload.created_at,
            "e": payload.expires_at,
            "d": payload.data,
        }
        if payload.expiry is not None:
            document["x"] = payload.expiry.to_json()
        # What decoding the data will give, when known without decoding it.
        plain = known_decode(payload.data) if self._codec.tagged_json else None
        if plain is not None and payload.expiry is None:
            raw = dumps_plain(document)  # the default serializer, and nothing to tag
        else:
            raw = self._codec.serializer.dumps(document)
        value = self._protect(raw)
        issued = _Document(raw, False)
        # What the client's next request says is known: its data too, when the decode
        # of plain values is a copy of them (else it is decoded at that request's use).
        said = self._said(payload.created_at, payload.expires_at, payload.expiry, raw, plain)
        issued.read = FromCookie(key, False, said)
        self._recent.put(value, issued)
        return value

    def decode(self, value: str) -> FromCookie | None:
        known = self._recent.get(value)
        if known is None:
            opened = self._open(value)
            if opened is None:
                return None
            known = _Document(*opened)
            self._recent.put(value, known)
        if known.read is _UNREAD:
            known.read = self._read(known.raw, known.old)
        return known.read

    def _read(self, raw: bytes, old: bool) -> FromCookie | None:
        """The document; ``None`` for anything malformed (the signature was valid, so this
        guards against a foreign serializer or an old format, not an attacker)."""
        try:
            document = self._codec.serializer.loads(raw)
            key, data = document["k"], document["d"]
            created = check_timestamp(document["c"])
            expires = check_timestamp(document["e"])
        except Exception:  # a custom serializer may raise anything on foreign bytes
            return None
        if type(key) is not str or not isinstance(data, dict):
            return None
        expiry = Expiry.from_json(document.get("x"))
        return FromCookie(key, old, self._said(created, expires, expiry, raw, data))

    def _said(
        self,
        created_at: float,
        expires_at: float,
        expiry: Expiry | None,
        raw: bytes,
        decoded: dict[str, Any] | None,
    ) -> CookiePayload:
        """What a cookie of ``raw`` says (``decoded``: its data, if already decoded)."""
        return CookiePayload(
            created_at,
            expires_at,
            expiry,
            first=decoded,
            raw=raw,
            loads=self._codec.serializer.loads,
            copies=self._codec.tagged_json,
        )

    def _protect(self, raw: bytes) -> str:
        raise NotImplementedError

    def _open(self, value: str) -> tuple[bytes, bool] | None:
        raise NotImplementedError


class SignedPayload(_PayloadFormat):
    """The session, base64url-encoded and signed: readable by the client, not forgeable."""

    def __init__(self, secrets: list[bytes], codec: FieldCodec) -> None:
        super().__init__(codec)
        self._signer = KeySigner(secrets, salt=_SALT)

    def _protect(self, raw: bytes) -> str:
        body = base64.urlsafe_b64encode(raw).rstrip(b"=")
        return self._signer.sign(body.decode("ascii"))

    def _open(self, value: str) -> tuple[bytes, bool] | None:
        verified = self._signer.unsign(value)
        if verified is None:
            return None
        body, old = verified
        try:
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), old
        except (binascii.Error, ValueError):
            return None


class EncryptedPayload(_PayloadFormat):
    """The session encrypted and authenticated (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, secrets: list[bytes], codec: FieldCodec) -> None:
        super().__init__(codec)
        from cryptography.fernet import Fernet, MultiFernet

        fernets = [Fernet(_fernet_key(secret)) for secret in secrets]
        self._primary: Fernet = fernets[0]
        self._any: MultiFernet = MultiFernet(fernets)

    def _protect(self, raw: bytes) -> str:
        return self._primary.encrypt(raw).decode("ascii")

    def _open(self, value: str) -> tuple[bytes, bool] | None:
        from cryptography.fernet import InvalidToken

        try:
            token = value.encode("ascii")
            canonical = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token)) == token
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
        if not canonical:  # characters or padding the lenient decoder skips, unused low bits
            return None
        try:
            return self._primary.decrypt(token), False
        except InvalidToken:
            pass
        try:
            return self._any.decrypt(token), True
        except InvalidToken:
            return None


def _fernet_key(secret: bytes) -> bytes:
    """A Fernet key derived from a secret, so users configure one ``secret_key`` list."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=b"fernet").derive(
        hashlib.sha256(secret).digest() if len(secret) < 16 else secret
    )
    return base64.urlsafe_b64encode(derived)


def require_cryptography() -> None:
    try:
        import cryptography.fernet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise ImportError(
            "CookieStore(encrypt=True) needs cryptography: pip install 'sessionware[crypto]'"
        ) from exc
