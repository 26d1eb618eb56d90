"""FileStore specifics: file names, atomic writes, corrupt files, processes, clear_expired."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sessionware._errors import SessionStoreError
from sessionware._keys import key_fingerprint, new_key
from sessionware._records import Change, Record, pack_record
from sessionware._serializers import JSONSerializer
from sessionware.stores import FileStore

NOW = time.time()
HOUR = 3600.0
SESSION_FILE = re.compile(r"[0-9a-f]{64}\.session")
LOCK_FILE = re.compile(r"\.lock-\d\d")


def record(data: dict[str, Any], expires_in: float = HOUR) -> Record:
    return Record(data, created_at=NOW, expires_at=NOW + expires_in)


def change(**kwargs: Any) -> Change:
    kwargs.setdefault("expires_at", NOW + HOUR)
    return Change(**kwargs)


def session_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if SESSION_FILE.fullmatch(p.name))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def store(directory: Path) -> FileStore:
    return FileStore(directory)


# -- the directory and file names -------------------------------------------------------


def test_construction_does_not_touch_the_disk_and_first_write_creates_it(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    store = FileStore(directory)
    assert not directory.exists()
    assert store.load(new_key(), NOW) is None
    assert store.clear_expired(NOW) == 0
    assert not directory.exists()
    assert store.create(new_key(), record({"a": 1}))
    assert len(session_files(directory)) == 1


def test_file_names_are_hashes_that_do_not_reveal_the_key(
    store: FileStore, directory: Path
) -> None:
    key = new_key()
    store.create(key, record({"a": 1}))
    store.update(key, change(set={"b": 2}), NOW)
    names = [p.name for p in directory.iterdir()]
    assert all(SESSION_FILE.fullmatch(n) or LOCK_FILE.fullmatch(n) for n in names), names
    assert not any(key in n for n in names)
    (path,) = session_files(directory)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"SW1\n")


HOSTILE_KEYS = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "../" + "a" * 40,
    "a" * 42 + "/",
    "a" * 42 + "\x00",
    "a" * 44,
    "",
    ".",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_keys_of_the_wrong_shape_are_refused_without_touching_files(
    key: str, tmp_path: Path, store: FileStore, directory: Path
) -> None:
    assert store.load(key, NOW) is None
    assert store.create(key, record({"evil": True})) is False
    assert store.update(key, change(set={"evil": True}), NOW) is False
    assert store.delete(key) is False
    assert [p.name for p in tmp_path.iterdir()] == []  # not even the directory was made
    assert not directory.exists()


# -- atomic writes -----------------------------------------------------------------------


def test_readers_never_see_a_partial_file(store: FileStore, directory: Path) -> None:
    key = new_key()
    store.create(key, record({"v": 0, "pad": "x" * 200_000}))
    stop = threading.Event()
    seen: list[int] = []
    failures: list[str] = []

    def read() -> None:
        while not stop.is_set():
            loaded = store.load(key, NOW)
            if loaded is None or len(loaded.data["pad"]) != 200_000:
                failures.append("partial or missing record")
                return
            seen.append(loaded.data["v"])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for v in range(1, 60):
            assert store.update(key, change(set={"v": v}), NOW)
    finally:
        stop.set()
        reader.join()
    assert not failures
    assert seen == sorted(seen)  # each load sees a whole record, old or new
    names = [p.name for p in directory.iterdir()]
    assert not [n for n in names if n.startswith(".tmp-")], names


# -- corrupt files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'SW1\n{"c": 1', id="truncated-meta"),
        pytest.param(None, id="truncated-data"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", id="foreign"),
        pytest.param(b'SW1\n{"c":1,"e":9e99}\n[1,2]', id="data-not-a-mapping"),
        pytest.param(b"SW1\n" + b"[" * 100_000 + b"\n{}", id="absurdly-nested"),
    ],
)
def test_a_corrupt_file_loads_as_absent_with_one_warning_without_the_key(
    content: bytes | None, store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    store.create(key, record({"user": "ada", "cart": [1, 2, 3]}))
    (path,) = session_files(directory)
    if content is None:
        content = path.read_bytes()[:-5]
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.load(key, NOW) is None
    warnings = [r for r in caplog.records if r.name == "sessionware"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert key not in message
    assert key not in caplog.text
    assert key_fingerprint(key) in message


def test_a_corrupt_record_is_not_updated_but_may_be_replaced(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    store.create(key, record({"a": 1}))
    (path,) = session_files(directory)
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert not store.update(key, change(set={"b": 2}), NOW)
        assert path.read_bytes() == b"garbage"
        assert store.create(key, record({"fresh": 1}))
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"fresh": 1}


# -- several processes -------------------------------------------------------------------


def _update_many(directory: str, key: str, prefix: str, start: Any) -> None:
    """Runs in a spawned process: 50 updates of distinct keys, started with the other one."""
    store = FileStore(directory)
    start.wait(timeout=60)
    for i in range(50):
        if not store.update(key, change(set={f"{prefix}{i}": i}), NOW):
            raise SystemExit(f"update {prefix}{i} failed")


def test_processes_updating_distinct_keys_all_keep_their_changes(
    store: FileStore, directory: Path
) -> None:
    key = new_key()
    store.create(key, record({"base": 0}))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=_update_many, args=(str(directory), key, prefix, start))
        for prefix in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    loaded = store.load(key, NOW)
    assert loaded is not None
    expected = {"base": 0} | {f"{p}{i}": i for p in ("a", "b") for i in range(50)}
    assert loaded.data == expected


# -- clear_expired -----------------------------------------------------------------------


def test_clear_expired_removes_dead_and_corrupt_sessions_and_old_temp_files(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = [new_key() for _ in range(3)]
    dead = [new_key() for _ in range(2)]
    for key in live:
        store.create(key, record({"live": True}))
    for key in dead:
        store.create(key, record({"live": False}, expires_in=60))
    corrupt = directory / ("0" * 64 + ".session")
    corrupt.write_bytes(b"not a record")
    old_temp, new_temp = directory / ".tmp-old", directory / ".tmp-new"
    old_temp.write_bytes(b"half")
    new_temp.write_bytes(b"being written")
    two_hours_ago = time.time() - 2 * HOUR
    os.utime(old_temp, (two_hours_ago, two_hours_ago))
    foreign = directory / "notes.txt"
    foreign.write_text("not ours")

    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.clear_expired(NOW + 61) == 3  # two expired, one corrupt
    assert len(session_files(directory)) == 3
    assert [k for k in live + dead if store.load(k, NOW) is not None] == live
    assert not old_temp.exists()
    assert new_temp.exists()
    assert foreign.exists()
    assert store.clear_expired(NOW + 61) == 0


# -- real OS failures ---------------------------------------------------------------------


def test_os_failures_raise_session_store_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "sessions"
    not_a_directory.write_text("a regular file where the directory should be")
    store = FileStore(not_a_directory)
    key = new_key()
    operations: list[Callable[[], object]] = [
        lambda: store.load(key, NOW),
        lambda: store.create(key, record({"a": 1})),
        lambda: store.update(key, change(set={"a": 1}), NOW),
        lambda: store.delete(key),
        lambda: store.clear_expired(NOW),
    ]
    for operation in operations:
        with pytest.raises(SessionStoreError) as caught:
            operation()
        assert isinstance(caught.value.__cause__, OSError)
        assert key not in str(caught.value)


@pytest.mark.anyio
async def test_async_twins_share_the_files(store: FileStore, directory: Path) -> None:
    key = new_key()
    assert await store.acreate(key, record({"a": 1}))
    assert store.update(key, change(set={"b": 2}), NOW)
    loaded = await store.aload(key, NOW)
    assert loaded is not None
    assert loaded.data == {"a": 1, "b": 2}
    assert await store.adelete(key)
    assert session_files(directory) == []


def test_a_custom_serializer_shapes_the_file(directory: Path) -> None:
    store = FileStore(directory, serializer=JSONSerializer())
    key = new_key()
    rec = record({"a": 1})
    store.create(key, rec)
    (path,) = session_files(directory)
    assert path.read_bytes() == pack_record(rec, JSONSerializer())
