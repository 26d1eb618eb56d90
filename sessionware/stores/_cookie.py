"""The whole session in the cookie: signed (itsdangerous) or encrypted (Fernet).

The client holds the state, so this store cannot revoke a copied cookie before it
expires, and it cannot merge concurrent changes: the last response's cookie wins.
Use a server-side store where logout must be final (SECURITY.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from .._copying import copy_data
from .._expiry import Expiry
from .._keys import KeySigner
from .._records import Record
from .._serializers import JSONSerializer, Serializer

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

_SALT = b"sessionware.cookie"

# Cookies a codec remembers decoded (see _Remembering): enough for the clients active at
# one moment on one worker; at most a few MB, as cookies stay under 4 KB.
_REMEMBERED = 512


class CookieCodec(Protocol):
    """Turns ``(key, record)`` into a cookie value and back, bound to the secret keys."""

    def encode(self, key: str, record: Record) -> str: ...

    def decode(self, value: str) -> tuple[str, Record, bool] | None:
        """``(key, record, signed_with_old_secret)``; ``None`` for anything not ours."""


class CookieStore:
    """Client-side sessions: nothing stored on the server, ``clear_expired`` has nothing to do.

    ``encrypt=True`` hides the data from the client with authenticated encryption
    (Fernet: AES-128-CBC + HMAC-SHA256), needing ``pip install 'sessionware[crypto]'``.
    Expiry is inside the protected payload, so a replayed old cookie is refused.
    """

    def __init__(self, encrypt: bool = False, serializer: Serializer | None = None) -> None:
        self.encrypt = encrypt
        self.serializer: Serializer = serializer if serializer is not None else JSONSerializer()
        if encrypt:
            _require_cryptography()

    def codec(self, secrets: list[bytes]) -> CookieCodec:
        """The codec for one middleware's secret keys (first encodes, all decode)."""
        codec: CookieCodec
        if self.encrypt:
            codec = _EncryptedCodec(secrets, self.serializer)
        else:
            codec = _SignedCodec(secrets, self.serializer)
        return _Remembering(codec, _REMEMBERED)

    def clear_expired(self, now: float | None = None) -> int:
        return 0

    async def aclear_expired(self, now: float | None = None) -> int:
        return 0

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""


def _payload(key: str, record: Record, serializer: Serializer) -> bytes:
    """Key, timing and data in one document: one serializer call per cookie."""
    document: dict[str, Any] = {
        "k": key,
        "c": record.created_at,
        "e": record.expires_at,
        "d": record.data,
    }
    if record.expiry is not None:
        document["x"] = record.expiry.to_json()
    return serializer.dumps(document)


def _unpayload(raw: bytes, serializer: Serializer) -> tuple[str, Record] | None:
    """Inverse of ``_payload``; ``None`` for anything malformed (the signature was valid,
    so this guards against a foreign serializer or an old format, not an attacker)."""
    try:
        document = serializer.loads(raw)
        key, data = document["k"], document["d"]
        created, expires = float(document["c"]), float(document["e"])
    except Exception:  # a custom serializer may raise anything on foreign bytes
        return None
    if type(key) is not str or type(data) is not dict:
        return None
    return key, Record(data, created, expires, Expiry.from_json(document.get("x")))


class _SignedCodec:
    def __init__(self, secrets: list[bytes], serializer: Serializer) -> None:
        self._signer = KeySigner(secrets, salt=_SALT)
        self._serializer = serializer

    def encode(self, key: str, record: Record) -> str:
        body = base64.urlsafe_b64encode(_payload(key, record, self._serializer)).rstrip(b"=")
        return self._signer.sign(body.decode("ascii"))

    def decode(self, value: str) -> tuple[str, Record, bool] | None:
        verified = self._signer.unsign(value)
        if verified is None:
            return None
        body, old = verified
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        decoded = _unpayload(raw, self._serializer)
        return None if decoded is None else (*decoded, old)


class _EncryptedCodec:
    def __init__(self, secrets: list[bytes], serializer: Serializer) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        fernets = [Fernet(_fernet_key(secret)) for secret in secrets]
        self._primary: Fernet = fernets[0]
        self._any: MultiFernet = MultiFernet(fernets)
        self._serializer = serializer

    def encode(self, key: str, record: Record) -> str:
        return self._primary.encrypt(_payload(key, record, self._serializer)).decode("ascii")

    def decode(self, value: str) -> tuple[str, Record, bool] | None:
        from cryptography.fernet import InvalidToken

        try:
            token = value.encode("ascii")
            canonical = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token)) == token
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
        if not canonical:  # characters or padding the lenient decoder skips, unused low bits
            return None
        old = False
        try:
            raw = self._primary.decrypt(token)
        except InvalidToken:
            try:
                raw = self._any.decrypt(token)
            except InvalidToken:
                return None
            old = True
        decoded = _unpayload(raw, self._serializer)
        return None if decoded is None else (*decoded, old)


class _Remembering:
    """Remembers the cookies it recently issued or verified, decoded.

    A client sends the same cookie back request after request; verifying and decoding it
    again each time is most of the store's cost. Only exact values this codec produced or
    verified are remembered, so nothing the signature check would refuse is accepted; the
    lifecycle still checks expiry on every request. Each request gets its own copy.
    """

    def __init__(self, inner: CookieCodec, size: int) -> None:
        self._inner = inner
        self._size = size
        self._recent: OrderedDict[str, tuple[str, Record, bool]] = OrderedDict()
        self._lock = threading.Lock()  # WSGI servers call one codec from many threads

    def encode(self, key: str, record: Record) -> str:
        value = self._inner.encode(key, record)
        self._remember(value, key, record, False)
        return value

    def decode(self, value: str) -> tuple[str, Record, bool] | None:
        with self._lock:
            known = self._recent.get(value)
            if known is not None:
                self._recent.move_to_end(value)
        if known is None:
            decoded = self._inner.decode(value)
            if decoded is not None:
                self._remember(value, *decoded)
            return decoded
        key, record, old = known
        fresh = Record(copy_data(record.data), record.created_at, record.expires_at, record.expiry)
        return key, fresh, old

    def _remember(self, value: str, key: str, record: Record, old: bool) -> None:
        kept = Record(copy_data(record.data), record.created_at, record.expires_at, record.expiry)
        with self._lock:
            self._recent[value] = (key, kept, old)
            self._recent.move_to_end(value)
            if len(self._recent) > self._size:
                self._recent.popitem(last=False)


def _fernet_key(secret: bytes) -> bytes:
    """A Fernet key derived from a secret, so users configure one ``secret_key`` list."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=b"fernet").derive(
        hashlib.sha256(secret).digest() if len(secret) < 16 else secret
    )
    return base64.urlsafe_b64encode(derived)


def _require_cryptography() -> None:
    try:
        import cryptography.fernet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise ImportError(
            "CookieStore(encrypt=True) needs cryptography: pip install 'sessionware[crypto]'"
        ) from exc
