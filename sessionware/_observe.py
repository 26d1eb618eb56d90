"""OpenTelemetry, when the application has it (``pip install 'sessionware[otel]'``).

Once the application installs an OpenTelemetry SDK provider, every store operation is a
span (``sessionware.store.<operation>``, attributes ``sessionware.store`` and
``sessionware.result``) and the lifecycle counts what happens to sessions
(``sessionware.sessions.created``, ``.rotated``, ``.renewed``, ``.flushed``, ``.dropped``,
``.stale``). Until then, or without ``opentelemetry-api``, nothing is recorded and the
cost is one check of the global provider per store flow: a library that imports the API
does not slow sessions down by itself.
"""

from __future__ import annotations

from typing import Any

EVENTS = ("created", "rotated", "renewed", "flushed", "dropped", "stale")

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import _internal as _metrics_api
except ImportError:  # pragma: no cover - the test environment has opentelemetry
    trace = metrics = _metrics_api = None  # type: ignore[assignment]


_UNSEEN: Any = object()
_tracers: dict[int, tuple[Any, Any]] = {}


def tracer() -> Any:
    """The tracer to record store operations with; ``None`` while nothing would keep them.

    Called for every store flow, so it reads the API's global provider directly (the
    public getter costs more than a session load); a provider set later is picked up.
    """
    if trace is None:  # pragma: no cover - see above
        return None
    provider = getattr(trace, "_TRACER_PROVIDER", _UNSEEN)
    if provider is None:
        return None  # no SDK configured: spans would go nowhere
    if provider is _UNSEEN:  # pragma: no cover - an API version that moved its global
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):
            return None
    found = _tracers.get(id(provider))
    if found is None or found[0] is not provider:
        found = (provider, provider.get_tracer("sessionware"))
        _tracers[id(provider)] = found
    return found[1]


_counters: dict[str, Any] = {}
_meter_provider: Any = None


def count(event: str, store: str) -> None:
    """One more session ``event`` (one of ``EVENTS``) on a store of kind ``store``."""
    global _meter_provider
    if metrics is None:  # pragma: no cover - see above
        return
    provider = getattr(_metrics_api, "_METER_PROVIDER", _UNSEEN)
    if provider is None:
        return  # no SDK configured
    if provider is _UNSEEN:  # pragma: no cover - an API version that moved its global
        provider = metrics.get_meter_provider()
        if type(provider).__name__ == "_ProxyMeterProvider":
            return
    if provider is not _meter_provider:
        meter = provider.get_meter("sessionware")
        _counters.clear()
        for name in EVENTS:
            _counters[name] = meter.create_counter(
                f"sessionware.sessions.{name}", unit="{session}", description=f"sessions {name}"
            )
        _meter_provider = provider
    _counters[event].add(1, {"sessionware.store": store})


def result_name(result: object) -> str:
    """A short, key-free description of what a store operation gave back."""
    if result is None or isinstance(result, bool):
        return str(result).lower()
    return type(result).__name__.lower()
