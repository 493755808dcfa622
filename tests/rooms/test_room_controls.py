"""Room controls of the second release (docs/api.md, Room controls): room and participant
fields, PATCH, locked rooms, co-hosts, hand-over, raised hands and the lobby, with their
events, and the races that matter (real PostgreSQL, many requests at once)."""

import asyncio
import json
import uuid

from tests.rooms.test_rooms_api import assert_problem, assert_ts
from tests.support import EventReader, hdr, new_pid
from veche.common import keys


async def _create(api, **body):
    host = new_pid()
    response = await api.post("/api/v1/rooms", json={"title": "Controls", **body}, headers=hdr(host))
    assert response.status_code == 201, response.text
    return host, response.json()


async def _join(api, rid: str, name: str, pid: str | None = None):
    pid = pid or new_pid()
    response = await api.post(f"/api/v1/rooms/{rid}/join", json={"display_name": name}, headers=hdr(pid))
    return pid, response


async def _member(api, rid: str, name: str) -> dict:
    participants = (await api.get(f"/api/v1/rooms/{rid}/participants")).json()["participants"]
    return next(p for p in participants if p["display_name"] == name)


async def _events(rid: str, expected: int) -> list[dict]:
    async with EventReader() as reader:
        return [body for _, _, body in await reader.read_room(rid, expected=expected)]


async def _active_hosts(db, rid: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM room_participants WHERE room_id = $1 AND left_at IS NULL AND role = 'host'",
        uuid.UUID(rid),
    )


# --- step 1: the new fields ---------------------------------------------------------------


async def test_room_and_participants_carry_the_new_fields(api, db):
    _, created = await _create(api)
    room = created["room"]
    assert (room["locked"], room["lobby"], room["e2ee"]) == (False, False, False)
    _, flagged = await _create(api, lobby=True, e2ee=True)
    assert (flagged["room"]["lobby"], flagged["room"]["e2ee"]) == (True, True)
    got = (await api.get(f"/api/v1/rooms/{flagged['room']['id']}")).json()
    assert (got["locked"], got["lobby"], got["e2ee"]) == (False, True, True)
    host = (await api.get(f"/api/v1/rooms/{room['id']}/participants")).json()["participants"][0]
    assert host["hand_raised_at"] is None
    row = await db.fetchrow("SELECT locked, lobby, e2ee FROM rooms WHERE id = $1", uuid.UUID(room["id"]))
    assert tuple(row) == (False, False, False)
    response = await api.post("/api/v1/rooms", json={"title": "x", "e2ee": "yes"}, headers=hdr(new_pid()))
    assert_problem(response, 422, "validation_error")


# --- step 2: PATCH ------------------------------------------------------------------------


async def test_a_host_patches_the_room_and_a_room_updated_event_carries_it(api):
    host, created = await _create(api)
    rid = created["room"]["id"]
    response = await api.patch(
        f"/api/v1/rooms/{rid}",
        json={"title": " New ", "description": None, "max_participants": 3, "locked": True, "lobby": True},
        headers=hdr(host),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["description"], body["max_participants"]) == ("New", None, 3)
    assert (body["locked"], body["lobby"], body["e2ee"]) == (True, True, False)
    assert (await api.get(f"/api/v1/rooms/{rid}")).json()["locked"] is True
    # Only what is given changes.
    response = await api.patch(f"/api/v1/rooms/{rid}", json={"locked": False}, headers=hdr(host))
    assert response.json()["title"] == "New" and response.json()["lobby"] is True
    events = [e for e in await _events(rid, expected=4) if e["type"] == "room.updated"]
    assert len(events) == 2
    assert events[0]["room"]["title"] == "New" and events[0]["room"]["locked"] is True
    assert set(events[0]) == {"event_id", "type", "occurred_at", "room_id", "participant", "room"}


async def test_patch_rules(api):
    host, created = await _create(api, max_participants=4)
    rid = created["room"]["id"]
    guest, _ = await _join(api, rid, "Guest")
    await _join(api, rid, "Third")
    url = f"/api/v1/rooms/{rid}"
    assert_problem(await api.patch(url, json={"locked": True}, headers=hdr(guest)), 403, "not_host")
    assert_problem(
        await api.patch(url, json={"locked": True}, headers=hdr(new_pid())), 403, "not_a_participant"
    )
    for bad in (
        {"e2ee": True},
        {"e2ee": False},
        {"max_participants": 2},  # 3 are inside
        {"max_participants": 101},
        {"title": "   "},
        {"title": None},
        {"locked": "yes"},
        {"description": "x" * 2001},
    ):
        assert_problem(await api.patch(url, json=bad, headers=hdr(host)), 422, "validation_error")
    assert (await api.patch(url, json={"max_participants": 3}, headers=hdr(host))).status_code == 200
    assert_problem(
        await api.patch(f"/api/v1/rooms/{uuid.uuid4()}", json={}, headers=hdr(host)), 404, "room_not_found"
    )


# --- step 3: locked rooms -----------------------------------------------------------------


async def test_a_locked_room_refuses_newcomers_but_not_members_or_former_hosts(api):
    host, created = await _create(api)
    rid = created["room"]["id"]
    inside, _ = await _join(api, rid, "Inside")
    gone, _ = await _join(api, rid, "Gone")
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(gone))
    assert (
        await api.patch(f"/api/v1/rooms/{rid}", json={"locked": True}, headers=hdr(host))
    ).status_code == 200
    assert_problem((await _join(api, rid, "New"))[1], 403, "room_locked")
    assert_problem((await _join(api, rid, "Gone", gone))[1], 403, "room_locked")
    assert (await _join(api, rid, "Inside again", inside))[1].status_code == 200
    # The host leaves (Inside becomes host) and comes back: a former host may.
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(host))
    _, back = await _join(api, rid, "Host", host)
    assert back.status_code == 201 and back.json()["role"] == "host"


# --- step 4: co-hosts ---------------------------------------------------------------------


async def test_promote_and_demote_with_last_host_events_and_the_hash(api, redis_client):
    host, created = await _create(api)
    rid = created["room"]["id"]
    host_public = created["participant"]["id"]
    bob, _ = await _join(api, rid, "Bob")
    carol, _ = await _join(api, rid, "Carol")
    bob_public = (await _member(api, rid, "Bob"))["id"]
    carol_public = (await _member(api, rid, "Carol"))["id"]
    base = f"/api/v1/rooms/{rid}/participants"
    assert_problem(await api.post(f"{base}/{carol_public}/promote", headers=hdr(bob)), 403, "not_host")
    assert_problem(
        await api.post(f"{base}/{uuid.uuid4()}/promote", headers=hdr(host)), 404, "participant_not_found"
    )
    assert_problem(await api.post(f"{base}/nope/promote", headers=hdr(host)), 404, "participant_not_found")
    assert_problem(await api.post(f"{base}/{host_public}/demote", headers=hdr(host)), 409, "last_host")

    response = await api.post(f"{base}/{bob_public}/promote", headers=hdr(host))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "host" and response.json()["id"] == bob_public
    assert "participant_id" not in response.json()
    stored = json.loads(await redis_client.hget(keys.room_participants(rid), bob))
    assert stored["role"] == "host"  # media-token reads the role from here
    # The co-host has every host power: it demotes the creator, and kicks.
    response = await api.post(f"{base}/{host_public}/demote", headers=hdr(bob))
    assert response.status_code == 200 and response.json()["role"] == "participant"
    assert json.loads(await redis_client.hget(keys.room_participants(rid), host))["role"] == "participant"
    assert_problem(await api.post(f"{base}/{bob_public}/demote", headers=hdr(host)), 403, "not_host")
    assert_problem(await api.post(f"{base}/{bob_public}/demote", headers=hdr(bob)), 409, "last_host")
    assert (await api.post(f"{base}/{carol_public}/kick", headers=hdr(bob))).status_code == 204
    patched = await api.patch(f"/api/v1/rooms/{rid}", json={"title": "Bob's"}, headers=hdr(bob))
    assert patched.status_code == 200

    events = [e for e in await _events(rid, expected=8) if e["type"] == "participant.updated"]
    assert [(e["participant"]["display_name"], e["participant"]["role"]) for e in events] == [
        ("Bob", "host"),
        ("Host", "participant"),
    ]
    assert events[0]["change"] == "promoted" and events[1]["change"] == "demoted"
    assert_problem(
        await api.post(f"{base}/{carol_public}/promote", headers=hdr(bob)), 404, "participant_not_found"
    )
    del carol


# --- step 5: hand-over --------------------------------------------------------------------


async def test_the_earliest_member_becomes_host_when_the_last_host_leaves(api, db, redis_client):
    host, created = await _create(api)
    rid = created["room"]["id"]
    anna, _ = await _join(api, rid, "Anna")
    await _join(api, rid, "Boris")
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(host))
    participants = (await api.get(f"/api/v1/rooms/{rid}/participants")).json()["participants"]
    assert [(p["display_name"], p["role"]) for p in participants] == [
        ("Anna", "host"),
        ("Boris", "participant"),
    ]
    assert json.loads(await redis_client.hget(keys.room_participants(rid), anna))["role"] == "host"
    assert await _active_hosts(db, rid) == 1
    events = await _events(rid, expected=6)
    updated = [e for e in events if e["type"] == "participant.updated"]
    assert len(updated) == 1
    assert updated[0]["participant"]["display_name"] == "Anna" and updated[0]["change"] == "host_changed"
    # A kick of a host by a co-host leaves a host: no hand-over.
    boris_public = (await _member(api, rid, "Boris"))["id"]
    anna_public = (await _member(api, rid, "Anna"))["id"]
    await api.post(f"/api/v1/rooms/{rid}/participants/{boris_public}/promote", headers=hdr(anna))
    await api.post(f"/api/v1/rooms/{rid}/participants/{anna_public}/kick", headers=hdr(anna))  # 422: itself
    assert await _active_hosts(db, rid) == 2


async def test_a_timed_out_last_host_hands_over(api, db, rooms_app):
    host, created = await _create(api)
    rid = created["room"]["id"]
    await _join(api, rid, "Anna")
    service = rooms_app.app.state.ctx.service
    await db.execute(
        "UPDATE room_participants SET joined_at = joined_at - interval '1 hour' WHERE room_id = $1",
        uuid.UUID(rid),
    )
    await service.cache.redis.delete(keys.room_presence(rid))
    await service.cache.redis.zadd(keys.room_presence(rid), {created["participant"]["id"]: 1})
    left = await service.time_out(uuid.UUID(rid), uuid.UUID(created["participant"]["id"]), 10**13)
    assert left is True
    participants = (await api.get(f"/api/v1/rooms/{rid}/participants")).json()["participants"]
    assert [(p["display_name"], p["role"]) for p in participants] == [("Anna", "host")]
    del host


# --- step 6: raised hands -----------------------------------------------------------------


async def test_raise_and_lower_a_hand(api, redis_client):
    host, created = await _create(api)
    rid = created["room"]["id"]
    bob, _ = await _join(api, rid, "Bob")
    url = f"/api/v1/rooms/{rid}/hand"
    response = await api.post(url, json={"raised": True}, headers=hdr(bob))
    assert response.status_code == 200, response.text
    raised_at = response.json()["hand_raised_at"]
    assert_ts(raised_at)
    assert response.json()["display_name"] == "Bob" and "participant_id" not in response.json()
    again = await api.post(url, json={"raised": True}, headers=hdr(bob))
    assert again.json()["hand_raised_at"] == raised_at  # the queue position is kept
    assert (await _member(api, rid, "Bob"))["hand_raised_at"] == raised_at
    assert (
        json.loads(await redis_client.hget(keys.room_participants(rid), bob))["hand_raised_at"] == raised_at
    )
    lowered = await api.post(url, json={"raised": False}, headers=hdr(bob))
    assert lowered.status_code == 200 and lowered.json()["hand_raised_at"] is None
    assert_problem(await api.post(url, json={"raised": "yes"}, headers=hdr(bob)), 422, "validation_error")
    assert_problem(await api.post(url, json={}, headers=hdr(bob)), 422, "validation_error")
    assert_problem(
        await api.post(url, json={"raised": True}, headers=hdr(new_pid())), 403, "not_a_participant"
    )
    events = [e for e in await _events(rid, expected=5) if e["type"] == "participant.updated"]
    assert [e["participant"]["hand_raised_at"] for e in events] == [raised_at, None]
    assert all(e["change"] == "hand" for e in events)
    del host


# --- step 8: the lobby --------------------------------------------------------------------


async def test_the_lobby_flow(api, db):
    host, created = await _create(api, lobby=True, max_participants=5)
    rid = created["room"]["id"]
    anna, first = await _join(api, rid, "Anna")
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "waiting"
    request_id = first.json()["request_id"]
    _, again = await _join(api, rid, "Anna", anna)
    assert again.status_code == 202 and again.json()["request_id"] == request_id
    count = await db.fetchval("SELECT count(*) FROM room_participants WHERE room_id = $1", uuid.UUID(rid))
    assert count == 1  # no membership while waiting
    boris, _ = await _join(api, rid, "Boris")

    lobby = await api.get(f"/api/v1/rooms/{rid}/lobby", headers=hdr(host))
    assert lobby.status_code == 200
    requests = lobby.json()["requests"]
    assert [r["display_name"] for r in requests] == ["Anna", "Boris"]
    assert set(requests[0]) == {"id", "display_name", "requested_at"}
    assert_problem(await api.get(f"/api/v1/rooms/{rid}/lobby", headers=hdr(anna)), 403, "not_a_participant")

    base = f"/api/v1/rooms/{rid}/lobby"
    assert (await api.post(f"{base}/{request_id}/admit", headers=hdr(host))).status_code == 204
    assert (await api.post(f"{base}/{request_id}/admit", headers=hdr(host))).status_code == 204  # no-op
    assert_problem(await api.post(f"{base}/{request_id}/deny", headers=hdr(host)), 409, "already_resolved")
    _, joined = await _join(api, rid, "Anna", anna)
    assert joined.status_code == 201 and joined.json()["role"] == "participant"
    assert_problem(await api.get(f"/api/v1/rooms/{rid}/lobby", headers=hdr(anna)), 403, "not_host")
    # Admitted once, never asked again in this room.
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(anna))
    assert (await _join(api, rid, "Anna", anna))[1].status_code == 201

    boris_request = requests[1]["id"]
    assert (await api.post(f"{base}/{boris_request}/deny", headers=hdr(host))).status_code == 204
    assert_problem((await _join(api, rid, "Boris", boris))[1], 403, "lobby_denied")
    assert_problem(
        await api.post(f"{base}/{uuid.uuid4()}/admit", headers=hdr(host)), 404, "request_not_found"
    )
    assert_problem(await api.post(f"{base}/nope/admit", headers=hdr(host)), 404, "request_not_found")
    assert (await api.get(f"/api/v1/rooms/{rid}/lobby", headers=hdr(host))).json()["requests"] == []

    # A former host walks in; a request nobody answers expires and the next knock is a new one.
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(host))
    assert (await _join(api, rid, "Host", host))[1].status_code == 201
    carol, knock = await _join(api, rid, "Carol")
    await db.execute(
        "UPDATE lobby_requests SET requested_at = requested_at - interval '11 minutes' WHERE id = $1",
        uuid.UUID(knock.json()["request_id"]),
    )
    assert (await api.get(f"/api/v1/rooms/{rid}/lobby", headers=hdr(host))).json()["requests"] == []
    assert_problem(
        await api.post(f"{base}/{knock.json()['request_id']}/admit", headers=hdr(host)),
        404,
        "request_not_found",
    )
    _, knock2 = await _join(api, rid, "Carol", carol)
    assert knock2.status_code == 202 and knock2.json()["request_id"] != knock.json()["request_id"]

    events = await _events(rid, expected=15)
    kinds = [e["type"] for e in events]
    assert kinds.count("lobby.requested") == 4
    requested = next(e for e in events if e["type"] == "lobby.requested")
    assert set(requested["request"]) == {"id", "display_name", "requested_at"}
    resolved = [(e["request_id"], e["admitted"]) for e in events if e["type"] == "lobby.resolved"]
    assert (request_id, True) in resolved and (boris_request, False) in resolved
    assert (knock.json()["request_id"], False) in resolved  # expired


async def test_a_locked_room_refuses_before_the_lobby_and_patch_turns_the_lobby_on(api):
    host, created = await _create(api)
    rid = created["room"]["id"]
    await api.patch(f"/api/v1/rooms/{rid}", json={"lobby": True}, headers=hdr(host))
    assert (await _join(api, rid, "Knock"))[1].status_code == 202
    await api.patch(f"/api/v1/rooms/{rid}", json={"locked": True}, headers=hdr(host))
    assert_problem((await _join(api, rid, "Knock"))[1], 403, "room_locked")


# --- concurrency --------------------------------------------------------------------------


async def test_two_hosts_admitting_one_request_admit_it_once(api, db):
    host, created = await _create(api, lobby=True, max_participants=10)
    rid = created["room"]["id"]
    cohost = new_pid()
    await db.execute(
        "INSERT INTO room_participants (room_id, participant_id, display_name, role)"
        " VALUES ($1, $2, 'Co', 'host')",
        uuid.UUID(rid),
        cohost,
    )
    for _ in range(5):
        knocker, knock = await _join(api, rid, "Knocker")
        request_id = knock.json()["request_id"]
        answers = await asyncio.gather(
            *(
                api.post(f"/api/v1/rooms/{rid}/lobby/{request_id}/admit", headers=hdr(pid))
                for pid in (host, cohost, host, cohost)
            )
        )
        assert all(r.status_code in (204, 404, 409) for r in answers), [r.text for r in answers]
        assert any(r.status_code == 204 for r in answers)
        row = await db.fetchrow(
            "SELECT admitted, resolved_at FROM lobby_requests WHERE id = $1", uuid.UUID(request_id)
        )
        assert row["admitted"] is True
    events = await _events(rid, expected=2 + 10)
    assert sum(1 for e in events if e["type"] == "lobby.resolved") == 5
    del knocker


async def test_admissions_racing_the_last_free_seats(api, db):
    host, created = await _create(api, lobby=True, max_participants=4)
    rid = created["room"]["id"]
    knockers = []
    for i in range(8):
        pid, knock = await _join(api, rid, f"K{i}")
        knockers.append((pid, knock.json()["request_id"]))
    answers = await asyncio.gather(
        *(
            api.post(f"/api/v1/rooms/{rid}/lobby/{request_id}/admit", headers=hdr(host))
            for _, request_id in knockers
        )
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [204] * 3 + [409] * 5, codes
    for response in answers:
        if response.status_code == 409:
            assert response.json()["code"] == "room_full"
    admitted = [pid for (pid, _), r in zip(knockers, answers, strict=True) if r.status_code == 204]
    joins = await asyncio.gather(*(_join(api, rid, "In", pid) for pid in admitted))
    assert [r.status_code for _, r in joins] == [201] * 3
    count = await db.fetchval(
        "SELECT count(*) FROM room_participants WHERE room_id = $1 AND left_at IS NULL", uuid.UUID(rid)
    )
    assert count == 4
    # Seats promised to the admitted ones are theirs: nobody else is admitted meanwhile, and a
    # full room refuses an admission and a join alike.
    refused = await api.post(f"/api/v1/rooms/{rid}/lobby/{knockers[-1][1]}/admit", headers=hdr(host))
    if refused.status_code != 204:
        assert_problem(refused, 409, "room_full")


async def test_a_room_always_keeps_a_host_while_members_leave_at_once(api, db):
    host, created = await _create(api, max_participants=30)
    rid = created["room"]["id"]
    members = [host]
    for i in range(24):
        pid, response = await _join(api, rid, f"M{i:02d}")
        assert response.status_code == 201
        members.append(pid)
    # Wave after wave, the earliest members (the hosts among them) leave together.
    while members:
        wave, members = members[:5], members[5:]
        answers = await asyncio.gather(
            *(api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(pid)) for pid in wave)
        )
        assert all(r.status_code == 204 for r in answers)
        remaining = await db.fetchval(
            "SELECT count(*) FROM room_participants WHERE room_id = $1 AND left_at IS NULL", uuid.UUID(rid)
        )
        assert remaining == len(members)
        hosts = await _active_hosts(db, rid)
        assert hosts == (1 if members else 0), (hosts, len(members))
        if members:
            first = await db.fetchrow(
                "SELECT role FROM room_participants WHERE room_id = $1 AND left_at IS NULL"
                " ORDER BY joined_at, id LIMIT 1",
                uuid.UUID(rid),
            )
            assert first["role"] == "host"
