"""A lean page (issue #18), through the gateway of the e2e stack: the home page downloads little
JS, livekit-client comes only with Join, hashed files are cached for good, and every file goes
out compressed in the coding the browser asks for.

The sizes are what web/build.mjs must stay under; the names come from the manifest it writes
(web/dist/manifest.json)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.e2e.support.browser import MANIFEST, ROOT, Tab, api_room, browser_expect, pass_prejoin

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()

DIST = ROOT / "web" / "dist"
# What the home page may download of JS, compressed (the entry and the chunks it imports).
HOME_JS_BUDGET = 40 * 1024
# livekit-client, compressed: most of the client's code, and fetched only by a meeting.
LIVEKIT_BUDGET = 350 * 1024
YEAR = "max-age=31536000"

# Every resource of the page as the Resource Timing API saw it: path, bytes on the wire
# (0: from the browser's cache), body as sent (compressed) and as decoded.
RESOURCES = """() => performance.getEntriesByType('resource').map((e) => ({
  path: new URL(e.name).pathname, transfer: e.transferSize, encoded: e.encodedBodySize,
  decoded: e.decodedBodySize }))"""
# A meeting page makes many requests; the default buffer (250 entries) must not drop the chunk.
BIG_TIMING_BUFFER = "performance.setResourceTimingBufferSize(5000);"


def manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text())  # type: ignore[no-any-return]


def js(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["path"].endswith(".js")]


async def resources(tab: Tab) -> list[dict[str, Any]]:
    return await tab.page.evaluate(RESOURCES)  # type: ignore[no-any-return]


async def open_home(tab: Tab, address: str = "/") -> None:
    await tab.page.goto(address)
    await expect(tab.by("create-title")).to_be_visible()
    await tab.page.wait_for_load_state("networkidle")


def requested(tab: Tab, url: str) -> bool:
    return any(seen.endswith(url) for seen in tab.requests)


# --- in the browser ---------------------------------------------------------------------


async def test_the_home_page_loads_little_js_and_no_room_or_livekit_code(tabs):
    tab = await tabs()
    scripts: list[tuple[str, str]] = []
    tab.page.on(
        "response",
        lambda r: (
            scripts.append((r.url, r.headers.get("content-encoding", "")))
            if "javascript" in r.headers.get("content-type", "")
            else None
        ),
    )
    await open_home(tab)
    loaded = js(await resources(tab))
    built = manifest()
    assert {r["path"] for r in loaded} == set(built["preload"]), loaded
    total = sum(r["encoded"] for r in loaded)
    assert 0 < total <= HOME_JS_BUDGET, f"home page JS: {total} bytes compressed, budget {HOME_JS_BUDGET}"
    # Compressed on the wire: the body as sent is smaller than the code it decodes to.
    assert all(r["encoded"] < r["decoded"] for r in loaded), loaded
    assert scripts and all(encoding in ("br", "gzip") for _, encoding in scripts), scripts
    assert not requested(tab, built["room"]), "the home page fetched the room's code"
    assert not requested(tab, built["livekit"]), "the home page fetched livekit-client"
    assert not tab.page_errors, tab.page_errors
    assert not tab.csp_reports, tab.csp_reports


async def test_livekit_comes_with_join_not_before(tabs, gw):
    room_id, _ = await api_room(gw, "Lean")
    tab = await tabs()
    await tab.context.add_init_script(BIG_TIMING_BUFFER)
    built = manifest()
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin")).to_be_visible()
    await tab.page.wait_for_load_state("networkidle")
    assert requested(tab, built["room"]), "the room page runs on its own chunk"
    assert not requested(tab, built["livekit"]), "pre-join fetched livekit-client"

    async with tab.page.expect_response(lambda r: r.url.endswith(built["livekit"])) as arrival:
        await pass_prejoin(tab, "Lena")
    response = await arrival.value
    await response.finished()
    assert response.status == 200
    assert response.headers.get("content-encoding") in ("br", "gzip"), response.headers
    chunk = [r for r in await resources(tab) if r["path"] == built["livekit"]]
    assert chunk, "the chunk is missing from the page's resource timing"
    size = chunk[0]["encoded"]
    assert 0 < size <= LIVEKIT_BUDGET, f"livekit-client: {size} bytes compressed, budget {LIVEKIT_BUDGET}"
    assert size < chunk[0]["decoded"]
    await expect(tab.by("video-stage")).to_be_visible()
    assert not tab.page_errors, tab.page_errors
    assert not tab.csp_reports, tab.csp_reports


async def test_a_second_visit_takes_the_hashed_files_from_the_cache(tabs):
    tab = await tabs()
    await open_home(tab)
    first = [r for r in await resources(tab) if r["path"].startswith("/assets/")]
    assert first and all(r["transfer"] > 0 for r in first), first

    # Another address of the home page: a navigation of its own, not a reload.
    await open_home(tab, "/?again")
    again = [r for r in await resources(tab) if r["path"].startswith("/assets/")]
    assert {r["path"] for r in again} >= set(manifest()["preload"]) | {manifest()["css"]}, again
    # transferSize 0: served by the browser's cache, not even a revalidation went out.
    assert all(r["transfer"] == 0 for r in again), again


# --- over HTTP --------------------------------------------------------------------------


def decode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        # Python's standard library has no brotli; Node (which builds the client) has.
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is needed to decode brotli")
        decoded = subprocess.run(
            [
                node,
                "-e",
                "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))",
            ],
            input=body,
            capture_output=True,
            check=True,
        )
        return decoded.stdout
    assert encoding is None, encoding
    return body


async def fetch_raw(gw: Any, path: str, accept: str | None) -> tuple[Any, bytes]:
    """The response and its body as sent (httpx would decode it otherwise)."""
    headers = {"Accept-Encoding": accept if accept is not None else ""}
    async with gw.stream("GET", path, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


@pytest.mark.parametrize("name", ["entry", "css", "livekit", "worker", "room"])
async def test_hashed_files_are_cached_for_a_year(gw, name):
    response = await gw.get(manifest()[name])
    assert response.status_code == 200
    cache = response.headers["cache-control"]
    assert "public" in cache and YEAR in cache and "immutable" in cache, cache
    assert response.headers["vary"].lower() == "accept-encoding"
    assert response.headers["x-content-type-options"] == "nosniff"
    # Chunks are scripts of the page's own origin; the one worker allowed is the E2EE worker.
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp, csp
    assert f"worker-src {response.url.netloc.decode()}{manifest()['worker']};" in csp + ";", csp


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("identity", None),
        (None, None),
    ],
)
@pytest.mark.parametrize("name", ["livekit", "css"])
async def test_files_go_out_in_the_coding_asked_for(gw, name, accept, expected):
    path = manifest()[name]
    response, body = await fetch_raw(gw, path, accept)
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == expected, response.headers
    assert int(response.headers["content-length"]) == len(body)
    assert response.headers["vary"].lower() == "accept-encoding"
    assert decode(body, expected) == (DIST / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize("path", ["/", "/r/00000000-0000-4000-8000-000000000000"])
async def test_the_page_is_revalidated_and_names_the_hashed_files(gw, path):
    response, body = await fetch_raw(gw, path, "gzip")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["vary"].lower() == "accept-encoding"
    assert response.headers["content-encoding"] == "gzip"
    page = decode(body, "gzip").decode()
    built = manifest()
    assert f'<script type="module" src="{built["entry"]}">' in page
    assert f'<link rel="modulepreload" href="{built["entry"]}">' in page
    assert f'<link rel="stylesheet" href="{built["css"]}">' in page
    # Revalidation: the same page again costs a 304 and no body.
    again = await gw.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "path", ["/app.js", "/i18n.js", "/vendor/livekit-client.esm.mjs", "/assets/nothing-ABCDEFGH.js"]
)
async def test_only_the_build_is_served(gw, path):
    response = await gw.get(path)
    assert response.status_code == 404


async def test_the_web_server_is_ready_when_the_build_is_complete(stack):
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.ports['web']}", timeout=10) as web:
        response = await web.get("/readyz")
    assert response.status_code == 200, response.text
