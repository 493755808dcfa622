"""HTTP routes of the media context: parse, call the service, shape the answer."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from veche.common.app import context
from veche.common.errors import ParticipantNotFound
from veche.common.identity import optional_participant_id, room_id_path
from veche.common.openapi import error_responses
from veche.media_token.context import MediaContext
from veche.media_token.schemas import MediaToken, MuteTrack
from veche.media_token.service import MediaService

router = APIRouter(prefix="/api/v1/rooms/{room_id}/media")


def _service(request: Request) -> MediaService:
    return context(request, MediaContext).service


def _target_id(participant_public_id: str) -> UUID:
    try:
        return UUID(participant_public_id)
    except ValueError:
        raise ParticipantNotFound("No such participant in this room") from None


Service = Annotated[MediaService, Depends(_service)]
RoomId = Annotated[UUID, Depends(room_id_path)]
TargetId = Annotated[UUID, Depends(_target_id)]
ParticipantId = Annotated[UUID | None, Depends(optional_participant_id)]

_ERRORS = error_responses(
    {
        400: "invalid_participant_id or invalid_json",
        403: "not_a_participant or not_host",
        404: "room_not_found or participant_not_found",
        409: "room_ended",
        413: "payload_too_large",
        422: "validation_error",
        503: "unavailable",
    }
)


@router.post("/token", response_model=MediaToken, responses=_ERRORS)
async def media_token(room_id: RoomId, participant_id: ParticipantId, service: Service) -> MediaToken:
    return await service.token(room_id, participant_id)


@router.post("/participants/{participant_public_id}/mute", status_code=204, responses=_ERRORS)
async def mute_participant(
    room_id: RoomId,
    target_id: TargetId,
    body: MuteTrack,
    participant_id: ParticipantId,
    service: Service,
) -> Response:
    await service.mute(room_id, participant_id, target_id, body.kind)
    return Response(status_code=204)
