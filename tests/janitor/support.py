"""Helpers of the janitor tests: the small stack of real processes, and room shortcuts."""

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import hdr, new_pid
from veche.common.settings import LiveKitSettings
from veche.local.stack import Process, Stack, free_port, healthy

ROOM_EMPTY_TTL_SECONDS = 2
PRESENCE_TIMEOUT_SECONDS = 3
SWEEP_INTERVAL_SECONDS = 0.3
CLEANUP_GRACE_SECONDS = 1.0
ACK_WAIT_SECONDS = 3.0

_KEYS = LiveKitSettings()


def janitor_env(durable: str, **extra: str) -> dict[str, str]:
    return {
        "JANITOR_SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL_SECONDS),
        "PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT_SECONDS),
        "JANITOR_CLEANUP_GRACE_SECONDS": str(CLEANUP_GRACE_SECONDS),
        "JANITOR_ACK_WAIT_SECONDS": str(ACK_WAIT_SECONDS),
        # Its own durable: an e2e stack running in the same session has the default one.
        "JANITOR_DURABLE": durable,
        **extra,
    }


@dataclass
class JanitorStack:
    runner: Stack
    env: dict[str, str]
    rooms_url: str
    chat_url: str | None = None
    durable: str = ""
    janitors: list[Process] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], port: int, env: dict[str, str]) -> Process:
        proc = Process(name, cmd, port, {**self.env, **env})
        self.runner.start_process(proc)
        self.runner.processes.append(proc)
        return proc

    def start_janitor(self, name: str, durable: str, **env: str) -> Process:
        port = free_port()
        extra = janitor_env(durable, JANITOR_PORT=str(port), **env)
        return self.start(name, [sys.executable, "-m", "veche.janitor.main"], port, extra)

    def wait_ready(self, procs: list[Process], path: str = "/readyz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = list(procs)
        while pending:
            for proc in list(pending):
                if proc.popen is not None and proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited early:\n{self.log_tail(proc)}")
                if healthy(f"http://127.0.0.1:{proc.port}{path}"):
                    pending.remove(proc)
            if time.monotonic() > deadline:
                tails = "\n".join(self.log_tail(p) for p in pending)
                raise RuntimeError(f"not ready in time: {[p.name for p in pending]}\n{tails}")
            time.sleep(0.1)

    def log_tail(self, proc: Process, size: int = 3000) -> str:
        log = self.runner.run_dir / f"{proc.name}.log"
        return f"--- {proc.name}\n" + (log.read_text()[-size:] if log.exists() else "(no log)")

    async def metrics(self, proc: Process) -> dict[str, float]:
        """The janitor's metrics, each sample summed over its labels."""
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"http://127.0.0.1:{proc.port}/metrics")).text
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals


async def consumer_state(js: Any, durable: str) -> tuple[int, int]:
    """(not yet delivered, delivered but not acknowledged) of a durable consumer."""
    info = await js.consumer_info(os.environ["NATS_STREAM"], durable)
    return info.num_pending, info.num_ack_pending


async def create_room(api: httpx.AsyncClient, title: str = "Janitor") -> tuple[str, str, str]:
    """(room id, host's secret participant id, host's public id)."""
    host = new_pid()
    response = await api.post("/api/v1/rooms", json={"title": title}, headers=hdr(host))
    assert response.status_code == 201, response.text
    body = response.json()
    return body["room"]["id"], host, body["participant"]["id"]


async def join(api: httpx.AsyncClient, room_id: str, name: str) -> tuple[str, str]:
    """(secret participant id, public id) of a new member."""
    pid = new_pid()
    response = await api.post(f"/api/v1/rooms/{room_id}/join", json={"display_name": name}, headers=hdr(pid))
    assert response.status_code == 201, response.text
    return pid, response.json()["id"]


async def room_keys(redis: Any, room_id: str) -> list[str]:
    found: list[str] = []
    for pattern in (f"room:{{{room_id}}}:*", f"chat:room:{{{room_id}}}:*"):
        found += [key async for key in redis.scan_iter(match=pattern, count=1000)]
    return found


async def room_row(db: asyncpg.Connection, room_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT status, expires_at, ended_at FROM rooms WHERE id = $1", UUID(room_id))


async def member_row(db: asyncpg.Connection, public_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT left_at, leave_reason FROM room_participants WHERE id = $1", UUID(public_id)
    )


async def keep_alive(api: httpx.AsyncClient, room_id: str, pid: str, stop: asyncio.Event) -> None:
    """A present member: a request about its room every few hundred milliseconds."""
    while not stop.is_set():
        await api.get(f"/api/v1/rooms/{room_id}/participants", headers=hdr(pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.3)
        except TimeoutError:
            pass


def livekit_joined_webhook(room_id: str, public_id: str, sid: str) -> tuple[str, dict[str, str]]:
    """The body and headers LiveKit sends when a member's media connection is up, signed with
    the settings' default key and secret as LiveKit signs them."""
    import base64
    import hashlib

    from google.protobuf.json_format import MessageToJson
    from livekit import api as livekit_api
    from livekit.protocol import models, webhook

    body = MessageToJson(
        webhook.WebhookEvent(
            event="participant_joined",
            room=models.Room(name=f"veche-{room_id}"),
            participant=models.ParticipantInfo(identity=public_id, sid=sid),
        )
    )
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    signer = livekit_api.AccessToken(_KEYS.livekit_api_key, _KEYS.livekit_api_secret)
    token = signer.with_sha256(digest).to_jwt()
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}
