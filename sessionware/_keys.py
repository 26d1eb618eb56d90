"""Session keys: generation, validation, and the optional HMAC signature in the cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

KEY_BYTES = 32  # 256 bits of entropy from ``secrets``
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")

SecretKey = str | bytes


def new_key() -> str:
    """A fresh, unguessable, URL-safe session key."""
    return secrets.token_urlsafe(KEY_BYTES)


def is_valid_key(value: str) -> bool:
    """Whether ``value`` has the shape of a key we generate (checked before any store call)."""
    return _KEY_PATTERN.fullmatch(value) is not None


def secret_list(secret_key: object) -> list[bytes]:
    """Normalise the ``secret_key`` option to a non-empty list of bytes, first = signing key."""
    if isinstance(secret_key, str | bytes):
        keys: list[object] = [secret_key]
    elif isinstance(secret_key, list | tuple):
        keys = list(secret_key)
    else:
        raise TypeError(
            f"secret_key must be a str, bytes, or a list of them, not {type(secret_key).__name__}"
        )
    if not keys:
        raise ValueError("secret_key must not be an empty list")
    result = []
    for key in keys:
        if not isinstance(key, str | bytes):
            raise TypeError(f"each secret_key must be a str or bytes, not {type(key).__name__}")
        if not key:
            raise ValueError("each secret_key must be non-empty")
        result.append(key.encode() if isinstance(key, str) else key)
    return result


class KeySigner:
    """Signs values with the first secret and accepts any secret of the list.

    The format is itsdangerous' ``Signer`` with ``key_derivation="none"`` and SHA-256 over
    keys derived once from the salt: ``value + "." + base64url(HMAC)``, unpadded. It is
    computed here in one call of ``hmac.digest`` per signature (itsdangerous builds an
    HMAC object and re-derives its key on every call). itsdangerous signs with the *last*
    key of a list; our contract signs with the first.
    """

    def __init__(self, secrets_: list[bytes], salt: bytes = b"sessionware.key") -> None:
        self._keys = [_Hmac(hmac.new(secret, salt, hashlib.sha256).digest()) for secret in secrets_]

    def sign(self, value: str) -> str:
        raw = value.encode("utf-8")
        return (raw + b"." + self._keys[0].signature(raw)).decode()

    def unsign(self, signed: str) -> tuple[str, bool] | None:
        """``(value, signed_with_old_key)``, or ``None`` when no secret of the list signed it.

        Only the exact string ``sign`` makes is accepted: the signature is recomputed and
        compared in constant time, so no other spelling of it (characters or padding that
        a lenient base64 decoder skips, unused low bits of the last character) verifies.
        """
        try:
            raw = signed.encode("ascii")
        except UnicodeEncodeError:
            return None
        value, sep, signature = raw.rpartition(b".")
        if not sep:
            return None
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(key.signature(value), signature):
                return value.decode("ascii"), index > 0
        return None


_BLOCK = 64  # SHA-256's block size in bytes
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


class _Hmac:
    """HMAC-SHA256 under one key (RFC 2104), with the two padded key blocks hashed once.

    ``hmac.digest`` sets up a new keyed context on every call, which costs more than
    hashing a cookie; copying the two prepared SHA-256 states gives the same digest in
    well under half the time (``tests/security/test_signed_keys.py`` checks it against
    ``hmac.digest``).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(block.translate(_INNER_PAD))
        self._outer = hashlib.sha256(block.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def signature(self, message: bytes) -> bytes:
        """The digest of ``message`` as the cookie spells it: base64url, unpadded."""
        return base64.urlsafe_b64encode(self.digest(message)).rstrip(b"=")


def info_id(key: str) -> str:
    """The public handle of a session (``SessionInfo.id``): a one-way hash of its key.

    Stable across processes without any configuration, so stores and the command line
    can match it; it names a session for revocation but cannot be turned into its key.
    """
    digest = hashlib.sha256(b"sessionware.info:" + key.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def key_fingerprint(key: str, secret: bytes = b"sessionware.log") -> str:
    """A short keyed hash that names a session in logs without revealing its key."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:12]
