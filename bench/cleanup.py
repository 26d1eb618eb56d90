"""Remove everything a run left behind: its Redis keys (db 12), PostgreSQL tables, scratch dir."""

from __future__ import annotations

import contextlib

import redis
import sqlalchemy as sa

from .config import POSTGRES_URL, REDIS_URL, Run


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
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with contextlib.suppress(sa.exc.OperationalError), engine.begin() as conn:
            tables = conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE tablename LIKE :pattern"),
                {"pattern": f"swbench_{run.id}_%"},
            ).scalars()
            for table in list(tables):
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
                removed["tables"] += 1
    finally:
        engine.dispose()
    run.remove_scratch()
    return removed
