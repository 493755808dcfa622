"""The web client in a real headless Chromium, through the gateway of the e2e stack (issue #8).

Every scenario uses separate browser contexts for separate people, so each has its own
localStorage and therefore its own participant id. The e2e stack runs a real LiveKit server, and
Chromium's fake camera and microphone feed it, so the pages see and hear each other.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.support.browser import (
    PHONE,
    SCREENSHOTS,
    OpenTab,
    Tab,
    browser_expect,
    confirm,
    create_room,
    join_by_link,
    pass_prejoin,
    send_chat,
    source_module,
)
from tests.support import hdr, new_pid

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()

XSS = "<img src=x onerror=alert(1)>"

# Strings of web/static/i18n.js that prove which language the page is in.
TEXT = {
    "en": {
        "locale": "en-US",
        "create": "Create meeting",
        "heading": "Start a meeting",
        "copied": "Copied",
        "participants": "Participants",
        "chat": "Chat",
        "leave": "Leave",
        "host": "Anna",
        "guest": "Boris",
        "title": "Weekly sync",
        "hello": "Hello from the host",
        "reply": "Hi, Boris here",
        "guest_joined": "Boris joined",
    },
    "ru": {
        "locale": "ru-RU",
        "create": "Создать встречу",
        "heading": "Начать встречу",
        "copied": "Скопировано",
        "participants": "Участники",
        "chat": "Чат",
        "leave": "Выйти",
        "host": "Анна",
        "guest": "Борис",
        "title": "Планёрка",
        "hello": "Привет от организатора",
        "reply": "Здравствуйте, это Борис",
        "guest_joined": "Борис присоединился(-лась)",
    },
}


async def two_in_a_room(tabs: OpenTab, guest_name: str = "Boris") -> tuple[Tab, Tab, str]:
    """A host who created a room from the home page and a guest who joined by its link."""
    host = await tabs()
    await create_room(host, "Browser test", "Anna")
    link = await host.by("room-link").input_value()
    guest = await tabs()
    await join_by_link(guest, link, guest_name)
    await expect(host.participants).to_have_count(2)
    await expect(guest.participants).to_have_count(2)
    return host, guest, link


async def self_public_id(tab: Tab) -> str:
    value = await tab.self_item.get_attribute("data-participant-id")
    assert value, "own participant item has no public id"
    return value


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_create_share_join_and_chat_both_ways(tabs, stack, lang):
    text = TEXT[lang]
    host = await tabs(text["locale"])

    await host.page.goto("/")
    await expect(host.by("create-submit")).to_have_text(text["create"])
    await expect(host.page.locator(".card-title").first).to_have_text(text["heading"])
    assert await host.page.evaluate("document.documentElement.lang") == lang
    await host.screenshot(f"home-{lang}")

    room_id = await create_room(host, text["title"], text["host"])
    await expect(host.by("room-title")).to_have_text(text["title"])
    await expect(host.participants).to_have_count(1)
    await expect(host.self_item).to_contain_text(text["host"])

    link = await host.by("room-link").input_value()
    assert link == f"{stack.url}/r/{room_id}"
    await host.by("copy-link").click()
    await expect(host.by("copy-link")).to_have_text(text["copied"])
    assert await host.page.evaluate("navigator.clipboard.readText()") == link

    guest = await tabs(text["locale"])
    await join_by_link(guest, link, text["guest"])
    assert guest.room_id() == room_id

    host_secret, guest_secret = await host.stored_participant_id(), await guest.stored_participant_id()
    assert host_secret and guest_secret and host_secret != guest_secret, "contexts share an identity"
    host_id, guest_id = await self_public_id(host), await self_public_id(guest)
    assert host_id != guest_id
    for tab in (host, guest):
        await expect(tab.participants).to_have_count(2)
        await expect(tab.participants).to_contain_text([text["host"], text["guest"]])
        assert sorted(await tab.participant_ids()) == sorted([host_id, guest_id])

    await send_chat(host, text["hello"])
    await expect(guest.user_messages).to_have_text([text["hello"]])
    await send_chat(guest, text["reply"])
    for tab in (host, guest):
        await expect(tab.user_messages).to_have_text([text["hello"], text["reply"]])

    # The page is in the browser's language, and nobody learns anybody else's secret id.
    for tab in (host, guest):
        assert await tab.page.evaluate("document.documentElement.lang") == lang
        await expect(tab.by("leave-button")).to_have_text(text["leave"])
        await expect(tab.page.locator(".panel-people .panel-title")).to_have_text(text["participants"])
        await expect(tab.page.locator(".panel-chat .panel-title")).to_have_text(text["chat"])
        system_lines = tab.page.locator('[data-testid="chat-message"][data-type="system"]')
        await expect(system_lines.filter(has_text=text["guest_joined"])).to_have_count(1)
    assert guest_secret not in await host.page.content()
    assert host_secret not in await guest.page.content()
    for tab, secret in ((host, host_secret), (guest, guest_secret)):
        leaked = [url for url in tab.requests + tab.websockets if secret in url]
        assert not leaked, f"participant id in a URL: {leaked}"
        assert not tab.csp_reports, tab.csp_reports
        assert not tab.page_errors, tab.page_errors

    await host.screenshot(f"room-{lang}")
    await guest.screenshot(f"room-{lang}-guest")


async def test_markup_in_chat_and_names_is_shown_as_text_and_runs_nothing(tabs):
    name_payload = "<img src=y onerror=alert(2)>"
    host, guest, _ = await two_in_a_room(tabs, guest_name=name_payload)

    await send_chat(guest, XSS)
    for tab in (host, guest):
        await expect(tab.user_messages).to_have_text([XSS])
        await expect(tab.by("participant-list")).to_contain_text(name_payload)
        await expect(tab.page.locator(".msg-author")).to_have_text([name_payload])

    # A round trip after the payload: by the time it is shown, a rendered <img> would have tried
    # to load and fired its onerror.
    await send_chat(host, "after the payload")
    for tab in (host, guest):
        await expect(tab.user_messages).to_have_text([XSS, "after the payload"])
        assert await tab.by("chat-messages").locator("img").count() == 0
        assert await tab.by("participant-list").locator("img").count() == 0
        assert await tab.images_ever_added() == 0, "an <img> entered the document"
        assert tab.dialogs == [], f"a dialog was opened: {tab.dialogs}"
        assert not [u for u in tab.requests if u.endswith(("/x", "/y"))], "the payload's <img> loaded"
        assert not tab.page_errors, tab.page_errors


async def test_reload_keeps_the_same_identity_without_a_duplicate(tabs, gw):
    host, guest, _ = await two_in_a_room(tabs)
    room_id = host.room_id()
    await send_chat(guest, "before the reload")
    await expect(host.user_messages).to_have_text(["before the reload"])

    secret_before = await guest.stored_participant_id()
    public_before = await self_public_id(guest)
    ids_before = sorted(await host.participant_ids())

    await guest.page.reload()
    # Every visit goes through pre-join; the name is remembered.
    await expect(guest.by("prejoin")).to_be_visible()
    await expect(guest.by("prejoin-name")).to_have_value("Boris")
    await pass_prejoin(guest)

    assert await guest.stored_participant_id() == secret_before
    await expect(guest.participants).to_have_count(2)
    assert await self_public_id(guest) == public_before
    assert sorted(await guest.participant_ids()) == ids_before
    # History comes back on open, once.
    await expect(guest.user_messages).to_have_text(["before the reload"])

    await expect(host.participants).to_have_count(2)
    assert sorted(await host.participant_ids()) == ids_before
    listed = await gw.get(f"/api/v1/rooms/{room_id}/participants")
    assert listed.status_code == 200, listed.text
    assert sorted(p["id"] for p in listed.json()["participants"]) == ids_before

    # The socket after the reload carries live chat both ways.
    await send_chat(host, "after the reload")
    await expect(guest.user_messages).to_have_text(["before the reload", "after the reload"])
    await send_chat(guest, "still me")
    await expect(host.user_messages).to_have_text(["before the reload", "after the reload", "still me"])


async def test_host_kicks_the_guest_then_ends_the_meeting(tabs, gw):
    host, guest, link = await two_in_a_room(tabs)
    room_id = host.room_id()
    guest_id = await self_public_id(guest)

    # Only the host has moderation buttons, and never on itself.
    await expect(guest.by("kick-button")).to_have_count(0)
    await expect(guest.by("end-button")).to_have_count(0)
    await expect(host.self_item.get_by_test_id("kick-button")).to_have_count(0)

    guest_item = host.page.locator(f'[data-testid="participant-item"][data-participant-id="{guest_id}"]')
    await guest_item.get_by_test_id("kick-button").click()
    await confirm(host)  # removing is for good: the page asks first (issue #18)
    await expect(guest.by("screen-kicked")).to_be_visible()
    await expect(guest.by("room")).to_have_count(0)
    await expect(host.participants).to_have_count(1)

    # The ban holds: back on the link, the page that saw it says so before pre-join (issue #18);
    # one that did not (its memory cleared) gets pre-join, and the join is refused.
    await guest.page.goto(link)
    await expect(guest.by("screen-kicked")).to_be_visible()
    await guest.page.evaluate("() => localStorage.removeItem('veche.banned')")
    await guest.page.goto(link)
    await pass_prejoin_expecting(guest, "screen-kicked")

    await host.by("end-button").click()
    await confirm(host)
    await expect(host.by("screen-ended")).to_be_visible()
    await expect(host.by("room")).to_have_count(0)
    room = await gw.get(f"/api/v1/rooms/{room_id}")
    assert room.status_code == 200, room.text
    assert room.json()["status"] == "ended"

    # Someone arriving later by the link learns it at once, without a pre-join step.
    late = await tabs()
    await late.page.goto(link)
    await expect(late.by("screen-ended")).to_be_visible()
    await expect(late.by("prejoin")).to_have_count(0)


async def pass_prejoin_expecting(tab: Tab, screen: str, name: str | None = None) -> None:
    await expect(tab.by("prejoin")).to_be_visible()
    if name is not None:
        await tab.by("prejoin-name").fill(name)
    await tab.by("prejoin-submit").click()
    await expect(tab.by(screen)).to_be_visible()
    await expect(tab.by("room")).to_have_count(0)


async def test_without_video_the_stage_says_so_and_chat_works(tabs, gw):
    host = await tabs()
    # The media-token service answers as it does while LiveKit cannot be reached.
    await host.page.route(
        "**/media/token",
        lambda route: route.fulfill(
            status=503,
            content_type="application/problem+json",
            headers={"Retry-After": "5"},
            body='{"type":"about:blank","title":"Service unavailable","status":503,'
            '"code":"unavailable","detail":"LiveKit cannot be reached"}',
        ),
    )
    room_id = await create_room(host, "No media server", "Anna")
    await expect(host.by("video-unavailable")).to_be_visible()
    await expect(host.by("video-unavailable")).to_contain_text("Video is unavailable")
    await expect(host.by("video-retry")).to_be_visible()

    await send_chat(host, "typed while video is down")
    await expect(host.user_messages).to_have_text(["typed while video is down"])

    # Somebody else (a plain API client) joins and writes: list and chat update live.
    other = new_pid()
    joined = await gw.post(
        f"/api/v1/rooms/{room_id}/join", json={"display_name": "Viktor"}, headers=hdr(other)
    )
    assert joined.status_code == 201, joined.text
    await expect(host.participants).to_have_count(2)
    await expect(host.by("participant-list")).to_contain_text("Viktor")
    posted = await gw.post(
        f"/api/v1/rooms/{room_id}/chat/messages", json={"content": "Viktor over REST"}, headers=hdr(other)
    )
    assert posted.status_code == 201, posted.text
    await expect(host.user_messages).to_have_text(["typed while video is down", "Viktor over REST"])

    history = await gw.get(f"/api/v1/rooms/{room_id}/chat/messages", headers=hdr(other))
    assert history.status_code == 200, history.text
    contents = [m["content"] for m in history.json()["messages"] if m["message_type"] == "user"]
    assert contents == ["typed while video is down", "Viktor over REST"]
    await expect(host.by("video-unavailable")).to_be_visible()
    assert not host.page_errors, host.page_errors


async def test_room_is_usable_on_a_phone_sized_screen(tabs):
    host = await tabs()
    await create_room(host, "On the go", "Anna")
    link = await host.by("room-link").input_value()
    phone = await tabs(viewport=PHONE)
    await join_by_link(phone, link, "Boris")

    # One column, nothing wider than the screen; the chat opens as a sheet (issue #18) and works.
    width = await phone.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"
    await expect(phone.by("video-stage")).to_be_visible()
    await expect(phone.participants).to_have_count(2)
    await phone.by("toggle-chat").click()
    await expect(phone.by("chat-input")).to_be_in_viewport()
    await send_chat(phone, "from my phone")
    await expect(host.user_messages).to_have_text(["from my phone"])
    await send_chat(host, "got it")
    await expect(phone.user_messages).to_have_text(["from my phone", "got it"])
    await phone.screenshot("room-en-phone")


async def test_unknown_room_shows_not_found(tabs):
    tab = await tabs()
    await tab.page.goto(f"/r/{uuid.uuid4()}")
    await expect(tab.by("screen-not-found")).to_be_visible()
    await expect(tab.by("prejoin")).to_have_count(0)
    await tab.page.goto("/r/not-a-room")
    await expect(tab.by("screen-not-found")).to_be_visible()

    await tab.page.goto("/")
    await tab.by("join-input").fill("no link here")
    await tab.by("join-submit").click()
    await expect(tab.by("join-error")).not_to_be_empty()


async def test_full_room_shows_room_full(tabs, gw, stack):
    host = new_pid()
    created = await gw.post(
        "/api/v1/rooms", json={"title": "Two seats", "max_participants": 2}, headers=hdr(host)
    )
    assert created.status_code == 201, created.text
    room_id = created.json()["room"]["id"]
    joined = await gw.post(
        f"/api/v1/rooms/{room_id}/join", json={"display_name": "Second"}, headers=hdr(new_pid())
    )
    assert joined.status_code == 201, joined.text

    tab = await tabs()
    await tab.page.goto("/")
    # Pasting a link (with some text around it) into the home page's join form.
    await tab.by("join-input").fill(f" {stack.url}/r/{room_id} ")
    await tab.by("join-submit").click()
    await expect(tab.page).to_have_url(f"{stack.url}/r/{room_id}")
    await expect(tab.by("prejoin-count")).to_contain_text("2 of 2")
    # Pre-join closes Join while the room is full; a room that fills up between pre-join and
    # Join ends on the full screen (both in test_browser_ux.py).
    await expect(tab.by("prejoin-full")).to_be_visible()
    await expect(tab.by("prejoin-submit")).to_be_disabled()

    listed = await gw.get(f"/api/v1/rooms/{room_id}/participants")
    assert len(listed.json()["participants"]) == 2


def test_screenshots_folder_is_git_ignored():
    ignored = (SCREENSHOTS.parents[1] / ".gitignore").read_text().split()
    assert "test-artifacts/" in ignored or "test-artifacts" in ignored


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ru-RU", {2: "Все 2 места заняты", 5: "Все 5 мест заняты", 21: "Все 21 место занято"}),
        ("en-US", {2: "All 2 places are taken", 5: "All 5 places are taken", 21: "All 21 places are taken"}),
    ],
)
async def test_counts_are_worded_with_the_languages_plural_rules(tabs, locale, expected):
    tab = await tabs(locale)
    module = await source_module(tab, "i18n.js")
    await tab.page.goto("/")
    worded = await tab.page.evaluate(
        """async ([module, counts]) => {
            const { t } = await import(module);
            return Object.fromEntries(counts.map((n) => [n, t('screen.full.text', { max: n })]));
        }""",
        [module, list(expected)],
    )
    for count, start in expected.items():
        assert worded[str(count)].startswith(start), worded
