"""FileStore's directory at its edges: a directory never written to, ended keys in a census,
a write the disk refuses, and a sweep long enough to report its progress on the way."""

from __future__ import annotations

import resource
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sessionware._errors import SessionStoreError
from sessionware._keys import new_key
from sessionware._records import Record, Stale
from sessionware.stores import FileStore
from sessionware.stores._file_directory import SWEEP_BATCH, TEMP_PREFIX
from sessionware.testing.conformance import field, live, record


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def store(directory: Path) -> Iterator[FileStore]:
    made = FileStore(directory)
    yield made
    made.close()


def test_a_directory_never_written_to_counts_nothing_and_is_not_made(
    store: FileStore, directory: Path
) -> None:
    assert store.count_expired(time.time() + 3600) == 0
    assert store.clear_expired(time.time() + 3600) == 0
    assert not directory.exists()


def test_an_ended_key_is_neither_a_live_session_nor_one_to_remove(store: FileStore) -> None:
    now, kept, ended = time.time(), new_key(), new_key()
    assert store.insert(kept, record(now=now))
    assert store.insert(ended, record(now=now))
    assert store.delete(ended, now, now + 600) is True  # a Stale marker for ten minutes
    assert isinstance(store.load(ended, now), Stale)
    findings = dict(store.check())
    assert findings["sessions"] == "1 live"
    assert findings["expired"] == "0 to remove (clear-expired)"
    assert store.count_expired(now + 60) == 0  # the marker still lives
    assert store.count_expired(now + 601) == 1  # the marker is dead, the session too
    assert store.count_expired(now + 7200) == 2


@contextmanager
def small_files() -> Iterator[None]:
    """Files of this process may not grow past 200 bytes (a full disk, a quota): a write
    beyond fails with EFBIG instead of the signal that would end the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_write_the_disk_refuses_is_a_store_error_and_leaves_no_temp_file(
    store: FileStore, directory: Path
) -> None:
    now, key, small = time.time(), new_key(), new_key()
    assert store.insert(small, record({"a": field("a", "1")}, now=now))  # the directory exists
    big = record({"big": field("big", "x" * 1000)}, now=now)
    with pytest.raises(SessionStoreError, match="failed in insert") as failed, small_files():
        store.insert(key, big)
    assert "File too large" in str(failed.value)
    assert not [p for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert store.load(key, now) is None
    assert live(store.load(small, now)).fields == {"a": field("a", "1")}


def test_a_long_sweep_reports_its_progress_on_the_way(store: FileStore) -> None:
    now = time.time()
    dead = [new_key() for _ in range(SWEEP_BATCH + 20)]
    for key in dead:
        assert store.insert(key, record(now=now - 100, ttl=10))
    alive = new_key()
    assert store.insert(alive, record(now=now))
    heard: list[int] = []
    assert store.clear_expired(now, progress=heard.append) == len(dead)
    assert len(heard) == 2  # once after SWEEP_BATCH entries, once at the end
    assert 0 < heard[0] <= SWEEP_BATCH
    assert heard[1] == len(dead)
    assert isinstance(store.load(alive, now), Record)
