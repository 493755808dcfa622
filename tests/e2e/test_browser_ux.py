"""Dead ends and keyboard and screen reader gaps of the room page found in review (issue #18),
each pinned in a real headless Chromium through the gateway of the e2e stack: a long title on a
phone, editing and deleting chat messages by keyboard, pre-join in a full room, and the
accessible names, states, contrast and focus of the meeting's controls."""

from __future__ import annotations

import re

import pytest

from tests.e2e.support.browser import (
    PHONE,
    api_join,
    api_room,
    browser_expect,
    create_room,
    join_by_link,
    pass_prejoin,
    send_chat,
    source_module,
)
from tests.support import hdr

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()


LONG_TITLE = "Quarterly planning of the infrastructure and the platform teams"
# The text and background colours of an element, as computed.
COLORS = "(el) => { const s = getComputedStyle(el); return [s.color, s.backgroundColor]; }"
# How long pre-join may take to notice a freed place: its 5 s look-again pace and a margin.
PLACE_FREED_MS = 12_000


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two computed `rgb(...)` colours."""

    def luminance(color: str) -> float:
        red, green, blue = (int(part) / 255 for part in re.findall(r"\d+(?:\.\d+)?", color)[:3])
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# --- 1. a long title on a phone -------------------------------------------------------------


async def test_a_long_title_does_not_widen_the_room_on_a_phone(tabs, gw, stack):
    assert len(LONG_TITLE) == 63
    room_id, _ = await api_room(gw, LONG_TITLE)
    phone = await tabs(viewport=PHONE)
    await join_by_link(phone, f"{stack.url}/r/{room_id}", "Boris")

    width = await phone.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"
    header = await phone.page.locator(".room-header").bounding_box()
    assert header and header["x"] >= 0 and header["x"] + header["width"] <= PHONE["width"], header

    copy = phone.by("copy-link")
    await expect(copy).to_be_visible()
    await expect(copy).to_be_in_viewport(ratio=1)
    box = await copy.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    # The title is cut with an ellipsis; the whole of it stays available as its tooltip.
    await expect(phone.by("room-title")).to_have_text(LONG_TITLE)
    await expect(phone.by("room-title")).to_have_attribute("title", LONG_TITLE)
    await copy.click()
    await expect(copy).to_have_text("Copied")
    await phone.screenshot("room-en-phone-long-title")


# --- 3. chat messages by keyboard -----------------------------------------------------------


async def test_own_messages_are_edited_and_deleted_with_the_keyboard(tabs):
    host = await tabs()
    await create_room(host, "Keyboard only", "Anna")
    await send_chat(host, "first draft")
    await send_chat(host, "to be deleted")
    await expect(host.user_messages).to_have_text(["first draft", "to be deleted"])
    rows = host.page.locator('[data-testid="chat-message"][data-type="user"]')
    first, last = rows.nth(0), rows.nth(1)
    keyboard = host.page.keyboard

    # Back from the message box: the last message's actions come first, and show on focus.
    await host.by("chat-input").focus()
    await keyboard.press("Shift+Tab")
    await expect(last.get_by_test_id("chat-delete")).to_be_focused()
    await expect(last.get_by_test_id("chat-delete")).to_be_visible()
    actions = await last.locator(".msg-actions").bounding_box()
    assert actions and actions["width"] > 20 and actions["height"] > 10, f"actions not shown: {actions}"
    await keyboard.press("Enter")
    await expect(host.user_messages).to_have_text(["first draft"])
    # The deleted row had the focus; it goes to the message box, not to <body>.
    await expect(host.by("chat-input")).to_be_focused()

    await keyboard.press("Shift+Tab")
    await expect(first.get_by_test_id("chat-delete")).to_be_focused()
    await keyboard.press("Shift+Tab")
    await expect(first.get_by_test_id("chat-edit")).to_be_focused()
    await expect(first.get_by_test_id("chat-edit")).to_be_visible()

    # Escape closes the editor and gives the focus back to the Edit button.
    await keyboard.press("Enter")
    await expect(host.by("chat-edit-input")).to_be_focused()
    await keyboard.type(" (not kept)")
    await keyboard.press("Escape")
    await expect(host.by("chat-edit-input")).to_have_count(0)
    await expect(host.user_messages).to_have_text(["first draft"])
    await expect(first.get_by_test_id("chat-edit")).to_be_focused()
    assert await host.page.evaluate("() => document.activeElement !== document.body")

    # Enter saves; the focus is back on the Edit button again.
    await keyboard.press("Enter")
    await expect(host.by("chat-edit-input")).to_be_focused()
    await keyboard.press("Control+A")
    await keyboard.type("final text")
    await keyboard.press("Enter")
    await expect(host.user_messages).to_have_text(["final text"])
    await expect(first.get_by_test_id("chat-message-edited")).to_be_visible()
    await expect(first.get_by_test_id("chat-edit")).to_be_focused()
    assert not host.page_errors, host.page_errors


# --- 5. pre-join in a full room -------------------------------------------------------------


async def test_a_full_room_closes_join_until_a_place_frees_up(tabs, gw, stack):
    room_id, _ = await api_room(gw, "Two seats", max_participants=2)
    second = await api_join(gw, room_id, "Second")

    tab = await tabs()
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin")).to_be_visible()
    await expect(tab.by("prejoin-count")).to_contain_text("2 of 2")
    await expect(tab.by("prejoin-full")).to_be_visible()
    await expect(tab.by("prejoin-full")).to_contain_text("The meeting is full")
    await expect(tab.by("prejoin-submit")).to_be_disabled()
    await expect(tab.by("prejoin-submit")).to_have_attribute("aria-describedby", "prejoin-full")
    # Enter in the name field does not get past the closed Join either.
    await tab.by("prejoin-name").fill("Third")
    await tab.by("prejoin-name").press("Enter")
    await expect(tab.by("prejoin")).to_be_visible()
    await tab.screenshot("prejoin-en-full")

    # Somebody leaves: pre-join notices by itself, and Join works.
    left = await gw.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(second))
    assert left.status_code == 204, left.text
    await expect(tab.by("prejoin-submit")).to_be_enabled(timeout=PLACE_FREED_MS)
    await expect(tab.by("prejoin-full")).to_be_hidden()
    await expect(tab.by("prejoin-count")).to_contain_text("1 of 2")
    await pass_prejoin(tab)
    await expect(tab.participants).to_have_count(2)
    assert not tab.page_errors, tab.page_errors


async def test_a_member_of_a_full_room_gets_back_in_after_a_reload(tabs, gw):
    host = await tabs()
    room_id = await create_room(host, "Two of us", "Anna", max_participants=2)
    await api_join(gw, room_id, "Boris")
    await expect(host.participants).to_have_count(2)

    # The room is full, but one of its places is the host's own.
    await host.page.reload()
    await expect(host.by("prejoin-count")).to_contain_text("2 of 2")
    await expect(host.by("prejoin-submit")).to_be_enabled()
    await expect(host.by("prejoin-full")).to_be_hidden()
    await pass_prejoin(host)
    await expect(host.participants).to_have_count(2)
    await expect(host.by("end-button")).to_be_visible()


async def test_a_room_that_fills_up_during_pre_join_still_ends_on_the_full_screen(tabs, gw):
    room_id, _ = await api_room(gw, "Last seat", max_participants=2)
    await api_join(gw, room_id, "Second")

    tab = await tabs()

    # The page saw a free place (as it would have a moment before the last one was taken).
    async def one_place_free(route: object) -> None:
        response = await route.fetch()  # type: ignore[attr-defined]
        room = await response.json()
        room["participant_count"] = 1
        await route.fulfill(response=response, json=room)  # type: ignore[attr-defined]

    await tab.page.route(f"**/api/v1/rooms/{room_id}", one_place_free)
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin-submit")).to_be_enabled()
    await tab.by("prejoin-name").fill("Third")
    await tab.by("prejoin-submit").click()
    await expect(tab.by("screen-full")).to_be_visible()
    await expect(tab.by("screen-full")).to_contain_text("All 2 places are taken")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en-US", "The meeting is full"), ("ru-RU", "Во встрече нет мест")],
)
async def test_the_full_room_note_is_in_the_pages_language(tabs, gw, locale, expected):
    room_id, _ = await api_room(gw, "Two seats", max_participants=2)
    await api_join(gw, room_id, "Second")
    tab = await tabs(locale)
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin-full")).to_contain_text(expected)


async def test_every_string_has_both_languages(tabs):
    tab = await tabs()
    module = await source_module(tab, "i18n.js")
    await tab.page.goto("/")
    missing = await tab.page.evaluate(
        """async (module) => {
            const { catalogs } = await import(module);
            const en = Object.keys(catalogs.en), ru = Object.keys(catalogs.ru);
            return { ru: en.filter((k) => !ru.includes(k)), en: ru.filter((k) => !en.includes(k)) };
        }""",
        module,
    )
    assert missing == {"ru": [], "en": []}, missing


# --- 6. names, states, contrast and focus ---------------------------------------------------


async def test_leave_button_text_has_enough_contrast(tabs):
    host = await tabs()
    await create_room(host, "Contrast", "Anna")
    leave = host.by("leave-button")
    await expect(leave).to_be_visible()
    colors = await leave.evaluate(COLORS)
    ratio = contrast(*colors)
    assert ratio >= 4.5, f"Leave: {colors} is {ratio:.2f}:1"
    await leave.hover()
    colors = await leave.evaluate(COLORS)
    hovered = contrast(*colors)
    assert hovered >= 4.5, f"Leave on hover: {colors} is {hovered:.2f}:1"


async def test_participant_buttons_are_named_after_the_person(tabs):
    host = await tabs()
    await create_room(host, "Names", "Anna")
    guest = await tabs()
    await join_by_link(guest, await host.by("room-link").input_value(), "Boris")
    await expect(host.participants).to_have_count(2)

    people = host.by("participant-list")
    for name in ("Mute Boris", "Stop video of Boris", "Remove Boris"):
        await expect(people.get_by_role("button", name=name, exact=True)).to_have_count(1)
    await expect(people.get_by_role("button", name="Mute", exact=True)).to_have_count(0)
    # Nobody has buttons for themselves.
    await expect(people.get_by_role("button", name="Remove Anna", exact=True)).to_have_count(0)


async def test_toggles_keep_their_name_and_tell_the_state_with_aria_pressed(tabs):
    tab = await tabs()
    await tab.page.goto("/")
    await tab.by("create-title").fill("Toggles")
    await tab.by("create-name").fill("Anna")
    await tab.by("create-submit").click()

    mic = tab.by("prejoin-mic")
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await expect(mic).to_have_accessible_name("Microphone")
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(mic).to_have_accessible_name("Microphone")
    # The red "off" look keeps white text readable (its alpha over the dark preview only darkens it).
    await tab.page.mouse.move(0, 0)
    colors = await mic.evaluate(COLORS)
    assert contrast(*colors) >= 4.5, f"mic off: {colors} is {contrast(*colors):.2f}:1"
    await expect(tab.by("prejoin-camera")).to_have_accessible_name("Camera")

    await tab.by("prejoin-submit").click()
    await expect(tab.by("room")).to_be_visible()
    for testid, name in (("toggle-mic", "Microphone"), ("toggle-camera", "Camera")):
        await expect(tab.by(testid)).to_have_accessible_name(name)
        await expect(tab.by(testid)).to_have_attribute("aria-pressed", re.compile("^(true|false)$"))
    # The choice made on pre-join is kept: the microphone is off, and says so by state only.
    await expect(tab.by("toggle-mic")).to_have_attribute("aria-pressed", "false")
    camera = tab.by("toggle-camera")
    await expect(camera).to_be_enabled()
    # The fake camera is on once it has started publishing (it may still be starting now).
    await expect(camera).to_have_attribute("aria-pressed", "true")
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "false")
    await expect(camera).to_have_accessible_name("Camera")


async def test_focus_is_in_the_room_after_joining_by_keyboard(tabs, gw):
    room_id, _ = await api_room(gw, "Focus")
    tab = await tabs()
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin-name")).to_be_focused()
    await tab.page.keyboard.type("Boris")
    await tab.page.keyboard.press("Enter")
    await expect(tab.by("room")).to_be_visible()
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")

    await expect(tab.by("room-title")).to_be_focused()
    inside = await tab.page.evaluate(
        "() => document.activeElement !== document.body"
        " && document.getElementById('app').contains(document.activeElement)"
    )
    assert inside, "nothing inside the page has the focus after joining"
    # Tab goes on from there into the room's own controls.
    await tab.page.keyboard.press("Tab")
    await expect(tab.by("room-link")).to_be_focused()
