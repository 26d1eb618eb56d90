"""FileStore specifics: files and their format, locks across processes, the index, the purge."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sessionware._errors import SessionStoreError, SessionTooLargeError
from sessionware._expiry import Expiry
from sessionware._keys import info_id, key_fingerprint, new_key
from sessionware._records import Change, Moved, Record, Stale
from sessionware.stores import FileStore
from sessionware.stores._file_format import file_name
from sessionware.stores._file_index import UserIndex
from sessionware.stores._file_locks import stripe_of

NOW = time.time()
HOUR = 3600.0
SESSION_FILE = re.compile(r"[0-9a-f]{64}\.session")
LOCK_FILE = re.compile(r"\.lock-\d\d")
HANG_GUARD = 60.0  # fails a test that would otherwise hang; not a speed assertion


def field(name: str, value: Any) -> bytes:
    return json.dumps({name: value}, separators=(",", ":")).encode()


def fields(**values: Any) -> dict[str, bytes]:
    return {name: field(name, value) for name, value in values.items()}


def record(
    data: dict[str, bytes] | None = None, expires_in: float = HOUR, user: str | None = None
) -> Record:
    return Record(data or {}, NOW, NOW + expires_in, key_at=NOW, updated_at=NOW, user=user)


def change(**kwargs: Any) -> Change:
    kwargs.setdefault("expires_at", NOW + HOUR)
    return Change(**kwargs)


def live(loaded: object) -> Record:
    assert isinstance(loaded, Record), loaded
    return loaded


def session_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if SESSION_FILE.fullmatch(p.name))


def header(path: Path) -> dict[str, Any]:
    """A file's header, read as any tool could: no serializer, no sessionware."""
    magic, line, _ = path.read_bytes().split(b"\n", 2)
    assert magic == b"SW2"
    meta: dict[str, Any] = json.loads(line)
    return meta


def old_format(meta: dict[str, Any], body: bytes) -> bytes:
    """A file as the previous FileStore wrote it (a serializer's bytes of the whole dict)."""
    return b"SW1\n" + json.dumps(meta).encode() + b"\n" + body


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def store(directory: Path) -> FileStore:
    return FileStore(directory)


# -- the directory, file names and the format -----------------------------------------------


def test_construction_does_not_touch_the_disk_and_first_write_creates_it(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    store = FileStore(directory)
    assert not directory.exists()
    assert store.load(new_key(), NOW) is None
    assert store.clear_expired(NOW) == 0
    assert store.user_sessions("u", NOW) == []
    assert not directory.exists()
    assert store.insert(new_key(), record(fields(a=1)))
    assert directory.stat().st_mode & 0o777 == 0o700
    assert len(session_files(directory)) == 1


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan")])
def test_a_timeout_must_be_a_positive_number(timeout: float, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        FileStore(tmp_path, timeout=timeout)


def test_a_timeout_must_be_a_number(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="timeout"):
        FileStore(tmp_path, timeout="5")  # type: ignore[arg-type]


def test_file_names_are_hashes_that_do_not_reveal_the_key(
    store: FileStore, directory: Path
) -> None:
    key = new_key()
    store.insert(key, record(fields(a=1)))
    store.update(key, change(set=fields(b=2)), NOW)
    names = [p.name for p in directory.iterdir()]
    assert all(SESSION_FILE.fullmatch(n) or LOCK_FILE.fullmatch(n) for n in names), names
    assert not any(key in n for n in names)
    (path,) = session_files(directory)
    assert path.name == file_name(key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert key.encode() not in path.read_bytes()


def test_the_header_holds_the_meta_readable_without_a_serializer(
    store: FileStore, directory: Path
) -> None:
    key = new_key()
    data = {"a": field("a", 1), "blob": b"\x00\xffnot json"}
    rec = Record(data, NOW - 5, NOW + HOUR, Expiry("age", 60), NOW - 1, NOW, "u7")
    assert store.insert(key, rec)
    (path,) = session_files(directory)
    assert header(path) == {
        "kind": "record",
        "created_at": NOW - 5,
        "expires_at": NOW + HOUR,
        "expiry": ["age", 60],
        "key_at": NOW - 1,
        "updated_at": NOW,
        "user": "u7",
        "id": info_id(key),
    }
    assert store.delete(key, NOW, NOW + 60) is True
    assert header(path) == {"kind": "stale", "until": NOW + 60}


def test_a_pointer_holds_its_target_sealed_with_the_old_key(
    store: FileStore, directory: Path
) -> None:
    old, new = new_key(), new_key()
    assert store.insert(old, record(fields(a=1)))
    assert store.renew(old, new, NOW, NOW + 30) is True
    path = directory / file_name(old)
    meta = header(path)
    assert meta["kind"] == "moved"
    assert meta["until"] == NOW + 30
    assert new not in path.read_text()  # a backup of the directory gives no usable key
    assert store.load(old, NOW) == Moved(new, NOW + 30)
    assert live(store.load(new, NOW)).fields == fields(a=1)


def test_an_absurdly_long_user_id_is_refused_before_writing(
    store: FileStore, directory: Path
) -> None:
    with pytest.raises(SessionTooLargeError):
        store.insert(new_key(), record(user="u" * 100_000))
    assert not directory.exists()


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
    good = new_key()
    assert store.load(key, NOW) is None
    assert store.insert(key, record(fields(evil=True))) is False
    assert store.update(key, change(set=fields(evil=True)), NOW) is False
    assert store.delete(key, NOW, NOW + 60) is False
    assert store.rotate(key, good, record(), NOW, NOW + 60) is False
    assert store.rotate(good, key, record(), NOW, NOW + 60) is False
    assert store.renew(good, key, NOW, NOW + 60) is False
    assert [p.name for p in tmp_path.iterdir()] == []  # not even the directory was made
    assert not directory.exists()


# -- atomic writes -----------------------------------------------------------------------------


def test_readers_never_see_a_partial_file(store: FileStore, directory: Path) -> None:
    key = new_key()
    pad = field("pad", "x" * 200_000)
    store.insert(key, record({"v": field("v", 0), "pad": pad}))
    stop = threading.Event()
    seen: list[int] = []
    failures: list[str] = []

    def read() -> None:
        while not stop.is_set():
            loaded = store.load(key, NOW)
            if not isinstance(loaded, Record) or loaded.fields["pad"] != pad:
                failures.append("partial or missing record")
                return
            seen.append(json.loads(loaded.fields["v"])["v"])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for v in range(1, 60):
            assert store.update(key, change(set=fields(v=v)), NOW) is True
    finally:
        stop.set()
        reader.join()
    assert not failures
    assert seen == sorted(seen)  # each load sees a whole file, old or new
    names = [p.name for p in directory.iterdir()]
    assert not [n for n in names if n.startswith(".tmp-")], names


# -- unreadable files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'SW2\n{"kind": "record"', id="truncated-header"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", id="foreign"),
        pytest.param(b'SW2\n{"kind":"record","created_at":1}\n{}', id="no-expiry"),
        pytest.param(b'SW2\n{"kind":"record","created_at":1,"expires_at":9e999}\n{}', id="inf"),
        pytest.param(b'SW2\n{"kind":"moved","until":9e99,"target":"zz"}\n', id="bad-pointer"),
        pytest.param(b'SW2\n{"kind":"other","until":9e99}\n', id="unknown-kind"),
        pytest.param(b'SW2\n{"kind":"record","created_at":1,"expires_at":9e99}\nx', id="body"),
        pytest.param(b"SW2\n" + b"[" * 100_000 + b"\n{}", id="absurdly-nested"),
    ],
)
def test_an_unreadable_file_loads_as_absent_with_one_warning_naming_the_fingerprint(
    content: bytes, store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    store.insert(key, record(fields(user="ada")))
    (path,) = session_files(directory)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.load(key, NOW) is None
    warnings = [r for r in caplog.records if r.name.startswith("sessionware")]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert key_fingerprint(key) in message
    assert key not in caplog.text
    assert path.name[:64] not in caplog.text


def test_an_unreadable_record_is_not_updated_but_may_be_replaced(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    store.insert(key, record(fields(a=1)))
    (path,) = session_files(directory)
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.update(key, change(set=fields(b=2)), NOW) is False
        assert path.read_bytes() == b"garbage"
        assert store.insert(key, record(fields(fresh=1)))
    assert live(store.load(key, NOW)).fields == fields(fresh=1)


def test_packed_fields_that_do_not_unpack_are_not_updated(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    store.insert(key, record(fields(a=1)))
    (path,) = session_files(directory)
    broken = path.read_bytes().rsplit(b"\n", 1)[0] + b'\n{"a":'
    path.write_bytes(broken)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.update(key, change(set=fields(b=2)), NOW) is False
    assert path.read_bytes() == broken
    assert key_fingerprint(key) in caplog.text


# -- the previous format -----------------------------------------------------------------------


def test_a_file_of_the_previous_format_loads_updates_and_renews(
    store: FileStore, directory: Path
) -> None:
    key, renewed = new_key(), new_key()
    directory.mkdir()
    meta = {"c": NOW - 10, "e": NOW + HOUR, "x": ["age", 300]}
    (directory / file_name(key)).write_bytes(old_format(meta, b'{"cart":[1,2],"user":"ada"}'))
    loaded = live(store.load(key, NOW))
    assert {name: json.loads(raw) for name, raw in loaded.fields.items()} == {
        "cart": {"cart": [1, 2]},
        "user": {"user": "ada"},
    }
    assert (loaded.created_at, loaded.expires_at) == (NOW - 10, NOW + HOUR)
    assert loaded.expiry == Expiry("age", 300)
    assert loaded.user is None
    assert store.update(key, change(set=fields(theme="dark")), NOW) is True
    assert dict(live(store.load(key, NOW)).fields) == fields(cart=[1, 2], user="ada", theme="dark")
    assert store.renew(key, renewed, NOW, NOW + 30) is True
    assert live(store.load(renewed, NOW)).created_at == NOW - 10


def test_a_file_of_the_previous_format_with_foreign_data_loads_as_absent(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    directory.mkdir()
    path = directory / file_name(key)
    path.write_bytes(old_format({"c": NOW, "e": NOW + HOUR}, b"\x80\x04\x95pickled"))
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.load(key, NOW) is None
    assert key_fingerprint(key) in caplog.text


# -- the purge reads headers only ----------------------------------------------------------


def test_live_sessions_whose_data_is_not_json_survive_clear_expired(
    store: FileStore, directory: Path
) -> None:
    binary = [new_key() for _ in range(10)]
    for key in binary:
        assert store.insert(key, record({"blob": b"\x00\xff\x80", "n": b"\x01"}))
    msgpack = b"\x82\xa1a\x01\xa1b\x02"  # what a custom serializer wrote, old format
    for key in [new_key() for _ in range(10)]:
        (directory / file_name(key)).write_bytes(old_format({"c": NOW, "e": NOW + HOUR}, msgpack))
    assert store.clear_expired(NOW) == 0
    assert len(session_files(directory)) == 20
    for key in binary:
        assert live(store.load(key, NOW)).fields == {"blob": b"\x00\xff\x80", "n": b"\x01"}
    assert store.clear_expired(NOW + HOUR + 1) == 20  # and they go once expired
    assert session_files(directory) == []


def test_clear_expired_removes_dead_and_unreadable_files_and_old_temp_files(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alive = [new_key() for _ in range(3)]
    dead = [new_key() for _ in range(2)]
    for key in alive:
        store.insert(key, record(fields(live=True)))
    for key in dead:
        store.insert(key, record(fields(live=False), expires_in=60))
    ended = new_key()
    store.insert(ended, record())
    store.delete(ended, NOW, NOW + 30)
    unreadable = directory / ("0" * 64 + ".session")
    unreadable.write_bytes(b"not a session file")
    old_temp, new_temp = directory / ".tmp-old", directory / ".tmp-new"
    old_temp.write_bytes(b"half")
    new_temp.write_bytes(b"being written")
    two_hours_ago = time.time() - 2 * HOUR
    os.utime(old_temp, (two_hours_ago, two_hours_ago))
    foreign = directory / "notes.txt"
    foreign.write_text("not ours")

    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.clear_expired(NOW + 61) == 4  # two expired, one marker, one unreadable
    assert "1 session files that were unreadable" in caplog.text
    assert unreadable.name[:64] not in caplog.text
    assert len(session_files(directory)) == 3
    assert [k for k in alive + dead if store.load(k, NOW) is not None] == alive
    assert not old_temp.exists()
    assert new_temp.exists()
    assert foreign.exists()
    assert store.clear_expired(NOW + 61) == 0


# -- the per-user index --------------------------------------------------------------------


def index_entries(directory: Path) -> set[tuple[str, str]]:
    root = directory / "users"
    if not root.exists():
        return set()
    return {(folder.name, entry.name) for folder in root.iterdir() for entry in folder.iterdir()}


def test_the_index_holds_one_empty_entry_per_session_of_a_user(
    store: FileStore, directory: Path
) -> None:
    first, second, anonymous = new_key(), new_key(), new_key()
    store.insert(first, record(user="ada"))
    store.insert(second, record(user="ada"))
    store.insert(anonymous, record())
    folder = UserIndex.folder_of("ada")
    assert index_entries(directory) == {(folder, file_name(first)), (folder, file_name(second))}
    assert (directory / "users" / folder / file_name(first)).read_bytes() == b""
    assert "ada" not in os.listdir(directory / "users")
    store.update(second, change(user_changed=True, user="bob"), NOW)
    store.delete(first, NOW, NOW + 60)
    assert index_entries(directory) == {(UserIndex.folder_of("bob"), file_name(second))}


def test_user_sessions_never_trusts_the_index(store: FileStore, directory: Path) -> None:
    mine, theirs, gone = new_key(), new_key(), new_key()
    store.insert(mine, record(user="ada"))
    store.insert(theirs, record(user="bob"))
    store.insert(gone, record(user="ada", expires_in=5))
    folder = directory / "users" / UserIndex.folder_of("ada")
    (folder / file_name(theirs)).touch()  # an entry pointing at another user's session
    (folder / file_name(new_key())).touch()  # an entry left by a crash: no file
    (folder / "notes.txt").touch()  # not an entry at all
    assert [info.id for info in store.user_sessions("ada", NOW + 10)] == [info_id(mine)]
    assert not store.revoke_session("ada", info_id(theirs), NOW)
    assert store.revoke_user("ada", now=NOW + 10) == 1
    assert isinstance(store.load(theirs, NOW), Record)
    assert isinstance(store.load(mine, NOW + 10), Stale)


def test_clear_expired_prunes_index_entries_that_point_nowhere(
    store: FileStore, directory: Path
) -> None:
    kept, theirs = new_key(), new_key()
    store.insert(kept, record(user="ada"))
    store.insert(theirs, record(user="bob"))
    ada = directory / "users" / UserIndex.folder_of("ada")
    (ada / file_name(theirs)).touch()
    (ada / file_name(new_key())).touch()
    lonely = directory / "users" / UserIndex.folder_of("carol")
    lonely.mkdir()
    (lonely / file_name(new_key())).touch()
    assert store.clear_expired(NOW) == 0
    assert index_entries(directory) == {
        (UserIndex.folder_of("ada"), file_name(kept)),
        (UserIndex.folder_of("bob"), file_name(theirs)),
    }
    assert not lonely.exists()


# -- locks --------------------------------------------------------------------------------


def _hold_lock(path: str, locked: Any, release: Any) -> None:
    """Runs in a spawned process: hold ``path``'s flock until told to let go."""
    import fcntl

    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    locked.set()
    release.wait(timeout=120)
    os.close(descriptor)


@pytest.fixture
def lock_holder(directory: Path) -> Iterator[Callable[[str], Callable[[], None]]]:
    """``hold(key)`` makes another process take ``key``'s stripe lock; it returns the
    function that lets it go (called at teardown in any case)."""
    context = multiprocessing.get_context("spawn")
    holders: list[tuple[Any, Any]] = []

    def hold(key: str) -> Callable[[], None]:
        directory.mkdir(exist_ok=True)
        path = directory / f".lock-{stripe_of(file_name(key)):02d}"
        locked, release = context.Event(), context.Event()
        process = context.Process(target=_hold_lock, args=(str(path), locked, release))
        process.start()
        holders.append((process, release))
        assert locked.wait(timeout=HANG_GUARD)

        def let_go() -> None:
            release.set()
            process.join(timeout=HANG_GUARD)

        return let_go

    yield hold
    for process, release in holders:
        release.set()
        process.join(timeout=HANG_GUARD)


def guarded(call: Callable[[], object]) -> object:
    """``call()`` in a thread, so that a hang fails the test instead of stalling it."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=HANG_GUARD)
    finally:
        pool.shutdown(wait=False)


def test_a_write_whose_lock_another_process_holds_fails_after_the_timeout(
    directory: Path, lock_holder: Callable[[str], Callable[[], None]]
) -> None:
    store = FileStore(directory, timeout=0.2)
    key = new_key()
    assert store.insert(key, record(fields(a=1)))
    let_go = lock_holder(key)
    with pytest.raises(SessionStoreError) as caught:
        guarded(lambda: store.update(key, change(set=fields(b=2)), NOW))
    message = str(caught.value)
    assert key_fingerprint(key) in message
    assert key not in message
    assert file_name(key)[:64] not in message
    assert live(store.load(key, NOW)).fields == fields(a=1)  # reads take no lock
    let_go()
    assert store.update(key, change(set=fields(b=2)), NOW) is True
    assert live(store.load(key, NOW)).fields == fields(a=1, b=2)


def test_a_rotation_needs_the_locks_of_both_keys(
    directory: Path, lock_holder: Callable[[str], Callable[[], None]]
) -> None:
    store = FileStore(directory, timeout=0.2)
    old = new_key()
    new = next(k for k in iter(new_key, "") if stripe_of(file_name(k)) != stripe_of(file_name(old)))
    assert store.insert(old, record(fields(a=1)))
    let_go = lock_holder(new)
    with pytest.raises(SessionStoreError):
        guarded(lambda: store.rotate(old, new, record(fields(a=1)), NOW, NOW + 60))
    assert isinstance(store.load(old, NOW), Record)  # nothing was written
    let_go()
    assert store.rotate(old, new, record(fields(a=1)), NOW, NOW + 60) is True


# -- several processes ---------------------------------------------------------------------


def _update_many(directory: str, key: str, prefix: str, start: Any) -> None:
    """Runs in a spawned process: 50 updates of distinct keys, started with the others."""
    store = FileStore(directory)
    start.wait(timeout=60)
    for i in range(50):
        name = f"{prefix}{i}"
        if store.update(key, change(set=fields(**{name: i})), NOW) is not True:
            raise SystemExit(f"update {name} failed")


def test_processes_updating_distinct_keys_all_keep_their_changes(
    store: FileStore, directory: Path
) -> None:
    key = new_key()
    store.insert(key, record(fields(base=0)))
    context = multiprocessing.get_context("spawn")
    prefixes = ("a", "b", "c")
    start = context.Barrier(len(prefixes))
    workers = [
        context.Process(target=_update_many, args=(str(directory), key, prefix, start))
        for prefix in prefixes
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * len(prefixes)
    expected = fields(base=0) | {
        f"{p}{i}": field(f"{p}{i}", i) for p in prefixes for i in range(50)
    }
    assert dict(live(store.load(key, NOW)).fields) == expected


# -- real OS failures ------------------------------------------------------------------------


def test_os_failures_raise_session_store_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "sessions"
    not_a_directory.write_text("a regular file where the directory should be")
    store = FileStore(not_a_directory)
    key = new_key()
    operations: list[Callable[[], object]] = [
        lambda: store.load(key, NOW),
        lambda: store.insert(key, record(fields(a=1))),
        lambda: store.update(key, change(set=fields(a=1)), NOW),
        lambda: store.delete(key, NOW, NOW + 60),
        lambda: store.rotate(key, new_key(), record(), NOW, NOW + 60),
        lambda: store.renew(key, new_key(), NOW, NOW + 60),
        lambda: store.clear_expired(NOW),
        lambda: store.user_sessions("u", NOW),
        lambda: store.revoke_user("u", now=NOW),
    ]
    for operation in operations:
        with pytest.raises(SessionStoreError) as caught:
            operation()
        assert isinstance(caught.value.__cause__, OSError)
        assert key not in str(caught.value)


def test_a_failure_on_a_session_file_names_the_session_not_the_file(
    store: FileStore, directory: Path
) -> None:
    key = new_key()
    directory.mkdir()
    (directory / file_name(key)).mkdir()  # the session's file cannot be opened
    with pytest.raises(SessionStoreError) as caught:
        store.load(key, NOW)
    message = str(caught.value)
    assert key_fingerprint(key) in message
    assert "IsADirectoryError" in message
    assert file_name(key)[:64] not in message
    assert key not in message


@pytest.mark.anyio
async def test_async_twins_share_the_files(store: FileStore, directory: Path) -> None:
    key, renewed = new_key(), new_key()
    assert await store.ainsert(key, record(fields(a=1), user="ada"))
    assert store.update(key, change(set=fields(b=2)), NOW) is True
    assert live(await store.aload(key, NOW)).fields == fields(a=1, b=2)
    assert await store.arenew(key, renewed, NOW, NOW + 30) is True
    assert [i.id for i in await store.auser_sessions("ada", NOW)] == [info_id(renewed)]
    assert await store.adelete(renewed, NOW, NOW) is True
    assert await store.aclear_expired(NOW + 31) == 1
    assert session_files(directory) == []
