"""Shapes of the chat API (docs/api.md: Message, Field rules) and of the stored message."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictStr

from veche.common.ids import timestamp_ms
from veche.common.text import LINE_BREAKS, trimmed_text
from veche.common.timefmt import Timestamp

CONTENT_MAX_CHARS = 4000
# In an end-to-end encrypted room, content is "e2ee:v1:" + base64url(iv || ciphertext), opaque
# to the servers, and may be this long.
E2EE_CONTENT_MAX_CHARS = 8000
E2EE_CONTENT = re.compile(r"e2ee:v1:[A-Za-z0-9_-]+={0,2}")
SYSTEM_DISPLAY_NAME = "System"


CONTENT_MAX_BYTES = 16 * 1024

Content = Annotated[
    StrictStr,
    AfterValidator(
        trimmed_text(
            "content",
            # The longest content of any room; the room's own rule (plain: CONTENT_MAX_CHARS,
            # e2ee: E2EE_CONTENT) is checked once the room is known (ChatService.check_content).
            E2EE_CONTENT_MAX_CHARS,
            allowed_controls=LINE_BREAKS,
            max_utf8_bytes=CONTENT_MAX_BYTES,
            visible=False,
        )
    ),
]


class MessageBody(BaseModel):
    """Body of POST and PUT."""

    model_config = ConfigDict(extra="ignore")

    content: Content


SystemEvent = Literal["joined", "left", "kicked", "timed_out", "host_changed", "room_ended"]


class SystemInfo(BaseModel):
    """What a system message says happened, for clients to word in their own language."""

    event: SystemEvent
    display_name: str


class MessageView(BaseModel):
    """What every member sees of a message: the sender's public id, never its secret."""

    id: UUID
    room_id: UUID
    sender_id: UUID | None
    display_name: str
    message_type: Literal["user", "system"]
    content: str
    created_at: Timestamp
    edited_at: Timestamp | None = None
    system: SystemInfo | None = None


class MessageList(BaseModel):
    messages: list[MessageView]


class StoredMessage(BaseModel):
    """The member of the room's sorted set. `id` is declared first on purpose: the JSON then
    starts with `{"id":"<uuid>"`, so members with one score sort by id, and the store's Lua
    reads the id at a fixed offset. `participant_id` (the author's secret) stays in Redis for
    ownership checks and never leaves the service."""

    id: UUID
    room_id: UUID
    participant_id: str | None
    sender_id: UUID | None
    display_name: str
    message_type: Literal["user", "system"]
    content: str
    created_at: Timestamp
    edited_at: Timestamp | None = None
    system: SystemInfo | None = None

    @property
    def score(self) -> int:
        return timestamp_ms(self.id)

    def public(self) -> MessageView:
        return MessageView.model_validate(self.model_dump(exclude={"participant_id"}))

    def public_json(self) -> dict[str, Any]:
        return self.public().model_dump(mode="json")

    def public_text(self) -> str:
        """The JSON of public(), as an answer carries it."""
        return self.public().model_dump_json()

    def to_member(self) -> str:
        return self.model_dump_json()


# Every stored member is StoredMessage.to_member(): pydantic's compact JSON of the fields in
# their declared order, i.e. MessageView's JSON with `,"participant_id":…` after `room_id`:
#   {"id":"<36>","room_id":"<36>","participant_id":…,"sender_id":…,"display_name":"…",
#    "message_type":"…","content":"…","created_at":"<24>","edited_at":…,"system":…}
# In such JSON a `"` inside a string is always escaped, so `,"name":` is always a key.
_ROOM_ID_KEY = 43  # where `","room_id":"` starts
_SECRET_KEY = 92  # where `","participant_id":` starts
_SECRET_VALUE = _SECRET_KEY + len('","participant_id":')
# From the created_at key to the quote that closes its value (a Timestamp: always 24 characters).
_CREATED_AT = len(',"created_at":"') + len("2026-01-01T00:00:00.000Z")


def public_text(member: str) -> str:
    """The public JSON of a stored member, the same text as StoredMessage.public_text() (what
    an answer carries), cut out of the stored JSON without parsing it: the member without its
    `participant_id`. A member of another shape (written by a version with other fields) is
    parsed and written again."""
    if (
        member.startswith('{"id":"')
        and member.startswith('","room_id":"', _ROOM_ID_KEY)
        and member.startswith('","participant_id":', _SECRET_KEY)
    ):
        sender = member.find(',"sender_id":', _SECRET_VALUE)
        created = member.rfind(',"created_at":"')
        if (
            0 < sender < created
            and member.startswith('","edited_at":', created + _CREATED_AT)
            and (member.endswith(',"system":null}') or member.endswith('"}}'))
        ):
            return member[: _SECRET_KEY + 1] + member[sender:]
    return StoredMessage.model_validate_json(member).public_text()


def message_list_json(public_texts: list[str]) -> bytes:
    """The body of a MessageList answer from the public JSON of its messages."""
    return ('{"messages":[' + ",".join(public_texts) + "]}").encode()


def created_at_of(message_id: UUID) -> datetime:
    return datetime.fromtimestamp(timestamp_ms(message_id) / 1000, UTC)
