"""Static-file server for the veche browser client: the built SPA (web/dist), health and metrics."""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_DIR = Path(__file__).resolve().parent
# What web/build.mjs writes (`make install` runs it): the page, and under assets/ the bundles,
# chunks, stylesheet, icons and E2EE worker, each named after a hash of its content. The
# sources in static/ are never served: the page needs the bundle (livekit-client is imported
# by its package name, which only the build resolves).
DIST_DIR = WEB_DIR / "dist"
ASSETS_DIR = DIST_DIR / "assets"
INDEX_FILE = DIST_DIR / "index.html"
MANIFEST_FILE = DIST_DIR / "manifest.json"
NOT_BUILT = "the web client is not built: run `make install` (or `node build.mjs` in web/)"

# Python's mimetypes table varies by platform; a module served as octet-stream is refused
# by the browser once nosniff is set, so the types the client relies on are fixed here.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/json", ".map")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("text/css", ".css")

# The compressed twins build.mjs writes next to each file, best first: brotli is smaller than
# gzip on every file of the client, so it wins whenever the browser accepts both equally.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))

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


# A Host header fit to name in a CSP source: a DNS name or IPv4 address, or a bracketed IPv6
# one, with an optional port. Anything else gets no worker source at all.
_CSP_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def worker_source(host: str | None, worker_path: str | None) -> str:
    """worker-src for one response: exactly the built E2EE worker, the one worker the page
    starts. A source expression with a path needs a host, and the page's is the request's
    Host (a source without a scheme takes the page's own); no usable Host, or no build, allows
    no worker."""
    if not worker_path or not host or not _CSP_HOST.fullmatch(host):
        return "'none'"
    return f"{host}{worker_path}"


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
        # worker-src is added per response (worker_source): exactly the E2EE worker.
        "frame-ancestors": "'none'",
        "form-action": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeaders:
    """Adds the security headers to every response, including errors and static files."""

    def __init__(self, app: ASGIApp, csp: str, worker_path: str | None = None) -> None:
        self.app = app
        self.csp = csp
        self.worker_path = worker_path
        self.headers = [
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

        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        csp = f"{self.csp}; worker-src {worker_source(host, self.worker_path)}"
        headers = [(b"content-security-policy", csp.encode()), *self.headers]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in headers if k not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _route_label(path: str) -> str:
    """A bounded label for metrics: room ids and file names must not become label values."""
    if path == "/":
        return "/"
    if path.startswith("/r/"):
        return "/r/{room_id}"
    if path.startswith("/assets/"):
        return "/assets"
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


def choose_encoding(accept_encoding: str | None, available: Iterable[str]) -> str | None:
    """The content coding to send a file in, from those it has a twin in (`available`), by the
    request's Accept-Encoding; None: the file as it is.

    The coding the browser rates highest wins, a tie goes to the order of ENCODINGS; `q=0`
    refuses a coding, `*` stands for every coding not named, and `x-gzip` is gzip. Identity is
    always acceptable here: the file itself is the fallback of every answer.
    """
    if not accept_encoding:
        return None
    rated: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if name == "x-gzip":
            name = "gzip"
        if not name:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        rated[name] = max(rated.get(name, 0.0), quality)
    best, best_quality = None, 0.0
    offered = set(available)
    for name, _ in ENCODINGS:
        if name not in offered:
            continue
        quality = rated.get(name, rated.get("*", 0.0))
        if quality > best_quality:
            best, best_quality = name, quality
    return best


# Files under /assets/ are named after a hash of their content: a name never comes back with
# other bytes, so browsers keep them a year without asking again.
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
# The page and the few files at fixed addresses (favicon) change with every deploy, so browsers
# revalidate them (ETag) instead of caching them blindly.
NO_CACHE = {"Cache-Control": "no-cache"}


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def send_file(request: Request, path: Path, cache: dict[str, str], media_type: str | None = None) -> Response:
    """`path` in the coding the request prefers (its .br or .gz twin, when build.mjs wrote one),
    with the caching of `cache`, or 304 when the browser's copy is current."""
    twins = {name: path.with_name(path.name + suffix) for name, suffix in ENCODINGS}
    encoding = choose_encoding(
        request.headers.get("accept-encoding"), [name for name, twin in twins.items() if twin.is_file()]
    )
    served = twins[encoding] if encoding else path
    try:
        stat = served.stat()
    except FileNotFoundError:  # a new build replaced dist/ since the lookup
        return _not_found()
    # Each coding is its own representation with its own validator; caches keep them apart by
    # the Vary header.
    base = hashlib.md5(f"{stat.st_mtime_ns}-{stat.st_size}".encode(), usedforsecurity=False).hexdigest()
    etag = f'"{base}-{encoding}"' if encoding else f'"{base}"'
    headers = {**cache, "Vary": "Accept-Encoding", "ETag": etag}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if encoding:
        headers["Content-Encoding"] = encoding
    media_type = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(served, media_type=media_type, headers=headers, stat_result=stat)


def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404)


def _plain_name(name: str) -> bool:
    """A file name of the build, never a path out of it nor a twin asked for by its own name."""
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and not name.endswith((".br", ".gz"))
    )


async def index(request: Request) -> Response:
    if not INDEX_FILE.is_file():
        return PlainTextResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
    return send_file(request, INDEX_FILE, NO_CACHE, media_type="text/html; charset=utf-8")


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    path = ASSETS_DIR / name
    if not _plain_name(name) or not path.is_file():
        return _not_found()
    return send_file(request, path, IMMUTABLE)


async def root_file(request: Request) -> Response:
    """The build's files at fixed addresses: /favicon.svg (browsers ask for it by that name),
    /index.html."""
    name = request.path_params["name"]
    path = DIST_DIR / name
    if not _plain_name(name) or not path.is_file():
        return _not_found()
    if path == INDEX_FILE:
        return await index(request)
    return send_file(request, path, NO_CACHE)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def _missing_files() -> list[str]:
    """What the page needs and the build did not leave in dist/ (the manifest names the entry,
    its chunks, the stylesheet, the room and livekit-client chunks and the E2EE worker)."""
    if not INDEX_FILE.is_file() or not MANIFEST_FILE.is_file():
        return [p.name for p in (INDEX_FILE, MANIFEST_FILE) if not p.is_file()]
    try:
        manifest = json.loads(MANIFEST_FILE.read_text())
    except (OSError, ValueError):
        return [MANIFEST_FILE.name]
    urls: list[str] = []
    for value in manifest.values():
        urls.extend(value if isinstance(value, list) else [value])
    return [url for url in urls if not (DIST_DIR / url.lstrip("/")).is_file()]


async def readyz(request: Request) -> Response:
    missing = _missing_files()
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


def _built_worker() -> str | None:
    """The E2EE worker's path as the build named it; None without a build."""
    try:
        worker = json.loads(MANIFEST_FILE.read_text()).get("worker")
    except (OSError, ValueError):
        return None
    return worker if isinstance(worker, str) and worker.startswith("/assets/") else None


def create_app() -> ASGIApp:
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/r/{room_id}", index),
            Route("/r/{room_id}/", index),
            Route("/assets/{name:path}", asset),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/_/errors/{status:int}", upstream_unavailable),
            Route("/{name:path}", root_file),
        ],
    )
    return Metrics(SecurityHeaders(app, build_csp(), _built_worker()))


app = create_app()


def main() -> None:
    host = os.environ.get("WEB_HOST", "127.0.0.1")
    port = int(os.environ.get("WEB_PORT", "8005"))
    if not INDEX_FILE.is_file():
        log.warning("%s; until then every page answers 503", NOT_BUILT)
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")


if __name__ == "__main__":
    main()
