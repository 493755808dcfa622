"""LiveKit webhooks: signed as LiveKit signs them, or 401."""

import base64
import hashlib

from google.protobuf.json_format import MessageToJson
from livekit import api as lk
from livekit.protocol import models, webhook

from helpers import hdr

KEY, SECRET = "devkey", "secret"  # the settings' defaults, as the app under test uses


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
    wrong_secret = await api.post("/api/v1/livekit/webhook", content=body,
                                  headers=signed(body, secret="not-the-secret"))
    tampered = await api.post("/api/v1/livekit/webhook", content=body.replace("PA_x", "PA_y"),
                              headers=signed(body))
    missing = await api.post("/api/v1/livekit/webhook", content=body,
                             headers={"Content-Type": "application/webhook+json"})
    garbage = await api.post("/api/v1/livekit/webhook", content=body,
                             headers={"Authorization": "Bearer nonsense"})
    for response in (wrong_secret, tampered, missing, garbage):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants", headers=hdr(room.host))).json()
    assert bob["id"] in [p["id"] for p in listed["participants"]]
