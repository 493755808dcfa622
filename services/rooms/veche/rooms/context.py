"""What a rooms process holds while it runs (`app.state.ctx`), typed for its routes."""

from dataclasses import dataclass

from livekit import api as livekit_api

from veche.common.clients import Nats
from veche.rooms.intruders import IntruderRemoval
from veche.rooms.outbox import OutboxRelay
from veche.rooms.service import RoomsService


@dataclass(frozen=True)
class RoomsContext:
    service: RoomsService
    relay: OutboxRelay
    nats: Nats
    webhook_receiver: livekit_api.WebhookReceiver
    intruders: IntruderRemoval
