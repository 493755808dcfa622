"""What a media-token process holds while it runs (`app.state.ctx`), typed for its routes."""

from dataclasses import dataclass

import redis.asyncio as aioredis

from veche.common.clients import Nats
from veche.common.consumer import DurableConsumer
from veche.media_token.service import MediaService


@dataclass(frozen=True)
class MediaContext:
    service: MediaService
    redis: aioredis.Redis
    nats: Nats
    # The LiveKit sync consumer; None when video is off (LIVEKIT_URL empty).
    consumer: DurableConsumer | None
