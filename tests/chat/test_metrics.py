"""chat's delivery latency: a message posted over REST and written to a live socket is observed in
`veche_chat_delivery_seconds`, from the time in its id to the socket write; replayed frames are
not. Read from /metrics as Prometheus reads it."""

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.chat.support import Room, chat_socket

DELIVERY = "veche_chat_delivery_seconds"


async def scrape(base_url: str) -> dict[str, float]:
    """The unlabelled samples of /metrics, by sample name (buckets by their `le`)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = dict(sample.labels)
            le = labels.pop("le", None)
            if not labels:
                samples[sample.name + (f"{{le={le}}}" if le is not None else "")] = sample.value
    return samples


async def test_a_live_message_observes_its_delivery_and_a_replay_does_not(rooms_api, chat_server):
    async with chat_server() as served, httpx.AsyncClient(base_url=served.url, timeout=15) as chat:
        room = await Room.create(rooms_api, chat)
        await room.wait_for_system("Host joined")
        async with chat_socket(served.url, room.id, room.host) as socket:
            before = await scrape(served.url)
            assert before["veche_chat_sockets"] >= 1
            started = time.monotonic()
            posted = await room.post(room.host, "how fast?")
            assert (await socket.created("how fast?"))["id"] == posted["id"]
            elapsed = time.monotonic() - started
            after = await scrape(served.url)
        # Only this test's socket is open in the process: exactly one live frame went out.
        assert after[f"{DELIVERY}_count"] - before.get(f"{DELIVERY}_count", 0.0) == 1
        observed = after[f"{DELIVERY}_sum"] - before.get(f"{DELIVERY}_sum", 0.0)
        # From the id's millisecond to the write: within the round trip the test saw (plus the
        # millisecond the id rounds down to, and some slack for the wall clock).
        assert 0 <= observed <= elapsed + 0.01
        assert after[f"{DELIVERY}_bucket{{le=+Inf}}"] == after[f"{DELIVERY}_count"]

        # A socket resuming from the message before it gets it by replay: not a delivery.
        first = next(m for m in await room.history(limit=200) if m["content"] == "Host joined")
        async with chat_socket(served.url, room.id, room.host, after=first["id"]) as late:
            assert (await late.created("how fast?"))["id"] == posted["id"]
            resumed = await scrape(served.url)
        assert resumed[f"{DELIVERY}_count"] == after[f"{DELIVERY}_count"]
