"""deploy/nats/nats.conf on a real nats-server: each service connects with its own user, only
rooms may publish room events, and the consumers still read them through their durables."""

import asyncio
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig

from veche.common.clients import Nats, ensure_stream
from veche.common.settings import CommonSettings
from veche.local.stack import ROOT, bin_path, free_port, port_open

CONF = ROOT / "deploy" / "nats" / "nats.conf"
PASSWORDS = {
    "NATS_ROOMS_PASSWORD": "rooms-pw",
    "NATS_CHAT_PASSWORD": "chat-pw",
    "NATS_MEDIA_TOKEN_PASSWORD": "media-pw",
    "NATS_JANITOR_PASSWORD": "janitor-pw",
}


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    port = free_port()
    store = tempfile.mkdtemp(prefix="veche-nats-perm-")
    process = subprocess.Popen(
        [
            bin_path("nats-server"),
            "-c",
            str(CONF),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(free_port()),
            "-sd",
            store,
        ],
        env={**os.environ, **PASSWORDS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            if port_open("127.0.0.1", port):
                break
            assert process.poll() is None, "nats-server refused deploy/nats/nats.conf"
            subprocess.run(["sleep", "0.05"])
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def settings(url: str, user: str, password: str) -> CommonSettings:
    return CommonSettings(
        nats_url=url, nats_user=user, nats_password=password, nats_stream="ROOMS", nats_subject_prefix="rooms"
    )


async def connect(url: str, user: str, password: str, errors: list[str]) -> nats.NATS:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(url, user=user, password=password, error_cb=on_error, max_reconnect_attempts=1)


@pytest.fixture(scope="module")
async def rooms_client(nats_url: str) -> AsyncIterator[Nats]:
    """The rooms service's own connection (common.clients.Nats with NATS_USER/NATS_PASSWORD),
    which makes the stream on connect."""
    ready = asyncio.Event()
    config = settings(nats_url, "rooms", PASSWORDS["NATS_ROOMS_PASSWORD"])

    async def on_connect(client) -> None:  # type: ignore[no-untyped-def]
        await ensure_stream(client, config)
        ready.set()

    client = Nats(config, on_connect=on_connect)
    client.start()
    await asyncio.wait_for(ready.wait(), 10)
    yield client
    await client.close()


async def test_rooms_publishes_events_and_a_consumer_user_reads_them(nats_url, rooms_client):
    js = rooms_client.client.jetstream()  # type: ignore[union-attr]
    ack = await js.publish("rooms.r1.room.created", b'{"x": 1}')
    assert ack.stream == "ROOMS"
    errors: list[str] = []
    chat = await connect(nats_url, "chat", PASSWORDS["NATS_CHAT_PASSWORD"], errors)
    try:
        await ensure_stream(chat, settings(nats_url, "chat", PASSWORDS["NATS_CHAT_PASSWORD"]))
        sub = await chat.jetstream().pull_subscribe(
            "rooms.>", durable="chat-perm", stream="ROOMS", config=ConsumerConfig(durable_name="chat-perm")
        )
        [message] = await sub.fetch(1, timeout=5)
        assert message.subject == "rooms.r1.room.created"
        await message.ack()
    finally:
        await chat.close()
    assert errors == []


@pytest.mark.parametrize("user", ["chat", "media-token", "janitor"])
async def test_no_consumer_may_publish_a_room_event_or_touch_the_stream(nats_url, rooms_client, user):
    password = PASSWORDS[f"NATS_{user.upper().replace('-', '_')}_PASSWORD"]
    errors: list[str] = []
    client = await connect(nats_url, user, password, errors)
    try:
        js = client.jetstream(timeout=1)
        with pytest.raises(nats.errors.Error):
            await js.publish("rooms.r2.room.ended", b"{}")  # refused: no ack ever comes
        with pytest.raises(nats.errors.Error):
            await js.delete_stream("ROOMS")
        with pytest.raises(nats.errors.Error):
            await js.purge_stream("ROOMS")
        await asyncio.sleep(0.2)
    finally:
        await client.close()
    assert any("permissions violation" in e.lower() for e in errors), errors
    info = await rooms_client.client.jetstream().stream_info("ROOMS")  # type: ignore[union-attr]
    assert info.state.messages >= 1
    assert not [s for s in (info.state.subjects or {}) if s.startswith("rooms.r2.")]


async def test_a_wrong_password_is_refused(nats_url):
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises its own authorization error
        await nats.connect(
            nats_url,
            user="rooms",
            password="guess",
            max_reconnect_attempts=0,
            allow_reconnect=False,
            connect_timeout=2,
        )


def test_the_config_names_a_user_per_service():
    text = CONF.read_text()
    for user in ("rooms", "chat", "media-token", "janitor"):
        assert f"user: {user}" in text
    assert Path(CONF).exists()
