"""The meeting stage as people of other meeting apps expect it (issue #18), in a real headless
Chromium through the gateway and the run's real LiveKit server, with Chromium's fake camera,
microphone and screen: a screen share takes the stage and the cameras go to a strip, any tile
can be pinned (by mouse or keyboard) and shown full screen, every tile shows the connection
quality LiveKit measures, and one banner says when video or chat is reconnecting."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import pytest

from tests.e2e.support.browser import (
    PHONE,
    Tab,
    axe_violations,
    browser_expect,
    camera_tile,
    create_room,
    decoding,
    join_by_link,
    public_id,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()

TILES = '[data-testid="video-tile"]'
CAMERAS = '[data-testid="video-tile"]:not(.tile-screen)'
# LiveKit measures a participant's connection every few seconds; the first value takes a while.
QUALITY_MS = 40_000
# After a cut, LiveKit tries again on its own schedule (up to several seconds apart), then the
# stage with a fresh token (web/static/media.js, RECONNECT_*).
BACK_MS = 60_000


async def meeting(host: Tab, *guests: tuple[Tab, str]) -> None:
    """`host` creates a meeting as Anna, each guest joins by its link; every page then shows a
    camera tile for everybody."""
    await create_room(host, "Stage", "Anna")
    link = await host.by("room-link").input_value()
    for tab, name in guests:
        await join_by_link(tab, link, name)
    for tab in (host, *(tab for tab, _ in guests)):
        await expect(tab.page.locator(CAMERAS)).to_have_count(1 + len(guests))


async def area(locator: object) -> float:
    box = await locator.bounding_box()  # type: ignore[attr-defined]
    assert box, "not rendered"
    return float(box["width"] * box["height"])


async def object_fit(tile: object) -> str:
    return await tile.locator("video").evaluate("v => getComputedStyle(v).objectFit")  # type: ignore[attr-defined, no-any-return]


async def assert_grid(tab: Tab, count: int) -> None:
    """The plain grid: no large tile, no strip, every camera tile the same size."""
    await expect(tab.by("video-grid")).to_have_attribute("data-layout", "grid")
    await expect(tab.by("stage-main")).to_have_count(0)
    await expect(tab.by("stage-strip")).to_have_count(0)
    tiles = tab.page.locator(CAMERAS)
    await expect(tiles).to_have_count(count)
    sizes = [await area(tiles.nth(i)) for i in range(count)]
    assert max(sizes) < 1.2 * min(sizes), f"grid tiles differ in size: {sizes}"


async def assert_large(tab: Tab, large: object, strip_count: int) -> None:
    """`large` is the one tile of the large area, the others are in the strip and far smaller."""
    main = tab.by("stage-main").locator(TILES)
    await expect(main).to_have_count(1)
    assert await main.evaluate("(el, other) => el === other", await large.element_handle())  # type: ignore[attr-defined]
    strip = tab.by("stage-strip").locator(TILES)
    await expect(strip).to_have_count(strip_count)
    big = await area(large)
    for i in range(strip_count):
        small = await area(strip.nth(i))
        assert big > 4 * small, f"the large tile ({big}) is not much larger than a strip tile ({small})"
    assert await object_fit(large) == "contain"


# --- presenter layout -----------------------------------------------------------------------


async def test_a_screen_share_takes_the_stage_and_the_cameras_go_to_the_strip(tabs):
    anna, boris, vera = await tabs(axe=True), await tabs(), await tabs(viewport=PHONE)
    await meeting(anna, (boris, "Boris"), (vera, "Vera"))
    boris_id = await public_id(boris)
    for tab in (anna, vera):
        await assert_grid(tab, 3)

    await boris.by("toggle-screen").click()
    for tab in (anna, boris, vera):
        await expect(tab.by("video-grid")).to_have_attribute("data-layout", "presenter")
        share = tab.page.locator(f'{TILES}.tile-screen[data-identity="{boris_id}"]')
        await expect(share).to_have_count(1)
        await assert_large(tab, share, 3)
        await expect(tab.by("stage-strip").locator(CAMERAS)).to_have_count(3)
        await expect(tab.by("stage-unpin")).to_have_count(0)
    for tab in (anna, vera):
        share = tab.page.locator(f'{TILES}.tile-screen[data-identity="{boris_id}"]')
        assert await decoding(tab, share) > 0
    # Grid camera tiles may crop; the share never does, it is shown whole.
    assert await object_fit(camera_tile(anna, boris_id)) == "cover"

    # A wide window has the strip beside the share, a phone has it in a row below.
    main, strip = await anna.by("stage-main").bounding_box(), await anna.by("stage-strip").bounding_box()
    assert main and strip
    assert strip["x"] >= main["x"] + main["width"] - 1, (main, strip)
    main, strip = await vera.by("stage-main").bounding_box(), await vera.by("stage-strip").bounding_box()
    assert main and strip
    assert strip["y"] >= main["y"] + main["height"] - 1, (main, strip)
    # The names in the small tiles stay inside them.
    for i in range(3):
        tile = vera.by("stage-strip").locator(TILES).nth(i)
        box, label = await tile.bounding_box(), await tile.locator(".tile-label").bounding_box()
        assert box and label
        assert label["x"] >= box["x"] and label["x"] + label["width"] <= box["x"] + box["width"] + 0.5
        assert label["y"] >= box["y"] and label["y"] + label["height"] <= box["y"] + box["height"] + 0.5
    await anna.screenshot("stage-presenter")
    await vera.screenshot("stage-presenter-phone")
    assert await axe_violations(anna) == [], "presenter layout"

    # The share ends: back to the grid.
    await boris.by("toggle-screen").click()
    for tab in (anna, boris, vera):
        await expect(tab.page.locator(".tile-screen")).to_have_count(0)
        await assert_grid(tab, 3)
    for tab in (anna, boris, vera):
        assert not tab.page_errors, tab.page_errors
        assert not tab.csp_reports, tab.csp_reports


# --- pinning --------------------------------------------------------------------------------


async def test_a_pinned_tile_is_the_large_one_until_unpinned_or_gone(tabs):
    anna, boris, vera = await tabs(axe=True), await tabs(), await tabs()
    await meeting(anna, (boris, "Boris"), (vera, "Vera"))
    boris_id, vera_id = await public_id(boris), await public_id(vera)
    boris_tile, vera_tile = camera_tile(anna, boris_id), camera_tile(anna, vera_id)

    # Every tile has a pin button named after its person; one's own is named after oneself.
    for name in ("Anna", "Boris", "Vera"):
        await expect(anna.page.get_by_role("button", name=f"Pin {name}", exact=True)).to_have_count(1)
    pin_boris = boris_tile.get_by_role("button", name="Pin Boris", exact=True)
    await expect(pin_boris).to_have_attribute("aria-pressed", "false")

    # A click anywhere on the tile pins it.
    await boris_tile.click()
    await expect(anna.by("video-grid")).to_have_attribute("data-layout", "pinned")
    await assert_large(anna, boris_tile, 2)
    await expect(pin_boris).to_have_attribute("aria-pressed", "true")
    assert await decoding(anna, boris_tile) > 0
    # Only this page's stage changed.
    await assert_grid(boris, 3)
    await anna.screenshot("stage-pinned")
    assert await axe_violations(anna) == [], "pinned layout"

    # Clicking it again unpins it.
    await boris_tile.click()
    await assert_grid(anna, 3)
    await expect(pin_boris).to_have_attribute("aria-pressed", "false")

    # From the keyboard: Enter on a tile pins it, and the focus stays on it as it moves.
    pin_vera = vera_tile.get_by_role("button", name="Pin Vera", exact=True)
    await pin_vera.focus()
    await anna.page.keyboard.press("Enter")
    await expect(anna.by("video-grid")).to_have_attribute("data-layout", "pinned")
    await assert_large(anna, vera_tile, 2)
    await expect(pin_vera).to_be_focused()
    # Space on another tile pins that one instead.
    await pin_boris.focus()
    await anna.page.keyboard.press("Space")
    await assert_large(anna, boris_tile, 2)
    await expect(pin_boris).to_be_focused()
    await expect(pin_vera).to_have_attribute("aria-pressed", "false")
    # The Unpin button brings the grid back, and the focus to the tile that was pinned.
    unpin = anna.page.get_by_role("button", name="Unpin", exact=True)
    await expect(unpin).to_have_attribute("data-testid", "stage-unpin")
    await unpin.click()
    await assert_grid(anna, 3)
    await expect(pin_boris).to_be_focused()

    # A pinned person who leaves frees the stage.
    await vera_tile.click()
    await assert_large(anna, vera_tile, 2)
    await vera.by("leave-button").click()
    await expect(vera.page).to_have_url(re.compile(r"/$"))
    await assert_grid(anna, 2)
    for tab in (anna, boris):
        assert not tab.page_errors, tab.page_errors


async def test_a_tile_goes_full_screen_and_the_buttons_speak_russian(tabs):
    anna, boris = await tabs(), await tabs("ru-RU")
    await meeting(anna, (boris, "Борис"))
    boris_id, anna_id = await public_id(boris), await public_id(anna)
    tile = camera_tile(anna, boris_id)
    assert await decoding(anna, tile) > 0

    full = tile.get_by_role("button", name="Show Борис full screen", exact=True)
    await expect(full).to_have_attribute("aria-pressed", "false")
    await full.click()
    await anna.page.wait_for_function(
        "(id) => document.fullscreenElement?.dataset.identity === id", arg=boris_id
    )
    await expect(full).to_have_attribute("aria-pressed", "true")
    assert await object_fit(tile) == "contain"
    box = await tile.bounding_box()
    viewport = anna.page.viewport_size
    assert box and viewport and box["width"] >= viewport["width"] - 1, (box, viewport)
    await full.click()
    await anna.page.wait_for_function("() => document.fullscreenElement === null")
    await expect(full).to_have_attribute("aria-pressed", "false")

    # The same buttons in Russian, named after the person too.
    theirs = camera_tile(boris, anna_id)
    await expect(theirs.get_by_role("button", name="Закрепить: Anna", exact=True)).to_have_count(1)
    await expect(theirs.get_by_role("button", name="На весь экран: Anna", exact=True)).to_have_count(1)
    await theirs.click()
    await expect(boris.page.get_by_role("button", name="Открепить", exact=True)).to_be_visible()
    assert not anna.page_errors, anna.page_errors


# --- connection quality ---------------------------------------------------------------------


async def test_every_tile_shows_the_connection_quality_livekit_measures(tabs):
    anna, boris, vera = await tabs(), await tabs(), await tabs("ru-RU")
    await meeting(anna, (boris, "Boris"), (vera, "Vera"))
    people = [(tab, await public_id(tab)) for tab in (anna, boris, vera)]
    measured = re.compile(r"^(excellent|good|poor|lost)$")
    for tab, _ in people:
        for other, identity in people:
            if other is tab:
                continue
            mark = camera_tile(tab, identity).get_by_test_id("tile-quality")
            await expect(mark).to_have_attribute("data-quality", measured, timeout=QUALITY_MS)
            await expect(mark).to_be_visible()
            value = await mark.get_attribute("data-quality")
            words = {"excellent": "отличная", "good": "хорошая", "poor": "плохая", "lost": "потеряна"}
            said = f"Связь: {words[value]}" if tab is vera else f"Connection: {value}"
            await expect(mark).to_have_attribute("title", said)
            # Screen readers hear it with the name, after the microphone state.
            await expect(mark.locator(".sr-only")).to_have_text(f", {said}")
    # A share carries the quality of its sharer.
    await boris.by("toggle-screen").click()
    share = anna.page.locator(f'{TILES}.tile-screen[data-identity="{people[1][1]}"]')
    await expect(share.get_by_test_id("tile-quality")).to_have_attribute("data-quality", measured)


# --- the reconnecting banner ----------------------------------------------------------------


async def test_one_banner_says_whether_video_or_chat_is_reconnecting(tabs):
    anna, boris = await tabs(), await tabs()
    # Boris's page reaches the chat socket and LiveKit through routes the test can cut; nobody
    # else's connections, nor the servers, are touched.
    through_open = {"chat": asyncio.Event(), "video": asyncio.Event()}
    for gate in through_open.values():
        gate.set()
    sockets: dict[str, list[object]] = {"chat": [], "video": []}

    def through(kind: str) -> Callable[[object], Awaitable[None]]:
        async def route(ws: object) -> None:
            # A cut chat socket is refused outright, so the page keeps trying. LiveKit's attempts
            # are held instead, as on a stalled network: livekit-client waits for a refused
            # attempt's socket to close before its next one, which a route never delivers.
            if kind == "chat" and not through_open[kind].is_set():
                await ws.close(code=1011, reason="cut by the test")  # type: ignore[attr-defined]
                return
            await through_open[kind].wait()
            ws.connect_to_server()  # type: ignore[attr-defined]
            sockets[kind].append(ws)

        return route

    await boris.page.route_web_socket("**/ws/chat/**", through("chat"))
    # LiveKit's signal connection (/rtc), wherever the media token says LiveKit is.
    await boris.page.route_web_socket(re.compile(r"/rtc(/|\?|$)"), through("video"))
    await meeting(anna, (boris, "Boris"))
    assert sockets["chat"] and sockets["video"], sockets
    anna_id = await public_id(anna)
    assert await decoding(boris, camera_tile(boris, anna_id)) > 0

    banner = boris.by("reconnect-banner")
    await expect(banner).to_have_attribute("role", "status")
    await expect(banner).to_be_hidden()
    await expect(banner).to_have_text("")

    # The chat socket drops: the banner says so (and the stage has no notice of its own).
    through_open["chat"].clear()
    await sockets["chat"][-1].close(code=1011, reason="cut by the test")  # type: ignore[attr-defined]
    await expect(banner).to_be_visible()
    await expect(banner).to_have_text("Reconnecting chat…")
    await expect(banner).to_have_attribute("data-chat", "reconnecting")
    await expect(banner).to_have_attribute("data-video", "ok")

    # LiveKit's connection drops too: one banner for both.
    through_open["video"].clear()
    await sockets["video"][-1].close(code=1011, reason="cut by the test")  # type: ignore[attr-defined]
    await expect(banner).to_have_text("Reconnecting video and chat…")
    await expect(banner).to_have_attribute("data-video", "reconnecting")
    await expect(boris.by("video-stage").locator(".stage-notice:not([hidden])")).to_have_count(0)
    await expect(boris.page.get_by_role("status").filter(has_text="Reconnecting")).to_have_count(1)
    await boris.screenshot("stage-reconnecting")

    # The chat is back: the banner is about the video only.
    through_open["chat"].set()
    await boris.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    await expect(boris.by("chat-status")).to_have_attribute("data-state", "ready", timeout=BACK_MS)
    await expect(banner).to_have_text("Reconnecting video…")
    await expect(banner).to_have_attribute("data-chat", "ok")

    # The video is back: the banner is gone, and Anna's camera plays again.
    through_open["video"].set()
    await expect(banner).to_have_attribute("data-video", "ok", timeout=BACK_MS)
    await expect(banner).to_be_hidden()
    await expect(banner).to_have_text("")
    assert await decoding(boris, camera_tile(boris, anna_id)) > 0
    assert not boris.page_errors, boris.page_errors
