"""HTTP routes of the rooms context: parse, call the service, shape the answer."""

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from livekit import api as livekit_api

from veche.common.app import context
from veche.common.errors import LobbyRequestNotFound, ParticipantNotFound, Problem, Unauthorized
from veche.common.events import PublicParticipant
from veche.common.identity import HEADER, IdentityHeader, parse_participant_id, room_id_path
from veche.common.internal import require_service_credential
from veche.common.openapi import error_responses
from veche.common.web import client_ip
from veche.rooms.context import RoomsContext
from veche.rooms.schemas import (
    CreatedRoom,
    CreateRoom,
    DueRooms,
    JoinRoom,
    LobbyList,
    MembershipCheck,
    ParticipantList,
    RaiseHand,
    RetentionRequest,
    RoomView,
    SelfView,
    TimeoutRequest,
    UnconnectedMember,
    UnconnectedMembers,
    UpdateRoom,
    Waiting,
)
from veche.rooms.service import Caller, RoomsService, self_view

router = APIRouter()
internal = APIRouter(
    prefix="/internal/v1", include_in_schema=False, dependencies=[Depends(require_service_credential)]
)


# The dependencies are coroutines, though none awaits anything: FastAPI runs a plain function
# dependency in its thread pool, a hand-off to a thread and back for every one of them.


async def _service(request: Request) -> RoomsService:
    return context(request, RoomsContext).service


async def _room_id(room_id: str) -> UUID:
    """veche.common.identity.room_id_path, as a coroutine."""
    return room_id_path(room_id)


async def _optional_participant(x_participant_id: IdentityHeader = None) -> str | None:
    pid = parse_participant_id(x_participant_id)
    return str(pid) if pid else None


_CLIENT_IP = "veche.rooms.client_ip"


def _client_ip(request: Request) -> str | None:
    """veche.common.web.client_ip, worked out once per request: the per-address limit and the
    caller both need it."""
    scope = request.scope
    if _CLIENT_IP not in scope:
        scope[_CLIENT_IP] = client_ip(request)
    address: str | None = scope[_CLIENT_IP]
    return address


async def _caller(request: Request, x_participant_id: IdentityHeader = None) -> Caller:
    """The caller of create/join: a new identity is made when the header is absent."""
    pid = parse_participant_id(x_participant_id) or uuid4()
    agent = request.headers.get("user-agent")
    return Caller(str(pid), _client_ip(request), agent[:1024] if agent else None)


def _limited(name: str, setting: str):  # type: ignore[no-untyped-def]
    """A dependency counting the request against a per-address limit."""

    async def check(request: Request) -> None:
        limits = request.app.state.rate_limits
        await limits.hit(name, getattr(limits.settings, setting), _client_ip(request) or "unknown")

    return Depends(check)


Service = Annotated[RoomsService, Depends(_service)]
RoomId = Annotated[UUID, Depends(_room_id)]
ParticipantId = Annotated[str | None, Depends(_optional_participant)]
NewOrKnownCaller = Annotated[Caller, Depends(_caller)]

_ERRORS = error_responses(
    {
        400: "invalid_participant_id or invalid_json",
        403: "not_a_participant, not_host, banned, room_locked or lobby_denied",
        404: "room_not_found, participant_not_found or request_not_found",
        409: "room_full, room_ended, last_host or already_resolved",
        413: "payload_too_large",
        422: "validation_error",
        429: "rate_limited",
        503: "unavailable",
    }
)


@router.post(
    "/api/v1/rooms",
    status_code=201,
    response_model=CreatedRoom,
    responses=_ERRORS,
    dependencies=[_limited("create_room", "rate_limit_create_room")],
)
async def create_room(
    body: CreateRoom, caller: NewOrKnownCaller, service: Service, response: Response
) -> CreatedRoom:
    room, host = await service.create(body, caller)
    response.headers["Location"] = f"/api/v1/rooms/{room.id}"
    response.headers[HEADER] = caller.participant_id
    return CreatedRoom(room=room, participant=self_view(host))


@router.get("/api/v1/rooms/{room_id}", response_model=RoomView, responses=_ERRORS)
async def get_room(room_id: RoomId, participant_id: ParticipantId, service: Service) -> RoomView:
    room = await service.get(room_id)
    if participant_id:
        await service.seen(room_id, participant_id)
    return room


@router.post(
    "/api/v1/rooms/{room_id}/join",
    status_code=201,
    response_model=SelfView,
    responses={
        200: {"description": "already an active member", "model": SelfView},
        202: {"description": "waiting in the lobby for a host", "model": Waiting},
        **_ERRORS,
    },
    dependencies=[_limited("join", "rate_limit_join")],
)
async def join_room(
    room_id: RoomId, body: JoinRoom, caller: NewOrKnownCaller, service: Service, response: Response
) -> SelfView | JSONResponse:
    result = await service.join(room_id, body.display_name, caller)
    if result.waiting is not None:
        waiting = Waiting(request_id=result.waiting.id)
        return JSONResponse(
            waiting.model_dump(mode="json"), status_code=202, headers={HEADER: caller.participant_id}
        )
    assert result.member is not None
    response.status_code = 201 if result.created else 200
    response.headers[HEADER] = caller.participant_id
    return self_view(result.member)


@router.post("/api/v1/rooms/{room_id}/leave", status_code=204, responses=_ERRORS)
async def leave_room(room_id: RoomId, participant_id: ParticipantId, service: Service) -> Response:
    if participant_id is None:
        await service.get(room_id)
        raise ParticipantNotFound("You never joined this room")
    await service.leave(room_id, participant_id)
    return Response(status_code=204)


@router.get("/api/v1/rooms/{room_id}/participants", response_model=ParticipantList, responses=_ERRORS)
async def list_participants(
    room_id: RoomId, participant_id: ParticipantId, service: Service
) -> ParticipantList:
    participants = await service.participants(room_id)
    if participant_id:
        await service.seen(room_id, participant_id)
    return ParticipantList(participants=participants)


@router.post("/api/v1/rooms/{room_id}/end", response_model=RoomView, responses=_ERRORS)
async def end_room(room_id: RoomId, participant_id: ParticipantId, service: Service) -> RoomView:
    return await service.end(room_id, participant_id)


@router.post(
    "/api/v1/rooms/{room_id}/participants/{participant_public_id}/kick",
    status_code=204,
    responses=_ERRORS,
)
async def kick_participant(
    room_id: RoomId, participant_public_id: str, participant_id: ParticipantId, service: Service
) -> Response:
    try:
        target = UUID(participant_public_id)
    except ValueError:
        raise ParticipantNotFound("No such participant in this room") from None
    await service.kick(room_id, participant_id, target)
    return Response(status_code=204)


def _public_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ParticipantNotFound("No such participant in this room") from None


@router.patch("/api/v1/rooms/{room_id}", response_model=RoomView, responses=_ERRORS)
async def update_room(
    room_id: RoomId, body: UpdateRoom, participant_id: ParticipantId, service: Service
) -> RoomView:
    return await service.update(room_id, participant_id, body)


@router.post(
    "/api/v1/rooms/{room_id}/participants/{participant_public_id}/promote",
    response_model=PublicParticipant,
    responses=_ERRORS,
)
async def promote_participant(
    room_id: RoomId, participant_public_id: str, participant_id: ParticipantId, service: Service
) -> PublicParticipant:
    return await service.set_role(room_id, participant_id, _public_id(participant_public_id), "host")


@router.post(
    "/api/v1/rooms/{room_id}/participants/{participant_public_id}/demote",
    response_model=PublicParticipant,
    responses=_ERRORS,
)
async def demote_participant(
    room_id: RoomId, participant_public_id: str, participant_id: ParticipantId, service: Service
) -> PublicParticipant:
    return await service.set_role(room_id, participant_id, _public_id(participant_public_id), "participant")


@router.post("/api/v1/rooms/{room_id}/hand", response_model=PublicParticipant, responses=_ERRORS)
async def raise_hand(
    room_id: RoomId, body: RaiseHand, participant_id: ParticipantId, service: Service
) -> PublicParticipant:
    return await service.raise_hand(room_id, participant_id, body.raised)


@router.get("/api/v1/rooms/{room_id}/lobby", response_model=LobbyList, responses=_ERRORS)
async def lobby(room_id: RoomId, participant_id: ParticipantId, service: Service) -> LobbyList:
    return LobbyList(requests=await service.lobby(room_id, participant_id))


def _request_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise LobbyRequestNotFound("No such lobby request in this room") from None


@router.post("/api/v1/rooms/{room_id}/lobby/{request_id}/admit", status_code=204, responses=_ERRORS)
async def admit(
    room_id: RoomId, request_id: str, participant_id: ParticipantId, service: Service
) -> Response:
    await service.resolve(room_id, participant_id, _request_id(request_id), admit=True)
    return Response(status_code=204)


@router.post("/api/v1/rooms/{room_id}/lobby/{request_id}/deny", status_code=204, responses=_ERRORS)
async def deny(room_id: RoomId, request_id: str, participant_id: ParticipantId, service: Service) -> Response:
    await service.resolve(room_id, participant_id, _request_id(request_id), admit=False)
    return Response(status_code=204)


class InvalidSignature(Unauthorized):
    code, title = "invalid_signature", "Invalid LiveKit webhook signature"


@router.post("/api/v1/livekit/webhook", responses={401: _ERRORS[403]})
async def livekit_webhook(request: Request, service: Service) -> dict[str, str]:
    auth = request.headers.get("authorization", "")
    body = (await request.body()).decode("utf-8", errors="replace")
    if not auth:
        raise InvalidSignature("Missing Authorization header")
    try:
        event = context(request, RoomsContext).webhook_receiver.receive(body, auth)
    except Exception:  # noqa: BLE001 - any verification failure is a bad signature
        raise InvalidSignature("The webhook signature does not verify") from None
    participant = event.participant if event.HasField("participant") else None
    room_name = event.room.name if event.HasField("room") else ""
    if event.event == "room_finished" and room_name:
        await service.livekit_room_finished(room_name)
    elif participant is not None and room_name:
        await _participant_event(request, service, event.event, room_name, participant)
    return {"status": "ok"}


# Reasons for which a closed LiveKit connection means the person left the call; any other
# (LiveKit shutting down, a lost network, a removal the platform made) is a lost connection.
_LEFT_THE_CALL = {
    livekit_api.DisconnectReason.UNKNOWN_REASON,
    livekit_api.DisconnectReason.CLIENT_INITIATED,
}


async def _participant_event(
    request: Request, service: RoomsService, kind: str, room_name: str, participant: Any
) -> None:
    try:
        public_id = UUID(participant.identity)
    except ValueError:
        public_id = None
    if kind == "participant_joined":
        if public_id is None or not await service.livekit_joined(public_id, room_name, participant.sid):
            await context(request, RoomsContext).intruders.remove(room_name, participant.identity)
    elif kind == "participant_left" and public_id is not None:
        await service.livekit_left(
            public_id,
            room_name,
            participant.sid,
            left_the_call=participant.disconnect_reason in _LEFT_THE_CALL,
        )


@internal.get("/rooms/{room_id}/membership", response_model=MembershipCheck)
async def membership(room_id: RoomId, participant_id: ParticipantId, service: Service) -> MembershipCheck:
    """Asked by chat and media-token when the Redis membership hash is missing."""
    room, member = await service.membership(room_id, participant_id)
    return MembershipCheck(room=room, member=member)


@internal.post("/rooms/{room_id}/expire")
async def expire_room(room_id: RoomId, service: Service) -> dict[str, bool]:
    """Asked by the janitor for a room past its expires_at; a no-op unless still due."""
    return {"ended": await service.expire(room_id)}


@internal.post("/rooms/{room_id}/participants/{public_id}/timeout")
async def time_out_participant(
    room_id: RoomId, public_id: UUID, body: TimeoutRequest, service: Service
) -> dict[str, bool]:
    """Asked by the janitor for a member with no sign of life since idle_since_ms."""
    return {"left": await service.time_out(room_id, public_id, body.idle_since_ms)}


@internal.post("/retention")
async def retention(body: RetentionRequest, service: Service) -> dict[str, int]:
    """Asked by the janitor: deletes rooms ended before `ended_before`."""
    return {"deleted": await service.delete_ended_before(body.ended_before)}


# The janitor's candidate lists. rooms answers them from its own tables (no other service
# reads those); each candidate is re-checked under the room lock when the janitor acts on it.
SweepLimit = Annotated[int, Query(ge=1, le=1000)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NIL = UUID(int=0)


@internal.get("/sweeps/due-rooms", response_model=DueRooms)
async def due_rooms(service: Service, limit: SweepLimit = 200) -> DueRooms:
    """Active rooms past their empty-room expiry, the longest overdue first."""
    return DueRooms(rooms=await service.due_rooms(limit))


@internal.get("/sweeps/unconnected-members", response_model=UnconnectedMembers)
async def unconnected_members(
    service: Service,
    joined_before: datetime,
    after_joined: datetime = _EPOCH,
    after_id: UUID = _NIL,
    limit: SweepLimit = 200,
) -> UnconnectedMembers:
    """Active members of active rooms with no LiveKit connection who joined before
    `joined_before`; pages follow (joined_at, public_id) after (after_joined, after_id)."""
    page = await service.unconnected_members(joined_before, (after_joined, after_id), limit)
    return UnconnectedMembers(
        members=[UnconnectedMember(public_id=m.id, room_id=m.room_id, joined_at=m.joined_at) for m in page]
    )


def webhook_receiver(key: str, secret: str) -> livekit_api.WebhookReceiver:
    return livekit_api.WebhookReceiver(livekit_api.TokenVerifier(key, secret))


__all__ = ["router", "internal", "webhook_receiver", "Problem"]
