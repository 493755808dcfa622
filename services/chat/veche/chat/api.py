"""HTTP routes of the chat context: parse, call the service, shape the answer."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from veche.chat.context import ChatContext
from veche.chat.schemas import MessageBody, MessageList, MessageView
from veche.chat.service import Caller, ChatService
from veche.common.app import context
from veche.common.errors import ValidationFailed
from veche.common.identity import IdentityHeader, parse_participant_id, parse_room_id
from veche.common.ids import parse_uuid7
from veche.common.openapi import error_responses
from veche.common.web import client_ip

router = APIRouter(prefix="/api/v1/rooms/{room_id}/chat")


def _service(request: Request) -> ChatService:
    return context(request, ChatContext).service


async def _member(room_id: str, request: Request, x_participant_id: IdentityHeader = None) -> Caller:
    """The caller as an active member of the room in the path."""
    room = parse_room_id(room_id)
    participant_id = parse_participant_id(x_participant_id)
    return await _service(request).authorize(room, participant_id, client_ip(request))


Service = Annotated[ChatService, Depends(_service)]
Member = Annotated[Caller, Depends(_member)]
Limit = Annotated[int, Query(ge=1, le=200)]

_ERRORS = error_responses(
    {
        400: "invalid_participant_id or invalid_json",
        403: "not_a_participant or not_author",
        404: "room_not_found or message_not_found",
        409: "room_ended",
        413: "payload_too_large",
        422: "validation_error",
        429: "rate_limited",
        503: "unavailable",
    }
)


def _cursor(name: str, raw: str | None) -> UUID | None:
    if raw is None:
        return None
    parsed = parse_uuid7(raw)
    if parsed is None:
        raise ValidationFailed([{"field": name, "message": "must be a message id (a UUIDv7)"}])
    return parsed


@router.get("/messages", response_model=MessageList, responses=_ERRORS)
async def list_messages(
    member: Member,
    service: Service,
    limit: Limit = 50,
    after: str | None = None,
    before: str | None = None,
) -> MessageList:
    messages = await service.history(
        member, limit=limit, after=_cursor("after", after), before=_cursor("before", before)
    )
    return MessageList(messages=messages)


@router.post("/messages", status_code=201, response_model=MessageView, responses=_ERRORS)
async def post_message(body: MessageBody, member: Member, service: Service) -> MessageView:
    return await service.post(member, body.content)


@router.put("/messages/{message_id}", response_model=MessageView, responses=_ERRORS)
async def edit_message(message_id: str, body: MessageBody, member: Member, service: Service) -> MessageView:
    return await service.edit(member, message_id, body.content)


@router.delete("/messages/{message_id}", status_code=204, responses=_ERRORS)
async def delete_message(message_id: str, member: Member, service: Service) -> Response:
    await service.delete(member, message_id)
    return Response(status_code=204)
