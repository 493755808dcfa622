"""Chat input that must be refused cleanly, and the limits that keep Redis and the sender's
neighbours safe (hardening pass)."""

import pytest

from tests.chat.support import Room
from tests.support import GATEWAY_PEER, app_client, hdr
from veche.common import keys

LONE_SURROGATE = '{"content": "a\\ud800"}'
NUL = '{"content": "a\\u0000b"}'


async def _raw_post(room: Room, member, body: str):  # type: ignore[no-untyped-def]
    return await room.chat.post(
        room.messages_url,
        content=body.encode(),
        headers={**hdr(member.pid), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "body",
    [
        LONE_SURROGATE,
        NUL,
        '{"content": "bell\\u0007"}',
        '{"content": "esc \\u001b[31m red"}',
        '{"content": "a\\u2028b"}',
    ],
)
async def test_content_with_a_nul_surrogate_or_control_character_is_422(room: Room, body: str):
    anna = await room.join("Anna")
    response = await _raw_post(room, anna, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == "content"
    # Nothing was stored, and the next request is served as usual.
    assert [m for m in await room.history(anna) if m["message_type"] == "user"] == []
    assert (await room.post(anna, "fine"))["content"] == "fine"


async def test_an_edit_to_a_lone_surrogate_is_422_and_changes_nothing(room: Room):
    anna = await room.join("Anna")
    message = await room.post(anna, "original")
    response = await room.chat.put(
        f"{room.messages_url}/{message['id']}",
        content=LONE_SURROGATE.encode(),
        headers={**hdr(anna.pid), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert [m["content"] for m in await room.history(anna) if m["message_type"] == "user"] == ["original"]


async def test_line_breaks_and_tabs_are_kept_and_emoji_count_by_characters(room: Room):
    anna = await room.join("Anna")
    assert (await room.post(anna, "a\n\tb"))["content"] == "a\n\tb"
    emoji = "😀" * 4000  # 4000 characters, 16,000 bytes of UTF-8
    assert (await room.post(anna, emoji))["content"] == emoji


async def test_history_keeps_to_its_byte_budget_oldest_first(chat_app, rooms_api, redis_client):
    async with chat_app(chat_max_bytes=20_000) as chat:
        room = await Room.create(rooms_api, chat)
        await room.wait_for_system("Host joined")
        anna = await room.join("Anna")
        for i in range(12):
            await room.post(anna, f"{i:02d}" + "x" * 3000)
        stored = await redis_client.zrange(keys.chat_messages(room.id), 0, -1)
        total = sum(len(m.encode()) for m in stored)
        assert total <= 20_000
        assert int(await redis_client.get(keys.chat_bytes(room.id))) == total
        kept = [m["content"][:2] for m in await room.history(anna, limit=200) if m["message_type"] == "user"]
        assert kept == [f"{i:02d}" for i in range(12 - len(kept), 12)] and 4 <= len(kept) < 12
        # An edit and a delete keep the count true.
        last = (await room.history(anna, limit=1))[0]
        edited = await chat.put(
            f"{room.messages_url}/{last['id']}", json={"content": "short"}, headers=hdr(anna.pid)
        )
        assert edited.status_code == 200
        assert (
            await chat.delete(f"{room.messages_url}/{last['id']}", headers=hdr(anna.pid))
        ).status_code == 204
        stored = await redis_client.zrange(keys.chat_messages(room.id), 0, -1)
        assert int(await redis_client.get(keys.chat_bytes(room.id))) == sum(len(m.encode()) for m in stored)


async def test_leaving_and_joining_again_does_not_reset_the_send_limit(chat_app, rooms_api):
    async with chat_app(rate_limit_chat_send="3/30seconds") as chat:
        room = await Room.create(rooms_api, chat)
        await room.wait_for_system("Host joined")
        anna = await room.join("Anna")
        for i in range(3):
            await room.post(anna, f"m{i}")
        await room.leave(anna)
        response = await rooms_api.post(
            f"/api/v1/rooms/{room.id}/join", json={"display_name": "Anna"}, headers=hdr(anna.pid)
        )
        assert response.status_code == 201  # a new membership row, the same identity
        over = await chat.post(room.messages_url, json={"content": "more"}, headers=hdr(anna.pid))
        assert over.status_code == 429 and over.json()["code"] == "rate_limited"


async def test_one_address_has_a_send_limit_over_all_its_identities(rooms_url, rooms_api):
    from tests.chat.conftest import chat_settings
    from veche.chat.main import create_app

    app = create_app(chat_settings(rooms_url, rate_limit_chat_send_address="4/30seconds"))
    async with app_client(app, client=GATEWAY_PEER) as chat:
        room = await Room.create(rooms_api, chat)
        await room.wait_for_system("Host joined")
        members = [await room.join(f"N{i}") for i in range(3)]
        address = {"X-Real-IP": "192.0.2.201"}
        statuses = [
            (
                await chat.post(room.messages_url, json={"content": "hi"}, headers={**hdr(m.pid), **address})
            ).status_code
            for m in members + members
        ]
        assert statuses[:4] == [201] * 4 and statuses[4:] == [429, 429]
        elsewhere = await chat.post(
            room.messages_url,
            json={"content": "hi"},
            headers={**hdr(members[0].pid), "X-Real-IP": "192.0.2.202"},
        )
        assert elsewhere.status_code == 201
