"""Tracing (veche.common.tracing): nothing at all without OTEL_EXPORTER_OTLP_ENDPOINT; with it, one
trace from a request into rooms (continuing the gateway's traceparent), through the outbox
relay's publish (a `traceparent` header on the NATS message), to a durable consumer's handler.

The spans go to an in-memory exporter the test installs in place of OTLP; one more test sends
them to a real HTTP server as OTLP/protobuf, as a collector would receive them."""

import asyncio
import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import RUN_ID, create_migrated_database, drop_database
from tests.support import EventReader, app_client, hdr, new_pid
from veche.common import tracing
from veche.common.clients import Nats
from veche.common.consumer import DurableConsumer
from veche.common.events import RoomEvent
from veche.common.settings import CommonSettings
from veche.gateway.config import GatewayConfig, static_config
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings

# The gateway's span, as Traefik would send it on.
GATEWAY_TRACE = "0af7651916cd43dd8448eb211c80319c"
GATEWAY_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{GATEWAY_TRACE}-{GATEWAY_SPAN}-01"


def traced(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "traceparent": TRACEPARENT}


@pytest.fixture(autouse=True)
def no_tracing_left() -> Iterator[None]:
    tracing.shutdown()
    yield
    tracing.shutdown()


@pytest.fixture
def own_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own: no other relay of the run publishes its outbox."""
    name = f"veche_test_{RUN_ID}_{request.node.name[5:25].lower()}"
    yield create_migrated_database(name)
    drop_database(name)


async def trace_contexts(database_url: str, room_id: str) -> list[object]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT trace_context FROM outbox WHERE payload->>'room_id' = $1 ORDER BY seq", room_id
        )
    finally:
        await conn.close()
    # asyncpg hands JSONB over as its text.
    return [json.loads(row["trace_context"]) if row["trace_context"] else None for row in rows]


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return trace.format_trace_id(span.context.trace_id)


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The span's parents, nearest first, as far as they were recorded."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    chain = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        span = by_id[parent.span_id]
        chain.append(span)
        parent = span.parent
    return chain


async def test_without_the_endpoint_nothing_is_set_up_and_no_context_travels(monkeypatch, own_database):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    settings = RoomsSettings(database_url=own_database, outbox_poll_seconds=0.2)
    assert settings.otel_exporter_otlp_endpoint is None
    assert tracing.traces_endpoint(settings) is None

    app = create_app(settings)  # the app factory asks for tracing, and gets none
    assert not tracing.active()
    assert isinstance(tracing.tracer(), trace.NoOpTracer)
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry

    async with app_client(app) as client:
        # Even a request that carries a traceparent passes none on.
        created = await client.post(
            "/api/v1/rooms",
            json={"title": "Untraced"},
            headers=traced(hdr(new_pid())),
        )
        assert created.status_code == 201, created.text
        room_id = created.json()["room"]["id"]
        async with EventReader() as reader:
            events = await reader.read_room(room_id, expected=2)
    assert [body["type"] for _, _, body in events] == ["room.created", "participant.joined"]
    assert all("traceparent" not in headers for _, headers, _ in events)
    assert await trace_contexts(own_database, room_id) == [None, None]


async def test_a_request_its_published_event_and_a_consumer_of_it_are_one_trace(monkeypatch, own_database):
    # The collector named here is never called: the test's exporter takes OTLP's place.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    settings = RoomsSettings(database_url=own_database, outbox_poll_seconds=0.2)
    assert tracing.traces_endpoint(settings) == "http://127.0.0.1:9/v1/traces"
    spans = InMemorySpanExporter()
    assert tracing.setup("rooms", settings, exporter=spans, install_global=False)

    app = create_app(settings)
    assert getattr(app, "_is_instrumented_by_opentelemetry", False)
    async with app_client(app) as client:
        created = await client.post("/api/v1/rooms", json={"title": "Traced"}, headers=traced(hdr(new_pid())))
        assert created.status_code == 201, created.text
        room_id = created.json()["room"]["id"]
        async with EventReader() as reader:
            events = await reader.read_room(room_id, expected=2)

    # The server span continues the gateway's trace.
    finished = list(spans.get_finished_spans())
    servers = [s for s in finished if s.kind == SpanKind.SERVER and s.name == "POST /api/v1/rooms"]
    assert len(servers) == 1
    server = servers[0]
    assert trace_id(server) == GATEWAY_TRACE
    assert server.parent is not None and trace.format_span_id(server.parent.span_id) == GATEWAY_SPAN
    assert server.resource.attributes["service.name"] == "rooms"
    # PostgreSQL and Redis calls of the request are in it too.
    in_request = [s for s in finished if server in ancestors(s, finished)]
    systems = {
        attributes.get("db.system") or attributes.get("db.system.name")
        for attributes in (s.attributes or {} for s in in_request)
    }
    assert {"postgresql", "redis"} <= systems, systems

    # The outbox kept the request's context; the published event carries the trace on.
    stored = await trace_contexts(own_database, room_id)
    assert len(stored) == 2 and all(context and GATEWAY_TRACE in context["traceparent"] for context in stored)
    headers = {body["type"]: headers for _, headers, body in events}
    for kind in ("room.created", "participant.joined"):
        assert headers[kind]["traceparent"].split("-")[1] == GATEWAY_TRACE, kind
        assert headers[kind]["Nats-Msg-Id"]

    # A durable consumer handles room.created inside a span of that same trace.
    handled: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(event: RoomEvent) -> None:
        if event.type == "room.created" and not handled.done():
            handled.set_result(trace.format_trace_id(trace.get_current_span().get_span_context().trace_id))

    durable = f"trace-test-{uuid.uuid4().hex[:8]}"
    nats = Nats(settings)
    nats.start()
    consumer = DurableConsumer(
        nats, settings, durable, f"{settings.nats_subject_prefix}.{room_id}.>", handler
    )
    consumer.start()
    try:
        assert await asyncio.wait_for(handled, 20) == GATEWAY_TRACE
    finally:
        await consumer.stop()
        if nats.client is not None:
            await nats.client.jetstream().delete_consumer(settings.nats_stream, durable)
        await nats.close()

    finished = list(spans.get_finished_spans())
    # (Other consumers of the process, if any, handle the event under their own durables.)
    consumed = [
        s
        for s in finished
        if s.kind == SpanKind.CONSUMER
        and s.name == "room.created process"
        and (s.attributes or {}).get("messaging.consumer.group.name") == durable
    ]
    assert len(consumed) == 1
    assert trace_id(consumed[0]) == GATEWAY_TRACE
    # The relay polled the outbox every 0.2 s meanwhile: its calls, which no request made, are
    # not traces of their own.
    assert [s.name for s in finished if s.parent is None and s.kind == SpanKind.CLIENT] == []
    chain = ancestors(consumed[0], finished)
    # consumer ← the relay's publish ← … ← the request's server span
    assert chain[0].kind == SpanKind.PRODUCER and chain[0].name == "room.created publish"
    assert server in chain


def test_spans_go_to_the_otlp_http_endpoint_as_protobuf(monkeypatch):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}/")
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        assert tracing.setup("chat", CommonSettings(), install_global=False)
        with tracing.tracer().start_as_current_span("probe"):
            pass
        tracing.shutdown()  # flushes the batch
    finally:
        server.shutdown()
        thread.join(5)
    assert [(path, kind) for path, kind, _ in received] == [("/v1/traces", "application/x-protobuf")]
    request = ExportTraceServiceRequest()
    request.ParseFromString(received[0][2])
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "chat"
    assert [s.name for scope in resource_spans.scope_spans for s in scope.spans] == ["probe"]


def test_the_gateway_traces_to_the_same_collector_only_when_asked():
    plain = static_config(GatewayConfig(), Path("/dynamic.yml"))
    assert "tracing" not in plain
    traced = static_config(
        GatewayConfig(otlp_traces_endpoint="http://collector:4318/v1/traces"), Path("/dynamic.yml")
    )
    assert traced["tracing"] == {
        "serviceName": "gateway",
        "otlp": {"http": {"endpoint": "http://collector:4318/v1/traces"}},
    }
