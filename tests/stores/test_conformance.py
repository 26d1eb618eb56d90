"""Every built-in store held to the public conformance kit, sync and async (API.md §5, §6, §8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware.stores.base import SessionStore
from sessionware.testing.conformance import StoreConformance
from tests.stores.factories import make_store


class _Kind(StoreConformance):
    kind = ""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SessionStore]:
        with make_store(self.kind, tmp_path) as store:
            yield store


class TestMemory(_Kind):
    kind = "memory"


class TestFile(_Kind):
    kind = "file"


class TestSQLite(_Kind):
    kind = "sqlite"


@pytest.mark.postgres
class TestPostgres(_Kind):
    kind = "postgres"


@pytest.mark.mysql
class TestMySQL(_Kind):
    kind = "mysql"


@pytest.mark.redis
class TestRedis(_Kind):
    kind = "redis"


@pytest.mark.redis
class TestCached(_Kind):
    kind = "cached"


@pytest.mark.memcached
class TestMemcached(_Kind):
    kind = "memcached"
