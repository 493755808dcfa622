"""Consumes the ROOMS stream: joins, leaves, kicks and ends become system messages and socket
frames.

The chat replicas share one durable pull consumer (common.consumer), so each event is handled
by one of them, and again only if its ack was lost: delivery is at least once. Handling writes
the system message and publishes the frames on the room's channel in one Lua step guarded by
the event's id, so a redelivered event changes nothing; the channel brings the frames to the
sockets of every replica."""

from veche.chat.service import ChatService
from veche.chat.settings import ChatSettings
from veche.common.clients import Nats
from veche.common.consumer import DurableConsumer


def room_events_consumer(nats: Nats, service: ChatService, settings: ChatSettings) -> DurableConsumer:
    return DurableConsumer(
        nats,
        settings,
        durable=settings.chat_events_durable,
        filter_subject=f"{settings.nats_subject_prefix}.>",
        handler=service.on_room_event,
        # One at a time: a fetch of several waits out its window before it returns, and a
        # join should reach the sockets at once.
        batch=1,
        ack_wait=10.0,
    )
