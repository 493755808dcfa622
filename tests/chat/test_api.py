"""Every row of the Chat table of docs/api.md (and its errors and field rules), against the chat and
rooms apps in-process on the real PostgreSQL, Redis and NATS."""

import asyncio
import time
import uuid

import httpx
import pytest

from tests.chat.support import Room, assert_message, assert_no_secret
from tests.support import hdr, new_pid
from veche.common import keys
from veche.common.ids import uuid7


def problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    return body


async def user_messages(room: Room) -> list[dict]:
    return [m for m in await room.history(limit=200) if m["message_type"] == "user"]


# --- POST ------------------------------------------------------------------------------------


async def test_post_answers_201_with_the_message_shape(room: Room):
    anna = await room.join("Anna")
    response = await room.chat.post(room.messages_url, json={"content": "  hi  "}, headers=hdr(anna.pid))
    assert response.status_code == 201, response.text
    message = response.json()
    assert_message(message)
    assert message["content"] == "hi"
    assert message["sender_id"] == anna.public_id
    assert message["display_name"] == "Anna"
    assert message["room_id"] == room.id
    assert message["message_type"] == "user"
    assert message["edited_at"] is None
    assert uuid.UUID(message["id"]).version == 7
    assert_no_secret(response.text, room.secrets())


async def test_content_of_4000_characters_in_any_script_is_accepted(room: Room):
    content = "ж語🙂" * 1333 + "x"
    message = await room.post(room.host, f"\n {content} \t")
    assert message["content"] == content and len(content) == 4000


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   \n "},
        {"content": "x" * 4001},
        {"content": 5},
        {"content": None},
        {"content": ["a"]},
        {},
    ],
    ids=["empty", "blank", "4001-chars", "number", "null", "list", "missing"],
)
async def test_post_with_a_bad_content_is_422_validation_error(room: Room, body):
    response = await room.chat.post(room.messages_url, json=body, headers=hdr(room.host.pid))
    assert problem(response, 422, "validation_error")["errors"][0]["field"] == "content"


@pytest.mark.parametrize("raw", [b'{"content": "x"', b"[1, 2]", b'"text"'])
async def test_post_whose_body_is_not_a_json_object_is_400_invalid_json(room: Room, raw):
    response = await room.chat.post(
        room.messages_url,
        content=raw,
        headers={**hdr(room.host.pid), "content-type": "application/json"},
    )
    problem(response, 400, "invalid_json")


async def test_post_with_a_body_over_64_kib_is_413(room: Room):
    response = await room.chat.post(
        room.messages_url,
        content=b'{"content": "' + b"x" * (65 * 1024) + b'"}',
        headers={**hdr(room.host.pid), "content-type": "application/json"},
    )
    problem(response, 413, "payload_too_large")


async def test_posting_past_the_chat_send_limit_is_429_with_retry_after(rooms_api, chat_app):
    async with chat_app(rate_limit_chat_send="3/2seconds") as chat:
        room = await Room.create(rooms_api, chat)
        anna = await room.join("Anna")
        for i in range(3):
            await room.post(anna, f"m{i}")
        response = await chat.post(room.messages_url, json={"content": "m3"}, headers=hdr(anna.pid))
        problem(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 2
        await room.post(room.host, "the limit is per member")
        # The window moves on: Anna may post again.
        deadline = asyncio.get_running_loop().time() + 5
        while response.status_code == 429 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            response = await chat.post(room.messages_url, json={"content": "m4"}, headers=hdr(anna.pid))
        assert response.status_code == 201


# --- GET -------------------------------------------------------------------------------------


async def test_get_answers_the_newest_limit_messages_oldest_first(room: Room):
    sent = [(await room.post(room.host, f"m{i}"))["id"] for i in range(6)]
    page = await room.history(limit=3)
    assert [m["id"] for m in page] == sent[-3:]
    for message in page:
        assert_message(message)
    everything = await room.history()
    assert [m["id"] for m in everything] == sorted(m["id"] for m in everything)


async def test_paging_25_messages_with_limit_7_and_after_returns_each_once_in_order(room: Room):
    start = (await room.wait_for_system("Host joined"))["id"]
    sent = [(await room.post(room.host, f"message {i}"))["id"] for i in range(25)]
    seen: list[dict] = []
    cursor = start
    while True:
        page = await room.history(limit=7, after=cursor)
        assert len(page) <= 7
        if not page:
            break
        seen += page
        cursor = page[-1]["id"]
    assert [m["id"] for m in seen] == sent


async def test_after_and_before_are_exclusive_cursors(room: Room):
    sent = [(await room.post(room.host, f"m{i}"))["id"] for i in range(10)]
    assert [m["id"] for m in await room.history(after=sent[3], limit=3)] == sent[4:7]
    assert [m["id"] for m in await room.history(before=sent[6], limit=3)] == sent[3:6]
    assert [m["id"] for m in await room.history(after=sent[2], before=sent[5])] == sent[3:5]
    assert await room.history(after=sent[-1]) == []


async def test_a_deleted_message_still_works_as_a_cursor(room: Room):
    sent = [(await room.post(room.host, f"m{i}"))["id"] for i in range(4)]
    response = await room.chat.delete(f"{room.messages_url}/{sent[1]}", headers=hdr(room.host.pid))
    assert response.status_code == 204
    assert [m["id"] for m in await room.history(after=sent[1])] == sent[2:]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "nope"}, "after"),
        ({"after": str(uuid.uuid4())}, "after"),
        ({"before": "123"}, "before"),
    ],
    ids=["limit-0", "limit-201", "limit-text", "after-garbage", "after-uuid4", "before-garbage"],
)
async def test_get_with_a_bad_query_is_422_validation_error(room: Room, params, field):
    response = await room.chat.get(room.messages_url, params=params, headers=hdr(room.host.pid))
    assert problem(response, 422, "validation_error")["errors"][0]["field"] == field


async def test_limit_200_is_accepted(room: Room):
    await room.post(room.host, "one")
    assert len(await room.history(limit=200)) >= 1


async def test_history_never_shows_a_participant_id(room: Room):
    anna = await room.join("Anna")
    await room.post(anna, "hello")
    response = await room.chat.get(room.messages_url, headers=hdr(anna.pid))
    assert_no_secret(response.text, room.secrets())
    stored = await room.chat.app.state.ctx.redis.zrange(keys.chat_messages(room.id), 0, -1)
    assert any(anna.pid in member for member in stored)  # kept in Redis for ownership only


# --- PUT -------------------------------------------------------------------------------------


async def test_put_by_its_author_answers_200_with_edited_at(room: Room):
    anna = await room.join("Anna")
    message = await room.post(anna, "helo")
    response = await room.chat.put(
        f"{room.messages_url}/{message['id']}", json={"content": " hello "}, headers=hdr(anna.pid)
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert_message(edited)
    assert edited["content"] == "hello"
    assert edited["edited_at"] is not None
    assert {k: v for k, v in edited.items() if k not in ("content", "edited_at")} == {
        k: v for k, v in message.items() if k not in ("content", "edited_at")
    }
    assert [m for m in await room.history() if m["id"] == message["id"]] == [edited]


async def test_put_by_anyone_but_the_author_is_403_not_author_even_for_the_host(room: Room):
    anna = await room.join("Anna")
    bob = await room.join("Bob")
    message = await room.post(anna, "mine")
    for other in (bob, room.host):
        response = await room.chat.put(
            f"{room.messages_url}/{message['id']}", json={"content": "x"}, headers=hdr(other.pid)
        )
        problem(response, 403, "not_author")


async def test_put_of_a_system_message_is_403_not_author(room: Room):
    system = await room.wait_for_system("Host joined")
    response = await room.chat.put(
        f"{room.messages_url}/{system['id']}", json={"content": "x"}, headers=hdr(room.host.pid)
    )
    problem(response, 403, "not_author")


@pytest.mark.parametrize("message_id", [str(uuid7()), "not-an-id", str(uuid.uuid4())])
async def test_put_of_an_unknown_or_malformed_message_is_404_message_not_found(room, message_id):
    response = await room.chat.put(
        f"{room.messages_url}/{message_id}", json={"content": "x"}, headers=hdr(room.host.pid)
    )
    problem(response, 404, "message_not_found")


async def test_put_with_a_bad_content_is_422(room: Room):
    message = await room.post(room.host, "x")
    response = await room.chat.put(
        f"{room.messages_url}/{message['id']}", json={"content": " "}, headers=hdr(room.host.pid)
    )
    problem(response, 422, "validation_error")


# --- DELETE ----------------------------------------------------------------------------------


async def test_delete_by_its_author_answers_204_and_the_message_is_gone(room: Room):
    anna = await room.join("Anna")
    message = await room.post(anna, "oops")
    url = f"{room.messages_url}/{message['id']}"
    response = await room.chat.delete(url, headers=hdr(anna.pid))
    assert response.status_code == 204 and response.content == b""
    assert message["id"] not in [m["id"] for m in await room.history()]
    problem(await room.chat.delete(url, headers=hdr(anna.pid)), 404, "message_not_found")


async def test_the_host_may_delete_anyones_message(room: Room):
    anna = await room.join("Anna")
    message = await room.post(anna, "spam")
    response = await room.chat.delete(f"{room.messages_url}/{message['id']}", headers=hdr(room.host.pid))
    assert response.status_code == 204
    system = await room.wait_for_system("Anna joined")
    response = await room.chat.delete(f"{room.messages_url}/{system['id']}", headers=hdr(room.host.pid))
    assert response.status_code == 204


async def test_delete_by_a_member_who_is_neither_author_nor_host_is_403_not_author(room: Room):
    anna = await room.join("Anna")
    bob = await room.join("Bob")
    message = await room.post(anna, "mine")
    response = await room.chat.delete(f"{room.messages_url}/{message['id']}", headers=hdr(bob.pid))
    problem(response, 403, "not_author")


@pytest.mark.parametrize("message_id", [str(uuid7()), "nope"])
async def test_delete_of_an_unknown_message_is_404_message_not_found(room: Room, message_id):
    response = await room.chat.delete(f"{room.messages_url}/{message_id}", headers=hdr(room.host.pid))
    problem(response, 404, "message_not_found")


async def test_the_author_still_owns_its_messages_after_leaving_and_joining_again(room: Room):
    anna = await room.join("Anna")
    message = await room.post(anna, "before")
    await room.leave(anna)
    response = await room.rooms.post(
        f"/api/v1/rooms/{room.id}/join", json={"display_name": "Anna"}, headers=hdr(anna.pid)
    )
    assert response.status_code == 201
    response = await room.chat.put(
        f"{room.messages_url}/{message['id']}", json={"content": "after"}, headers=hdr(anna.pid)
    )
    assert response.status_code == 200, response.text


async def test_an_edit_racing_a_delete_never_leaves_the_message_alive_after_a_204(room: Room):
    anna = await room.join("Anna")
    for attempt in range(100):
        message = await room.post(anna, f"v1 {attempt}")
        url = f"{room.messages_url}/{message['id']}"
        edit, delete = await asyncio.gather(
            room.chat.put(url, json={"content": f"v2 {attempt}"}, headers=hdr(anna.pid)),
            room.chat.delete(url, headers=hdr(anna.pid)),
        )
        assert delete.status_code == 204, delete.text
        assert edit.status_code in (200, 404), edit.text
        assert message["id"] not in [m["id"] for m in await room.history(limit=200)]
        stored = await room.chat.app.state.ctx.redis.zrange(keys.chat_messages(room.id), 0, -1)
        assert not any(m.startswith(f'{{"id":"{message["id"]}"') for m in stored)


# --- who may call ----------------------------------------------------------------------------


async def test_every_route_answers_403_not_a_participant_to_a_stranger(room: Room):
    message = await room.post(room.host, "x")
    url = f"{room.messages_url}/{message['id']}"
    for headers in (hdr(new_pid()), {}):
        calls = [
            room.chat.get(room.messages_url, headers=headers),
            room.chat.post(room.messages_url, json={"content": "x"}, headers=headers),
            room.chat.put(url, json={"content": "x"}, headers=headers),
            room.chat.delete(url, headers=headers),
        ]
        for response in await asyncio.gather(*calls):
            problem(response, 403, "not_a_participant")


async def test_a_member_who_left_or_was_kicked_is_403_not_a_participant(room: Room):
    anna = await room.join("Anna")
    bob = await room.join("Bob")
    await room.leave(anna)
    await room.kick(bob)
    for member in (anna, bob):
        response = await room.chat.get(room.messages_url, headers=hdr(member.pid))
        problem(response, 403, "not_a_participant")


async def test_a_malformed_participant_id_is_400_invalid_participant_id(room: Room):
    response = await room.chat.get(room.messages_url, headers={"X-Participant-ID": "me"})
    problem(response, 400, "invalid_participant_id")


@pytest.mark.parametrize("room_id", [str(uuid.uuid4()), "not-a-room"])
async def test_an_unknown_or_malformed_room_is_404_room_not_found(chat_api, room_id):
    response = await chat_api.get(f"/api/v1/rooms/{room_id}/chat/messages", headers=hdr(new_pid()))
    problem(response, 404, "room_not_found")


async def test_chat_of_an_ended_room_is_409_room_ended(room: Room):
    message = await room.post(room.host, "bye")
    await room.end()
    url = f"{room.messages_url}/{message['id']}"
    for response in await asyncio.gather(
        room.chat.get(room.messages_url, headers=hdr(room.host.pid)),
        room.chat.post(room.messages_url, json={"content": "x"}, headers=hdr(room.host.pid)),
        room.chat.put(url, json={"content": "x"}, headers=hdr(room.host.pid)),
        room.chat.delete(url, headers=hdr(room.host.pid)),
    ):
        problem(response, 409, "room_ended")


async def test_a_chat_request_is_a_sign_of_life_of_the_member(room: Room):
    anna = await room.join("Anna")
    before = int(time.time() * 1000)
    await room.history(anna)
    score = await room.chat.app.state.ctx.redis.zscore(keys.room_presence(room.id), anna.public_id)
    assert score is not None and score >= before


# --- system messages -------------------------------------------------------------------------


async def test_join_leave_and_kick_post_system_messages(room: Room):
    anna = await room.join("Anna")
    bob = await room.join("Bob")
    await room.leave(anna)
    await room.kick(bob)
    for text in ("Host joined", "Anna joined", "Bob joined", "Anna left", "Bob was removed by the host"):
        message = await room.wait_for_system(text)
        assert_message(message)
        assert message["sender_id"] is None
        assert message["message_type"] == "system"
    contents = [m["content"] for m in await room.history(limit=200)]
    assert contents.count("Anna joined") == 1


# --- lifetime and cap ------------------------------------------------------------------------


async def test_messages_older_than_chat_ttl_seconds_are_gone_from_get(rooms_api, chat_app):
    async with chat_app(chat_ttl_seconds=2) as chat:
        room = await Room.create(rooms_api, chat)
        old = await room.post(room.host, "old")
        await asyncio.sleep(1.5)
        fresh = await room.post(room.host, "fresh")
        deadline = time.monotonic() + 5
        while old["id"] in [m["id"] for m in await room.history()]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert fresh["id"] in [m["id"] for m in await room.history()]
        assert await room.history(after=old["id"]) == [m for m in await room.history() if m["id"] > old["id"]]


async def test_a_room_keeps_only_the_newest_chat_max_messages(rooms_api, chat_app):
    async with chat_app(chat_max_messages=5) as chat:
        room = await Room.create(rooms_api, chat)
        await room.wait_for_system("Host joined")
        sent = [(await room.post(room.host, f"m{i}"))["id"] for i in range(8)]
        await room.post(room.host, "last")
        kept = await room.history(limit=200)
        assert len(kept) == 5
        assert [m["id"] for m in kept][:4] == sent[-4:]
        assert await chat.app.state.ctx.redis.zcard(keys.chat_messages(room.id)) == 5


# --- dependencies down -----------------------------------------------------------------------


async def test_chat_while_redis_is_down_is_503_unavailable(chat_app):
    async with chat_app(redis_url="redis://127.0.0.1:1/0", dependency_timeout_seconds=1) as chat:
        started = time.monotonic()
        response = await chat.get(f"/api/v1/rooms/{uuid.uuid4()}/chat/messages", headers=hdr(new_pid()))
        problem(response, 503, "unavailable")
        assert int(response.headers["retry-after"]) >= 1
        assert time.monotonic() - started < 10
        assert (await chat.get("/readyz")).status_code == 503


async def test_chat_when_the_hash_is_missing_and_rooms_is_unreachable_is_503(room: Room, chat_app):
    async with chat_app(rooms_internal_url="http://127.0.0.1:1") as chat:
        await chat.app.state.ctx.redis.delete(keys.room_participants(room.id))
        response = await chat.get(room.messages_url, headers=hdr(room.host.pid))
        problem(response, 503, "unavailable")


async def test_chat_asks_rooms_when_the_membership_hash_is_missing(room: Room):
    anna = await room.join("Anna")
    await room.chat.app.state.ctx.redis.delete(keys.room_participants(room.id))
    message = await room.post(anna, "still here")
    assert message["sender_id"] == anna.public_id
    stranger = await room.chat.get(room.messages_url, headers=hdr(new_pid()))
    problem(stranger, 403, "not_a_participant")


async def test_system_messages_say_what_happened_in_a_machine_readable_field(room: Room):
    anna = await room.join("Anna")
    boris = await room.join("Boris")
    await room.leave(anna)
    await room.kick(boris)
    lines = {}
    for content in ("Anna joined", "Anna left", "Boris was removed by the host"):
        message = await room.wait_for_system(content)
        lines[content] = message["system"]
    assert lines == {
        "Anna joined": {"event": "joined", "display_name": "Anna"},
        "Anna left": {"event": "left", "display_name": "Anna"},
        "Boris was removed by the host": {"event": "kicked", "display_name": "Boris"},
    }
    posted = await room.post(room.host, "plain")
    assert posted["system"] is None
