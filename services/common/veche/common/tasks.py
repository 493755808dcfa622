"""Stopping background tasks for certain.

On Python 3.11 `asyncio.wait_for` can swallow a cancel that arrives just as the awaitable it
guards completes: the task then carries on as if it had never been cancelled. Libraries use
wait_for inside (nats-py's connect loop does, for every attempt), so `task.cancel(); await
task` could wait forever, and a service's shutdown with it: on a loaded machine the NATS connect
loop of a stopping service was seen retrying for minutes after its cancel. The project's own
code uses `asyncio.timeout` instead; the tasks it stops, it stops with `stop_tasks`."""

import asyncio
import contextlib
from collections.abc import Iterable

# How long a cancelled task gets to end before it is cancelled again.
RECANCEL_SECONDS = 0.2


async def stop_tasks(tasks: Iterable["asyncio.Task[object] | None"]) -> None:
    """Cancels the tasks and returns once every one has ended, cancelling again any that
    carries on; their results and exceptions are collected (so none is reported as never
    retrieved) and dropped."""
    wanted = [t for t in tasks if t is not None]
    pending = {t for t in wanted if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in wanted:
        if not task.cancelled():
            with contextlib.suppress(BaseException):
                task.exception()
