"""Room controls in the web client (issue #17), each in a real headless Chromium through the
gateway of the e2e stack: the lobby from both sides, lock, co-hosts and raised hands."""

from __future__ import annotations

import pytest

from tests.e2e.support.browser import (
    Tab,
    browser_expect,
    create_room,
    join_by_link,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()


# Counts the tones the page starts (the knock chime), before the page's own scripts run.
COUNT_TONES = """
window.__vecheTones = 0;
const original = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__vecheTones += 1;
  return original.call(this);
};
"""
# The lobby's join is repeated every 3 s; a margin for a busy machine.
ADMITTED_MS = 12_000


def item(tab: Tab, name: str):  # type: ignore[no-untyped-def]
    return tab.participants.filter(has_text=name)


async def public_id(tab: Tab) -> str:
    value = await tab.self_item.get_attribute("data-participant-id")
    assert value
    return value


async def knock(tab: Tab, link: str, name: str) -> None:
    """Opens the link, passes pre-join, and lands in the waiting room."""
    await tab.page.goto(link)
    await expect(tab.by("prejoin")).to_be_visible()
    await tab.by("prejoin-name").fill(name)
    await tab.by("prejoin-submit").click()
    await expect(tab.by("lobby-waiting")).to_be_visible()
    await expect(tab.by("lobby-waiting")).to_contain_text("Waiting for the host to let you in")


async def switch_on(tab: Tab, testid: str, on: bool = True) -> None:
    """Opens the room settings (when closed) and sets a switch."""
    if await tab.by("room-settings").is_hidden():
        await tab.by("room-settings-button").click()
    switch = tab.by(testid)
    if (await switch.get_attribute("aria-checked")) != ("true" if on else "false"):
        await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "true" if on else "false")


async def test_lobby_a_host_admits_one_knock_and_denies_another(tabs):
    host = await tabs()
    await host.context.add_init_script(COUNT_TONES)
    await create_room(host, "Lobby", "Anna")
    link = await host.by("room-link").input_value()
    await switch_on(host, "setting-lobby")
    await expect(host.by("room-lobby")).to_be_visible()
    # No request yet: no notice, no count.
    await expect(host.by("lobby-panel")).to_be_hidden()

    boris = await tabs()
    await knock(boris, link, "Boris")
    request = host.by("lobby-request")
    await expect(request).to_have_count(1)
    await expect(request).to_contain_text("Boris wants to join")
    await expect(host.by("lobby-badge")).to_have_text("1")
    await expect(host.by("lobby-badge")).to_have_attribute("aria-label", "1 person is waiting to join")
    tones = await host.page.evaluate("() => window.__vecheTones")
    assert tones >= 1, "no chime for the knock"
    # The chime can be switched off; the next knock is silent.
    await switch_on(host, "setting-sound", on=False)

    carol = await tabs()
    await knock(carol, link, "Carol")
    await expect(request).to_have_count(2)
    await expect(host.by("lobby-badge")).to_have_text("2")
    assert await host.page.evaluate("() => window.__vecheTones") == tones
    await host.screenshot("lobby-host-two-requests")

    # Admit Boris: his page finds out by itself (the repeated join) and opens the meeting.
    await request.filter(has_text="Boris").get_by_role("button", name="Admit Boris").click()
    await expect(request).to_have_count(1)
    await expect(host.by("lobby-badge")).to_have_text("1")
    await expect(boris.by("room")).to_be_visible(timeout=ADMITTED_MS)
    await expect(boris.by("chat-status")).to_have_attribute("data-state", "ready")
    await expect(item(host, "Boris")).to_have_count(1)
    await expect(item(boris, "Anna")).to_have_count(1)
    # A participant sees the room's state, but has no settings and gets no knocks.
    await expect(boris.by("room-lobby")).to_be_visible()
    await expect(boris.by("room-settings-button")).to_be_hidden()
    await expect(boris.by("lobby-panel")).to_be_hidden()

    # Deny Carol: her page says so, for good.
    await request.get_by_role("button", name="Deny Carol").click()
    await expect(host.by("lobby-panel")).to_be_hidden()
    await expect(carol.by("screen-lobby-denied")).to_be_visible(timeout=ADMITTED_MS)
    await expect(carol.by("screen-lobby-denied")).to_contain_text("The host did not let you in")
    await carol.screenshot("lobby-denied")
    await expect(item(host, "Carol")).to_have_count(0)
    for tab in (host, boris, carol):
        assert not tab.page_errors, tab.page_errors
        assert not tab.csp_reports, tab.csp_reports


async def test_a_locked_room_refuses_a_newcomer_and_every_member_sees_the_lock(tabs):
    host = await tabs()
    await create_room(host, "Locked", "Anna")
    link = await host.by("room-link").input_value()
    guest = await tabs()
    await join_by_link(guest, link, "Boris")
    await expect(guest.by("room-locked")).to_be_hidden()

    await switch_on(host, "setting-locked")
    # room.updated reaches every member.
    await expect(host.by("room-locked")).to_be_visible()
    await expect(guest.by("room-locked")).to_be_visible()

    newcomer = await tabs()
    await newcomer.page.goto(link)
    await expect(newcomer.by("prejoin-locked")).to_contain_text("This meeting is locked")
    await newcomer.by("prejoin-name").fill("Carol")
    await newcomer.by("prejoin-submit").click()
    await expect(newcomer.by("prejoin-error")).to_contain_text("This meeting is locked")
    await expect(newcomer.by("prejoin")).to_be_visible()
    await newcomer.screenshot("prejoin-locked")

    # Unlocked: the same Join goes in.
    await switch_on(host, "setting-locked", on=False)
    await expect(guest.by("room-locked")).to_be_hidden()
    await newcomer.by("prejoin-submit").click()
    await expect(newcomer.by("room")).to_be_visible()
    await expect(host.participants).to_have_count(3)


async def test_a_promoted_guest_gets_host_controls_and_loses_them_when_demoted(tabs):
    host = await tabs()
    await create_room(host, "Co-hosts", "Anna")
    guest = await tabs()
    await join_by_link(guest, await host.by("room-link").input_value(), "Boris")
    await expect(host.participants).to_have_count(2)
    for testid in ("end-button", "kick-button", "promote-button"):
        await expect(guest.by(testid)).to_have_count(0)
    await expect(guest.by("room-settings-button")).to_be_hidden()

    # Only the host has the promote button, named after the person.
    boris = item(host, "Boris")
    await boris.get_by_role("button", name="Make Boris a host").click()
    await expect(item(guest, "Boris")).to_have_attribute("data-role", "host")
    await expect(guest.by("end-button")).to_be_visible()
    await expect(guest.by("room-settings-button")).to_be_visible()
    await expect(item(guest, "Anna").get_by_role("button", name="Remove Anna")).to_be_visible()
    await expect(guest.page.get_by_test_id("toast").filter(has_text="You are now a host")).to_have_count(1)
    # The co-host's switches work for everyone.
    await switch_on(guest, "setting-lobby")
    await expect(host.by("room-lobby")).to_be_visible()
    await guest.screenshot("co-host-controls")

    await item(host, "Boris").get_by_role("button", name="Take host rights from Boris").click()
    await expect(item(guest, "Boris")).to_have_attribute("data-role", "participant")
    await expect(guest.by("end-button")).to_have_count(0)
    await expect(guest.by("room-settings-button")).to_be_hidden()
    await expect(guest.by("room-settings")).to_be_hidden()
    await expect(guest.by("kick-button")).to_have_count(0)

    # The only host cannot step down: 409 last_host, said plainly.
    await host.self_item.get_by_role("button", name="Stop being a host").click()
    await expect(
        host.page.get_by_test_id("toast").filter(
            has_text="You are the only host. Make someone else a host first."
        )
    ).to_have_count(1)
    await expect(host.self_item).to_have_attribute("data-role", "host")
    await expect(host.by("end-button")).to_be_visible()
    for tab in (host, guest):
        assert not tab.page_errors, tab.page_errors


async def test_raised_hands_show_in_the_list_and_on_the_tile_earliest_first(tabs):
    host = await tabs()
    await create_room(host, "Hands", "Anna")
    guest = await tabs()
    await join_by_link(guest, await host.by("room-link").input_value(), "Boris")
    await expect(host.participants).to_have_count(2)
    host_id, guest_id = await public_id(host), await public_id(guest)
    assert await host.participant_ids() == [host_id, guest_id]
    tile = host.page.locator(f'[data-testid="video-tile"][data-identity="{guest_id}"]:not(.tile-screen)')
    await expect(tile).to_have_count(1)
    await expect(tile.get_by_test_id("tile-hand")).to_be_hidden()

    hand = guest.by("toggle-hand")
    await expect(hand).to_have_attribute("aria-pressed", "false")
    await expect(hand).to_have_accessible_name("Raise hand")
    await hand.click()
    await expect(hand).to_have_attribute("aria-pressed", "true")
    # The other page: the hand in the list, on the tile, and Boris first.
    await expect(item(host, "Boris").get_by_test_id("participant-hand")).to_be_visible()
    await expect(item(host, "Boris")).to_have_attribute("data-hand", "raised")
    await expect(tile.get_by_test_id("tile-hand")).to_be_visible()
    await expect(host.participants.first).to_have_attribute("data-participant-id", guest_id)
    await host.screenshot("hand-raised")

    # A later hand goes after the earlier one.
    await host.by("toggle-hand").click()
    await expect(item(guest, "Anna")).to_have_attribute("data-hand", "raised")
    await expect(guest.participants.first).to_have_attribute("data-participant-id", guest_id)
    assert await guest.participant_ids() == [guest_id, host_id]

    await hand.click()
    await expect(hand).to_have_attribute("aria-pressed", "false")
    await expect(item(host, "Boris")).to_have_attribute("data-hand", "down")
    await expect(tile.get_by_test_id("tile-hand")).to_be_hidden()
    await expect(host.participants.first).to_have_attribute("data-participant-id", host_id)
    for tab in (host, guest):
        assert not tab.page_errors, tab.page_errors
