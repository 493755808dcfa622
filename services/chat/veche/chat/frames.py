"""The frames of the chat WebSocket (what a client receives), their close codes, and the
envelopes that carry frames on a room's Redis pub/sub channel to every replica."""

import json
from typing import Any
from uuid import UUID

from veche.chat.schemas import MessageView
from veche.common.events import LobbyRequestView, PublicParticipant

# WebSocket close codes of docs/api.md (and RFC 6455 for the standard ones).
CLOSE_BAD_FRAME = 4400
CLOSE_NO_AUTH = 4401
CLOSE_NOT_PARTICIPANT = 4403
CLOSE_ROOM_NOT_FOUND = 4404
CLOSE_ROOM_ENDED = 4410
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_BIG = 1009
CLOSE_UNAVAILABLE = 1011
CLOSE_RESTARTING = 1012
CLOSE_TRY_AGAIN = 1013


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- frames (what a client receives) -------------------------------------------------------


def message_frame(kind: str, message: MessageView) -> dict[str, Any]:
    return {"type": kind, "message": message.model_dump(mode="json")}


def participant_frame(kind: str, participant: PublicParticipant) -> dict[str, Any]:
    return {"type": kind, "participant": participant.model_dump(mode="json")}


def ready_frame(participant: PublicParticipant) -> dict[str, Any]:
    return participant_frame("ready", participant)


def ack_frame(client_msg_id: Any, message: MessageView) -> dict[str, Any]:
    return {"type": "ack", "client_msg_id": client_msg_id, "message": message.model_dump(mode="json")}


def error_frame(client_msg_id: Any, code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "client_msg_id": client_msg_id, "code": code, "detail": detail}


ROOM_ENDED_FRAME: dict[str, Any] = {"type": "room.ended"}


# --- envelopes (what travels on a room's channel) ------------------------------------------


def envelope(
    frame: dict[str, Any] | None,
    *,
    message_id: UUID | None = None,
    close_code: int | None = None,
    close_only: UUID | None = None,
    hosts_only: bool = False,
) -> str:
    """A frame for every socket of the room, optionally with a close: of the sockets of one
    member (`close_only`, who then get the close instead of the frame) or of all of them
    (after the frame). `message_id` marks a message.created frame for replay stitching;
    `hosts_only` frames reach only the sockets of members who are hosts (ChatSocket.role)."""
    body: dict[str, Any] = {"frame": frame}
    if hosts_only:
        body["hosts_only"] = True
    if message_id is not None:
        body["message_id"] = str(message_id)
    if close_code is not None:
        body["close"] = {"code": close_code, "only": str(close_only) if close_only else None}
    return dumps(body)


def created_envelope(message: MessageView) -> str:
    return envelope(message_frame("message.created", message), message_id=message.id)


def updated_envelope(message: MessageView) -> str:
    return envelope(message_frame("message.updated", message))


def deleted_envelope(message_id: UUID) -> str:
    return envelope({"type": "message.deleted", "message_id": str(message_id)})


def joined_envelope(participant: PublicParticipant) -> str:
    return envelope(participant_frame("participant.joined", participant))


def left_envelope(participant: PublicParticipant) -> str:
    """The others see participant.left; the leaver's own sockets are closed with 4403."""
    return envelope(
        participant_frame("participant.left", participant),
        close_code=CLOSE_NOT_PARTICIPANT,
        close_only=participant.id,
    )


def updated_participant_envelope(participant: PublicParticipant) -> str:
    return envelope(participant_frame("participant.updated", participant))


def room_updated_envelope(room: dict[str, Any]) -> str:
    return envelope({"type": "room.updated", "room": room})


def lobby_requested_envelope(request: LobbyRequestView) -> str:
    return envelope({"type": "lobby.requested", "request": request.model_dump(mode="json")}, hosts_only=True)


def lobby_resolved_envelope(request_id: UUID, admitted: bool) -> str:
    return envelope(
        {"type": "lobby.resolved", "request_id": str(request_id), "admitted": admitted}, hosts_only=True
    )


def ended_envelope() -> str:
    return envelope(ROOM_ENDED_FRAME, close_code=CLOSE_ROOM_ENDED)
