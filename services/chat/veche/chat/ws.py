"""The chat WebSocket `/ws/chat/{room_id}` (docs/api.md, WebSocket): authenticate with the first
frame (or the X-Participant-ID header), `ready`, replay after `after`, then live frames.

Each socket has a writer task fed by a bounded queue. The live frames of the room are queued
from the moment the socket's channel subscription is confirmed, before the replay is read, so
nothing falls between replay and live; a message.created at or below the last replayed id is
one the replay already sent and is skipped. Once the replay is sent and the queue is empty, a
socket with a wire (veche.chat.wire: the chat's own uvicorn protocol) goes live: from then on
every frame is written to its transport at once, by the hub's dispatch, with the bytes encoded
once for the whole room. A client that stopped reading is closed with 1013 when its queue
overflows or, live, when more than `chat_ws_send_buffer_bytes` wait in its transport; it never
holds up anyone else."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import MutableMapping
from typing import Any
from uuid import UUID

from fastapi import APIRouter, WebSocket
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from veche.chat import frames
from veche.chat.fanout import Fanout, Outgoing
from veche.chat.frames import dumps
from veche.chat.schemas import MessageBody
from veche.chat.service import Caller, ChatService
from veche.chat.settings import ChatSettings
from veche.chat.wire import wire_of
from veche.common.errors import (
    NotAParticipant,
    Problem,
    RateLimited,
    RoomEnded,
    RoomNotFound,
    is_dependency_error,
)
from veche.common.events import PublicParticipant
from veche.common.identity import HEADER
from veche.common.ids import parse_uuid7
from veche.common.tasks import stop_tasks
from veche.common.web import peer_client_ip

log = logging.getLogger("veche.chat.ws")

router = APIRouter()

OPEN_SOCKETS = Gauge("veche_chat_sockets", "Open chat WebSockets on this replica")
SOCKET_CLOSES = Counter("veche_chat_socket_closes_total", "Server-side socket closes", ["code"])
DELIVERY = Histogram(
    "veche_chat_delivery_seconds",
    "From a message's creation (the time in its UUIDv7 id) to its message.created frame written "
    "to a socket, live frames only (not the replay)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

REPLAY_PAGE = 200


class _Refused(Exception):
    """Authentication or admission failed: close the socket with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _close_code_of(exc: BaseException) -> int:
    if isinstance(exc, RoomNotFound):
        return frames.CLOSE_ROOM_NOT_FOUND
    if isinstance(exc, RoomEnded):
        return frames.CLOSE_ROOM_ENDED
    if isinstance(exc, NotAParticipant):
        return frames.CLOSE_NOT_PARTICIPANT
    return frames.CLOSE_UNAVAILABLE


def _observe_delivery(created_at: float) -> None:
    """The delivery latency of a live message.created frame just written: now minus the
    message's creation (another replica's clock, or an id made after a later one, may put
    that a little ahead of ours: never below zero)."""
    DELIVERY.observe(max(time.time() - created_at, 0.0))


class ChatSocket:
    """One authenticated socket: its identity, its send queue and its writer."""

    def __init__(
        self,
        websocket: WebSocket,
        caller: Caller,
        after: UUID | None,
        service: ChatService,
        settings: ChatSettings,
    ) -> None:
        self.websocket = websocket
        self.caller = caller
        self.room_id = caller.room_id
        self.member_id = str(caller.member.id)
        # The member's role, for hosts-only frames: from the membership at admission, then
        # from every participant.updated frame about this member (Fanout._dispatch).
        self.role: str = caller.member.role
        self.after = after
        self.service = service
        self.settings = settings
        self.queue: asyncio.Queue[Outgoing] = asyncio.Queue(settings.chat_ws_send_queue)
        self.aborted = asyncio.Event()
        self.close_code: int | None = None
        self.rate_strikes = 0
        self.wire = wire_of(websocket.scope)
        # Set by the writer once the replay is sent and the queue is empty (with a wire only).
        self.live = False
        # The id (as an int) of the last message the replay sent.
        self.last_sent: int | None = None

    # --- called by the hub and the reader (never block) -------------------------------------

    def deliver(self, item: Outgoing) -> None:
        if self.close_code is not None:
            return
        if self.live:
            self._write_now(item)
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop_slow()

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.deliver(Outgoing.of_text(dumps(frame)))

    def _drop_slow(self) -> None:
        log.info("dropping a socket that does not read", extra={"fields": self._fields()})
        self.abort(frames.CLOSE_TRY_AGAIN)

    def _write_now(self, item: Outgoing) -> None:
        """The live path: the frame goes to the transport now, in the caller's step."""
        if item.close_code is not None:
            self.abort(item.close_code)
            return
        if self._replayed(item):
            return
        wire = self.wire
        assert wire is not None and item.frame is not None
        if wire.buffered() > self.settings.chat_ws_send_buffer_bytes:
            self._drop_slow()
            return
        if wire.write(item.frame) and item.created_at is not None:
            _observe_delivery(item.created_at)

    def _replayed(self, item: Outgoing) -> bool:
        last, message = self.last_sent, item.message_id
        return last is not None and message is not None and message <= last

    def abort(self, code: int) -> None:
        """Closes the socket with `code` as soon as possible, ahead of anything queued."""
        if self.close_code is None:
            self.close_code = code
            self.aborted.set()

    def _fields(self) -> dict[str, str]:
        return {"room_id": str(self.room_id), "member": self.member_id}

    # --- the writer -------------------------------------------------------------------------

    async def write(self, participant: PublicParticipant) -> None:
        try:
            await self.websocket.send_text(dumps(frames.ready_frame(participant)))
            if self.after is not None:
                last = await self._replay()
                self.last_sent = last.int if last is not None else None
            while True:
                if self.wire is not None and self.queue.empty():
                    # Nothing is queued or being sent: from here on deliver() writes at once.
                    self.live = True
                    await self.aborted.wait()
                    return
                item = await self.queue.get()
                if item.close_code is not None:
                    self.abort(item.close_code)
                    return
                if self._replayed(item):
                    continue
                assert item.frame is not None
                await self.websocket.send_text(item.frame.text)
                if item.created_at is not None:
                    _observe_delivery(item.created_at)
        except (WebSocketDisconnect, RuntimeError):
            # The client went away, or the server closed the socket under us (uvicorn answers
            # a send after its own close, e.g. a keepalive timeout, with a RuntimeError).
            return
        except Exception as exc:
            if not is_dependency_error(exc):
                log.exception("chat socket writer failed")
            self.abort(frames.CLOSE_UNAVAILABLE)

    async def _replay(self) -> UUID | None:
        """Sends every stored message after `after`; returns the last id the client has."""
        cursor = self.after
        assert cursor is not None
        while True:
            batch = await self.service.replay(self.room_id, cursor, REPLAY_PAGE)
            for message in batch:
                await self.websocket.send_text(dumps(frames.message_frame("message.created", message)))
            if batch:
                cursor = batch[-1].id
            if len(batch) < REPLAY_PAGE:
                return cursor

    # --- the reader -------------------------------------------------------------------------

    async def read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = _decode(message, self.settings.chat_ws_max_frame_bytes)
            if isinstance(frame, int):
                self.abort(frame)
                return
            kind = frame.get("type")
            if kind == "message.send":
                await self._send_message(frame)
            elif kind == "auth":
                continue  # already authenticated (by the header): nothing to do
            else:
                self.abort(frames.CLOSE_BAD_FRAME)
                return
            if self.close_code is not None:
                return

    async def _send_message(self, frame: dict[str, Any]) -> None:
        client_msg_id = frame.get("client_msg_id")
        try:
            body = MessageBody.model_validate({"content": frame.get("content")})
        except ValidationError as exc:
            detail = "; ".join(str(e.get("msg", "")) for e in exc.errors()) or "invalid content"
            self.send_frame(frames.error_frame(client_msg_id, "validation_error", detail))
            return
        try:
            caller = await self.service.authorize(
                self.room_id, self.caller.participant_id, self.caller.client_ip
            )
            if str(caller.member.id) != self.member_id:
                raise NotAParticipant("This socket belongs to an earlier membership")
            message = await self.service.post(caller, body.content)
        except RateLimited as exc:
            self.send_frame(frames.error_frame(client_msg_id, exc.code, exc.detail))
            self.rate_strikes += 1
            if self.rate_strikes >= self.settings.chat_ws_rate_strikes:
                self.abort(frames.CLOSE_RATE_LIMITED)
            return
        except Problem as exc:
            self.send_frame(frames.error_frame(client_msg_id, exc.code, exc.detail))
            if isinstance(exc, RoomEnded):
                self.send_frame(frames.ROOM_ENDED_FRAME)
                self.deliver(Outgoing(close_code=frames.CLOSE_ROOM_ENDED))
            elif isinstance(exc, NotAParticipant):
                self.deliver(Outgoing(close_code=frames.CLOSE_NOT_PARTICIPANT))
            return
        except Exception as exc:
            if not is_dependency_error(exc):
                raise
            self.send_frame(
                frames.error_frame(client_msg_id, "unavailable", "A backing service is unavailable")
            )
            return
        self.rate_strikes = 0
        self.send_frame(frames.ack_frame(client_msg_id, message))


def _decode(message: MutableMapping[str, Any], max_bytes: int) -> dict[str, Any] | int:
    """A client frame as a JSON object, or the close code its flaw calls for."""
    text = message.get("text")
    if text is None:
        return frames.CLOSE_BAD_FRAME  # binary frames are not part of the protocol
    if len(text) > max_bytes:
        return frames.CLOSE_TOO_BIG
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a huge number, nesting past the parser
        return frames.CLOSE_BAD_FRAME
    if not isinstance(frame, dict):
        return frames.CLOSE_BAD_FRAME
    return frame


async def _credentials(websocket: WebSocket, settings: ChatSettings) -> tuple[str, UUID | None]:
    """(participant secret, replay cursor) from the header or the first frame."""
    header = websocket.headers.get(HEADER)
    if header:
        try:
            participant_id = str(UUID(header.strip()))
        except ValueError:
            raise _Refused(frames.CLOSE_NO_AUTH) from None
        raw_after = websocket.query_params.get("after")
        after = parse_uuid7(raw_after) if raw_after else None
        if raw_after and after is None:
            raise _Refused(frames.CLOSE_BAD_FRAME)
        return participant_id, after
    try:
        async with asyncio.timeout(settings.chat_ws_auth_timeout_seconds):
            message = await websocket.receive()
    except TimeoutError:
        raise _Refused(frames.CLOSE_NO_AUTH) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    frame = _decode(message, settings.chat_ws_max_frame_bytes)
    if isinstance(frame, int):
        raise _Refused(frame)
    if frame.get("type") != "auth":
        raise _Refused(frames.CLOSE_NO_AUTH)
    raw_pid = frame.get("participant_id")
    if not isinstance(raw_pid, str):
        raise _Refused(frames.CLOSE_NO_AUTH)
    try:
        participant_id = str(UUID(raw_pid.strip()))
    except ValueError:
        raise _Refused(frames.CLOSE_NO_AUTH) from None
    raw_after = frame.get("after")
    after = parse_uuid7(raw_after) if raw_after is not None else None
    if raw_after is not None and after is None:
        raise _Refused(frames.CLOSE_BAD_FRAME)
    return participant_id, after


async def _close(websocket: WebSocket, code: int, timeout: float) -> None:
    SOCKET_CLOSES.labels(str(code)).inc()
    # A client that does not read cannot take a close frame either: give up after a while.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await websocket.close(code)


@router.websocket("/ws/chat/{room_id}")
async def chat_socket(websocket: WebSocket, room_id: str) -> None:
    ctx = websocket.app.state.ctx
    service: ChatService = ctx.service
    hub: Fanout = ctx.fanout
    settings: ChatSettings = ctx.settings
    close_timeout = settings.chat_ws_close_timeout_seconds
    await websocket.accept()
    try:
        room = UUID(room_id)
    except ValueError:
        await _close(websocket, frames.CLOSE_ROOM_NOT_FOUND, close_timeout)
        return
    try:
        participant_id, after = await _credentials(websocket, settings)
        address = peer_client_ip(
            websocket.client.host if websocket.client else None, websocket.headers, settings
        )
        caller = await service.authorize(room, participant_id, address)
    except _Refused as refused:
        await _close(websocket, refused.code, close_timeout)
        return
    except WebSocketDisconnect:
        return
    except Exception as exc:
        if not isinstance(exc, Problem) and not is_dependency_error(exc):
            log.exception("chat socket admission failed")
        await _close(websocket, _close_code_of(exc), close_timeout)
        return

    socket = ChatSocket(websocket, caller, after, service, settings)
    try:
        await hub.attach(socket)
    except Exception:  # noqa: BLE001 - Unavailable: the fan-out cannot serve this socket
        await _close(websocket, frames.CLOSE_UNAVAILABLE, close_timeout)
        return
    OPEN_SOCKETS.inc()
    tasks: list[asyncio.Task[Any]] = []
    try:
        # Subscribed now: check membership again, so a kick or an end that landed before the
        # subscription is not missed (one that lands after it arrives as a frame).
        try:
            caller = await service.authorize(room, participant_id, address)
        except Exception as exc:
            await _close(websocket, _close_code_of(exc), close_timeout)
            return
        socket.role = caller.member.role
        tasks = [
            asyncio.create_task(socket.write(caller.member)),
            asyncio.create_task(socket.read()),
            asyncio.create_task(socket.aborted.wait()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await stop_tasks(tasks)
        if socket.close_code is not None:
            await _close(websocket, socket.close_code, close_timeout)
    finally:
        for task in tasks:
            task.cancel()
        OPEN_SOCKETS.dec()
        with contextlib.suppress(Exception):
            await hub.detach(socket)
