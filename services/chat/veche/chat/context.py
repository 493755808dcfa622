"""What a chat process holds while it runs (`app.state.ctx`), typed for its routes."""

from dataclasses import dataclass

import redis.asyncio as aioredis

from veche.chat.fanout import Fanout
from veche.chat.service import ChatService
from veche.chat.settings import ChatSettings
from veche.common.clients import Nats
from veche.common.consumer import DurableConsumer


@dataclass(frozen=True)
class ChatContext:
    settings: ChatSettings
    service: ChatService
    fanout: Fanout
    redis: aioredis.Redis
    nats: Nats
    events: DurableConsumer
