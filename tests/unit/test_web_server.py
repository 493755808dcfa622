"""web/server.py without a stack: which compressed twin a request gets, and how files of a
build (a small fake web/dist) are answered: caching, codings, validators, refusals."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import pytest_asyncio

SERVER = Path(__file__).resolve().parents[2] / "web" / "server.py"


def load_server() -> ModuleType:
    # web/server.py is a script, not a package; loaded once (its metrics register globally).
    if "veche_web_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location("veche_web_server", SERVER)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["veche_web_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["veche_web_server"]


server = load_server()
BOTH = ["br", "gzip"]


@pytest.mark.parametrize(
    ("accept", "available", "expected"),
    [
        (None, BOTH, None),
        ("", BOTH, None),
        ("identity", BOTH, None),
        ("gzip, deflate, br, zstd", BOTH, "br"),
        ("gzip, deflate", BOTH, "gzip"),
        ("GZIP", BOTH, "gzip"),
        ("x-gzip", BOTH, "gzip"),
        ("br", ["gzip"], None),
        ("gzip, br", ["gzip"], "gzip"),
        ("gzip, br", [], None),
        ("br;q=0, gzip", BOTH, "gzip"),
        ("br;q=0.5, gzip;q=0.8", BOTH, "gzip"),
        ("br ; q=0.9 , gzip ; q=0.9", BOTH, "br"),
        ("*", BOTH, "br"),
        ("*;q=0", BOTH, None),
        ("*, br;q=0", BOTH, "gzip"),
        ("gzip;q=abc, br;q=0", BOTH, None),
        ("deflate, zstd", BOTH, None),
    ],
)
def test_the_coding_is_the_one_the_browser_rates_highest(accept, available, expected):
    assert server.choose_encoding(accept, available) == expected


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build as web/build.mjs leaves it: the page, the manifest, and one hashed module with
    its twins."""
    assets = tmp_path / "assets"
    assets.mkdir()
    code = b"export const answer = 42;\n" * 50
    (assets / "app-ABCDEFGH.js").write_bytes(code)
    (assets / "app-ABCDEFGH.js.gz").write_bytes(gzip.compress(code))
    (assets / "app-ABCDEFGH.js.br").write_bytes(b"pretend brotli")
    (assets / "app-ABCDEFGH.js.map").write_text("{}")
    (tmp_path / "index.html").write_text('<script type="module" src="/assets/app-ABCDEFGH.js"></script>')
    (tmp_path / "favicon.svg").write_text("<svg/>")
    manifest = {"entry": "/assets/app-ABCDEFGH.js", "preload": ["/assets/app-ABCDEFGH.js"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(server, "DIST_DIR", tmp_path)
    monkeypatch.setattr(server, "ASSETS_DIR", assets)
    monkeypatch.setattr(server, "INDEX_FILE", tmp_path / "index.html")
    monkeypatch.setattr(server, "MANIFEST_FILE", tmp_path / "manifest.json")
    return tmp_path


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=server.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
        yield client


async def test_a_hashed_file_is_immutable_and_sent_in_each_coding(dist, client):
    code = (dist / "assets" / "app-ABCDEFGH.js").read_bytes()
    etags = set()
    for accept, encoding, body in [
        ("br", "br", b"pretend brotli"),
        ("gzip", "gzip", (dist / "assets" / "app-ABCDEFGH.js.gz").read_bytes()),
        ("identity", None, code),
    ]:
        response = await client.get("/assets/app-ABCDEFGH.js", headers={"Accept-Encoding": accept})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers.get("content-encoding") == encoding
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.headers["content-length"] == str(len(body))
        assert response.headers["x-content-type-options"] == "nosniff"
        etags.add(response.headers["etag"])
    assert len(etags) == 3, "each coding is a representation of its own"


async def test_a_current_copy_gets_304(dist, client):
    first = await client.get("/assets/app-ABCDEFGH.js", headers={"Accept-Encoding": "gzip"})
    again = await client.get(
        "/assets/app-ABCDEFGH.js", headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    # The identity copy's validator does not match the gzip one.
    other = await client.get(
        "/assets/app-ABCDEFGH.js", headers={"Accept-Encoding": "br", "If-None-Match": first.headers["etag"]}
    )
    assert other.status_code == 200


@pytest.mark.parametrize("path", ["/", "/r/some-room", "/r/some-room/", "/index.html"])
async def test_the_page_is_revalidated(dist, client, path):
    response = await client.get(path, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "/assets/app-ABCDEFGH.js" in response.text


async def test_a_file_without_twins_goes_out_as_it_is(dist, client):
    response = await client.get("/favicon.svg", headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/app-ABCDEFGH.js.br",
        "/assets/app-ABCDEFGH.js.gz",
        "/assets/missing-ABCDEFGH.js",
        "/assets/sub/app-ABCDEFGH.js",
        "/assets/..%2Fmanifest.json",
        "/assets/.hidden",
        "/app.js",
        "/vendor/livekit-client.esm.mjs",
    ],
)
async def test_only_files_of_the_build_are_answered(dist, client, path):
    assert (await client.get(path)).status_code == 404


async def test_ready_only_when_every_file_of_the_manifest_is_there(dist, client):
    assert (await client.get("/readyz")).status_code == 200
    (dist / "assets" / "app-ABCDEFGH.js").unlink()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "/assets/app-ABCDEFGH.js" in response.text


async def test_without_a_build_the_page_says_so(dist, client):
    (dist / "index.html").unlink()
    response = await client.get("/")
    assert response.status_code == 503
    assert "make install" in response.text
    assert (await client.get("/readyz")).status_code == 503
    assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("host", "worker", "expected"),
    [
        ("meet.example.org", "/assets/e2ee-worker-AB12.js", "meet.example.org/assets/e2ee-worker-AB12.js"),
        ("127.0.0.1:8080", "/assets/w.js", "127.0.0.1:8080/assets/w.js"),
        ("[::1]:8080", "/assets/w.js", "[::1]:8080/assets/w.js"),
        # Nothing a Host header could smuggle into the policy: another directive, a wildcard,
        # a second source.
        ("evil.example; script-src *", "/assets/w.js", "'none'"),
        ("*", "/assets/w.js", "'none'"),
        ("a.example b.example", "/assets/w.js", "'none'"),
        ("", "/assets/w.js", "'none'"),
        (None, "/assets/w.js", "'none'"),
        ("meet.example.org", None, "'none'"),
    ],
)
def test_the_worker_source_names_exactly_the_built_worker(host, worker, expected):
    assert server.worker_source(host, worker) == expected


async def test_every_response_allows_exactly_the_built_e2ee_worker(dist):
    manifest = json.loads((dist / "manifest.json").read_text())
    manifest["worker"] = "/assets/e2ee-worker-WXYZ1234.js"
    (dist / "manifest.json").write_text(json.dumps(manifest))
    transport = httpx.ASGITransport(app=server.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://meet.example.org") as client:
        for path in ("/", "/r/0190a5b4-0000-7000-8000-000000000000", "/assets/app-ABCDEFGH.js", "/no-such"):
            csp = (await client.get(path)).headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["worker-src"] == "meet.example.org/assets/e2ee-worker-WXYZ1234.js", csp
            assert directives["script-src"] == "'self'"


async def test_without_a_built_worker_no_worker_may_start(dist, client):
    csp = (await client.get("/")).headers["content-security-policy"]
    assert "worker-src 'none'" in csp, csp
