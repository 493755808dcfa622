"""OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

When it is set, the process gets a TracerProvider whose resource names the service
(`service.name` = rooms, chat, media-token or janitor), a BatchSpanProcessor and an OTLP/HTTP
exporter to `<endpoint>/v1/traces` (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is). The other
standard variables (OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*,
OTEL_RESOURCE_ATTRIBUTES) are read by the SDK itself. Then:

- FastAPI apps get server spans, continuing a W3C `traceparent` (the gateway's, when Traefik
  traces too); probes and chat sockets are left out;
- httpx (the calls to rooms), Redis and SQLAlchemy calls get client spans;
- an event written to the outbox keeps the context of the request that wrote it, the relay
  publishes it inside a PRODUCER span whose `traceparent` goes with the NATS message, and a
  durable consumer handles it inside a CONSUMER span, child of that one.

A client span with no parent (a background loop's own call) is not recorded: traces start at
a request, a message or a span of veche's (NoOrphanClientSpans).

When it is not set nothing here does anything: no provider, no instrumentation, and no span
(a no-op tracer). One provider per process; `setup` is called by the common app factory."""

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, _get_from_env_or_default
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from veche.common.settings import CommonSettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("veche.tracing")

# Not traced: the probes (scraped every few seconds) and chat sockets (a socket lives for
# hours; one span per socket, or per frame, says nothing useful).
EXCLUDED_URLS = "/healthz$,/readyz$,/metrics$,/ws/"

_NOOP = trace.NoOpTracer()


class NoOrphanClientSpans(Sampler):
    """The sampler of OTEL_TRACES_SAMPLER (the SDK's; all by default), except that a client span
    with no parent is dropped, with everything under it: the background loops' own calls (the
    relay's polling of the outbox, presence heartbeats in Redis, lag checks) would otherwise be a
    trace each, every few seconds. Traces start at a request, a message, or a span of veche's."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind == SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self.delegate.get_description()}}}"


@dataclass
class _State:
    provider: "TracerProvider"
    tracer: trace.Tracer
    sqlalchemy: bool = False


_state: _State | None = None


def traces_endpoint(settings: CommonSettings) -> str | None:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else the OTLP/HTTP base
    OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces (the OpenTelemetry spec's rule); None when off."""
    base = (settings.otel_exporter_otlp_endpoint or "").strip()
    if not base:
        return None
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or base.rstrip("/") + "/v1/traces"


def active() -> bool:
    return _state is not None


def tracer() -> trace.Tracer:
    """This process's tracer: a no-op one while tracing is off."""
    return _state.tracer if _state is not None else _NOOP


def setup(
    service: str,
    settings: CommonSettings,
    *,
    exporter: "SpanExporter | None" = None,
    install_global: bool = True,
) -> bool:
    """Turns tracing on for this process when OTEL_EXPORTER_OTLP_ENDPOINT is set (or when a
    test hands an `exporter`); True when it is on. A second call changes nothing.

    `install_global=False` keeps the process-wide OpenTelemetry provider untouched (tests):
    everything of veche's uses this module's provider explicitly either way."""
    global _state
    if _state is not None:
        return True
    endpoint = traces_endpoint(settings)
    if endpoint is None and exporter is None:
        return False
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service}),
        sampler=NoOrphanClientSpans(_get_from_env_or_default()),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        # A test's exporter: every span is there the moment it ends.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if install_global:
        trace.set_tracer_provider(provider)
    _state = _State(provider, provider.get_tracer("veche"))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    log.info("tracing on: %s", endpoint or type(exporter).__name__)
    return True


def instrument_app(app: "FastAPI") -> None:
    """Server spans for the app's requests (nothing while tracing is off)."""
    if _state is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_state.provider,
        excluded_urls=EXCLUDED_URLS,
        # The ASGI send/receive spans of every chunk: noise.
        exclude_spans=["receive", "send"],
    )


def instrument_sqlalchemy() -> None:
    """Client spans for the SQLAlchemy engines made from now on (nothing while tracing is off).
    Called by `create_engine`, so that only the services with PostgreSQL import SQLAlchemy."""
    if _state is None or _state.sqlalchemy:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares SQLAlchemy < 2.1; the engine events it hooks are unchanged
    # in 2.1, so its version check is skipped.
    SQLAlchemyInstrumentor().instrument(tracer_provider=_state.provider, skip_dep_check=True)
    _state.sqlalchemy = True


def shutdown() -> None:
    """Flushes and ends the provider and undoes the instrumentation (tests; a process's own
    provider is flushed at exit by the SDK)."""
    global _state
    state, _state = _state, None
    if state is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    if state.sqlalchemy:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()
    state.provider.shutdown()


# --- context across NATS ----------------------------------------------------------------------


def current_context() -> dict[str, str] | None:
    """The W3C headers (`traceparent`, and `tracestate` when there is one) of the span in
    progress, to store beside an outbox event; None when there is none (tracing off)."""
    if _state is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


@contextlib.contextmanager
def producer_span(
    name: str, stored: Mapping[str, str] | None, attributes: dict[str, Any]
) -> Iterator[dict[str, str]]:
    """Around one publish: a PRODUCER span, child of the context `stored` with the event; yields
    the trace headers to send with the message. While tracing is off, a stored context goes on
    as it was stored."""
    if _state is None:
        yield dict(stored or {})
        return
    parent = propagate.extract(dict(stored or {}))
    with _state.tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier


@contextlib.contextmanager
def consumer_span(name: str, headers: Mapping[str, str] | None, attributes: dict[str, Any]) -> Iterator[None]:
    """Around one handler call: a CONSUMER span, child of the message's `traceparent`; whatever
    the handler calls (rooms over httpx, Redis) nests below it."""
    if _state is None:
        yield
        return
    parent = propagate.extract(dict(headers or {}))
    with _state.tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ):
        yield
