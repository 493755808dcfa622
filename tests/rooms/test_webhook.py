"""LiveKit webhooks: signed as LiveKit signs them, or 401."""

import base64
import hashlib

from google.protobuf.json_format import MessageToJson
from livekit import api as lk
from livekit.protocol import models, webhook

from tests.support import hdr
from veche.common.settings import LiveKitSettings

KEY, SECRET = LiveKitSettings().livekit_api_key, LiveKitSettings().livekit_api_secret  # as the app uses


def signed(body: str, key: str = KEY, secret: str = SECRET) -> dict[str, str]:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = lk.AccessToken(key, secret).with_sha256(digest).to_jwt()
    return {"Authorization": token, "Content-Type": "application/webhook+json"}


def event(kind: str, identity: str = "", sid: str = "", room_name: str = "") -> str:
    msg = webhook.WebhookEvent(
        event=kind,
        room=models.Room(name=room_name),
        participant=models.ParticipantInfo(identity=identity, sid=sid) if identity else None,
        id="EV_test",
    )
    return MessageToJson(msg)


async def test_participant_joined_webhook_records_livekit_sid(api, room):
    _, bob = await room.join("Bob")
    body = event("participant_joined", bob["id"], "PA_bob1", f"veche-{room.id}")
    response = await api.post("/api/v1/livekit/webhook", content=body, headers=signed(body))
    assert response.status_code in (200, 204), response.text
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert next(p for p in listed if p["id"] == bob["id"])["livekit_sid"] == "PA_bob1"


async def test_participant_left_webhook_marks_the_membership_left(api, room):
    _, bob = await room.join("Bob")
    joined = event("participant_joined", bob["id"], "PA_bob2", f"veche-{room.id}")
    await api.post("/api/v1/livekit/webhook", content=joined, headers=signed(joined))
    left = event("participant_left", bob["id"], "PA_bob2", f"veche-{room.id}")
    response = await api.post("/api/v1/livekit/webhook", content=left, headers=signed(left))
    assert response.status_code in (200, 204)
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert bob["id"] not in [p["id"] for p in listed]


async def test_room_finished_webhook_is_accepted(api, room):
    body = event("room_finished", room_name=f"veche-{room.id}")
    response = await api.post("/api/v1/livekit/webhook", content=body, headers=signed(body))
    assert response.status_code in (200, 204)
    assert (await api.get(f"/api/v1/rooms/{room.id}")).json()["status"] == "active"


async def test_webhook_with_a_wrong_or_missing_signature_is_401_and_changes_nothing(api, room):
    _, bob = await room.join("Bob")
    body = event("participant_left", bob["id"], "PA_x", f"veche-{room.id}")
    wrong_secret = await api.post(
        "/api/v1/livekit/webhook", content=body, headers=signed(body, secret="not-the-secret")
    )
    tampered = await api.post(
        "/api/v1/livekit/webhook", content=body.replace("PA_x", "PA_y"), headers=signed(body)
    )
    missing = await api.post(
        "/api/v1/livekit/webhook", content=body, headers={"Content-Type": "application/webhook+json"}
    )
    garbage = await api.post(
        "/api/v1/livekit/webhook", content=body, headers={"Authorization": "Bearer nonsense"}
    )
    for response in (wrong_secret, tampered, missing, garbage):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants", headers=hdr(room.host))).json()
    assert bob["id"] in [p["id"] for p in listed["participants"]]


async def _hook(api, kind: str, identity: str, sid: str, room_name: str, reason: int = 0):  # type: ignore[no-untyped-def]
    msg = webhook.WebhookEvent(
        event=kind,
        room=models.Room(name=room_name),
        participant=models.ParticipantInfo(identity=identity, sid=sid, disconnect_reason=reason),
        id="EV_forged",
    )
    body = MessageToJson(msg)
    response = await api.post("/api/v1/livekit/webhook", content=body, headers=signed(body))
    assert response.status_code == 200, response.text


async def _listed(api, room) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    response = await api.get(f"/api/v1/rooms/{room.id}/participants")
    return {p["id"]: p for p in response.json()["participants"]}


async def test_a_left_event_naming_another_livekit_room_changes_nothing(api, room, make_room):
    _, bob = await room.join("Bob")
    await _hook(api, "participant_joined", bob["id"], "PA_b", f"veche-{room.id}")
    other = await make_room()
    await _hook(api, "participant_left", bob["id"], "PA_b", f"veche-{other.id}")
    assert (await _listed(api, room))[bob["id"]]["livekit_sid"] == "PA_b"


async def test_a_joined_event_naming_another_livekit_room_records_nothing(api, room, make_room):
    _, bob = await room.join("Bob")
    other = await make_room()
    await _hook(api, "participant_joined", bob["id"], "PA_elsewhere", f"veche-{other.id}")
    assert (await _listed(api, room))[bob["id"]]["livekit_sid"] is None


async def test_a_left_event_with_an_empty_or_other_sid_changes_nothing(api, room):
    _, bob = await room.join("Bob")
    await _hook(api, "participant_joined", bob["id"], "PA_live", f"veche-{room.id}")
    for sid in ("", "PA_old"):
        await _hook(api, "participant_left", bob["id"], sid, f"veche-{room.id}")
    assert (await _listed(api, room))[bob["id"]]["livekit_sid"] == "PA_live"


async def test_a_member_who_never_connected_cannot_be_left_by_a_webhook(api, room):
    _, bob = await room.join("Bob")
    for sid in ("", "PA_guess"):
        await _hook(api, "participant_left", bob["id"], sid, f"veche-{room.id}")
    assert bob["id"] in await _listed(api, room)


async def test_a_connection_the_platform_lost_is_no_leave(api, room):
    """LiveKit shutting down or a dropped network: the member stays, without a LiveKit sid, and
    presence decides as for anyone else."""
    _, bob = await room.join("Bob")
    for reason in (
        lk.DisconnectReason.SERVER_SHUTDOWN,
        lk.DisconnectReason.SIGNAL_CLOSE,
        lk.DisconnectReason.CONNECTION_TIMEOUT,
        lk.DisconnectReason.DUPLICATE_IDENTITY,
    ):
        await _hook(api, "participant_joined", bob["id"], "PA_c", f"veche-{room.id}")
        await _hook(api, "participant_left", bob["id"], "PA_c", f"veche-{room.id}", reason)
        assert (await _listed(api, room))[bob["id"]]["livekit_sid"] is None
    await _hook(api, "participant_joined", bob["id"], "PA_d", f"veche-{room.id}")
    await _hook(
        api, "participant_left", bob["id"], "PA_d", f"veche-{room.id}", lk.DisconnectReason.CLIENT_INITIATED
    )
    assert bob["id"] not in await _listed(api, room)
