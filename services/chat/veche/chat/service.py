"""The chat use cases: who may act, history, post, edit, delete, and the system messages that
room events produce. Testable without HTTP; raises the common problem errors."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from prometheus_client import Counter

from veche.chat import frames
from veche.chat.errors import MessageNotFound, NotAuthor
from veche.chat.schemas import (
    CONTENT_MAX_CHARS,
    E2EE_CONTENT,
    E2EE_CONTENT_MAX_CHARS,
    SYSTEM_DISPLAY_NAME,
    MessageView,
    StoredMessage,
    SystemEvent,
    SystemInfo,
    created_at_of,
    public_text,
)
from veche.chat.settings import ChatSettings
from veche.chat.store import ChatStore
from veche.common.errors import NotAParticipant, RoomNotFound, Unavailable, ValidationFailed
from veche.common.events import PublicParticipant, RoomEvent
from veche.common.ids import parse_uuid7, uuid7
from veche.common.membership import MembershipResolver
from veche.common.ratelimit import RateLimits
from veche.common.timefmt import utcnow

MESSAGES = Counter("veche_chat_messages_total", "Chat messages written", ["message_type"])

# Attempts of a write that lost a race (an id below the room's head, a concurrent edit):
# each retry is only needed when another writer got in between, so a handful is plenty.
log = logging.getLogger("veche.chat")

_ATTEMPTS = 10


@dataclass(frozen=True)
class Caller:
    """An active member acting in a room. `participant_id` is its secret: it is compared with
    stored authorship and never put in an answer."""

    room_id: UUID
    participant_id: str
    member: PublicParticipant
    # The address the request came from (as the gateway saw it), for per-address limits.
    client_ip: str | None = None
    # The room is end-to-end encrypted: user content must be E2EE_CONTENT.
    e2ee: bool = False

    @property
    def is_host(self) -> bool:
        return self.member.role == "host"


# What a ROOMS event says in chat: the machine-readable `system.event`, and the English
# sentence kept in `content` for clients that do not know the event.
_SYSTEM_EVENTS: dict[tuple[str, str | None], tuple[SystemEvent, str]] = {
    ("participant.joined", None): ("joined", "{name} joined"),
    ("participant.left", "left"): ("left", "{name} left"),
    ("participant.left", None): ("left", "{name} left"),
    ("participant.left", "kicked"): ("kicked", "{name} was removed by the host"),
    ("participant.left", "timeout"): ("timed_out", "{name} left"),
    ("participant.updated", "host_changed"): ("host_changed", "{name} is now the host"),
}


def _event_detail(event: RoomEvent) -> str | None:
    if event.type == "participant.left":
        return event.reason
    if event.type == "participant.updated":
        return event.change
    return None


def check_content(content: str, e2ee: bool) -> None:
    """The room's rule for user content (already trimmed and checked for encoding and control
    characters): in an e2ee room "e2ee:v1:" + base64url, at most E2EE_CONTENT_MAX_CHARS;
    elsewhere at most CONTENT_MAX_CHARS. 422 validation_error otherwise."""
    if e2ee:
        if len(content) > E2EE_CONTENT_MAX_CHARS or not E2EE_CONTENT.fullmatch(content):
            raise ValidationFailed(
                [
                    {
                        "field": "content",
                        "message": "in an end-to-end encrypted room content must be e2ee:v1: followed "
                        f"by base64url, at most {E2EE_CONTENT_MAX_CHARS} characters",
                    }
                ]
            )
    elif len(content) > CONTENT_MAX_CHARS:
        raise ValidationFailed(
            [{"field": "content", "message": f"content must be at most {CONTENT_MAX_CHARS} characters"}]
        )


def system_message(event: RoomEvent) -> tuple[SystemInfo, str] | None:
    """(system field, English content) of the event's system message; None when the event
    posts none (room.created, and the leaves that ending a room implies)."""
    participant = event.participant
    if participant is None:
        return None
    known = _SYSTEM_EVENTS.get((event.type, _event_detail(event)))
    if known is None:
        return None
    kind, template = known
    name = participant.display_name
    return SystemInfo(event=kind, display_name=name), template.format(name=name)


class ChatService:
    def __init__(
        self,
        store: ChatStore,
        membership: MembershipResolver,
        rate_limits: RateLimits,
        settings: ChatSettings,
    ) -> None:
        self.store = store
        self.membership = membership
        self.rate_limits = rate_limits
        self.settings = settings

    # --- who --------------------------------------------------------------------------------

    async def authorize(
        self, room_id: UUID, participant_id: UUID | str | None, client_ip: str | None = None
    ) -> Caller:
        """The caller as an active member (also a sign of life for the janitor); 404
        room_not_found, 409 room_ended or 403 not_a_participant otherwise."""
        pid = str(participant_id).lower() if participant_id else None
        membership = await self.membership.resolve(room_id, pid)
        member = membership.require_active()
        if pid is None:  # pragma: no cover - require_active found no member without an id
            raise NotAParticipant("X-Participant-ID is required")
        await self.membership.state.touch(room_id, member.id)
        return Caller(room_id, pid, member, client_ip, membership.e2ee)

    # --- history ----------------------------------------------------------------------------

    async def history(
        self, caller: Caller, *, limit: int, after: UUID | None = None, before: UUID | None = None
    ) -> list[str]:
        """The public JSON of a page of messages, oldest first (see ChatStore.page_raw)."""
        raw = await self.store.page_raw(caller.room_id, limit=limit, after=after, before=before)
        return [public_text(m) for m in raw]

    async def member_history(
        self,
        room_id: UUID,
        participant_id: UUID,
        *,
        limit: int,
        after: UUID | None = None,
        before: UUID | None = None,
    ) -> list[str] | None:
        """history() for the caller, checked as authorize() checks it (and a sign of life
        like it), in one round trip to Redis when the room's membership hash shows an active
        member; None when it does not (a stranger, an ended room, a hash that is missing or
        lacks a field): then authorize() decides as always, asking rooms if need be."""
        raw = await self.store.member_page(
            room_id, str(participant_id).lower(), limit=limit, after=after, before=before
        )
        return None if raw is None else [public_text(m) for m in raw]

    async def replay(self, room_id: UUID, after: UUID, limit: int) -> list[MessageView]:
        messages = await self.store.page(room_id, limit=limit, after=after)
        return [m.public() for m in messages]

    # --- writes -----------------------------------------------------------------------------

    async def post(self, caller: Caller, content: str) -> MessageView:
        """429 rate_limited past RATE_LIMIT_CHAT_SEND (per identity in a room, REST and
        WebSocket together; keyed on the identity, not the membership row, so leaving and
        joining again does not reset it) or past RATE_LIMIT_CHAT_SEND_ADDRESS (every identity
        sending from one address). 422 when the content breaks the room's rule (check_content)."""
        check_content(content, caller.e2ee)
        identity = hashlib.sha256(caller.participant_id.encode()).hexdigest()[:32]
        await self.rate_limits.hit(
            "chat_send", self.settings.rate_limit_chat_send, f"{caller.room_id}:{identity}"
        )
        await self.rate_limits.hit(
            "chat_send_address",
            self.settings.rate_limit_chat_send_address,
            caller.client_ip or "unknown",
        )
        sender = caller.member

        def build(message_id: UUID) -> StoredMessage:
            return StoredMessage(
                id=message_id,
                room_id=caller.room_id,
                participant_id=caller.participant_id,
                sender_id=sender.id,
                display_name=sender.display_name,
                message_type="user",
                content=content,
                created_at=created_at_of(message_id),
            )

        message = await self._append(build)
        assert message is not None  # only event-driven writes can be duplicates
        MESSAGES.labels("user").inc()
        return message.public()

    async def edit(self, caller: Caller, message_id: str, content: str) -> MessageView:
        target = self._message_id(message_id)
        check_content(content, caller.e2ee)
        for _ in range(_ATTEMPTS):
            found = await self.store.find(caller.room_id, target)
            if found is None:
                raise MessageNotFound(f"No message {target} in this room")
            member, message = found
            if message.participant_id != caller.participant_id:
                raise NotAuthor("Only its author may edit a message")
            edited = message.model_copy(update={"content": content, "edited_at": utcnow()})
            view = edited.public()
            if await self.store.swap(caller.room_id, member, edited, frames.updated_envelope(view)):
                return view
        raise Unavailable("The message is changing too fast; try again", retry_after=1)

    async def delete(self, caller: Caller, message_id: str) -> None:
        target = self._message_id(message_id)
        for _ in range(_ATTEMPTS):
            found = await self.store.find(caller.room_id, target)
            if found is None:
                raise MessageNotFound(f"No message {target} in this room")
            member, message = found
            if message.participant_id != caller.participant_id and not caller.is_host:
                raise NotAuthor("Only its author or the host may delete a message")
            if await self.store.swap(caller.room_id, member, None, frames.deleted_envelope(target)):
                return
        raise Unavailable("The message is changing too fast; try again", retry_after=1)

    # --- room events ------------------------------------------------------------------------

    async def on_room_event(self, event: RoomEvent) -> None:
        """Posts the system message and the frames of one ROOMS event, once per event_id
        however often it is delivered."""
        max_age = timedelta(seconds=self.settings.chat_event_max_age_seconds)
        if event.occurred_at < utcnow() - max_age:
            return  # stale news (a consumer catching up on old history): tell nobody
        if event.type == "room.ended":
            # Only what rooms stands behind: the room's status as rooms keeps it (the hash, or
            # rooms itself when the hash is gone), so a forged event closes no live room.
            try:
                status = (await self.membership.resolve(event.room_id, None)).room_status
            except RoomNotFound:
                return  # deleted already: no socket of it is left to tell
            if status != "ended":
                log.warning("room.ended for room %s, which is not ended: ignored", event.room_id)
                return
            await self.store.publish_once(event.room_id, event.event_id, [frames.ended_envelope()])
            return
        only_frames = self._frames_only(event)
        if only_frames:
            await self.store.publish_once(event.room_id, event.event_id, only_frames)
            return
        participant = event.participant
        described = system_message(event)
        if participant is None or described is None:
            return  # room.created, and the leaves that ending a room implies
        system, text = described
        if event.type == "participant.joined":
            announced = [frames.joined_envelope(participant)]
        elif event.type == "participant.updated":
            announced = [frames.updated_participant_envelope(participant)]
        else:
            announced = [frames.left_envelope(participant)]

        def build(message_id: UUID) -> StoredMessage:
            return StoredMessage(
                id=message_id,
                room_id=event.room_id,
                participant_id=None,
                sender_id=None,
                display_name=SYSTEM_DISPLAY_NAME,
                message_type="system",
                content=text,
                created_at=created_at_of(message_id),
                system=system,
            )

        if await self._append(build, announced, event.event_id) is not None:
            MESSAGES.labels("system").inc()

    @staticmethod
    def _frames_only(event: RoomEvent) -> list[str]:
        """The frames of an event that posts no system message (PATCH, a role or hand change
        other than a hand-over, the lobby's, which reach hosts only); [] for the others."""
        if event.type == "room.updated" and event.room is not None:
            return [frames.room_updated_envelope(event.room)]
        if event.type == "participant.updated" and event.participant is not None:
            if event.change != "host_changed":
                return [frames.updated_participant_envelope(event.participant)]
        if event.type == "lobby.requested" and event.request is not None:
            return [frames.lobby_requested_envelope(event.request)]
        if event.type == "lobby.resolved" and event.request_id is not None:
            return [frames.lobby_resolved_envelope(event.request_id, bool(event.admitted))]
        return []

    # --- helpers ----------------------------------------------------------------------------

    async def _append(
        self,
        build: Callable[[UUID], StoredMessage],
        frames_before: list[str] | None = None,
        event_id: UUID | None = None,
    ) -> StoredMessage | None:
        """Writes a new message with an id above the room's head; None when the event that
        asked for it was already handled."""
        floor: UUID | None = None
        for _ in range(_ATTEMPTS):
            message = build(uuid7(floor))
            envelopes = [*(frames_before or []), frames.created_envelope(message.public())]
            result = await self.store.append(message, envelopes, event_id)
            if result.written:
                return message
            if result.duplicate:
                return None
            floor = result.head
        raise Unavailable("The room is too busy; try again", retry_after=1)

    @staticmethod
    def _message_id(raw: str) -> UUID:
        """A message id from a path: anything that is not a UUIDv7 names no message."""
        parsed = parse_uuid7(raw)
        if parsed is None:
            raise MessageNotFound("No such message in this room")
        return parsed
