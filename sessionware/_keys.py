"""Session keys: generation, validation, and the optional HMAC signature in the cookie."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Any

from itsdangerous import Signer

KEY_BYTES = 32  # 256 bits of entropy from ``secrets``
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")

SecretKey = str | bytes


def new_key() -> str:
    """A fresh, unguessable, URL-safe session key."""
    return secrets.token_urlsafe(KEY_BYTES)


def is_valid_key(value: str) -> bool:
    """Whether ``value`` has the shape of a key we generate (checked before any store call)."""
    return _KEY_PATTERN.fullmatch(value) is not None


def secret_list(secret_key: SecretKey | Sequence[SecretKey]) -> list[bytes]:
    """Normalise the ``secret_key`` option to a non-empty list of bytes, first = signing key."""
    keys = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    if not keys:
        raise ValueError("secret_key must not be an empty list")
    result = []
    for key in keys:
        if not isinstance(key, str | bytes) or not key:
            raise ValueError("each secret_key must be a non-empty str or bytes")
        result.append(key.encode() if isinstance(key, str) else key)
    return result


class KeySigner:
    """Signs values with the first secret and accepts any secret of the list.

    itsdangerous signs with the *last* key of a list; our contract signs with the first,
    so the list is reversed for it.
    """

    def __init__(self, secrets_: list[bytes], salt: bytes = b"sessionware.key") -> None:
        # Keys are derived once here (HMAC of the salt), not by itsdangerous on every call.
        derived = [hmac.new(secret, salt, hashlib.sha256).digest() for secret in secrets_]
        options: dict[str, Any] = {"key_derivation": "none", "digest_method": hashlib.sha256}
        self._signers = [Signer(secret, **options) for secret in derived]

    def sign(self, value: str) -> str:
        return self._signers[0].sign(value).decode()

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
        value, sep, _ = raw.rpartition(b".")
        if not sep:
            return None
        for index, signer in enumerate(self._signers):
            if hmac.compare_digest(signer.sign(value), raw):
                return value.decode("ascii"), index > 0
        return None


def key_fingerprint(key: str, secret: bytes = b"sessionware.log") -> str:
    """A short keyed hash that names a session in logs without revealing its key."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:12]
