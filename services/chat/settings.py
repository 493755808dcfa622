"""Settings of the chat service."""

from common.settings import CommonSettings


class ChatSettings(CommonSettings):
    service_name: str = "chat"
    chat_max_messages: int = 10_000
