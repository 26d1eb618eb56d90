"""OpenTelemetry: a span per store operation, and counters of what happens to sessions,
checked with the SDK's in-memory exporters through a real middleware."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sessionware._options import Options
from sessionware.stores import MemoryStore, RedisStore
from tests.apps import build_app
from tests.clients import Client
from tests.counting import CountingStore

_SPANS = InMemorySpanExporter()
_READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def providers() -> None:
    """The global providers can be set once per process: set them for this module."""
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(_SPANS))
    trace.set_tracer_provider(tracing)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))


@pytest.fixture
def client() -> Iterator[Client]:
    _SPANS.clear()
    _READER.collect()  # start from what was counted before
    with ExitStack() as stack:
        app = build_app("starlette", Options(store=MemoryStore()))
        yield Client(app, True, stack)


def counted() -> dict[str, int]:
    data = _READER.get_metrics_data()
    totals: dict[str, int] = {}
    if data is None:
        return totals
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", 0)
                    totals[metric.name] = totals.get(metric.name, 0) + int(value)
    return totals


def spans() -> list[tuple[str, dict[str, Any]]]:
    return [(span.name, dict(span.attributes or {})) for span in _SPANS.get_finished_spans()]


def test_each_store_operation_is_a_span_with_its_store_and_result(client: Client) -> None:
    client.get("/set?k=user&v=ada")
    client.get("/read")
    client.get("/cycle")
    client.get("/flush")
    names = [name for name, _ in spans()]
    assert names == [
        "sessionware.store.insert",
        "sessionware.store.load",
        "sessionware.store.load",
        "sessionware.store.rotate",
        "sessionware.store.load",
        "sessionware.store.delete",
    ]
    for _, attributes in spans():
        assert attributes["sessionware.store"] == "MemoryStore"
    assert [a["sessionware.result"] for _, a in spans()] == [
        "true",
        "record",
        "record",
        "true",
        "record",
        "true",
    ]


def test_login_logout_and_rotation_are_counted(client: Client) -> None:
    before = counted()
    client.get("/set?k=user&v=ada")  # created
    client.get("/cycle")  # rotated (login)
    client.get("/flush")  # flushed (logout)
    after = counted()
    for event in ("created", "rotated", "flushed"):
        name = f"sessionware.sessions.{event}"
        assert after.get(name, 0) - before.get(name, 0) == 1


def test_a_dropped_save_and_a_stale_key_are_counted() -> None:
    _READER.collect()
    before = counted()
    inner = MemoryStore()
    store = CountingStore(inner)
    with ExitStack() as stack:
        app = build_app("starlette", Options(store=store))
        tab = Client(app, True, stack)
        tab.get("/set?k=user&v=ada")
        old = tab.session_cookie
        assert old is not None
        tab.get("/cycle")  # the old key is now stale
        parallel = Client(app, True, stack)
        parallel.cookies.set("sessionid", old, domain="testserver.local", path="/")
        parallel.get("/set?k=csrf&v=1")  # a stale key's write: dropped
    after = counted()
    for event in ("stale", "dropped"):
        name = f"sessionware.sessions.{event}"
        assert after.get(name, 0) - before.get(name, 0) == 1


def test_a_store_failure_is_a_span_that_says_so(client: Client) -> None:
    store = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    with ExitStack() as stack:
        app = build_app("starlette", Options(store=store))
        down = Client(app, True, stack)
        _SPANS.clear()
        assert down.get("/set?k=a&v=1").status_code == 503
    ((name, attributes),) = spans()
    assert name == "sessionware.store.insert"
    assert attributes["sessionware.result"] == "SessionStoreError"
    assert attributes["sessionware.store"] == "RedisStore"
