"""What ``SQLStore.check`` reports: the database it reaches and the state of its table,
found by looking only. Nothing is created or upgraded here (first use does that), and a
SQLite file that does not exist is not opened, since opening it would create it.
"""

from __future__ import annotations

import os
import sqlite3
import time

import sqlalchemy as sa

from .._errors import map_store_errors
from .._store import Finding
from ._sql_schema import RECORD


def check_table(engine: sa.Engine, table: sa.Table) -> list[Finding]:
    """The findings for ``table`` on ``engine``; database errors propagate (the caller
    maps them to ``SessionStoreError``)."""
    url = engine.url
    missing_file = _missing_sqlite_file(url)
    if missing_file is not None:
        return [
            ("database", f"SQLite {missing_file}: missing (made at first use)"),
            ("table", f"{table.name}: missing"),
        ]
    with engine.connect() as conn:
        findings = [("database", _where(conn))]
        inspector = sa.inspect(conn)
        if not inspector.has_table(table.name):
            return [*findings, ("table", f"{table.name}: missing (created at first use)")]
        present = {column["name"] for column in inspector.get_columns(table.name)}
        indexed = {str(index["name"]) for index in inspector.get_indexes(table.name)}
        findings.append(("table", f"{table.name}: {_schema(table, present, indexed)}"))
        findings.extend(_counts(conn, table.name, present))
    return findings


def missing_table(engine: sa.Engine, table: sa.Table) -> str | None:
    """Why there is no session table at this location (no SQLite file, no table), or
    ``None`` when there is one; looks only. ``SessionStoreError`` when the database
    cannot be reached."""
    missing_file = _missing_sqlite_file(engine.url)
    if missing_file is not None:
        return f"no SQLite database at {missing_file}"
    label = f"SQL ({engine.dialect.name})"
    with map_store_errors(label, "check", sa.exc.SQLAlchemyError), engine.connect() as conn:
        if sa.inspect(conn).has_table(table.name):
            return None
        return f"no table {table.name!r} in {_where(conn)}"


def _missing_sqlite_file(url: sa.URL) -> str | None:
    """The absolute path of a SQLite database file that does not exist, else ``None``."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None  # in memory, or a URI whose meaning SQLite decides
    path = os.path.abspath(database)
    return None if os.path.exists(path) else path


def _where(conn: sa.Connection) -> str:
    """The server and database, as ``postgresql 16.4 at app@db:5432/app`` (no password)."""
    url, dialect = conn.engine.url, conn.dialect
    if dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}, file {os.path.abspath(url.database or '')}"
    name = "MariaDB" if getattr(dialect, "is_mariadb", False) else dialect.name
    version = ".".join(str(part) for part in dialect.server_version_info or ())
    user = f"{url.username}@" if url.username else ""
    port = f":{url.port}" if url.port else ""
    return f"{name} {version} at {user}{url.host or 'localhost'}{port}/{url.database or ''}"


def _schema(table: sa.Table, present: set[str], indexed: set[str]) -> str:
    lacking = [column.name for column in table.columns if column.name not in present]
    unindexed = [str(index.name) for index in table.indexes if index.name not in indexed]
    if not lacking and not unindexed:
        return "present, schema current"
    parts = []
    if lacking:
        parts.append("columns " + ", ".join(lacking))
    if unindexed:
        parts.append("indexes " + ", ".join(unindexed))
    return f"present, from an earlier version: lacks {' and '.join(parts)} (added at first use)"


def _counts(conn: sa.Connection, name: str, present: set[str]) -> list[Finding]:
    """Live sessions and rows waiting for a purge; one indexed count each."""
    columns: list[sa.ColumnClause[object]] = [sa.column("expires_at")]
    if "kind" in present:
        columns.append(sa.column("kind"))
    rows = sa.table(name, *columns)
    now = time.time()
    live = rows.c.expires_at > now
    if "kind" in present:  # before that column, every row was a session
        live = sa.and_(live, rows.c.kind == RECORD)
    sessions = conn.execute(sa.select(sa.func.count()).select_from(rows).where(live)).scalar()
    expired = conn.execute(
        sa.select(sa.func.count()).select_from(rows).where(rows.c.expires_at <= now)
    ).scalar()
    return [
        ("sessions", f"{sessions or 0} live"),
        ("expired", f"{expired or 0} to remove (clear-expired)"),
    ]
