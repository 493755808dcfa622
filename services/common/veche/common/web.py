"""The HTTP frame every service shares: middleware, error handlers, health and metrics."""

import asyncio
import functools
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veche.common.errors import (
    PROBLEM_JSON,
    PayloadTooLarge,
    Problem,
    Unavailable,
    install_error_handlers,
    is_dependency_error,
    send_problem,
    unexpected_problem,
)
from veche.common.logs import request_id_var
from veche.common.openapi import install_problem_openapi
from veche.common.ratelimit import RateLimits, RoomRateLimitMiddleware
from veche.common.settings import CommonSettings

log = logging.getLogger("veche.http")

HTTP_REQUESTS = Counter(
    "veche_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram("veche_http_request_seconds", "HTTP request latency", ["service", "method", "route"])

ReadinessCheck = Callable[[], Awaitable[Any]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # API answers are data, never documents: nothing in them may load or frame anything.
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    # Answers are per caller (create, join and the media token carry secrets): never stored by
    # a browser or a shared cache.
    (b"cache-control", b"no-store"),
]


class RequestContextMiddleware:
    """Request id, access log line, metrics, baseline security headers."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            method = scope["method"]
            status = status_holder["status"]
            HTTP_REQUESTS.labels(self.service, method, route_path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, route_path).observe(elapsed)
            if route_path not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "%s %s %s",
                    method,
                    route_path,
                    status,
                    extra={"fields": {"status": status, "ms": round(elapsed * 1000, 1)}},
                )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413 before they are read whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await send_problem(send, PayloadTooLarge(f"Body over {self.max_bytes} bytes"))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_problem(send, PayloadTooLarge(f"Body over {self.max_bytes} bytes"))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _Answer:
    """A request's `send`, noting whether its answer has started (after that, a middleware can
    no longer answer with a problem of its own)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight answered as problem+json."""

    def preflight_response(self, request_headers: Any) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        problem = Problem(bytes(response.body).decode() or "Disallowed CORS request")
        problem.status, problem.code, problem.title = 400, "cors_rejected", "CORS request refused"
        dropped = {"content-type", "content-length"}
        keep = {k: v for k, v in response.headers.items() if k.lower() not in dropped}
        return JSONResponse(problem.body(), status_code=400, headers=keep, media_type=PROBLEM_JSON)


class UnexpectedErrorMiddleware:
    """The last safety net: an exception nothing else handled becomes a problem+json answer
    (503 for a dependency, 500 otherwise) and goes no further. Starlette's own error
    middleware would answer too, then re-raise, and uvicorn would drop the keep-alive
    connection, which the gateway may already be reusing for somebody else's request."""

    def __init__(self, app: ASGIApp, retry_after: int) -> None:
        self.app = app
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = _Answer(send)
        try:
            await self.app(scope, receive, answer.send)
        except Exception as exc:  # noqa: BLE001 - answered here, never re-raised
            problem = unexpected_problem(exc, scope["method"], scope["path"], self.retry_after)
            if not answer.started:
                await send_problem(send, problem)


class RequestTimeout(Problem):
    status, code, title = 408, "request_timeout", "Request timeout"


class TimeoutMiddleware:
    """A request that has not started its answer within the limit gets 503, not a hang; one
    whose body has not fully arrived by then (trickled, or shorter than it said) gets 408."""

    def __init__(self, app: ASGIApp, seconds: float, retry_after: int) -> None:
        self.app = app
        self.seconds = seconds
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = _Answer(send)
        body_done = scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE")

        async def receive_wrapper() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive_wrapper, answer.send)
        except TimeoutError:
            if answer.started:
                return
            if not body_done:
                await send_problem(send, RequestTimeout("The request body did not arrive in time"))
            else:
                await send_problem(send, Unavailable("Request timed out", self.retry_after))


def create_app(
    *,
    service: str,
    settings: CommonSettings,
    lifespan: Any,
    readiness: Callable[[FastAPI], dict[str, ReadinessCheck]] | None = None,
    title: str | None = None,
) -> FastAPI:
    """A FastAPI app with the shared middleware, problem handlers and /healthz /readyz /metrics.

    `readiness(app)` returns the named checks of the service's real dependencies."""

    @asynccontextmanager
    async def with_rate_limits(app: FastAPI) -> AsyncIterator[None]:
        app.state.rate_limits = RateLimits(settings)
        async with lifespan(app):
            yield

    # No redirects: a trailing slash is a 404, never a Location built from the Host header.
    app = FastAPI(title=title or f"veche {service}", lifespan=with_rate_limits, redirect_slashes=False)
    app.state.settings = settings
    install_error_handlers(app, settings.retry_after_seconds)
    install_problem_openapi(app)

    @app.get("/healthz", tags=["probes"], summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["probes"],
        summary="Ready: every dependency answers",
        response_model=dict[str, object],
        responses={503: {"description": "a dependency is down"}},
    )
    async def readyz() -> Response:
        checks = readiness(app) if readiness else {}
        results: dict[str, str] = {}

        async def run(name: str, check: ReadinessCheck) -> None:
            try:
                async with asyncio.timeout(settings.dependency_timeout_seconds):
                    await check()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                results[name] = "down" if is_dependency_error(exc) else f"error: {type(exc).__name__}"

        await asyncio.gather(*(run(n, c) for n, c in checks.items()))
        if all(v == "ok" for v in results.values()):
            return JSONResponse({"status": "ready", "checks": results})
        problem = Unavailable("Not ready: " + ", ".join(n for n, v in results.items() if v != "ok"))
        body = problem.body() | {"checks": results}
        return JSONResponse(body, 503, headers=problem.headers, media_type=PROBLEM_JSON)

    @app.get(
        "/metrics",
        tags=["probes"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Added last = outermost: context wraps everything, then the timeout, then the body limit.
    app.add_middleware(RoomRateLimitMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        TimeoutMiddleware, seconds=settings.request_timeout_seconds, retry_after=settings.retry_after_seconds
    )
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "X-Participant-ID", "X-Request-ID"],
        expose_headers=["X-Participant-ID", "X-Request-ID", "Retry-After", "Location"],
        max_age=600,
    )
    app.add_middleware(UnexpectedErrorMiddleware, retry_after=settings.retry_after_seconds)
    app.add_middleware(RequestContextMiddleware, service=service)
    return app


@functools.lru_cache(maxsize=16)
def _networks(addresses: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(a.strip(), strict=False) for a in addresses if a.strip())


def _is_gateway(peer: str | None, settings: CommonSettings) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.gateway_addresses)))


def peer_client_ip(peer: str | None, headers: Any, settings: CommonSettings) -> str | None:
    """The client's address: what the gateway saw (its X-Real-IP, which Traefik sets itself,
    believing a client's forwarded headers only from TRUSTED_PROXIES) when the request comes
    from a gateway address (GATEWAY_ADDRESSES); the TCP peer otherwise, so nobody who reaches
    a service port directly can choose the address a limit counts or a membership stores."""
    if _is_gateway(peer, settings):
        real = (headers.get("x-real-ip") or "").strip()
        if real:
            return real
        forwarded = (headers.get("x-forwarded-for") or "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return peer


def client_ip(request: Request) -> str | None:
    peer = request.client.host if request.client else None
    return peer_client_ip(peer, request.headers, request.app.state.settings)
