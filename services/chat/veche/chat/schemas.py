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

    def to_member(self) -> str:
        return self.model_dump_json()


def created_at_of(message_id: UUID) -> datetime:
    return datetime.fromtimestamp(timestamp_ms(message_id) / 1000, UTC)
