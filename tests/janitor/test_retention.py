"""Retention: rooms ended more than ROOM_RETENTION_DAYS ago leave PostgreSQL with their
memberships (and so with the stored IP addresses and user agents)."""

from uuid import UUID

from tests.janitor.support import create_room, join, room_row
from tests.support import eventually, hdr


async def _memberships(jdb, room_id: str) -> int:
    return await jdb.fetchval("SELECT count(*) FROM room_participants WHERE room_id = $1", UUID(room_id))


async def test_retention_deletes_an_old_ended_room_and_its_memberships(rooms_api, jdb):
    old_id, old_host, _ = await create_room(rooms_api, "Long ago")
    await join(rooms_api, old_id, "Guest")
    await rooms_api.post(f"/api/v1/rooms/{old_id}/end", headers=hdr(old_host))
    recent_id, recent_host, _ = await create_room(rooms_api, "Yesterday")
    await rooms_api.post(f"/api/v1/rooms/{recent_id}/end", headers=hdr(recent_host))
    active_id, _, _ = await create_room(rooms_api, "Still going")
    assert (
        await jdb.fetchval(
            "SELECT count(*) FROM room_participants WHERE room_id = $1 AND client_ip IS NOT NULL",
            UUID(old_id),
        )
        == 2
    )

    # Time passes: the room ended 31 days ago (the retention is 30 days).
    await jdb.execute("UPDATE rooms SET ended_at = now() - interval '31 days' WHERE id = $1", UUID(old_id))

    async def gone():
        return await room_row(jdb, old_id) is None and await _memberships(jdb, old_id) == 0

    await eventually(gone, timeout=15)
    assert (await room_row(jdb, recent_id))["status"] == "ended"
    assert await _memberships(jdb, recent_id) == 1
    assert (await room_row(jdb, active_id))["status"] == "active"
    response = await rooms_api.get(f"/api/v1/rooms/{old_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "room_not_found"
