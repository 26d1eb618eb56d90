"""RedisStore's writes under failure: waiting for replicas (``wait_replicas``), and never
sending a command again once it may have reached the server.

Private ``redis-server`` processes (a master and its replica) and a small TCP proxy that
can cut a connection at a chosen moment stand in for the failures.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from sessionware._errors import SessionStoreError
from sessionware._keys import new_key
from sessionware._records import Record
from sessionware.stores import RedisStore
from sessionware.stores._redis_failures import ClosedWhileInUse, connection_failures, unsent
from tests.served_app import make_app
from tests.servers import REDIS_URL, PrivateRedis, free_port, require_redis_server, require_server
from tests.stores.factories import unique
from tests.stores.test_redis import HOUR, MODES, NOW, change, field, record, twin

pytestmark = pytest.mark.redis


class CuttingProxy:
    """A TCP proxy to a server that can, on request, close a client's connection right
    after the server's next reply arrives (the command ran, its reply is lost), or close
    the next new connection at once (it fails while being opened)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.cut_next_reply = threading.Event()
        self.refuse_next = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.refuse_next.is_set():
                self.refuse_next.clear()
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += (client, server)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if replies and self.cut_next_reply.is_set():
                    self.cut_next_reply.clear()
                    break
                target.sendall(chunk)
        except OSError:
            pass
        for end in (source, target):  # one side gone: both go
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()
        for end in self._sockets:
            end.close()


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    private = PrivateRedis(require_redis_server(), free_port())
    private.start()
    yield private
    private.stop()


@pytest.fixture
def proxy(server: PrivateRedis) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy(server.port)
    yield cutting
    cutting.close()


def _evalsha_calls(server: PrivateRedis) -> int:
    for line in server.command("INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


# -- never sent twice ------------------------------------------------------------------------


@MODES
def test_a_script_whose_reply_was_lost_is_not_sent_again(
    mode: str, server: PrivateRedis, proxy: CuttingProxy
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix="swtest:")
    key = new_key()

    def cut_insert() -> None:
        server.command("CONFIG", "RESETSTAT")
        proxy.cut_next_reply.set()
        store.insert(key, record({"a": field("a", 1)}))

    async def acut_insert() -> None:
        assert await store.ainsert(new_key(), record())  # this loop's connection, open
        server.command("CONFIG", "RESETSTAT")
        proxy.cut_next_reply.set()
        await store.ainsert(key, record({"a": field("a", 1)}))

    try:
        assert store.insert(new_key(), record())  # scripts loaded, a connection open
        with pytest.raises(SessionStoreError, match="Connection"):
            cut_insert() if mode == "sync" else asyncio.run(acut_insert())
        assert _evalsha_calls(server) == 1  # it ran once, and was not sent again
        loaded = store.load(key, NOW)  # a new connection: the store goes on
        assert isinstance(loaded, Record)
        assert dict(loaded.fields) == {"a": field("a", 1)}
    finally:
        store.close()


@MODES
def test_a_connection_that_fails_while_opening_is_tried_once_more(
    mode: str, server: PrivateRedis, proxy: CuttingProxy
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix="swtest:")
    key = new_key()
    try:
        proxy.refuse_next.set()  # the first connection closes before its handshake ends
        assert twin(mode, store, "insert")(key, record({"a": field("a", 1)})) is True
        assert proxy.accepted == 2
        assert _evalsha_calls(server) == 2  # NOSCRIPT, then the script once (nothing twice)
        proxy.refuse_next.set()
        store.close()  # the next operation opens a connection again
        assert isinstance(twin(mode, store, "load")(key, NOW), Record)
        assert proxy.accepted == 4
    finally:
        store.close()


def test_a_restarted_server_is_reached_again_without_an_error(server: PrivateRedis) -> None:
    store = RedisStore(server.url, prefix="swtest:")
    key = new_key()
    try:
        assert store.insert(key, record())  # a pooled connection to the server
        server.stop()
        server.start()  # same port, empty: the pooled connection is dead
        assert store.load(key, NOW) is None
        assert store.insert(key, record()) is True
    finally:
        store.close()


def test_only_failures_to_connect_count_as_unsent() -> None:
    refused = redis.Redis("127.0.0.1", free_port(), retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError) as failed:
        refused.ping()
    assert unsent(failed.value)
    assert not unsent(redis.ConnectionError("Connection closed by server."))
    assert not unsent(redis.TimeoutError("Timeout reading from socket"))
    refused.close()


# -- waiting for replicas ---------------------------------------------------------------------


@contextmanager
def replicated(server: PrivateRedis) -> Iterator[PrivateRedis]:
    """A replica of ``server``, in sync."""
    replica = PrivateRedis(server.binary, free_port())
    replica.start()
    try:
        server.command("CONFIG", "SET", "repl-diskless-sync-delay", "0")
        # the copy goes from the socket into memory: no RDB file in the working directory
        replica.command("CONFIG", "SET", "repl-diskless-load", "on-empty-db")
        replica.command("REPLICAOF", "127.0.0.1", str(server.port))
        client = redis.Redis(port=server.port)
        for _ in range(200):
            if client.wait(1, 50) == 1:
                break
        client.close()
        yield replica
    finally:
        replica.stop()


def _commands_by_connection(monitored: list[dict[str, Any]], prefix: str) -> list[list[str]]:
    """The commands each client connection sent, in order, for the store under ``prefix``."""
    by_client: dict[str, list[str]] = {}
    for seen in monitored:
        words = seen["command"].split(" ")
        if seen["client_type"] != "lua" and (prefix in seen["command"] or words[0] == "WAIT"):
            by_client.setdefault(seen["client_address"] + seen["client_port"], []).append(words[0])
    return list(by_client.values())


def _writes(mode: str, store: RedisStore) -> None:
    """One of each write, every one acknowledged."""
    key, rotated, renewed = new_key(), new_key(), new_key()
    assert twin(mode, store, "insert")(key, record(user="u"))
    assert twin(mode, store, "update")(key, change(set={"a": b"1"}), NOW) is True
    assert twin(mode, store, "rotate")(key, rotated, record(user="u"), NOW, NOW + 60) is True
    assert twin(mode, store, "renew")(rotated, renewed, NOW, NOW + 30) is True
    assert twin(mode, store, "delete")(renewed, NOW, NOW + 60) is True


@MODES
def test_every_write_waits_on_the_connection_that_made_it(mode: str, server: PrivateRedis) -> None:
    with replicated(server):
        store = RedisStore(server.url, prefix=unique("swtest") + ":", wait_replicas=1)
        monitor_client = redis.Redis(port=server.port, decode_responses=True)
        monitored: list[dict[str, Any]] = []
        try:
            _writes(mode, store)  # every script loaded
            with monitor_client.monitor() as monitor:  # type: ignore[no-untyped-call]
                _writes(mode, store)
                monitor_client.set("swtest-end", "1")  # marks the end of the log
                while (seen := monitor.next_command())["command"] != "SET swtest-end 1":
                    monitored.append(seen)
        finally:
            store.close()
            monitor_client.close()
        per_connection = _commands_by_connection(monitored, store.prefix)
        sent = [command for commands in per_connection for command in commands]
        assert sent == ["EVALSHA", "WAIT"] * 5  # each script, then WAIT on its connection


def test_without_a_replica_every_write_fails_and_listings_still_work() -> None:
    require_server("redis")  # the shared server has no replica
    store = RedisStore(REDIS_URL, prefix=unique("swtest") + ":", wait_replicas=1, wait_timeout=0.05)
    plain = RedisStore(REDIS_URL, prefix=store.prefix)
    key = new_key()
    try:
        with pytest.raises(SessionStoreError, match="0 of 1 replica"):
            store.insert(key, record(user="u"))
        with pytest.raises(SessionStoreError, match="0 of 1 replica"):
            asyncio.run(store.aupdate(key, change(set={"b": b"2"}), NOW))
        assert plain.insert(new_key(), record(user="u"))
        # listings and clear_expired only remove what is dead: they do not wait
        assert len(store.user_sessions("u", NOW)) == 2  # the refused insert was written
        assert store.clear_expired(NOW + 2 * HOUR) == 2
    finally:
        plain.delete_all()
        store.close()
        plain.close()


@pytest.mark.anyio
async def test_the_middleware_answers_503_when_no_replica_acknowledges() -> None:
    require_server("redis")
    store = RedisStore(REDIS_URL, prefix=unique("swtest") + ":", wait_replicas=1, wait_timeout=0.05)
    transport = httpx.ASGITransport(app=make_app(store))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/slow-set?k=user&v=ada")
        assert response.status_code == 503
        assert "set-cookie" not in response.headers
    finally:
        store.delete_all()
        await store.aclose()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"wait_replicas": -1}, ValueError, "wait_replicas"),
        ({"wait_replicas": True}, TypeError, "wait_replicas"),
        ({"wait_replicas": 1, "wait_timeout": 0}, ValueError, "wait_timeout"),
        ({"wait_replicas": 1, "wait_timeout": 5.0, "timeout": 5.0}, ValueError, "shorter"),
    ],
)
def test_wait_mistakes_are_refused_at_construction(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RedisStore(**options)


def test_a_connection_closed_under_a_command_counts_as_a_connection_failure() -> None:
    never_opened = redis.asyncio.Connection()  # no stream: as if closed under a command

    async def send() -> None:
        with connection_failures():
            await never_opened._send_packed_command([b"PING\r\n"])

    with pytest.raises(ClosedWhileInUse) as failed:
        asyncio.run(send())
    assert isinstance(failed.value.__cause__, AttributeError)
    assert not unsent(failed.value)
    with pytest.raises(AttributeError), connection_failures():
        _ = None.missing  # type: ignore[attr-defined]  # our own mistakes stay mistakes
