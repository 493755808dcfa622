"""Stopping background tasks for certain (veche.common.tasks): a task that carries on after a
cancel, as one inside Python 3.11's asyncio.wait_for can, is cancelled again until it ends; and
a service's NATS connection that never reached its server closes promptly, whenever it is
closed."""

import asyncio
import random
import time

from veche.common.clients import Nats
from veche.common.tasks import stop_tasks
from veche.local.stack import free_port
from veche.rooms.settings import RoomsSettings


async def stubborn(ignore: int, ended: list[str]) -> None:
    """Carries on after its first `ignore` cancels, as a swallowed cancel makes a task do."""
    left = ignore
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if left == 0:
                ended.append("cancelled")
                raise
            left -= 1


async def test_a_task_that_carries_on_after_a_cancel_is_cancelled_again_until_it_ends():
    ended: list[str] = []
    task = asyncio.create_task(stubborn(2, ended))
    await asyncio.sleep(0)

    # The plain way waits on a task that is still running after its one cancel.
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=0.3)
    assert not done, "the stubborn task ended on one cancel: the test proves nothing"

    await asyncio.wait_for(stop_tasks([task]), timeout=5)
    assert task.cancelled()
    assert ended == ["cancelled"]


async def test_failed_finished_and_missing_tasks_are_stopped_without_a_complaint():
    async def fails() -> None:
        raise RuntimeError("gone wrong")

    failed = asyncio.create_task(fails())
    finished = asyncio.create_task(asyncio.sleep(0))
    running = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0.01)
    await stop_tasks([failed, None, finished, running])
    assert failed.done() and finished.done() and running.cancelled()


async def test_a_nats_connection_that_never_reached_its_server_closes_promptly():
    # Nothing listens there: the connection is retrying (inside nats-py's connect, which waits
    # with wait_for) whenever it is closed.
    settings = RoomsSettings(nats_url=f"nats://127.0.0.1:{free_port()}")
    rng = random.Random(7)
    for _ in range(12):
        connection = Nats(settings)
        connection.start()
        await asyncio.sleep(rng.uniform(0, 0.8))
        started = time.monotonic()
        await asyncio.wait_for(connection.close(), timeout=5)
        assert time.monotonic() - started < 2
        assert connection._task is not None and connection._task.done()
