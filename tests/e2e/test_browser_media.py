"""Live video between two Chromium pages through the real LiveKit server, with Chromium's fake
camera and microphone: each page decodes the other's video, a screen share reaches the other
side, and a host's mute shows on both. Screenshots of the call go to test-artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.support.browser import (
    Tab,
    browser_expect,
    camera_tile,
    create_room,
    decoding,
    join_by_link,
    open_tab,
    public_id,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


expect = browser_expect()


@pytest_asyncio.fixture(loop_scope="session")
async def call(browser: object, stack: object) -> AsyncIterator[tuple[Tab, Tab]]:
    host = await open_tab(browser, stack.url)  # type: ignore[arg-type, attr-defined]
    guest = await open_tab(browser, stack.url)  # type: ignore[arg-type, attr-defined]
    try:
        await create_room(host, "Video call", "Anna")
        await join_by_link(guest, await host.by("room-link").input_value(), "Boris")
        yield host, guest
    finally:
        for tab in (host, guest):
            await tab.context.close()


async def test_two_pages_see_each_other_share_a_screen_and_see_a_host_mute(call):
    host, guest = call
    host_id, guest_id = await public_id(host), await public_id(guest)

    # Each page shows the other's camera, live.
    assert await decoding(host, camera_tile(host, guest_id)) > 0
    assert await decoding(guest, camera_tile(guest, host_id)) > 0
    for tab in (host, guest):
        await expect(tab.page.locator('[data-testid="video-tile"]')).to_have_count(2)
        await expect(tab.by("video-unavailable")).to_have_count(0)
    await host.screenshot("call-two-tiles-host")
    await guest.screenshot("call-two-tiles-guest")

    # A screen share appears on the other side as a tile of its own.
    await guest.by("toggle-screen").click()
    screen = host.page.locator(f'[data-testid="video-tile"].tile-screen[data-identity="{guest_id}"]')
    await expect(screen).to_have_count(1)
    assert await decoding(host, screen) > 0
    await host.screenshot("call-screen-share")
    await guest.by("toggle-screen").click()
    await expect(screen).to_have_count(0)

    # The host mutes the guest's microphone: both pages show it muted.
    await expect(camera_tile(host, guest_id)).to_have_attribute("data-mic", "on")
    guest_item = host.page.locator(f'[data-testid="participant-item"][data-participant-id="{guest_id}"]')
    await guest_item.get_by_test_id("mute-audio-button").click()
    await expect(camera_tile(host, guest_id)).to_have_attribute("data-mic", "off")
    await expect(camera_tile(guest, guest_id)).to_have_attribute("data-mic", "off")
    await expect(guest.by("toggle-mic")).to_have_attribute("aria-pressed", "false")
    await host.screenshot("call-guest-muted")
    for tab in (host, guest):
        assert not tab.page_errors, tab.page_errors
        assert not tab.csp_reports, tab.csp_reports
