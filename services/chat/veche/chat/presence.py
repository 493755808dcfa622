"""Signs of life of the members whose sockets are open on this replica, and a re-check of
their memberships: a socket whose member is gone is closed even if the event that says so
never arrived."""

import asyncio
import json
import logging

from veche.chat import frames
from veche.chat.fanout import Fanout, Outgoing
from veche.chat.ws import ChatSocket
from veche.common.roomstate import RoomState
from veche.common.tasks import stop_tasks

log = logging.getLogger("veche.chat.presence")


class PresenceKeeper:
    """While a socket is open its member shows signs of life (the janitor reads them), and its
    membership is re-checked: a socket whose member is gone is closed even if the event that
    says so never arrived."""

    def __init__(self, hub: Fanout, state: RoomState, interval: float) -> None:
        self.hub = hub
        self.state = state
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chat-presence")

    async def stop(self) -> None:
        await stop_tasks([self._task])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - next round will retry
                log.warning("presence refresh failed: %s", type(exc).__name__)

    async def refresh(self) -> None:
        # Also with no socket: the janitor suspends time-outs while no replica says this.
        if self.hub.connected:
            await self.state.keeper_alive(self.hub.replica)
        sockets = [s for s in self.hub.sockets() if isinstance(s, ChatSocket)]
        if not sockets:
            return
        await self.state.touch_many(list({(s.room_id, s.caller.member.id) for s in sockets}))
        rows = await self.state.memberships([(s.room_id, s.caller.participant_id) for s in sockets])
        for socket, (status, raw) in zip(sockets, rows, strict=True):
            if status is None:
                continue  # the hash is missing (Redis restarted): rooms rebuilds it on demand
            if status == "ended":
                socket.send_frame(frames.ROOM_ENDED_FRAME)
                socket.deliver(Outgoing(close_code=frames.CLOSE_ROOM_ENDED))
            elif raw is None or json.loads(raw).get("id") != socket.member_id:
                socket.deliver(Outgoing(close_code=frames.CLOSE_NOT_PARTICIPANT))
