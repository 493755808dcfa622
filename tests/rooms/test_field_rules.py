"""docs/api.md Field rules on create and join: what is refused with 422, what is accepted."""

import pytest

from tests.support import new_pid


def assert_validation(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in [e["field"] for e in body["errors"]]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   \t "}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"title": 42}, "title"),
        ({"title": None}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": "ok", "description": "d" * 2001}, "description"),
        ({"title": "ok", "description": 7}, "description"),
        ({"title": "ok", "max_participants": 1}, "max_participants"),
        ({"title": "ok", "max_participants": 101}, "max_participants"),
        ({"title": "ok", "max_participants": "5"}, "max_participants"),
        ({"title": "ok", "max_participants": 5.5}, "max_participants"),
        ({"title": "ok", "max_participants": True}, "max_participants"),
        ({"title": "ok", "display_name": ""}, "display_name"),
        ({"title": "ok", "display_name": "  "}, "display_name"),
        ({"title": "ok", "display_name": "n" * 65}, "display_name"),
        ({"title": "ok", "display_name": "bell\x07"}, "display_name"),
        ({"title": "ok", "display_name": "new\nline"}, "display_name"),
        ({"title": "ok", "display_name": "nul\x00"}, "display_name"),
        ({"title": "ok", "display_name": "del\x7f"}, "display_name"),
        ({"title": "ok", "display_name": 12}, "display_name"),
    ],
)
async def test_create_refuses_invalid_fields_with_422(api, db, body, field):
    pid = new_pid()
    response = await api.post("/api/v1/rooms", json=body, headers={"X-Participant-ID": pid})
    assert_validation(response, field)
    stored = await db.fetchval("SELECT count(*) FROM room_participants WHERE participant_id = $1", pid)
    assert stored == 0


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"title": "x" * 255}, {"title": "x" * 255}),
        ({"title": "  padded  "}, {"title": "padded"}),
        ({"title": "Планёрка", "description": "d" * 2000}, {"title": "Планёрка"}),
        ({"title": "ok", "description": None}, {"description": None}),
        ({"title": "ok", "max_participants": 2}, {"max_participants": 2}),
        ({"title": "ok", "max_participants": 100}, {"max_participants": 100}),
    ],
)
async def test_create_accepts_fields_at_their_bounds(api, body, expected):
    response = await api.post("/api/v1/rooms", json=body)
    assert response.status_code == 201, response.text
    for key, value in expected.items():
        assert response.json()["room"][key] == value


@pytest.mark.parametrize(
    "name",
    ["Анна Каренина", "😀🎉", "👩‍👩‍👧‍👦 family", "李小龙", "n" * 64, "  trimmed  ", "O'Brien <b>"],
)
async def test_display_names_in_any_script_are_accepted(api, room, name):
    response = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": name})
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == name.strip()


@pytest.mark.parametrize(
    "name", ["", " ", "x" * 65, "tab\tname", "esc\x1b[31m", 3, None, ["a"], {"a": 1}, "line\u2028sep"]
)
async def test_join_refuses_invalid_display_names_and_changes_nothing(api, room, name):
    before = (await api.get(f"/api/v1/rooms/{room.id}")).json()["participant_count"]
    response = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": name})
    assert_validation(response, "display_name")
    after = (await api.get(f"/api/v1/rooms/{room.id}")).json()["participant_count"]
    assert after == before


@pytest.mark.parametrize(
    "header", ["nope", "1234", "00000000-0000-0000-0000-00000000000g", "{}", "' OR 1=1 --"]
)
async def test_non_uuid_header_is_400_everywhere(api, room, header):
    calls = [
        api.post("/api/v1/rooms", json={"title": "x"}, headers={"X-Participant-ID": header}),
        api.post(
            f"/api/v1/rooms/{room.id}/join", json={"display_name": "x"}, headers={"X-Participant-ID": header}
        ),
        api.post(f"/api/v1/rooms/{room.id}/leave", headers={"X-Participant-ID": header}),
        api.post(f"/api/v1/rooms/{room.id}/end", headers={"X-Participant-ID": header}),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_participant_id"
