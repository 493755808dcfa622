"""Settings of the chat service."""

from veche.common.settings import PresenceSettings


class ChatSettings(PresenceSettings):
    service_name: str = "chat"
    # Each chat message lives this long.
    chat_ttl_seconds: int = 21600
    # A room keeps at most this many messages (the oldest go first).
    chat_max_messages: int = 10_000
    # A room's history in bytes of stored JSON (the oldest messages go first past it): with
    # the message cap alone, 10,000 messages of 16 KiB would be 160 MB of one room's Redis.
    chat_max_bytes: int = 8 * 1024 * 1024
    # Chat messages per identity in a room, REST and WebSocket together.
    rate_limit_chat_send: str = "20/10seconds"
    # Chat messages from one address, all identities together (several people behind a NAT).
    rate_limit_chat_send_address: str = "60/10seconds"
    # Rejected sends in a row after which a socket is closed with 4429.
    chat_ws_rate_strikes: int = 10
    # A socket must authenticate within this long after connecting (4401 otherwise).
    chat_ws_auth_timeout_seconds: float = 5.0
    # Frames waiting for one socket; a socket whose queue overflows is dropped with 1013.
    chat_ws_send_queue: int = 256
    # Bytes a live socket's transport may hold that its client has not taken yet (past what
    # the kernel buffers); a socket beyond it is dropped with 1013.
    chat_ws_send_buffer_bytes: int = 256 * 1024
    # How long a server-side close may wait for a client that does not read.
    chat_ws_close_timeout_seconds: float = 10.0
    # Largest client frame accepted (1009 beyond); uvicorn runs with the same --ws-max-size.
    chat_ws_max_frame_bytes: int = 16 * 1024
    # The JetStream durable consumer the chat replicas share for system messages and frames.
    chat_events_durable: str = "chat"
    # Events older than this many seconds when they reach chat post nothing: by then nobody
    # waits for a "joined" line or frame (a consumer created anew starts at the stream's start).
    chat_event_max_age_seconds: int = 300
