"""Replicas behind the gateway: a chat replica killed while ten members chat. Clients resume
on a live replica with `after`, nothing is lost or duplicated, nearly every post made during
the kill is accepted, and the supervisor brings the dead replica back."""

import asyncio
import os
import signal
import time

import httpx
import pytest
import websockets

from tests.chat.support import Member, Room, chat_socket
from tests.support import eventually, hdr
from veche.local.stack import healthy

pytestmark = pytest.mark.e2e

MEMBERS = 10
POST_EVERY = 0.1  # seconds, per member
KILL_WINDOW = 3.0  # posts started this long after the kill count as "during the kill"


class Reader:
    """One member's chat view that outlives its socket: on any loss it reconnects through the
    gateway (to whichever replica it picks) with `after` = the last message it saw."""

    def __init__(self, base: str, room: Room, member: Member) -> None:
        self.base, self.room, self.member = base, room, member
        self.seen: list[str] = []
        self.resumes = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            after = self.seen[-1] if self.seen else None
            try:
                async with chat_socket(self.base, self.room.id, self.member, after=after) as socket:
                    while not stop.is_set():
                        try:
                            frame = await socket.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        if frame["type"] == "message.created" and frame["message"]["message_type"] == "user":
                            self.seen.append(frame["message"]["id"])
            except (websockets.ConnectionClosed, OSError, TimeoutError, AssertionError):
                self.resumes += 1
                await asyncio.sleep(0.05)


async def test_a_killed_chat_replica_loses_nothing_and_comes_back(stack, gw):
    names = [p.name for p in stack.processes if p.name.rstrip("0123456789") == "chat"]
    assert len(names) >= 2
    victim = stack.process(names[-1])
    room = await Room.create(gw)
    members = [room.host] + [await room.join(f"M{i}", settle=False) for i in range(MEMBERS - 1)]
    stop_reading, stop_posting = asyncio.Event(), asyncio.Event()
    readers = [Reader(stack.url, room, member) for member in members]
    reading = [asyncio.create_task(reader.run(stop_reading)) for reader in readers]
    accepted: list[str] = []
    during: list[bool] = []  # for each post started in the kill window: accepted?
    killed_at: float | None = None

    async def poster(client: httpx.AsyncClient, member: Member) -> None:
        n = 0
        while not stop_posting.is_set():
            n += 1
            started = time.monotonic()
            try:
                response = await client.post(
                    room.messages_url, json={"content": f"{member.name} {n}"}, headers=hdr(member.pid)
                )
                ok = response.status_code == 201
            except httpx.HTTPError:
                ok = False
            if ok:
                accepted.append(response.json()["id"])
            if killed_at is not None and killed_at <= started < killed_at + KILL_WINDOW:
                during.append(ok)
            await asyncio.sleep(POST_EVERY)

    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
        posting = [asyncio.create_task(poster(client, member)) for member in members]
        await asyncio.sleep(2)
        assert victim.popen is not None
        pid_before = victim.popen.pid
        killed_at = time.monotonic()
        os.killpg(victim.popen.pid, signal.SIGKILL)  # a crash: the supervisor's business
        await asyncio.sleep(KILL_WINDOW + 1)
        stop_posting.set()
        await asyncio.gather(*posting)

    async def everyone_has_everything():
        return all(set(accepted) <= set(reader.seen) for reader in readers)

    await eventually(everyone_has_everything, timeout=30, interval=0.2)
    stop_reading.set()
    await asyncio.gather(*reading)

    assert len(during) >= MEMBERS * 10, "too few posts during the kill to judge"
    assert sum(during) >= 0.9 * len(during), f"{sum(during)}/{len(during)} posts accepted during the kill"
    for reader in readers:
        assert len(reader.seen) == len(set(reader.seen)), "a message arrived twice"
        assert reader.seen == sorted(reader.seen), "messages out of order"
        assert set(reader.seen) == set(accepted)
    assert any(reader.resumes for reader in readers), "no socket was on the killed replica"

    # The supervisor restarts the crashed replica, and it serves again.
    async def back():
        popen = victim.popen
        return (
            popen is not None
            and popen.pid != pid_before
            and healthy(f"http://127.0.0.1:{victim.port}/healthz")
        )

    await eventually(back, timeout=30, interval=0.2)
