"""rooms lists the janitor's candidates from its own tables: the due rooms, and the members
with no LiveKit connection, page by page, each exactly once."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest

from tests.support import hdr
from veche.common.internal import internal_headers
from veche.common.rooms_client import RoomsClient
from veche.common.settings import CommonSettings


@pytest.fixture
async def rooms(api: httpx.AsyncClient) -> AsyncIterator[RoomsClient]:
    """The one client of rooms, with the rooms app under test as its transport."""
    client = RoomsClient(CommonSettings(rooms_internal_url="http://rooms.internal"))
    await client.http.aclose()
    client.http = httpx.AsyncClient(
        transport=api._transport, base_url="http://rooms.internal", headers=internal_headers(CommonSettings())
    )
    yield client
    await client.close()


async def test_due_rooms_lists_empty_rooms_past_their_expiry_and_nothing_else(api, make_room, db, rooms):
    overdue = await make_room()
    await api.post(f"/api/v1/rooms/{overdue.id}/leave", headers=hdr(overdue.host))
    not_yet = await make_room()
    await api.post(f"/api/v1/rooms/{not_yet.id}/leave", headers=hdr(not_yet.host))
    occupied = await make_room()
    ended = await make_room()
    await api.post(f"/api/v1/rooms/{ended.id}/end", headers=hdr(ended.host))
    # Long overdue, so they lead the list whatever other tests left behind.
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    await db.execute("UPDATE rooms SET expires_at = $1 WHERE id = $2::uuid", long_ago, overdue.id)
    await db.execute("UPDATE rooms SET expires_at = $1 WHERE id = $2::uuid", long_ago, ended.id)

    due = await rooms.due_rooms(1000)
    assert UUID(overdue.id) in due
    for room in (not_yet, occupied, ended):
        assert UUID(room.id) not in due
    expiry = {
        row["id"]: row["expires_at"]
        for row in await db.fetch("SELECT id, expires_at FROM rooms WHERE id = ANY($1::uuid[])", due)
    }
    assert [expiry[room_id] for room_id in due] == sorted(expiry[room_id] for room_id in due)
    assert await rooms.due_rooms(1) == due[:1]


async def test_unconnected_members_come_page_by_page_in_order_each_once(api, room, db, rooms):
    joined = [await room.join(f"Guest {i}") for i in range(4)]
    public = {UUID(body["id"]) for _, body in joined} | {UUID(room.host_public_id)}
    # One has a LiveKit connection, one left: neither is a candidate.
    connected = UUID(joined[0][1]["id"])
    await db.execute("UPDATE room_participants SET livekit_sid = 'PA_x' WHERE id = $1", connected)
    await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(joined[1][0]))
    gone = UUID(joined[1][1]["id"])
    first_joined = await db.fetchval(
        "SELECT min(joined_at) FROM room_participants WHERE room_id = $1::uuid", room.id
    )

    seen: list[tuple[datetime, UUID]] = []
    after = (first_joined - timedelta(microseconds=1), UUID(int=0))
    while True:
        page = await rooms.unconnected_members(datetime.now(UTC), after, 2)
        assert len(page) <= 2
        seen += [(m.joined_at, m.public_id) for m in page if m.room_id == UUID(room.id)]
        if len(page) < 2:
            break
        after = (page[-1].joined_at, page[-1].public_id)
    assert seen == sorted(seen)
    ids = [public_id for _, public_id in seen]
    assert len(ids) == len(set(ids))
    assert set(ids) == public - {connected, gone}

    # Nobody who joined at or after the cutoff is a candidate yet.
    earlier = await rooms.unconnected_members(first_joined, after, 1000)
    assert all(m.room_id != UUID(room.id) for m in earlier)


@pytest.mark.parametrize(
    "query",
    [
        "/internal/v1/sweeps/due-rooms?limit=0",
        "/internal/v1/sweeps/due-rooms?limit=1001",
        "/internal/v1/sweeps/unconnected-members",
        "/internal/v1/sweeps/unconnected-members?joined_before=yesterday",
        "/internal/v1/sweeps/unconnected-members?joined_before=2026-01-01T00:00:00Z&after_id=nope",
    ],
)
async def test_bad_sweep_queries_are_problems(api, query):
    response = await api.get(query, headers=internal_headers(CommonSettings()))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_sweep_candidates_need_the_service_credential(api):
    for path in ("/internal/v1/sweeps/due-rooms", "/internal/v1/sweeps/unconnected-members"):
        response = await api.get(path)
        assert response.status_code == 401, response.text
