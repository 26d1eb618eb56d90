"""The SQL store's table, and bringing an existing one up to date at first use.

The schema is documented on ``SQLStore``. Tables made by earlier versions lack the
columns of stale keys, renewal and the per-user index; ``prepare_table`` adds them (with
values that make every old row a live record) and the user index, without touching data.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# What a row holds, in its ``kind`` column.
RECORD = "record"  # a live session (or an expired one, until clear_expired)
STALE = "stale"  # an ended key: flushed, rotated away or revoked
MOVED = "moved"  # a renewed key, pointing at its successor in ``target``

USER_ID_BYTES = 255  # the longest user id the index column holds, UTF-8 encoded

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")
# Columns added after the first version; an older table gets them at first use.
_ADDED_COLUMNS = ("kind", "target", "key_at", "updated_at", "user_id")
_MYSQL = ("mysql", "mariadb")


def check_table_name(name: object) -> str:
    """A plain identifier short enough for every database's index name limit."""
    if not isinstance(name, str):
        raise TypeError(f"table must be a str, not {type(name).__name__}")
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            f"table name {name!r} must be a plain identifier of at most 48 characters "
            "(letters, digits, underscores)"
        )
    return name


class UserId(sa.types.TypeDecorator[str]):
    """A user id compared byte for byte everywhere.

    MySQL's text collations ignore case (and trailing spaces), so ``"Ada"`` would list
    the sessions of ``"ada "``; there the column is ``VARBINARY`` and the text is encoded.
    """

    impl = sa.String(USER_ID_BYTES)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(USER_ID_BYTES))
        return dialect.type_descriptor(sa.String(USER_ID_BYTES))

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name in _MYSQL:
            return value.encode("utf-8", "surrogatepass")
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8", "surrogatepass")
        return None if value is None else str(value)


def _key_type() -> sa.types.TypeEngine[str]:
    # MySQL's default collations ignore case; session keys must not.
    return sa.String(64).with_variant(
        mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), *_MYSQL
    )


def session_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The schema documented on ``SQLStore``."""
    data_type = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)
    return sa.Table(
        name,
        metadata,
        sa.Column("session_key", _key_type(), primary_key=True),
        sa.Column("data", data_type, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("expiry", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False, server_default=RECORD),
        sa.Column("target", _key_type(), nullable=True),
        sa.Column("key_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=True),
        sa.Column("user_id", UserId(), nullable=True),
        sa.Index(f"ix_{name}_expires_at", "expires_at"),
        sa.Index(f"ix_{name}_user_id", "user_id"),
        mysql_engine="InnoDB",
    )


def prepare_table(conn: sa.Connection, table: sa.Table) -> None:
    """Create the table, or add what an older version's table lacks.

    Safe to run from several processes at once only with a retry: two of them may both
    find a column missing, and the slower one's ``ALTER TABLE`` then fails; looking
    again finds the table complete (see ``SQLStore``).
    """
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name):
        table.create(conn)
        return
    present = {column["name"] for column in inspector.get_columns(table.name)}
    quoted = conn.dialect.identifier_preparer.format_table(table)
    for name in _ADDED_COLUMNS:
        if name not in present:
            ddl = sa.schema.CreateColumn(table.c[name]).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {ddl}")
    indexed = {index["name"] for index in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexed:
            index.create(conn)
