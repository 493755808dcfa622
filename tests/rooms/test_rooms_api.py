"""Every row of docs/api.md's Rooms table, with its success and error codes."""

import uuid

from tests.support import hdr, new_pid

ROOM_FIELDS = {
    "id",
    "livekit_room_name",
    "title",
    "description",
    "status",
    "max_participants",
    "participant_count",
    "created_at",
    "updated_at",
    "expires_at",
    "locked",
    "lobby",
    "e2ee",
}
SELF_FIELDS = {"id", "room_id", "participant_id", "display_name", "role", "joined_at", "left_at"}
PUBLIC_FIELDS = {"id", "display_name", "role", "joined_at", "livekit_sid", "hand_raised_at"}


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    assert "Traceback" not in response.text


def assert_ts(value: str) -> None:
    assert value.endswith("Z") and "T" in value, value


# --- create ------------------------------------------------------------------------------


async def test_create_answers_201_with_room_host_self_and_location(api):
    pid = new_pid()
    response = await api.post(
        "/api/v1/rooms",
        json={"title": "  Planning  ", "description": "Q4", "max_participants": 4, "display_name": "Anna"},
        headers=hdr(pid),
    )
    assert response.status_code == 201
    body = response.json()
    room, me = body["room"], body["participant"]
    assert set(room) == ROOM_FIELDS
    assert set(me) == SELF_FIELDS
    assert response.headers["location"] == f"/api/v1/rooms/{room['id']}"
    assert room["title"] == "Planning"
    assert room["description"] == "Q4"
    assert room["status"] == "active"
    assert room["max_participants"] == 4
    assert room["participant_count"] == 1
    assert room["expires_at"] is None
    assert room["livekit_room_name"]
    for ts in (room["created_at"], room["updated_at"], me["joined_at"]):
        assert_ts(ts)
    assert me["participant_id"] == pid
    assert me["room_id"] == room["id"]
    assert me["role"] == "host"
    assert me["display_name"] == "Anna"
    assert me["left_at"] is None
    assert me["id"] != pid


async def test_create_without_header_generates_an_identity_and_returns_it(api):
    response = await api.post("/api/v1/rooms", json={"title": "No header"})
    assert response.status_code == 201
    generated = response.headers["x-participant-id"]
    assert uuid.UUID(generated)
    assert response.json()["participant"]["participant_id"] == generated
    assert response.json()["participant"]["display_name"] == "Host"
    assert response.json()["room"]["max_participants"] == 10
    # The generated identity is the host from then on.
    room_id = response.json()["room"]["id"]
    ended = await api.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(generated))
    assert ended.status_code == 200


async def test_create_with_malformed_header_is_400_invalid_participant_id(api):
    response = await api.post("/api/v1/rooms", json={"title": "x"}, headers=hdr("not-a-uuid"))
    assert_problem(response, 400, "invalid_participant_id")


async def test_create_with_body_that_is_not_json_is_400_invalid_json(api):
    for raw in (b"{not json", b"[1, 2]", b'"just a string"', b""):
        response = await api.post("/api/v1/rooms", content=raw, headers={"content-type": "application/json"})
        assert_problem(response, 400, "invalid_json")


# --- get ---------------------------------------------------------------------------------


async def test_get_answers_the_room_with_participant_count(api, room):
    await room.join("Bob")
    response = await api.get(f"/api/v1/rooms/{room.id}")
    assert response.status_code == 200
    assert set(response.json()) == ROOM_FIELDS
    assert response.json()["participant_count"] == 2
    assert response.json()["id"] == room.id


async def test_get_unknown_or_malformed_room_is_404_room_not_found(api):
    assert_problem(await api.get(f"/api/v1/rooms/{uuid.uuid4()}"), 404, "room_not_found")
    assert_problem(await api.get("/api/v1/rooms/not-a-uuid"), 404, "room_not_found")


async def test_get_answers_ended_rooms_too(api, room):
    ended = await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host))
    assert ended.status_code == 200, ended.text
    response = await api.get(f"/api/v1/rooms/{room.id}")
    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    assert response.json()["participant_count"] == 0


# --- join --------------------------------------------------------------------------------


async def test_join_answers_201_self_for_a_new_membership(api, room):
    pid = new_pid()
    response = await api.post(
        f"/api/v1/rooms/{room.id}/join", json={"display_name": "Борис"}, headers=hdr(pid)
    )
    assert response.status_code == 201
    me = response.json()
    assert set(me) == SELF_FIELDS
    assert me["participant_id"] == pid
    assert me["role"] == "participant"
    assert me["display_name"] == "Борис"
    assert response.headers["x-participant-id"] == pid


async def test_join_without_header_generates_an_identity(api, room):
    response = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": "Anon"})
    assert response.status_code == 201
    assert response.json()["participant_id"] == response.headers["x-participant-id"]


async def test_join_again_while_active_answers_200_same_membership_and_updates_name(api, room):
    pid, first = await room.join("Bob")
    response = await api.post(
        f"/api/v1/rooms/{room.id}/join", json={"display_name": "Robert"}, headers=hdr(pid)
    )
    assert response.status_code == 200
    assert response.json()["id"] == first["id"]
    assert response.json()["display_name"] == "Robert"
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert [p["display_name"] for p in listed].count("Robert") == 1
    assert "Bob" not in [p["display_name"] for p in listed]


async def test_join_after_leaving_creates_a_new_membership(api, room):
    pid, first = await room.join("Bob")
    assert (await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(pid))).status_code == 204
    response = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": "Bob"}, headers=hdr(pid))
    assert response.status_code == 201
    assert response.json()["id"] != first["id"]
    assert response.json()["left_at"] is None


async def test_a_former_host_is_host_again_after_rejoining(api, room):
    assert (await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(room.host))).status_code == 204
    response = await api.post(
        f"/api/v1/rooms/{room.id}/join", json={"display_name": "Back"}, headers=hdr(room.host)
    )
    assert response.status_code == 201
    assert response.json()["role"] == "host"


async def test_join_a_full_room_is_409_room_full(api):
    response = await api.post("/api/v1/rooms", json={"title": "Pair", "max_participants": 2})
    room_id = response.json()["room"]["id"]
    first = await api.post(f"/api/v1/rooms/{room_id}/join", json={"display_name": "Two"})
    assert first.status_code == 201
    third = await api.post(f"/api/v1/rooms/{room_id}/join", json={"display_name": "Three"})
    assert_problem(third, 409, "room_full")


async def test_join_an_ended_room_is_409_room_ended(api, room):
    await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host))
    response = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": "Late"})
    assert_problem(response, 409, "room_ended")


async def test_join_unknown_room_is_404(api):
    response = await api.post(f"/api/v1/rooms/{uuid.uuid4()}/join", json={"display_name": "X"})
    assert_problem(response, 404, "room_not_found")


async def test_join_with_malformed_header_is_400(api, room):
    response = await api.post(
        f"/api/v1/rooms/{room.id}/join", json={"display_name": "X"}, headers=hdr("12345")
    )
    assert_problem(response, 400, "invalid_participant_id")


async def test_join_without_display_name_is_422_validation_error(api, room):
    response = await api.post(f"/api/v1/rooms/{room.id}/join", json={})
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["field"] == "display_name"


# --- leave -------------------------------------------------------------------------------


async def test_leave_answers_204_and_again_204(api, room):
    pid, _ = await room.join("Bob")
    first = await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(pid))
    again = await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(pid))
    assert first.status_code == 204 and first.content == b""
    assert again.status_code == 204
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert [p["display_name"] for p in listed] == ["Host"]


async def test_leave_by_someone_who_never_joined_is_404_participant_not_found(api, room):
    assert_problem(
        await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(new_pid())),
        404,
        "participant_not_found",
    )
    assert_problem(await api.post(f"/api/v1/rooms/{room.id}/leave"), 404, "participant_not_found")


async def test_leave_unknown_room_is_404_room_not_found(api):
    response = await api.post(f"/api/v1/rooms/{uuid.uuid4()}/leave", headers=hdr(new_pid()))
    assert_problem(response, 404, "room_not_found")


async def test_last_leave_sets_expires_at_and_a_join_clears_it(api, room):
    await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(room.host))
    emptied = (await api.get(f"/api/v1/rooms/{room.id}")).json()
    assert emptied["participant_count"] == 0
    assert emptied["expires_at"] is not None
    await room.join("Back")
    assert (await api.get(f"/api/v1/rooms/{room.id}")).json()["expires_at"] is None


# --- participants ------------------------------------------------------------------------


async def test_participants_lists_active_members_by_joined_at_in_public_view(api, room):
    bob, _ = await room.join("Bob")
    await room.join("Carol")
    await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(bob))
    response = await api.get(f"/api/v1/rooms/{room.id}/participants")
    assert response.status_code == 200
    listed = response.json()["participants"]
    assert [p["display_name"] for p in listed] == ["Host", "Carol"]
    for p in listed:
        assert set(p) == PUBLIC_FIELDS
    assert listed[0]["role"] == "host" and listed[1]["role"] == "participant"
    assert listed[0]["joined_at"] <= listed[1]["joined_at"]


async def test_participants_of_unknown_room_is_404(api):
    assert_problem(await api.get(f"/api/v1/rooms/{uuid.uuid4()}/participants"), 404, "room_not_found")


# --- end ---------------------------------------------------------------------------------


async def test_end_by_host_answers_200_ended_room_and_closes_every_membership(api, room):
    await room.join("Bob")
    response = await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ROOM_FIELDS
    assert body["status"] == "ended"
    assert body["participant_count"] == 0
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert listed == []


async def test_end_by_a_participant_is_403_not_host(api, room):
    pid, _ = await room.join("Bob")
    assert_problem(await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(pid)), 403, "not_host")
    assert (await api.get(f"/api/v1/rooms/{room.id}")).json()["status"] == "active"


async def test_end_by_a_stranger_is_403_not_a_participant(api, room):
    response = await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(new_pid()))
    assert_problem(response, 403, "not_a_participant")
    assert_problem(await api.post(f"/api/v1/rooms/{room.id}/end"), 403, "not_a_participant")


async def test_end_unknown_room_is_404(api):
    response = await api.post(f"/api/v1/rooms/{uuid.uuid4()}/end", headers=hdr(new_pid()))
    assert_problem(response, 404, "room_not_found")


async def test_end_twice_by_the_host_answers_the_ended_room_again(api, room):
    await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host))
    again = await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host))
    assert again.status_code == 200
    assert again.json()["status"] == "ended"


# --- kick --------------------------------------------------------------------------------


async def test_kick_by_host_answers_204_and_the_kicked_is_banned_from_rejoining(api, room):
    bob, bob_self = await room.join("Bob")
    response = await api.post(
        f"/api/v1/rooms/{room.id}/participants/{bob_self['id']}/kick", headers=hdr(room.host)
    )
    assert response.status_code == 204
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert bob_self["id"] not in [p["id"] for p in listed]
    rejoin = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": "Bob"}, headers=hdr(bob))
    assert_problem(rejoin, 403, "banned")
    # The ban holds later too, and does not touch anyone else.
    again = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": "B"}, headers=hdr(bob))
    assert_problem(again, 403, "banned")
    other, _ = await room.join("Carol")
    assert other


async def test_kick_by_a_participant_is_403_not_host(api, room):
    bob, _ = await room.join("Bob")
    _, carol = await room.join("Carol")
    response = await api.post(f"/api/v1/rooms/{room.id}/participants/{carol['id']}/kick", headers=hdr(bob))
    assert_problem(response, 403, "not_host")


async def test_kick_of_unknown_or_malformed_target_is_404_participant_not_found(api, room):
    for target in (str(uuid.uuid4()), "nope"):
        response = await api.post(
            f"/api/v1/rooms/{room.id}/participants/{target}/kick", headers=hdr(room.host)
        )
        assert_problem(response, 404, "participant_not_found")


async def test_kick_of_someone_who_already_left_is_404(api, room):
    bob, bob_self = await room.join("Bob")
    await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(bob))
    response = await api.post(
        f"/api/v1/rooms/{room.id}/participants/{bob_self['id']}/kick", headers=hdr(room.host)
    )
    assert_problem(response, 404, "participant_not_found")


async def test_kick_in_unknown_room_is_404_room_not_found(api):
    response = await api.post(
        f"/api/v1/rooms/{uuid.uuid4()}/participants/{uuid.uuid4()}/kick", headers=hdr(new_pid())
    )
    assert_problem(response, 404, "room_not_found")
