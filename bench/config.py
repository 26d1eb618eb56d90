"""Where the bench's servers are, and the unique names one run uses (and removes afterwards)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

REDIS_URL = os.environ.get("SWBENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
POSTGRES_URL = os.environ.get("SWBENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("SWBENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
MEMCACHED_URL = os.environ.get("SWBENCH_MEMCACHED_URL", "memcached://127.0.0.1:11211")
SECRET = "bench-secret-key-0123456789abcdef"

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RAW_DIR = RESULTS_DIR / "raw"

_RUN_VAR = "SWBENCH_RUN"
_DIR_VAR = "SWBENCH_DIR"


@dataclass(frozen=True)
class Run:
    """One bench run: a short id in every Redis prefix and SQL table, and a scratch dir."""

    id: str
    scratch: Path

    @staticmethod
    def new() -> Run:
        run_id = secrets.token_hex(4)
        return Run(run_id, Path(tempfile.mkdtemp(prefix=f"swbench-{run_id}-")))

    @staticmethod
    def from_env() -> Run:
        """The run a server subprocess belongs to (set by ``env()`` in the parent)."""
        return Run(os.environ[_RUN_VAR], Path(os.environ[_DIR_VAR]))

    def env(self) -> dict[str, str]:
        return {**os.environ, _RUN_VAR: self.id, _DIR_VAR: str(self.scratch)}

    def redis_prefix(self, app: str) -> str:
        return f"swbench:{self.id}:{app}:"

    def sql_table(self, app: str) -> str:
        return f"swbench_{self.id}_{app.replace('-', '_')}"[:48]

    def path(self, name: str) -> Path:
        return self.scratch / name

    def remove_scratch(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
