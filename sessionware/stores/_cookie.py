"""``CookieStore``: the whole session in the cookie, signed or encrypted; none on the server."""

from __future__ import annotations

from typing import ClassVar

from .._formats import CookieFormat, EncryptedPayload, SignedPayload, require_cryptography
from .._records import Change, Loaded, Record
from .._serializers import FieldCodec
from .._store import Finding, Progress, SessionStore, Written


class CookieStore(SessionStore):
    """Client-side sessions: the cookie carries the data, signed with the middleware's
    ``secret_key`` (itsdangerous-style HMAC), or with ``encrypt=True`` also hidden from
    the client (Fernet: AES-128-CBC + HMAC-SHA256; ``pip install 'sessionware[crypto]'``).

    What it cannot do, because the server keeps nothing:

    - **Revoke.** A copied cookie stays valid until it expires, also after logout or a
      login rotation; there are no stale keys, no per-user index (``user_key`` is
      refused) and no renewal pointers. Expiry is inside the protected payload, so an
      old cookie is refused once its time is up.
    - **Merge.** Concurrent requests each send a whole new cookie; the browser keeps the
      last one it receives.

    Use a server-side store where logout must be final (SECURITY.md). Every store
    operation here succeeds without doing anything: the lifecycle writes the cookie
    (``clear_expired`` and ``count_expired`` find nothing: browsers drop expired cookies).
    """

    server_side: ClassVar[bool] = False
    supports_users: ClassVar[bool] = False

    def __init__(self, encrypt: bool = False) -> None:
        if not isinstance(encrypt, bool):
            raise TypeError(f"encrypt must be True or False, not {encrypt!r}")
        self.encrypt = encrypt
        if encrypt:
            require_cryptography()

    def cookie_format(self, secrets: list[bytes] | None, codec: FieldCodec) -> CookieFormat:
        if secrets is None:
            raise ValueError(
                "CookieStore needs secret_key to sign its cookies "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.encrypt:
            return EncryptedPayload(secrets, codec)
        return SignedPayload(secrets, codec)

    def load(self, key: str, now: float) -> Loaded:
        return None  # the session comes from the cookie itself

    def insert(self, key: str, record: Record) -> bool:
        return True

    def update(self, key: str, change: Change, now: float) -> Written:
        return True

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        return True

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return True

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return True

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        if progress is not None:
            progress(0)
        return 0

    def count_expired(self, now: float | None = None) -> int:
        return 0

    def check(self) -> list[Finding]:
        kind = "encrypted" if self.encrypt else "signed"
        return [("store", f"cookie: each session lives in its browser's {kind} cookie")]

    async def aload(self, key: str, now: float) -> Loaded:
        return None

    async def ainsert(self, key: str, record: Record) -> bool:
        return True

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        return True

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        return True

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return True

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return True

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        return self.clear_expired(now, progress)

    async def acount_expired(self, now: float | None = None) -> int:
        return 0

    async def acheck(self) -> list[Finding]:
        return self.check()

    async def aclose(self) -> None:
        """Nothing to release."""
