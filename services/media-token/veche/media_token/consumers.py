"""Keeps LiveKit in step with the rooms, from media-token's own durable consumer of ROOMS
events: a LiveKit room per platform room, closed when the room ends; former members removed.

None of this runs inside a user's request, so a LiveKit outage never fails a join, an end or a
kick: a failed call raises, and the consumer redelivers the event with backoff until LiveKit
answers. Each step is idempotent (CreateRoom keeps an existing room; deleting or removing what
LiveKit does not know counts as done), so a redelivered event is harmless."""

import logging
from uuid import UUID

from veche.common.clients import Nats
from veche.common.consumer import DurableConsumer
from veche.common.events import RoomEvent
from veche.common.livekit import LiveKitRooms
from veche.common.livekit_names import livekit_room_name
from veche.common.rooms_client import RoomsClient
from veche.common.timefmt import utcnow
from veche.media_token.settings import MediaSettings

log = logging.getLogger("veche.media.sync")


class LiveKitSync:
    """The handler of ROOMS events for the LiveKit side."""

    def __init__(self, livekit: LiveKitRooms, rooms: RoomsClient, settings: MediaSettings) -> None:
        self.livekit = livekit
        self.rooms = rooms
        self.settings = settings

    async def handle(self, event: RoomEvent) -> None:
        age = (utcnow() - event.occurred_at).total_seconds()
        if age > self.settings.livekit_sync_give_up_seconds:
            log.warning("giving up %s of room %s: %.0fs old", event.type, event.room_id, age)
            return
        if event.type == "room.created":
            await self.room_created(event.room_id)
        elif event.type == "room.ended":
            await self.room_ended(event.room_id)
        elif event.type == "participant.left" and event.participant:
            # Kicked, left through the API, timed out: whoever is no member any more is no
            # participant of the call either (a room that ended is closed as a whole).
            if event.reason != "room_ended":
                await self.participant_gone(event.room_id, event.participant.id)

    async def room_created(self, room_id: UUID) -> None:
        room = await self.rooms.room(room_id)
        if room is None or room.status == "ended":
            return  # gone before LiveKit could be told: nothing to create
        await self.livekit.create_room(
            room.livekit_room_name,
            room.max_participants,
            self.settings.livekit_empty_timeout_seconds,
            self.settings.livekit_departure_timeout_seconds,
        )
        log.info("livekit room created for room %s", room_id)

    async def room_ended(self, room_id: UUID) -> None:
        existed = await self.livekit.delete_room(livekit_room_name(room_id))
        log.info("livekit room of room %s %s", room_id, "deleted" if existed else "already gone")

    async def participant_gone(self, room_id: UUID, public_id: UUID) -> None:
        removed = await self.livekit.remove_participant(livekit_room_name(room_id), str(public_id))
        log.info("former member %s %s LiveKit", public_id, "removed from" if removed else "was not in")


def livekit_sync_consumer(
    nats: Nats, settings: MediaSettings, livekit: LiveKitRooms, rooms: RoomsClient
) -> DurableConsumer:
    sync = LiveKitSync(livekit, rooms, settings)
    return DurableConsumer(
        nats,
        settings,
        durable=settings.sync_durable,
        filter_subject=f"{settings.nats_subject_prefix}.>",
        handler=sync.handle,
        retry_max_seconds=settings.livekit_sync_retry_max_seconds,
    )
