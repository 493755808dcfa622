"""Static-file server for the veche browser client: the SPA, its vendor module, health and metrics."""

from __future__ import annotations

import logging
import mimetypes
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
INDEX_FILE = STATIC_DIR / "index.html"
VENDOR_DIR = WEB_DIR / "node_modules" / "livekit-client" / "dist"
# Only the files the page needs are exposed, never the whole node_modules tree.
VENDOR_FILES = {
    "livekit-client.esm.mjs": VENDOR_DIR / "livekit-client.esm.mjs",
    "livekit-client.esm.mjs.map": VENDOR_DIR / "livekit-client.esm.mjs.map",
    # The worker that encrypts and decrypts media frames in end-to-end encrypted rooms.
    "livekit-client.e2ee.worker.mjs": VENDOR_DIR / "livekit-client.e2ee.worker.mjs",
    "livekit-client.e2ee.worker.mjs.map": VENDOR_DIR / "livekit-client.e2ee.worker.mjs.map",
}

# Python's mimetypes table varies by platform; a module served as octet-stream is refused
# by the browser once nosniff is set, so the types the client relies on are fixed here.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/json", ".map")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("text/css", ".css")

log = logging.getLogger("veche.web")

REQUESTS = Counter(
    "veche_web_http_requests_total",
    "HTTP requests answered by the web client server",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "veche_web_http_request_duration_seconds",
    "Time to answer an HTTP request of the web client server",
    ["route"],
)


def _origin_sources(url: str) -> list[str]:
    """The ws and http origins of a plain-text LiveKit URL, for connect-src.

    livekit-client talks WebSocket to the URL and also probes its http twin (connection
    checks, error diagnosis). Secure URLs are already covered by the wss:/https: schemes.
    """
    parts = urlsplit(url.strip())
    if not parts.hostname or parts.scheme not in ("ws", "http"):
        return []
    host = parts.netloc.rsplit("@", 1)[-1]
    return [f"http://{host}"]


def build_csp() -> str:
    # The LiveKit URL reaches the browser only at run time (in the media token response), so
    # WebSocket connections to any host must be allowed. https: is allowed for the same reason
    # (livekit-client probes the https twin of a wss URL); it opens nothing that wss: did not.
    # Plain http: is allowed only for the configured LiveKit origins (a local ws:// server).
    connect = ["'self'", "ws:", "wss:", "https:"]
    for name in ("LIVEKIT_PUBLIC_URL", "LIVEKIT_URL"):
        for source in _origin_sources(os.environ.get(name, "")):
            if source not in connect:
                connect.append(source)
    for source in os.environ.get("WEB_CSP_CONNECT_SRC", "").split():
        if source not in connect:
            connect.append(source)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data: blob:",
        "media-src": "'self' blob:",
        "font-src": "'self'",
        "connect-src": " ".join(connect),
        # The only worker the page starts is livekit-client's E2EE worker, served from /vendor/.
        "worker-src": "'self'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeaders:
    """Adds the security headers to every response, including errors and static files."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(self), microphone=(self), display-capture=(self)"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _route_label(path: str) -> str:
    """A bounded label for metrics: room ids and file names must not become label values."""
    if path == "/":
        return "/"
    if path.startswith("/r/"):
        return "/r/{room_id}"
    if path.startswith("/vendor/"):
        return "/vendor"
    if path in ("/healthz", "/readyz", "/metrics"):
        return path
    return "/static"


class Metrics:
    """Counts requests and their latency per route label."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route_label(scope["path"])
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)


# The page shell and the client's modules change with every deploy and carry no hash in their
# names, so browsers revalidate them (ETag) instead of caching them blindly.
NO_CACHE = {"Cache-Control": "no-cache"}


async def index(request: Request) -> Response:
    return FileResponse(INDEX_FILE, media_type="text/html; charset=utf-8", headers=NO_CACHE)


async def vendor(request: Request) -> Response:
    path = VENDOR_FILES.get(request.path_params["name"])
    if path is None or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, headers=NO_CACHE)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    needed = (INDEX_FILE, VENDOR_FILES["livekit-client.esm.mjs"], VENDOR_FILES["livekit-client.e2ee.worker.mjs"])
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        return PlainTextResponse("missing: " + ", ".join(missing), status_code=503)
    return PlainTextResponse("ok")


async def upstream_unavailable(request: Request) -> Response:
    """The gateway's answer when no replica of a service could answer (its errors middleware
    fetches this for Traefik's own 502-504): the contract's 503 problem+json, Retry-After set."""
    retry_after = int(os.environ.get("RETRY_AFTER_SECONDS", "5"))
    body = {
        "type": "about:blank",
        "title": "Service unavailable",
        "status": 503,
        "code": "unavailable",
        "detail": f"The service cannot answer right now; retry in {retry_after} s",
    }
    return JSONResponse(
        body,
        status_code=503,
        media_type="application/problem+json",
        headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"},
    )


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class ClientFiles(StaticFiles):
    """The client's own files, revalidated on every load."""

    def file_response(self, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def create_app() -> ASGIApp:
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/r/{room_id}", index),
            Route("/r/{room_id}/", index),
            Route("/vendor/{name}", vendor),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/_/errors/{status:int}", upstream_unavailable),
            Mount("/", ClientFiles(directory=STATIC_DIR)),
        ],
    )
    return Metrics(SecurityHeaders(app, build_csp()))


app = create_app()


def main() -> None:
    host = os.environ.get("WEB_HOST", "127.0.0.1")
    port = int(os.environ.get("WEB_PORT", "8005"))
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")


if __name__ == "__main__":
    main()
