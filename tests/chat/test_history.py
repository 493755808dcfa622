"""The history page's fast path: an active member's plain request is answered from Redis in one
round trip with the stored JSON cut, not parsed and written again. Its answers must be the
bytes the declared route gives (MessageList's JSON), and every other request must keep the
answers of the declared route, in the same order."""

import json
import random
import uuid
from typing import Any

import pytest

from tests.chat.support import Room
from tests.support import hdr, new_pid
from veche.chat import schemas
from veche.chat.schemas import MessageList, StoredMessage, SystemInfo, created_at_of, public_text
from veche.common import keys
from veche.common.ids import uuid7
from veche.common.timefmt import utcnow

# Pieces of text that look like the stored JSON's own keys and quoting.
_TRICKY = [
    '"',
    "\\",
    '\\"',
    ",",
    '","participant_id":"x"',
    ',"sender_id":null',
    ',"created_at":"2026-01-01T00:00:00.000Z","edited_at":null,"system":null}',
    '"}}',
    "\n",
    "\t",
    "ж語🙂",
    "👩\u200d👩\u200d👧",
    "\u2028",
    "</script>",
    "e2ee:v1:q83vEjRWeJ==",
]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_TRICKY + ["a", "b c", "{", "}", ":"]) for _ in range(rng.randrange(1, 12)))


def _stored(rng: random.Random) -> StoredMessage:
    message_id = uuid7()
    system = rng.random() < 0.3
    return StoredMessage(
        id=message_id,
        room_id=uuid.uuid4(),
        participant_id=None if system else str(uuid.uuid4()),
        sender_id=None if system else uuid.uuid4(),
        display_name="System" if system else _text(rng),
        message_type="system" if system else "user",
        content=_text(rng),
        created_at=created_at_of(message_id),
        edited_at=utcnow() if rng.random() < 0.3 else None,
        system=SystemInfo(event=rng.choice(["joined", "left", "kicked"]), display_name=_text(rng))
        if system
        else None,
    )


def test_public_text_is_the_stored_json_without_its_secret_and_never_parses_it(monkeypatch):
    rng = random.Random(7)
    messages = [_stored(rng) for _ in range(300)]
    expected = [m.public_text() for m in messages]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a member of the current shape was parsed")

    monkeypatch.setattr(schemas.StoredMessage, "model_validate_json", refuse)
    for message, public in zip(messages, expected, strict=True):
        text = public_text(message.to_member())
        assert text == public
        assert json.loads(text) == json.loads(public)
        if message.participant_id:
            assert message.participant_id not in text


def test_the_shapes_public_text_relies_on_are_these():
    """public_text serves stored members as they are when they have the shape of today's
    StoredMessage (checked only around the secret and at the end). A changed field list must
    also change what it checks, so that members stored before the change (they live for
    CHAT_TTL_SECONDS) are parsed and written again in the new shape."""
    public = ["id", "room_id", "sender_id", "display_name", "message_type", "content"]
    public += ["created_at", "edited_at", "system"]
    assert list(schemas.MessageView.model_fields) == public
    assert list(StoredMessage.model_fields) == public[:2] + ["participant_id"] + public[2:]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("system"),  # written before a field existed
        lambda d: d.pop("edited_at"),
        lambda d: d.update(reply_to=None),  # or after one was added
        lambda d: d.update(created_at="2026-01-01T00:00:00Z"),  # another timestamp format
    ],
    ids=["no-system", "no-edited-at", "extra-field", "other-timestamp"],
)
def test_a_member_of_another_shape_is_parsed_and_written_again(change):
    message = _stored(random.Random(3))
    fields = json.loads(message.to_member())
    change(fields)
    member = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    assert public_text(member) == StoredMessage.model_validate_json(member).public_text()


# --- through the route -------------------------------------------------------------------------


async def _filled(room: Room) -> Room:
    anna = await room.join('Анна "A" \\ 👩\u200d👩\u200d👧')
    postable = [t for t in _TRICKY if t != "\u2028"]  # a control character to the content rule
    sent = []
    for i in range(12):
        sent.append(await room.post(room.host if i % 2 else anna, f'm{i} "{postable[i % len(postable)]}"'))
    url = room.messages_url
    edited = await room.chat.put(f"{url}/{sent[2]['id']}", json={"content": "edited"}, headers=hdr(anna.pid))
    assert edited.status_code == 200
    deleted = await room.chat.delete(f"{url}/{sent[5]['id']}", headers=hdr(room.host.pid))
    assert deleted.status_code == 204
    return room


async def test_the_page_is_the_bytes_of_message_list_json(room: Room):
    await _filled(room)
    everything = await room.history(limit=200)
    ids = [m["id"] for m in everything]
    for params in (
        {},
        {"limit": 3},
        {"limit": "007"},
        {"after": ids[1]},
        {"after": ids[2], "limit": 4},
        {"before": ids[-2], "limit": 5},
        {"after": ids[0], "before": ids[6]},
        {"after": ids[-1]},
        {"before": ids[0]},
    ):
        response = await room.chat.get(room.messages_url, params=params, headers=hdr(room.host.pid))
        assert response.status_code == 200, (params, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        # What the declared route's response_model gives: pydantic's JSON of MessageList.
        canonical = MessageList.model_validate_json(response.content).model_dump_json()
        assert response.content == canonical.encode()
        assert int(response.headers["content-length"]) == len(response.content)
        for secret in room.secrets():
            assert secret not in response.text
    assert any(m["edited_at"] for m in everything)
    assert any(m["system"] for m in everything)


async def test_the_fast_and_the_declared_way_give_the_same_bytes(room: Room, monkeypatch):
    await _filled(room)
    service = room.chat.app.state.ctx.service  # type: ignore[attr-defined]
    ids = [m["id"] for m in await room.history(limit=200)]
    queries: list[dict[str, Any]] = [{}, {"limit": 4}, {"after": ids[2]}, {"before": ids[-1], "limit": 2}]

    async def pages() -> list[bytes]:
        return [
            (await room.chat.get(room.messages_url, params=q, headers=hdr(room.host.pid))).content
            for q in queries
        ]

    fast = await pages()

    async def no_fast_way(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(service, "member_history", no_fast_way)
    assert await pages() == fast


async def test_a_members_plain_request_needs_neither_authorize_nor_rooms(room: Room, monkeypatch):
    anna = await room.join("Anna")
    await room.post(anna, "hello")
    service = room.chat.app.state.ctx.service  # type: ignore[attr-defined]

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("not the fast way")

    monkeypatch.setattr(service, "authorize", refuse)
    monkeypatch.setattr(service.membership.rooms, "membership", refuse)
    assert [m["content"] for m in await room.history(anna, limit=1)] == ["hello"]


@pytest.mark.parametrize("field", [keys.ROOM_E2EE_FIELD, keys.ROOM_STATUS_FIELD, "member"])
async def test_a_hash_that_cannot_tell_goes_to_rooms_and_the_page_still_comes(room: Room, field: str):
    anna = await room.join("Anna")
    await room.post(anna, "still here")
    redis = room.chat.app.state.ctx.redis  # type: ignore[attr-defined]
    await redis.hdel(keys.room_participants(room.id), anna.pid if field == "member" else field)
    if field != "member":
        # rooms answers from PostgreSQL and rebuilds the hash
        assert [m["content"] for m in await room.history(anna, limit=1)] == ["still here"]
        assert await redis.hget(keys.room_participants(room.id), field) in ("0", "active")
    else:
        # The hash says nothing of Anna: not a member, by the hash, as before
        response = await room.chat.get(room.messages_url, headers=hdr(anna.pid))
        assert response.status_code == 403 and response.json()["code"] == "not_a_participant"


@pytest.mark.parametrize(
    ("who", "params", "status", "code"),
    [
        ("stranger", {"limit": 0}, 403, "not_a_participant"),
        ("stranger", {"after": "nope"}, 403, "not_a_participant"),
        ("nobody", {"limit": 0}, 403, "not_a_participant"),
        ("garbage", {"limit": 0}, 400, "invalid_participant_id"),
        ("member", {"limit": 0}, 422, "validation_error"),
        ("member", {"limit": "+5"}, 200, None),
        ("member", {"limit": " 7"}, 200, None),
        ("member", {"limit": "5.0"}, 200, None),
        ("member", {"limit": ""}, 422, "validation_error"),
        ("member", {"after": ""}, 422, "validation_error"),
        ("member", {"after": str(uuid.uuid4())}, 422, "validation_error"),
        ("member", {"before": "nope", "limit": 500}, 422, "validation_error"),
    ],
)
async def test_other_requests_keep_the_declared_answers_in_their_order(room: Room, who, params, status, code):
    headers = {
        "stranger": hdr(new_pid()),
        "nobody": {},
        "garbage": {"X-Participant-ID": "not-a-uuid"},
        "member": hdr(room.host.pid),
    }[who]
    response = await room.chat.get(room.messages_url, params=params, headers=headers)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code


async def test_an_unknown_or_malformed_room_is_404_before_the_query_is_read(room: Room):
    for room_id in (str(uuid.uuid4()), "nope"):
        response = await room.chat.get(
            f"/api/v1/rooms/{room_id}/chat/messages", params={"limit": 0}, headers=hdr(room.host.pid)
        )
        assert response.status_code == 404 and response.json()["code"] == "room_not_found"


async def test_an_ended_room_is_409_for_its_former_members(room: Room):
    await room.end()
    response = await room.chat.get(room.messages_url, params={"limit": 0}, headers=hdr(room.host.pid))
    assert response.status_code == 409 and response.json()["code"] == "room_ended"


async def test_the_page_comes_after_redis_forgot_its_scripts(room: Room):
    await room.post(room.host, "before the flush")
    redis = room.chat.app.state.ctx.redis  # type: ignore[attr-defined]
    await redis.script_flush()
    assert [m["content"] for m in await room.history(limit=1)] == ["before the flush"]
    for params in ({"after": str(uuid7())}, {"before": str(uuid7())}):
        await redis.script_flush()
        response = await room.chat.get(room.messages_url, params=params, headers=hdr(room.host.pid))
        assert response.status_code == 200, response.text
