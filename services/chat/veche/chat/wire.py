"""The chat socket's fast path: a frame encoded once is written straight to every socket's
transport, without an ASGI send, a queue or a task per socket per frame.

ASGI gives an app no handle on a connection's transport, so the chat runs uvicorn with a
WebSocket protocol of its own (`--ws veche.chat.wire:ChatWebSocketProtocol`, see
`UVICORN_OPTIONS`): uvicorn's sans-I/O protocol (the `websockets` library's state machine)
that puts a `Wire` into the socket's ASGI scope under the extension key `WIRE_EXTENSION`. A
socket served by any other server has no wire and takes the slower ASGI path (ws.py).

A server's frames are unmasked, so without a compression extension one text frame is the
same bytes on every socket: `Frame.wire` builds them once, with the `websockets` library's
own framing. The chat turns permessage-deflate off (`--ws-per-message-deflate false`): its
frames are small JSON, and compressing each frame once per socket would cost more CPU than
everything else in the fan-out. A socket that negotiated compression anyway (another
deployment's flags) gets the frame through its own protocol state instead."""

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import State

WIRE_EXTENSION = "veche.chat.wire"

# What the chat process needs of uvicorn, for `uvicorn.Config(**UVICORN_OPTIONS)`, and the same
# as command-line flags (deploy/local/veche/local/stack.py, deploy/k8s, deploy/compose.yaml).
UVICORN_OPTIONS: dict[str, Any] = {
    "ws": "veche.chat.wire:ChatWebSocketProtocol",
    "ws_per_message_deflate": False,
}
UVICORN_FLAGS = ["--ws", "veche.chat.wire:ChatWebSocketProtocol", "--ws-per-message-deflate", "false"]


class Frame:
    """One text frame for many sockets: its payload, and its wire bytes once asked for."""

    __slots__ = ("text", "_payload", "_wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self._payload: bytes | None = None
        self._wire: bytes | None = None

    @property
    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = self.text.encode()
        return self._payload

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = WsFrame(Opcode.TEXT, self.payload).serialize(mask=False, extensions=[])
        return self._wire


class Wire:
    """Synchronous writes to one accepted socket's transport."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: "ChatWebSocketProtocol") -> None:
        self._protocol = protocol

    @property
    def open(self) -> bool:
        protocol = self._protocol
        return (
            protocol.handshake_complete
            and not protocol.close_sent
            and not protocol.disconnected
            and protocol.conn.state is State.OPEN
            and not protocol.transport.is_closing()
        )

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (the client is behind)."""
        return self._protocol.transport.get_write_buffer_size()

    def write(self, frame: Frame) -> bool:
        """Writes the frame now; False when the socket is no longer open."""
        if not self.open:
            return False
        protocol = self._protocol
        if protocol.conn.extensions:
            protocol.conn.send_text(frame.payload)
            protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        else:
            protocol.transport.write(frame.wire)
        return True


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with the socket's `Wire` in its ASGI scope."""

    async def run_asgi(self) -> None:
        extensions: dict[str, Any] = self.scope["extensions"]  # type: ignore[assignment]
        extensions[WIRE_EXTENSION] = Wire(self)
        await super().run_asgi()


def wire_of(scope: Any) -> Wire | None:
    extensions = scope.get("extensions") or {}
    wire = extensions.get(WIRE_EXTENSION)
    return wire if isinstance(wire, Wire) else None
