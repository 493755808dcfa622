"""Helpers for the browser tests: headless Chromium (Debian's, never a downloaded one) driven by
Playwright's async API, and the few steps every scenario repeats (create, pre-join, chat)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Locator, Page

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE_SCRIPT = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
# What web/build.mjs built (the stack serves web/dist): the hashed URLs of the entry, its
# chunks, the room and livekit-client chunks, the stylesheet and the E2EE worker.
MANIFEST = ROOT / "web" / "dist" / "manifest.json"
TIMEOUT_MS = 15_000

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ROOM_PATH = re.compile(rf"/r/({UUID})$")
PARTICIPANT_KEY = "veche.participant_id"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

# Runs before the page's own scripts: counts every <img> that ever enters the document, so a
# test can tell "never created" from "created and removed again".
WATCH_IMAGES = """
window.__vecheImages = 0;
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== 1) continue;
      if (node.tagName === 'IMG') window.__vecheImages += 1;
      window.__vecheImages += node.querySelectorAll('img').length;
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def browser_expect() -> Any:
    """Playwright's `expect`, with the browser tests' timeout; called at a browser test module's
    import, it skips the module where Debian's Chromium or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium", allow_module_level=True)
    async_api = pytest.importorskip("playwright.async_api")
    expect = async_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    return expect


async def launch(playwright: object) -> Browser:
    return await playwright.chromium.launch(  # type: ignore[attr-defined, no-any-return]
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )


@dataclass
class Tab:
    """One browser context (its own storage, i.e. its own identity) with one page, and what the
    page did that a test may want to assert on."""

    context: BrowserContext
    page: Page
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_reports: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    responses: list[tuple[str, str, int]] = field(default_factory=list)

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    @property
    def user_messages(self) -> Locator:
        """The text of every user (non-system) chat message, in display order."""
        return self.page.locator(
            '[data-testid="chat-message"][data-type="user"] [data-testid="chat-message-content"]'
        )

    @property
    def participants(self) -> Locator:
        return self.by("participant-list").get_by_test_id("participant-item")

    @property
    def self_item(self) -> Locator:
        return self.page.locator('[data-testid="participant-item"].person-self')

    async def participant_ids(self) -> list[str]:
        return await self.participants.evaluate_all(  # type: ignore[no-any-return]
            "items => items.map(item => item.dataset.participantId)"
        )

    async def stored_participant_id(self) -> str | None:
        return await self.page.evaluate(  # type: ignore[no-any-return]
            f"() => localStorage.getItem('{PARTICIPANT_KEY}')"
        )

    def room_id(self) -> str:
        match = ROOM_PATH.search(self.page.url)
        assert match, f"not on a room page: {self.page.url}"
        return match.group(1)

    async def images_ever_added(self) -> int:
        return await self.page.evaluate("() => window.__vecheImages")  # type: ignore[no-any-return]

    async def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path


async def open_tab(
    browser: Browser,
    base_url: str,
    locale: str = "en-US",
    viewport: dict[str, int] | None = None,
    *,
    bypass_csp: bool = False,
) -> Tab:
    """`bypass_csp` lets a test add a script of its own (axe-core) to the page."""
    context = await browser.new_context(
        base_url=base_url,
        locale=locale,
        bypass_csp=bypass_csp,
        permissions=["camera", "microphone", "clipboard-read", "clipboard-write"],
        viewport=viewport or DESKTOP,
        is_mobile=viewport == PHONE,
        has_touch=viewport == PHONE,
    )
    await context.add_init_script(WATCH_IMAGES)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = await context.new_page()
    tab = Tab(context=context, page=page)

    async def on_dialog(dialog: object) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")  # type: ignore[attr-defined]
        await dialog.dismiss()  # type: ignore[attr-defined]

    def on_console(message: object) -> None:
        text = message.text  # type: ignore[attr-defined]
        if "Content Security Policy" in text:
            tab.csp_reports.append(text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on("websocket", lambda socket: tab.websockets.append(socket.url))
    page.on(
        "response",
        lambda response: tab.responses.append((response.request.method, response.url, response.status)),
    )
    return tab


async def source_module(tab: Tab, name: str) -> str:
    """The address at which the page can import() web/static/`name` itself: the server sends only
    the bundle, whose modules have no address of their own. For modules that import nothing
    (i18n.js); the page's CSP allows it, being of the page's origin. The path to import."""
    path = f"/__source/{name}"
    source = ROOT / "web" / "static" / name

    async def fulfill(route: object) -> None:
        await route.fulfill(path=str(source), content_type="text/javascript")  # type: ignore[attr-defined]

    await tab.page.route(f"**{path}", fulfill)
    return path


async def pass_prejoin(tab: Tab, name: str | None = None) -> None:
    """The pre-join step (every visit to /r/{id} has one), then waits until the meeting is live:
    the layout is shown and the chat socket says `ready`."""
    from playwright.async_api import expect

    await expect(tab.by("prejoin")).to_be_visible()
    if name is not None:
        await tab.by("prejoin-name").fill(name)
    await tab.by("prejoin-submit").click()
    await expect(tab.by("room")).to_be_visible()
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")


async def create_room(
    tab: Tab, title: str, name: str, *, description: str | None = None, max_participants: int | None = None
) -> str:
    """From the home page: fills the create form, lands on /r/{id}, passes pre-join; the room id."""
    from playwright.async_api import expect

    await tab.page.goto("/")
    await tab.by("create-title").fill(title)
    if description is not None:
        await tab.by("create-description").fill(description)
    if max_participants is not None:
        await tab.by("create-max").fill(str(max_participants))
    await tab.by("create-name").fill(name)
    await tab.by("create-submit").click()
    await expect(tab.page).to_have_url(ROOM_PATH)
    await pass_prejoin(tab)
    return tab.room_id()


async def join_by_link(tab: Tab, link: str, name: str) -> None:
    await tab.page.goto(link)
    await pass_prejoin(tab, name)


async def confirm(tab: Tab, *, ok: bool = True) -> None:
    """Answers the page's confirmation dialog (End for all, Remove, leaving the meeting)."""
    from playwright.async_api import expect

    dialog = tab.by("confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("confirm-ok" if ok else "confirm-cancel").click()
    await expect(dialog).to_have_count(0)


async def send_chat(tab: Tab, text: str) -> None:
    """Types into the chat box and sends; waits until the box is empty again (accepted)."""
    from playwright.async_api import expect

    await tab.by("chat-input").fill(text)
    await tab.by("chat-send").click()
    await expect(tab.by("chat-input")).to_have_value("")


# --- video tiles ------------------------------------------------------------------------

# Frames decoded so far by the <video> of one tile (0 while it has no picture).
DECODED = """(tile) => {
  const video = tile.querySelector('video');
  if (!video || !video.videoWidth) return 0;
  return video.getVideoPlaybackQuality().totalVideoFrames;
}"""


async def public_id(tab: Tab) -> str:
    """The public id of the tab's own participant, from its entry in the list."""
    value = await tab.self_item.get_attribute("data-participant-id")
    assert value
    return value


def camera_tile(tab: Tab, identity: str) -> Locator:
    return tab.page.locator(f'[data-testid="video-tile"][data-identity="{identity}"]:not(.tile-screen)')


async def decoding(tab: Tab, tile: Locator) -> int:
    """Waits until the tile's video has a size and its decoded frame count grows; the count."""
    from playwright.async_api import expect

    await expect(tile.locator("video")).to_have_count(1)
    first = later = 0
    for _ in range(150):
        first = await tile.evaluate(DECODED)
        if first:
            break
        await tab.page.wait_for_timeout(100)
    assert first > 0, "the remote video never got a size"
    for _ in range(100):
        later = await tile.evaluate(DECODED)
        if later > first + 10:
            return int(later)
        await tab.page.wait_for_timeout(100)
    raise AssertionError(f"decoded frames do not grow: {first} → {later}")


# --- accessibility ----------------------------------------------------------------------

# Runs axe-core on the whole document; each violation as "rule (impact): selector: summary".
RUN_AXE = """async () => {
  const result = await window.axe.run(document, { resultTypes: ['violations'] });
  return result.violations.flatMap((v) => v.nodes.map(
    (n) => `${v.id} (${v.impact}): ${n.target.join(' ')}: ${n.failureSummary.replace(/\\s+/g, ' ')}`));
}"""


async def axe_violations(tab: Tab) -> list[str]:
    """axe-core's violations on the page as it is now (the tab needs `bypass_csp=True`: the
    page's CSP allows no script that is not its own)."""
    if not await tab.page.evaluate("() => Boolean(window.axe)"):
        await tab.page.add_script_tag(path=str(AXE_SCRIPT))
    return await tab.page.evaluate(RUN_AXE)  # type: ignore[no-any-return]


OpenTab = Callable[..., Awaitable[Tab]]


async def api_room(gw: object, title: str, **fields: object) -> tuple[str, str]:
    """A room created over the API by somebody who never opens it; (room id, its creator)."""
    from tests.support import hdr, new_pid

    creator = new_pid()
    created = await gw.post(  # type: ignore[attr-defined]
        "/api/v1/rooms", json={"title": title, **fields}, headers=hdr(creator)
    )
    assert created.status_code == 201, created.text
    return created.json()["room"]["id"], creator


async def api_join(gw: object, room_id: str, name: str) -> str:
    """Somebody joins over the API; their secret participant id."""
    from tests.support import hdr, new_pid

    pid = new_pid()
    joined = await gw.post(  # type: ignore[attr-defined]
        f"/api/v1/rooms/{room_id}/join", json={"display_name": name}, headers=hdr(pid)
    )
    assert joined.status_code == 201, joined.text
    return pid
