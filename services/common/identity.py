"""The X-Participant-ID header: a secret bearer credential, a UUID made by the client."""

from uuid import UUID

from fastapi import Request

from common.errors import InvalidParticipantId

HEADER = "X-Participant-ID"


def parse_participant_id(raw: str | None) -> UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return UUID(raw.strip())
    except (ValueError, AttributeError, TypeError):
        raise InvalidParticipantId("X-Participant-ID must be a UUID") from None


def participant_id_from(request: Request) -> UUID | None:
    return parse_participant_id(request.headers.get(HEADER))
