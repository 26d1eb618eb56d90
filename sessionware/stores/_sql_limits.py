"""How much session data each database takes in one row, and how it refuses more.

A value a database refuses for its size is a programming error (``SessionTooLargeError``,
500), not an outage (``SessionStoreError``, 503). ``SQLStore`` checks the packed data
against ``max_data_bytes`` before writing and, should the database refuse anyway (its
limit was lowered, or the attribute overridden), recognises the refusal here.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

import sqlalchemy as sa

# Room for the statement text and the other values of a row.
_MARGIN = 64 * 1024
# PostgreSQL keeps at most 1 GiB in a field and in one protocol message; ``bytea`` may
# travel as hex text, two characters a byte.
_POSTGRES_LIMIT = (2**30 - _MARGIN) // 2
# Error codes of MariaDB/MySQL: "Got a packet bigger than 'max_allowed_packet'", and a
# result larger than it.
_MYSQL_TOO_BIG = frozenset({1153, 1301})
# "Server has gone away" and "Lost connection": what the client sees when the server
# hangs up on an oversized packet before answering it, but also in any outage.
_MYSQL_HUNG_UP = frozenset({2006, 2013})
# asyncmy's word for the same: the server's refusal arrived while it still sent the packet.
_LOST_SYNC = "Packet sequence number wrong"

Refusal = Literal["too large", "maybe too large"] | None


def known_limit(dialect: str) -> int | None:
    """The limit known without connecting (``None``: read at first use, or none)."""
    return _POSTGRES_LIMIT if dialect == "postgresql" else None


def read_limit(conn: sa.Connection) -> int | None:
    """The most bytes of packed session data this database accepts in one write."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        dbapi_connection = conn.connection.dbapi_connection
        getlimit = getattr(dbapi_connection, "getlimit", None)
        if getlimit is None:  # pragma: no cover - another SQLite driver
            return None
        # The length limit covers a whole row, the key and timestamps included.
        return max(0, int(getlimit(sqlite3.SQLITE_LIMIT_LENGTH)) - _MARGIN)
    if dialect in ("mysql", "mariadb"):
        packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
        # The driver sends values inside the statement text, escaped: quotes, backslashes
        # and NUL bytes take two bytes each, and a JSON session is full of quotes.
        return max(0, (packet - _MARGIN) // 2)
    return known_limit(dialect)


def refusal(exc: Exception) -> Refusal:
    """Whether the database refused a write for its size (``exc``: SQLAlchemy's error,
    or the async driver's own).

    ``"maybe too large"``: the connection was lost, which an oversized write to
    MariaDB/MySQL causes, and so does an outage; the caller compares the size with the
    server's limit.
    """
    cause = getattr(exc, "orig", None) if isinstance(exc, sa.exc.SQLAlchemyError) else exc
    if cause is None:
        return None
    if isinstance(cause, sqlite3.DataError):
        too_big = getattr(cause, "sqlite_errorname", "") == "SQLITE_TOOBIG"
        return "too large" if too_big or "too big" in str(cause) else None
    if getattr(cause, "sqlstate", None) == "54000":  # PostgreSQL program_limit_exceeded
        return "too large"
    if "invalid memory alloc request size" in str(cause):  # PostgreSQL, over 1 GiB
        return "too large"
    code = cause.args[0] if cause.args and isinstance(cause.args[0], int) else None
    if code in _MYSQL_TOO_BIG:
        return "too large"
    if code in _MYSQL_HUNG_UP or _LOST_SYNC in str(cause):
        return "maybe too large"
    return None
