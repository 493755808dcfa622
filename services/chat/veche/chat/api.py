"""HTTP routes of the chat context: parse, call the service, shape the answer."""

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute

from veche.chat.context import ChatContext
from veche.chat.schemas import MessageBody, MessageList, MessageView, message_list_json
from veche.chat.service import Caller, ChatService
from veche.common.app import context
from veche.common.errors import InvalidParticipantId, ValidationFailed
from veche.common.identity import HEADER, IdentityHeader, parse_participant_id, parse_room_id
from veche.common.ids import parse_uuid7
from veche.common.openapi import error_responses
from veche.common.web import client_ip

router = APIRouter(prefix="/api/v1/rooms/{room_id}/chat")


def _chat(request: Request) -> ChatService:
    return context(request, ChatContext).service


async def _service(request: Request) -> ChatService:
    # A dependency that is a plain function would be run in a worker thread on every request.
    return _chat(request)


async def _member(room_id: str, request: Request, x_participant_id: IdentityHeader = None) -> Caller:
    """The caller as an active member of the room in the path."""
    room = parse_room_id(room_id)
    participant_id = parse_participant_id(x_participant_id)
    return await _chat(request).authorize(room, participant_id, client_ip(request))


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


# A `limit` that surely means to the route's own validation what it says (pydantic also
# takes e.g. "+5" or " 5 "; those go the declared way).
_PLAIN_LIMIT = re.compile(r"[0-9]{1,3}")


async def _member_page(request: Request) -> list[str] | None:
    """The page of a history request that is plainly fine (a room id, an identity, a valid
    query) from a caller whom the room's membership hash shows to be an active member, read
    with the membership check and the caller's sign of life in one Redis round trip
    (ChatService.member_history). None for every other request, which the route then serves
    as declared: there, the same checks give the same answers in the same order, and rooms
    is asked when the hash cannot tell."""
    try:
        room = UUID(request.path_params["room_id"])
        participant_id = parse_participant_id(request.headers.get(HEADER))
    except (ValueError, InvalidParticipantId):
        return None
    if participant_id is None:
        return None
    query = request.query_params
    raw_limit, raw_after, raw_before = query.get("limit"), query.get("after"), query.get("before")
    if raw_limit is None:
        limit = 50
    elif _PLAIN_LIMIT.fullmatch(raw_limit) and 1 <= int(raw_limit) <= 200:
        limit = int(raw_limit)
    else:
        return None
    after = parse_uuid7(raw_after) if raw_after is not None else None
    before = parse_uuid7(raw_before) if raw_before is not None else None
    if (after is None and raw_after is not None) or (before is None and raw_before is not None):
        return None
    return await _chat(request).member_history(room, participant_id, limit=limit, after=after, before=before)


class _HistoryRoute(APIRoute):
    """GET …/messages: an active member's plain request is answered from Redis in one round
    trip, without the dependency and parameter machinery (_member_page); any other goes
    through the route as declared (list_messages), which the OpenAPI document describes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()

        async def handler(request: Request) -> Response:
            page = await _member_page(request)
            if page is None:
                return await declared(request)
            return Response(message_list_json(page), media_type="application/json")

        return handler


async def list_messages(
    member: Member,
    service: Service,
    limit: Limit = 50,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    page = await service.history(
        member, limit=limit, after=_cursor("after", after), before=_cursor("before", before)
    )
    return Response(message_list_json(page), media_type="application/json")


# The messages' public JSON as stored goes into the answer as it is (never parsed and written
# again): the same bytes as MessageList's JSON, which the route documents.
router.add_api_route(
    "/messages",
    list_messages,
    methods=["GET"],
    response_model=MessageList,
    responses=_ERRORS,
    route_class_override=_HistoryRoute,
)


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
