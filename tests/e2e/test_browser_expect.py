"""What people expect of the room page and did not get (issue #18), each pinned in a real
headless Chromium through the gateway of the e2e stack: a creator waiting on pre-join keeps the
meeting alive, chat works without its socket, a removed guest learns it before joining, the
pages pass axe, host actions ask first, unread messages are counted, the language can be
switched, and the meeting has keyboard shortcuts."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.support.browser import (
    PHONE,
    ROOM_PATH,
    Tab,
    api_room,
    axe_violations,
    browser_expect,
    confirm,
    create_room,
    send_chat,
)
from tests.support import hdr
from veche.common import keys

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()


# Pre-join looks at the room every 30 s (web/static/room.js, PREJOIN_POLL_MS), well inside the
# 90 s presence timeout; the tests jump the page's clock past it instead of waiting.
PREJOIN_POLL = "00:31"


async def create_on_home(tab: Tab, title: str, name: str) -> str:
    """Creates a room with the home page's form and stops on pre-join; the room id."""
    await tab.page.goto("/")
    await tab.by("create-title").fill(title)
    await tab.by("create-name").fill(name)
    await tab.by("create-submit").click()
    await expect(tab.page).to_have_url(ROOM_PATH)
    await expect(tab.by("prejoin")).to_be_visible()
    return tab.room_id()


async def stored(tab: Tab, key: str) -> object:
    """A JSON value of the page's localStorage."""
    raw = await tab.page.evaluate("(key) => localStorage.getItem(key)", key)
    return json.loads(raw) if raw else None


# --- 1. the creator's meeting does not end while the creator is on pre-join ----------------


async def test_pre_join_keeps_a_waiting_members_presence(tabs, redis_client):
    tab = await tabs()
    await tab.page.clock.install()
    room_id = await create_on_home(tab, "Weekly sync", "Anna")
    memberships = await stored(tab, "veche.memberships")
    assert isinstance(memberships, dict)
    host_id = memberships[room_id]
    presence = keys.room_presence(room_id)
    seen = await redis_client.zscore(presence, host_id)
    assert seen, "creating the room is the creator's first sign of life"

    def room_lookup(response: object) -> bool:
        request = response.request  # type: ignore[attr-defined]
        return request.method == "GET" and request.url.endswith(f"/api/v1/rooms/{room_id}")

    # Two presence periods in a row: each one the page shows life, so the janitor (90 s
    # without a sign) never times the creator out, and the room never empties and ends.
    for _ in range(2):
        await asyncio.sleep(1.1)  # real time: the next sign is a later millisecond
        async with tab.page.expect_response(room_lookup) as looked:
            await tab.page.clock.fast_forward(PREJOIN_POLL)
        response = await looked.value
        assert response.status == 200
        assert (await response.request.all_headers()).get("x-participant-id")
        later = await redis_client.zscore(presence, host_id)
        assert later and later > seen, f"no new sign of life on pre-join: {seen} → {later}"
        seen = later
    await expect(tab.by("prejoin")).to_be_visible()
    assert not tab.page_errors, tab.page_errors


async def test_a_meeting_that_ended_before_joining_says_so(tabs, gw):
    tab = await tabs()
    await tab.page.clock.install()
    room_id = await create_on_home(tab, "Ended early", "Anna")
    creator = await tab.page.evaluate("() => localStorage.getItem('veche.participant_id')")
    ended = await gw.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(creator))
    assert ended.status_code == 200, ended.text

    # Pre-join notices by itself, and words it for someone who never got in.
    await tab.page.clock.fast_forward(PREJOIN_POLL)
    screen = tab.by("screen-ended")
    await expect(screen).to_be_visible()
    await expect(screen).to_contain_text("This meeting ended before you joined")
    await expect(screen).not_to_contain_text("Thanks for taking part")
    await expect(screen).to_have_attribute("data-variant", "before-join")

    # A late guest (in Russian) learns it the same way.
    late = await tabs("ru-RU")
    await late.page.goto(f"/r/{room_id}")
    await expect(late.by("screen-ended")).to_contain_text("Встреча закончилась до того, как вы вошли")


async def test_someone_who_was_in_the_meeting_is_thanked(tabs, gw):
    room_id, creator = await api_room(gw, "Thanks")
    tab = await tabs()
    await tab.page.goto(f"/r/{room_id}")
    await tab.by("prejoin-name").fill("Boris")
    await tab.by("prejoin-submit").click()
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")
    ended = await gw.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(creator))
    assert ended.status_code == 200, ended.text
    await expect(tab.by("screen-ended")).to_contain_text("The meeting has ended")
    await expect(tab.by("screen-ended")).to_have_attribute("data-variant", "after-join")
    # And after a reload too: this browser got in before.
    await tab.page.reload()
    await expect(tab.by("screen-ended")).to_contain_text("The meeting has ended")


# --- 2. chat without its socket -------------------------------------------------------------

# The REST catch-up runs every 4 s while the socket is down; a margin for a busy machine.
CAUGHT_UP_MS = 12_000


async def test_chat_works_over_rest_while_the_socket_is_blocked(tabs):
    host = await tabs()
    await create_room(host, "No socket", "Anna")
    await send_chat(host, "before 1")
    await send_chat(host, "before 2")

    guest = await tabs()
    blocked = True
    attempts: list[str] = []

    async def chat_socket(ws: object) -> None:
        attempts.append(ws.url)  # type: ignore[attr-defined]
        if blocked:
            await ws.close(code=1011, reason="blocked by the test")  # type: ignore[attr-defined]
        else:
            ws.connect_to_server()  # type: ignore[attr-defined]

    await guest.page.route_web_socket("**/ws/chat/**", chat_socket)
    await guest.page.goto(await host.by("room-link").input_value())
    await guest.by("prejoin-name").fill("Boris")
    await guest.by("prejoin-submit").click()
    await expect(guest.by("room")).to_be_visible()

    # The history is there without the socket, and the page says, once, that the chat is
    # behind: in the meeting's one reconnecting banner (tests/e2e/test_browser_stage.py).
    await expect(guest.user_messages).to_have_text(["before 1", "before 2"])
    offline = guest.by("reconnect-banner")
    await expect(offline).to_be_visible()
    await expect(offline).to_have_text("Reconnecting chat…")
    await expect(offline).to_have_attribute("data-chat", "reconnecting")
    await expect(offline).to_have_attribute("role", "status")
    await expect(guest.by("chat-status")).to_have_attribute("data-state", "reconnecting")
    await expect(guest.by("chat-status")).to_have_text("")
    assert attempts, "the page never tried the socket"

    # Someone else's message arrives by polling; the guest's own goes out over POST.
    await send_chat(host, "while blocked")
    await expect(guest.user_messages).to_have_text(
        ["before 1", "before 2", "while blocked"], timeout=CAUGHT_UP_MS
    )
    await send_chat(guest, "from Boris")
    await expect(host.user_messages).to_have_text(["before 1", "before 2", "while blocked", "from Boris"])
    await send_chat(host, "after Boris")
    await expect(guest.user_messages).to_have_text(
        ["before 1", "before 2", "while blocked", "from Boris", "after Boris"], timeout=CAUGHT_UP_MS
    )

    # The socket gets through again: its replay and the REST messages make no duplicates.
    blocked = False
    await guest.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    await expect(guest.by("chat-status")).to_have_attribute("data-state", "ready", timeout=CAUGHT_UP_MS)
    await expect(offline).to_be_hidden()
    await send_chat(host, "live again")
    everything = ["before 1", "before 2", "while blocked", "from Boris", "after Boris", "live again"]
    await expect(guest.user_messages).to_have_text(everything)
    await guest.page.wait_for_timeout(500)
    await expect(guest.user_messages).to_have_text(everything)
    assert not guest.page_errors, guest.page_errors


# --- 3. a removed guest who reloads ---------------------------------------------------------


async def test_a_removed_guest_who_reloads_sees_the_ban_before_joining(tabs, gw):
    host = await tabs()
    room_id = await create_room(host, "Strict", "Anna")
    host_pid = await host.page.evaluate("() => localStorage.getItem('veche.participant_id')")
    guest = await tabs()
    await guest.page.goto(await host.by("room-link").input_value())
    await guest.by("prejoin-name").fill("Boris")
    await guest.by("prejoin-submit").click()
    await expect(guest.by("chat-status")).to_have_attribute("data-state", "ready")
    guest_id = await guest.self_item.get_attribute("data-participant-id")

    kicked = await gw.post(f"/api/v1/rooms/{room_id}/participants/{guest_id}/kick", headers=hdr(host_pid))
    assert kicked.status_code == 204, kicked.text
    await expect(guest.by("screen-kicked")).to_be_visible()

    guest.requests.clear()
    await guest.page.reload()
    await expect(guest.by("screen-kicked")).to_be_visible()
    await expect(guest.by("screen-kicked")).to_contain_text("You were removed from this meeting")
    await expect(guest.by("prejoin")).to_have_count(0)
    assert not [url for url in guest.requests if url.endswith("/join")], "the page joined to find out"

    # A guest who was only removed from another room still gets pre-join here.
    other_id, _ = await api_room(gw, "Open")
    await guest.page.goto(f"/r/{other_id}")
    await expect(guest.by("prejoin")).to_be_visible()


# --- 4. accessibility: axe finds nothing, and what axe cannot see ---------------------------


async def join_as(tab: Tab, room_id: str, name: str) -> None:
    await tab.page.goto(f"/r/{room_id}")
    await tab.by("prejoin-name").fill(name)
    await tab.by("prejoin-submit").click()
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")


async def test_axe_finds_nothing_on_home_pre_join_and_the_room(tabs):
    host = await tabs(axe=True)
    await host.page.goto("/")
    await expect(host.by("create-submit")).to_be_visible()
    assert await axe_violations(host) == [], "home"

    room_id = await create_on_home(host, "Accessible", "Anna")
    await expect(host.by("prejoin-mic")).to_have_attribute("aria-pressed", "true")
    assert await axe_violations(host) == [], "pre-join"

    await host.by("prejoin-submit").click()
    await expect(host.by("chat-status")).to_have_attribute("data-state", "ready")
    guest = await tabs(axe=True)
    await join_as(guest, room_id, "Boris")
    await send_chat(guest, "hello")
    # The guest's microphone goes off once it is published, so one tile says "muted".
    guest_tile = guest.page.locator('[data-testid="video-tile"]:not(.tile-screen)').filter(has_text="You")
    await expect(guest_tile).to_have_attribute("data-mic", "on")
    await expect(guest.by("toggle-mic")).to_be_enabled()
    await guest.by("toggle-mic").click()
    await expect(guest_tile).to_have_attribute("data-mic", "off")
    for who, tab in (("host", host), ("guest", guest)):
        await expect(tab.by("video-tile")).to_have_count(2)
        await expect(tab.user_messages).to_have_text(["hello"])
        await expect(tab.page.locator('[data-testid="video-tile"][data-mic="off"]')).to_have_count(1)
        assert await axe_violations(tab) == [], f"room ({who})"


async def test_axe_finds_nothing_in_the_lobby_and_on_the_ended_screen(tabs, gw):
    room_id, creator = await api_room(gw, "Waiting room", lobby=True)
    knocking = await tabs(axe=True)
    await knocking.page.goto(f"/r/{room_id}")
    await knocking.by("prejoin-name").fill("Vera")
    await knocking.by("prejoin-submit").click()
    await expect(knocking.by("lobby-waiting")).to_be_visible()
    assert await axe_violations(knocking) == [], "lobby"

    ended = await gw.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(creator))
    assert ended.status_code == 200, ended.text
    await expect(knocking.by("screen-ended")).to_be_visible(timeout=CAUGHT_UP_MS)
    assert await axe_violations(knocking) == [], "ended"


async def test_the_chat_log_keeps_its_list(tabs):
    host = await tabs()
    await create_room(host, "Log", "Anna")
    await send_chat(host, "one")
    log = host.page.get_by_role("log", name="Chat messages")
    await expect(log).to_have_count(1)
    # The <ol> is inside the live region and is still a list of messages.
    messages = log.locator("ol")
    await expect(messages).to_have_attribute("data-testid", "chat-messages")
    assert await messages.get_attribute("role") is None
    await expect(log.get_by_role("list")).to_have_count(1)
    await expect(log.get_by_role("listitem").filter(has_text="one")).to_have_count(1)


async def test_muted_tiles_say_so_and_copying_and_video_failures_are_announced(tabs):
    host = await tabs()
    room_id = await create_room(host, "Said aloud", "Anna")

    guest = await tabs()

    async def no_video(route: object) -> None:
        await route.fulfill(  # type: ignore[attr-defined]
            status=503,
            headers={"Retry-After": "1", "Content-Type": "application/problem+json"},
            body=json.dumps({"status": 503, "code": "unavailable", "title": "Unavailable"}),
        )

    await guest.page.route("**/media/token", no_video)
    await join_as(guest, room_id, "Boris")
    await expect(guest.by("video-unavailable")).to_be_visible()
    announcer = guest.by("announcer")
    await expect(announcer).to_have_text("Video is unavailable")
    await expect(announcer).to_have_attribute("aria-live", "polite")

    await host.by("copy-link").click()
    await expect(host.by("copy-link")).to_have_text("Copied")
    await expect(host.by("announcer")).to_have_text("Copied")

    # The host's own tile, with the microphone turned off: the crossed-out icon is in words.
    await expect(host.by("toggle-mic")).to_be_enabled()
    mine = host.page.locator('[data-testid="video-tile"]')
    await expect(mine).to_have_count(1)
    if await host.by("toggle-mic").get_attribute("aria-pressed") == "true":
        await expect(mine.get_by_test_id("tile-muted")).to_be_hidden()
        await host.by("toggle-mic").click()
    await expect(mine).to_have_attribute("data-mic", "off")
    await expect(mine.get_by_test_id("tile-muted")).to_be_visible()
    await expect(mine.get_by_test_id("tile-muted")).to_have_text(", microphone muted")


async def test_the_link_box_shows_its_focus(tabs):
    host = await tabs()
    await create_room(host, "Focus ring", "Anna")
    link = host.by("room-link")
    ring = "(el) => { const s = getComputedStyle(el); return [s.boxShadow, s.borderColor, s.outlineStyle]; }"
    before = await link.evaluate(ring)
    await expect(host.by("room-title")).to_be_focused()
    await host.page.keyboard.press("Tab")
    await expect(link).to_be_focused()
    after = await link.evaluate(ring)
    assert after != before, f"no visible change on focus: {after}"
    assert after[0] != "none" or after[2] != "none", after


async def test_pre_join_tabs_through_microphone_and_camera_before_leaving(tabs, gw):
    room_id, _ = await api_room(gw, "Tab order")
    tab = await tabs()
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin-name")).to_be_focused()
    order = []
    # Name, microphone, camera, the three device choices under the preview, Join, Back.
    for _ in range(10):
        await tab.page.keyboard.press("Tab")
        testid = await tab.page.evaluate("() => document.activeElement?.dataset?.testid ?? ''")
        order.append(testid)
        if testid == "prejoin-back":
            break
    assert "prejoin-back" in order, order
    back = order.index("prejoin-back")
    assert "prejoin-mic" in order[:back] and "prejoin-camera" in order[:back], order


# --- 5. host actions ask first; a delete can be undone; leaving asks first ------------------


async def test_end_for_all_and_remove_ask_first(tabs, gw):
    host = await tabs()
    room_id = await create_room(host, "Careful", "Anna")
    guest = await tabs()
    await join_as(guest, room_id, "Boris")
    await expect(host.participants).to_have_count(2)
    boris = host.participants.filter(has_text="Boris")

    # Remove: a native modal dialog names the person; Cancel changes nothing.
    await boris.get_by_test_id("kick-button").click()
    dialog = host.by("confirm-dialog")
    await expect(dialog).to_be_visible()
    assert await dialog.evaluate("(el) => el.tagName === 'DIALOG' && el.open && el.matches(':modal')")
    await expect(dialog).to_contain_text("Remove Boris?")
    await expect(dialog.get_by_test_id("confirm-cancel")).to_be_focused()
    await confirm(host, ok=False)
    await host.page.wait_for_timeout(300)
    await expect(host.participants).to_have_count(2)
    await expect(guest.by("room")).to_be_visible()

    # Escape is Cancel too.
    await boris.get_by_test_id("kick-button").click()
    await expect(dialog).to_be_visible()
    await host.page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(host.participants).to_have_count(2)

    await boris.get_by_test_id("kick-button").click()
    await confirm(host)
    await expect(guest.by("screen-kicked")).to_be_visible()
    await expect(host.participants).to_have_count(1)

    # End for all: Cancel keeps the meeting going.
    await host.by("end-button").click()
    await expect(dialog).to_contain_text("End the meeting for everyone?")
    await confirm(host, ok=False)
    room = await gw.get(f"/api/v1/rooms/{room_id}")
    assert room.json()["status"] == "active"
    await expect(host.by("end-button")).to_be_enabled()
    await host.by("end-button").click()
    await confirm(host)
    await expect(host.by("screen-ended")).to_be_visible()
    room = await gw.get(f"/api/v1/rooms/{room_id}")
    assert room.json()["status"] == "ended"


def deletes(tab: Tab) -> list[str]:
    return [url for method, url, _ in tab.responses if method == "DELETE"]


async def test_a_deleted_message_can_be_undone_for_five_seconds(tabs):
    host = await tabs()
    room_id = await create_room(host, "Undo", "Anna")
    guest = await tabs()
    await join_as(guest, room_id, "Boris")
    for text in ("keep me", "undo me", "delete me"):
        await send_chat(host, text)
    await expect(guest.user_messages).to_have_text(["keep me", "undo me", "delete me"])
    rows = host.page.locator('[data-testid="chat-message"][data-type="user"]')
    undone, doomed = rows.filter(has_text="undo me"), rows.filter(has_text="delete me")
    doomed_id = await doomed.get_attribute("data-message-id")

    # Hidden at once, nothing sent, and Undo brings it back.
    await undone.hover()
    await undone.get_by_test_id("chat-delete").click()
    await expect(host.user_messages).to_have_text(["keep me", "delete me"])
    await expect(host.by("chat-deleted")).to_contain_text("Message deleted.")
    await host.by("chat-undo").click()
    await expect(host.user_messages).to_have_text(["keep me", "undo me", "delete me"])
    await expect(host.by("chat-input")).to_be_focused()
    await expect(host.by("chat-deleted")).to_have_count(0)

    # Another one, left alone: its request goes after the five seconds, not before.
    await doomed.hover()
    await doomed.get_by_test_id("chat-delete").click()
    await expect(host.user_messages).to_have_text(["keep me", "undo me"])
    await host.page.wait_for_timeout(3_500)
    assert deletes(host) == [], "a delete was sent inside the undo time"
    await expect(guest.user_messages).to_have_text(["keep me", "undo me", "delete me"])
    await expect(guest.user_messages).to_have_text(["keep me", "undo me"], timeout=8_000)
    await expect(host.by("chat-deleted")).to_have_count(0)
    # The undone one (whose time ran out first) was never sent.
    await host.page.wait_for_timeout(300)
    assert [url.rsplit("/", 1)[-1] for url in deletes(host)] == [doomed_id], deletes(host)
    await expect(host.user_messages).to_have_text(["keep me", "undo me"])


async def test_a_delete_in_its_undo_time_is_sent_before_leaving(tabs, gw):
    host = await tabs()
    room_id = await create_room(host, "Leaving", "Anna")
    guest = await tabs()
    await join_as(guest, room_id, "Boris")
    await send_chat(guest, "oops")
    await expect(host.user_messages).to_have_text(["oops"])
    row = guest.page.locator('[data-testid="chat-message"]').filter(has_text="oops")
    await row.hover()
    await row.get_by_test_id("chat-delete").click()
    await guest.by("leave-button").click()
    await expect(guest.page).not_to_have_url(ROOM_PATH)
    await expect(host.user_messages).to_have_count(0)
    # Sent while still a member (204), and before the leave.
    calls = [(method, url.rsplit("/", 1)[-1], status) for method, url, status in guest.responses]
    deleted = [i for i, (method, _, status) in enumerate(calls) if method == "DELETE" and status == 204]
    left = [i for i, (method, last, _) in enumerate(calls) if method == "POST" and last == "leave"]
    assert len(deleted) == 1 and left and deleted[0] < left[0], calls


async def test_the_logo_and_back_ask_before_leaving_the_meeting(tabs, gw):
    tab = await tabs()
    room_id = await create_room(tab, "Stay or go", "Anna")
    guest = await tabs()
    await join_as(guest, room_id, "Boris")
    room_url = tab.page.url

    # The logo: Stay keeps the meeting; Leave leaves it.
    await tab.by("home-link").click()
    await expect(tab.by("confirm-dialog")).to_contain_text("Leave the meeting?")
    await confirm(tab, ok=False)
    await expect(tab.by("room")).to_be_visible()
    assert tab.page.url == room_url

    # Back: the address stays on the meeting while asked; Stay keeps it there.
    await tab.page.evaluate("() => history.back()")
    await expect(tab.by("confirm-dialog")).to_be_visible()
    assert tab.page.url == room_url
    await confirm(tab, ok=False)
    await expect(tab.by("room")).to_be_visible()
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")
    assert tab.page.url == room_url
    listed = await gw.get(f"/api/v1/rooms/{room_id}/participants")
    assert len(listed.json()["participants"]) == 2

    # Back, confirmed: home, and the meeting was left.
    await tab.page.evaluate("() => history.back()")
    await confirm(tab)
    await expect(tab.by("create-submit")).to_be_visible()
    await expect(tab.page).not_to_have_url(ROOM_PATH)
    await expect(guest.participants).to_have_count(1)
    assert not tab.page_errors, tab.page_errors


# --- 6. unread messages ---------------------------------------------------------------------

# Makes the page believe its tab is hidden (or shown again), as switching tabs would.
SET_HIDDEN = """(hidden) => {
  Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
  const state = hidden ? 'hidden' : 'visible';
  Object.defineProperty(document, 'visibilityState', { value: state, configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


async def test_unread_messages_are_counted_on_the_toggle_and_in_the_title(tabs):
    host = await tabs()
    room_id = await create_room(host, "Weekly sync", "Anna")
    guest = await tabs()
    await join_as(guest, room_id, "Boris")
    toggle = guest.by("toggle-chat")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(guest.by("chat-panel")).to_be_visible()

    # The chat is closed: three messages of someone else are unread.
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(guest.by("chat-panel")).to_be_hidden()
    for text in ("one", "two", "three"):
        await send_chat(host, text)
    badge = guest.by("chat-badge")
    await expect(badge).to_have_text("3")
    await expect(guest.page).to_have_title("(3) Weekly sync · Veche")
    await expect(toggle).to_have_accessible_name("Chat (3 unread messages)")
    # Opening the chat reads them.
    await toggle.click()
    await expect(guest.user_messages).to_have_text(["one", "two", "three"])
    await expect(badge).to_be_hidden()
    await expect(guest.page).to_have_title("Weekly sync · Veche")
    await expect(guest.by("chat-input")).to_be_focused()

    # With the chat open but the tab hidden, a message is unread until the tab comes back.
    await guest.page.evaluate(SET_HIDDEN, True)
    await send_chat(host, "four")
    await expect(guest.page).to_have_title("(1) Weekly sync · Veche")
    await expect(badge).to_have_text("1")
    await guest.page.evaluate(SET_HIDDEN, False)
    await expect(guest.page).to_have_title("Weekly sync · Veche")
    await expect(badge).to_be_hidden()
    # One's own messages are never unread.
    await host.page.evaluate(SET_HIDDEN, True)
    await send_chat(host, "mine")
    await expect(host.page).to_have_title("Weekly sync · Veche")


async def test_on_a_phone_the_chat_is_a_sheet(tabs):
    host = await tabs()
    room_id = await create_room(host, "Pocket", "Anna")
    phone = await tabs(viewport=PHONE)
    await join_as(phone, room_id, "Boris")
    toggle = phone.by("toggle-chat")
    await expect(toggle).to_be_in_viewport()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(phone.by("chat-panel")).to_be_hidden()

    await send_chat(host, "psst")
    await expect(phone.by("chat-badge")).to_have_text("1")
    await expect(phone.page).to_have_title("(1) Pocket · Veche")

    await toggle.click()
    sheet = phone.by("chat-panel")
    await expect(sheet).to_be_in_viewport()
    await expect(phone.by("chat-input")).to_be_in_viewport()
    await expect(phone.by("chat-input")).to_be_focused()
    await expect(phone.user_messages).to_have_text(["psst"])
    await expect(phone.by("chat-badge")).to_be_hidden()
    box = await sheet.bounding_box()
    assert box and abs(box["y"] + box["height"] - PHONE["height"]) < 2 and box["width"] == PHONE["width"], box
    await send_chat(phone, "from the sheet")
    await expect(host.user_messages).to_have_text(["psst", "from the sheet"])

    # Escape (or its close button) puts it away and gives the focus back to the toggle.
    await phone.page.keyboard.press("Escape")
    await expect(sheet).to_be_hidden()
    await expect(toggle).to_be_focused()
    await phone.screenshot("room-en-phone-chat-closed")


# --- 7. the language switch -----------------------------------------------------------------


async def test_the_language_can_be_switched_and_is_remembered(tabs, gw):
    tab = await tabs("en-US")
    await tab.page.goto("/")
    switch = tab.by("lang-select")
    await expect(switch).to_have_value("en")
    await expect(switch).to_have_accessible_name("Language")
    await expect(tab.by("create-submit")).to_have_text("Create meeting")

    await switch.select_option("ru")
    await expect(tab.by("create-submit")).to_have_text("Создать встречу")
    await expect(tab.page.locator("html")).to_have_attribute("lang", "ru")
    await expect(tab.by("lang-select")).to_have_accessible_name("Язык")
    await expect(tab.by("lang-select")).to_be_focused()
    assert await tab.page.evaluate("() => localStorage.getItem('veche.lang')") == "ru"

    # Remembered: a reload, and another page of the same browser, are in Russian.
    await tab.page.reload()
    await expect(tab.by("create-submit")).to_have_text("Создать встречу")
    room_id, _ = await api_room(gw, "Языки")
    await tab.page.goto(f"/r/{room_id}")
    await expect(tab.by("prejoin-submit")).to_have_text("Войти во встречу")

    # In a meeting the page reloads into the new language; the membership stays the same.
    await tab.by("prejoin-name").fill("Борис")
    await tab.by("prejoin-submit").click()
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")
    await expect(tab.by("leave-button")).to_have_text("Выйти")
    me = await tab.self_item.get_attribute("data-participant-id")
    await tab.by("lang-select").select_option("en")
    await expect(tab.by("prejoin-submit")).to_have_text("Join meeting")
    await tab.by("prejoin-submit").click()
    await expect(tab.by("leave-button")).to_have_text("Leave")
    await expect(tab.by("chat-status")).to_have_attribute("data-state", "ready")
    # The same membership, not a second one (the room's creator is the other participant).
    await expect(tab.self_item).to_have_attribute("data-participant-id", me or "")
    await expect(tab.participants).to_have_count(2)

    # A browser asking for Russian gets English once English was chosen in it.
    russian = await tabs("ru-RU")
    await russian.page.goto("/")
    await expect(russian.by("create-submit")).to_have_text("Создать встречу")
    await russian.page.evaluate("() => localStorage.setItem('veche.lang', 'en')")
    await russian.page.reload()
    await expect(russian.by("create-submit")).to_have_text("Create meeting")


# --- 8. keyboard shortcuts ------------------------------------------------------------------


async def test_keyboard_shortcuts_for_mic_camera_chat_and_hand(tabs):
    tab = await tabs()
    await create_room(tab, "Keys", "Anna")
    mic, camera, chat, hand = (
        tab.by(t) for t in ("toggle-mic", "toggle-camera", "toggle-chat", "toggle-hand")
    )
    # LiveKit is up and both devices publish: the toggles are live.
    await expect(mic).to_be_enabled()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await expect(camera).to_have_attribute("aria-pressed", "true")
    await expect(tab.by("room-title")).to_be_focused()
    keyboard = tab.page.keyboard

    await keyboard.press("m")
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await keyboard.press("v")
    await expect(camera).to_have_attribute("aria-pressed", "false")
    await keyboard.press("h")
    await expect(hand).to_have_attribute("aria-pressed", "true")
    await expect(tab.self_item).to_have_attribute("data-hand", "raised")
    await keyboard.press("c")
    await expect(chat).to_have_attribute("aria-expanded", "false")
    await expect(tab.by("chat-panel")).to_be_hidden()
    await expect(chat).to_have_attribute("aria-keyshortcuts", "C")
    # C again opens the chat with the focus in the message box, where letters are text.
    await keyboard.press("c")
    await expect(tab.by("chat-panel")).to_be_visible()
    await expect(tab.by("chat-input")).to_be_focused()
    await keyboard.type("mvhc")
    await expect(tab.by("chat-input")).to_have_value("mvhc")
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(hand).to_have_attribute("aria-pressed", "true")
    await expect(chat).to_have_attribute("aria-expanded", "true")

    # By the physical key: M on a Russian layout (ь) turns the microphone back on.
    await tab.by("room-title").focus()
    await tab.page.evaluate(
        "() => document.activeElement.dispatchEvent("
        "new KeyboardEvent('keydown', { key: 'ь', code: 'KeyM', bubbles: true, cancelable: true }))"
    )
    await expect(mic).to_have_attribute("aria-pressed", "true")
    # Modifiers are the browser's: Ctrl+H does not lower the hand.
    await keyboard.press("Control+h")
    await tab.page.wait_for_timeout(300)
    await expect(hand).to_have_attribute("aria-pressed", "true")

    # ? lists them in a dialog; while it is open the letters do nothing; Escape closes it.
    await keyboard.press("?")
    help_ = tab.by("shortcuts-dialog")
    await expect(help_).to_be_visible()
    for key in ("M", "V", "C", "H", "?"):
        await expect(help_.locator("kbd", has_text=key).first).to_be_visible()
    await expect(help_).to_contain_text("Raise or lower your hand")
    await keyboard.press("m")
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await keyboard.press("Escape")
    await expect(help_).to_have_count(0)
    await tab.by("shortcuts-button").click()
    await expect(help_).to_be_visible()
    await help_.get_by_test_id("dialog-close").click()
    await expect(help_).to_have_count(0)
    await expect(tab.by("shortcuts-button")).to_be_focused()
    assert not tab.page_errors, tab.page_errors
