"""Remove everything a run left behind: its Redis keys (db 12), PostgreSQL tables, scratch dir."""

from __future__ import annotations

import contextlib

import redis
import sqlalchemy as sa

from .config import MYSQL_URL, POSTGRES_URL, REDIS_URL, Run


def remove_run(run: Run) -> dict[str, int]:
    """Only names carrying this run's id are touched; never FLUSHDB."""
    removed = {"redis_keys": 0, "tables": 0}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        for name in client.scan_iter(match=f"swbench:{run.id}:*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                removed["redis_keys"] += int(client.unlink(*batch))
                batch = []
        if batch:
            removed["redis_keys"] += int(client.unlink(*batch))
    finally:
        client.close()
    removed["tables"] += _drop_tables(POSTGRES_URL, "postgresql+psycopg", _PG_TABLES, run)
    removed["tables"] += _drop_tables(MYSQL_URL, "mysql+pymysql", _MYSQL_TABLES, run)
    run.remove_scratch()
    return removed


_PG_TABLES = "SELECT tablename FROM pg_tables WHERE tablename LIKE :pattern"
_MYSQL_TABLES = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = DATABASE() AND table_name LIKE :pattern"
)


def _drop_tables(url: str, driver: str, listing: str, run: Run) -> int:
    """Drop this run's tables on one server; 0 when it does not answer."""
    engine = sa.create_engine(driver + url[url.index(":") :])
    dropped = 0
    try:
        with contextlib.suppress(sa.exc.OperationalError), engine.begin() as conn:
            tables = conn.execute(sa.text(listing), {"pattern": f"swbench\\_{run.id}\\_%"})
            quote = conn.dialect.identifier_preparer.quote
            for table in list(tables.scalars()):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(table)}"))
                dropped += 1
    finally:
        engine.dispose()
    return dropped
