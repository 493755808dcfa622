"""End-to-end encrypted rooms in the web client (issue #17), in real headless Chromium pages
through the gateway and the real LiveKit server of the e2e stack.

One room serves the whole module: its creator and a guest hold the key (the link's fragment),
see each other's video through LiveKit's E2EE and read each other's chat; then the tests look
at what left the pages (never the key), at what Redis stores (never the plaintext), and at
pages holding a wrong key or none at all."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.e2e.support.browser import (
    DECODED,
    MANIFEST,
    Tab,
    browser_expect,
    camera_tile,
    decoding,
    open_tab,
    pass_prejoin,
    public_id,
)
from tests.e2e.support.traffic import Traffic
from veche.common import keys

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()

KEY_IN_LINK = re.compile(r"/r/([0-9a-f-]{36})#k=([A-Za-z0-9_-]{43})$")
SECRET = "the launch code is 0451"
REPLY = "Получено, спасибо"
EDITED = "the launch code changed"
WRONG_KEY = "A" * 42 + "E"  # a well-formed 256-bit key that is not the room's


@dataclass
class Room:
    host: Tab
    guest: Tab
    host_traffic: Traffic
    guest_traffic: Traffic
    room_id: str
    key: str
    link: str


async def recorded_tab(browser: object, base_url: str) -> tuple[Tab, Traffic]:
    tab = await open_tab(browser, base_url)  # type: ignore[arg-type]
    traffic = Traffic()
    traffic.record(tab.page)
    return tab, traffic


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def room(browser: object, stack: object) -> AsyncIterator[Room]:
    base = stack.url  # type: ignore[attr-defined]
    host, host_traffic = await recorded_tab(browser, base)
    guest, guest_traffic = await recorded_tab(browser, base)
    try:
        await host.page.goto("/")
        await host.by("create-title").fill("Board meeting")
        await host.by("create-name").fill("Anna")
        await expect(host.by("create-e2ee-note")).to_contain_text("The meeting title and the names")
        await host.by("create-e2ee").check()
        await host.by("create-submit").click()
        await expect(host.page).to_have_url(KEY_IN_LINK)
        match = KEY_IN_LINK.search(host.page.url)
        assert match
        room_id, key = match.groups()
        await expect(host.by("prejoin-e2ee")).to_be_visible()
        await expect(host.by("e2ee-notice")).to_have_count(0)
        await pass_prejoin(host)
        link = await host.by("room-link").input_value()
        assert link == f"{base}/r/{room_id}#k={key}", link
        # Copy link copies the whole link, fragment included.
        await host.by("copy-link").click()
        await expect(host.by("copy-link")).to_have_text("Copied")
        assert await host.page.evaluate("() => navigator.clipboard.readText()") == link
        await guest.page.goto(link)
        await pass_prejoin(guest, "Boris")
        yield Room(host, guest, host_traffic, guest_traffic, room_id, key, link)
    finally:
        for tab in (host, guest):
            await tab.context.close()


async def test_two_pages_with_the_key_see_each_other_and_read_each_others_chat(room):
    host, guest = room.host, room.guest
    host_id, guest_id = await public_id(host), await public_id(guest)
    for tab in (host, guest):
        await expect(tab.by("room-e2ee")).to_be_visible()
        await expect(tab.by("e2ee-notice")).to_be_hidden()

    # LiveKit carries frames it cannot read; each page decrypts and decodes the other's.
    assert await decoding(host, camera_tile(host, guest_id)) > 0
    assert await decoding(guest, camera_tile(guest, host_id)) > 0
    # The two pages really encrypt: livekit-client says so for the local participant.
    for tab in (host, guest):
        await expect(camera_tile(tab, host_id if tab is guest else guest_id)).not_to_have_class(
            re.compile("tile-undecryptable")
        )

    await host.by("chat-input").fill(SECRET)
    await host.by("chat-send").click()
    await expect(guest.user_messages).to_have_text([SECRET])
    await guest.by("chat-input").fill(REPLY)
    await guest.by("chat-send").click()
    await expect(host.user_messages).to_have_text([SECRET, REPLY])

    # An edit is encrypted too, and decrypted on the other side.
    first = host.page.locator('[data-testid="chat-message"][data-type="user"]').first
    await first.hover()
    await first.get_by_test_id("chat-edit").click()
    await host.by("chat-edit-input").fill(EDITED)
    await host.by("chat-edit-save").click()
    await expect(guest.user_messages).to_have_text([EDITED, REPLY])
    await expect(host.user_messages).to_have_text([EDITED, REPLY])

    # History (a reload fetches it over HTTP) is decrypted as well.
    await guest.page.reload()
    await pass_prejoin(guest)
    await expect(guest.user_messages).to_have_text([EDITED, REPLY])
    await host.screenshot("e2ee-call-host")
    for tab in (host, guest):
        assert not tab.page_errors, tab.page_errors
        assert not tab.csp_reports, tab.csp_reports


async def test_no_request_of_either_page_carries_the_key(room):
    for traffic in (room.host_traffic, room.guest_traffic):
        assert traffic.urls, "nothing was recorded"
        assert traffic.socket_urls, "no WebSocket was recorded"
        assert not (leaks := traffic.leaks(room.key)), leaks
        # The page's own address never goes out either (Referrer-Policy: no-referrer).
        assert not [r for r in traffic.referers if "/r/" in r], traffic.referers
    # The worker that encrypts media is served from this origin (the CSP allows no other), built
    # with a hashed name (web/dist/manifest.json names it).
    worker = json.loads(MANIFEST.read_text())["worker"]
    assert any(url.endswith(worker) for url in room.host_traffic.urls)


async def test_redis_holds_no_plaintext_of_the_chat(room, redis_client):
    stored = await redis_client.zrange(keys.chat_messages(room.room_id), 0, -1)
    users = [json.loads(value) for value in stored if '"message_type":"user"' in value.replace(" ", "")]
    assert len(users) >= 2, stored
    for message in users:
        assert message["content"].startswith("e2ee:v1:"), message
    everything = "\n".join(stored)
    for text in (SECRET, REPLY, EDITED, "launch code"):
        assert text not in everything
    # Nor anything else the server keeps about the room.
    for key in await redis_client.keys(f"*{{{room.room_id}}}*"):
        kind = await redis_client.type(key)
        if kind == "string":
            values = [await redis_client.get(key)]
        elif kind == "hash":
            values = list((await redis_client.hgetall(key)).values())
        elif kind == "zset":
            values = await redis_client.zrange(key, 0, -1)
        elif kind == "set":
            values = list(await redis_client.smembers(key))
        else:
            values = []
        assert not [v for v in values if "launch code" in str(v) or room.key in str(v)], key


async def test_a_wrong_key_decodes_nothing_and_a_missing_key_is_explained(room, browser, stack):
    host, guest = room.host, room.guest
    wrong = await open_tab(browser, stack.url)
    missing = await open_tab(browser, stack.url)
    try:
        # A link whose key is not the room's.
        await wrong.page.goto(f"/r/{room.room_id}#k={WRONG_KEY}")
        await pass_prejoin(wrong, "Mallory")
        await expect(wrong.by("e2ee-notice")).to_be_visible()
        await expect(wrong.by("e2ee-notice")).to_contain_text(
            "Ask for the full link, including the part after #"
        )
        # Messages it cannot read show a placeholder, never ciphertext.
        placeholders = wrong.page.locator('[data-testid="chat-message"][data-undecryptable="true"]')
        await expect(placeholders).to_have_count(2)
        await expect(wrong.user_messages.first).to_contain_text("Encrypted message")
        assert not [t for t in await wrong.user_messages.all_text_contents() if "e2ee:v1:" in t]

        # The others' video reaches it, and none of it decodes.
        host_id, guest_id = await public_id(host), await public_id(guest)
        for identity in (host_id, guest_id):
            tile = camera_tile(wrong, identity)
            await expect(tile).to_have_class(re.compile("tile-undecryptable"))
            await expect(tile.get_by_test_id("tile-undecryptable")).to_be_visible()
        await wrong.page.wait_for_timeout(2000)
        for identity in (host_id, guest_id):
            assert await camera_tile(wrong, identity).evaluate(DECODED) == 0
        await wrong.screenshot("e2ee-wrong-key")
        # The pages with the key keep working, and mark only the stranger's tile.
        wrong_id = await public_id(wrong)
        await expect(camera_tile(host, wrong_id)).to_have_class(re.compile("tile-undecryptable"))
        await expect(host.by("e2ee-notice")).to_be_hidden()
        assert await decoding(host, camera_tile(host, guest_id)) > 0

        # A link without the fragment: said before joining and inside, and nothing to send.
        await missing.page.goto(f"/r/{room.room_id}")
        await expect(missing.by("e2ee-notice")).to_contain_text(
            "This meeting is end-to-end encrypted. Ask for the full link, including the part after #."
        )
        await pass_prejoin(missing, "Nobody")
        await expect(missing.by("e2ee-notice")).to_be_visible()
        await expect(missing.by("video-e2ee")).to_be_visible()
        await expect(missing.by("chat-input")).to_be_disabled()
        await expect(
            missing.page.locator('[data-testid="chat-message"][data-undecryptable="true"]')
        ).to_have_count(2)
        await missing.screenshot("e2ee-no-key")
        for tab in (wrong, missing):
            assert not tab.page_errors, tab.page_errors
            assert not tab.csp_reports, tab.csp_reports
    finally:
        for tab in (wrong, missing):
            await tab.context.close()
