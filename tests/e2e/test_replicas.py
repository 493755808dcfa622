"""Replicas behind the gateway: a chat replica killed while ten members chat. Clients resume
on a live replica with `after`, nothing is lost or duplicated, nearly every post made during
the kill is accepted, and the supervisor brings the dead replica back."""

import asyncio
import os
import signal
import time

import httpx
import pytest

from tests.chat.support import ResumingReader, Room, SteadyPoster
from tests.support import eventually
from veche.local.stack import healthy

pytestmark = pytest.mark.e2e

MEMBERS = 10
POST_EVERY = 0.1  # seconds, per member
KILL_WINDOW = 3.0  # posts started this long after the kill count as "during the kill"


async def test_a_killed_chat_replica_loses_nothing_and_comes_back(stack, gw):
    names = [p.name for p in stack.processes if p.name.rstrip("0123456789") == "chat"]
    assert len(names) >= 2
    victim = stack.process(names[-1])
    room = await Room.create(gw)
    members = [room.host] + [await room.join(f"M{i}", settle=False) for i in range(MEMBERS - 1)]
    stop_reading, stop_posting = asyncio.Event(), asyncio.Event()
    readers = [ResumingReader(stack.url, room, member) for member in members]
    reading = await ResumingReader.start(readers, stop_reading)
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
        posters = [SteadyPoster(client, room, member, POST_EVERY) for member in members]
        posting = [asyncio.create_task(poster.run(stop_posting)) for poster in posters]
        await asyncio.sleep(2)
        assert victim.popen is not None
        pid_before = victim.popen.pid
        killed_at = time.monotonic()
        os.killpg(victim.popen.pid, signal.SIGKILL)  # a crash: the supervisor's business
        await asyncio.sleep(KILL_WINDOW + 1)
        stop_posting.set()
        await asyncio.gather(*posting)
    accepted = [id_ for poster in posters for id_ in poster.accepted]
    during = [ok for poster in posters for ok in poster.outcomes(killed_at, killed_at + KILL_WINDOW)]

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
