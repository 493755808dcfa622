"""The capacity rule under real concurrency, against the real processes behind Traefik."""

import asyncio

import httpx
import pytest

from tests.support import hdr, new_pid

pytestmark = pytest.mark.e2e


async def test_30_simultaneous_joins_into_a_room_of_5_admit_exactly_4(gw):
    host = new_pid()
    created = await gw.post(
        "/api/v1/rooms", json={"title": "Tight", "max_participants": 5}, headers=hdr(host)
    )
    room_id = created.json()["room"]["id"]
    joiners = [new_pid() for _ in range(30)]
    # Separate connections, released together: 30 joins really in flight at once.
    clients = [httpx.AsyncClient(base_url=str(gw.base_url), timeout=20) for _ in joiners]
    try:
        start = asyncio.Event()

        async def join(client: httpx.AsyncClient, pid: str) -> httpx.Response:
            await start.wait()
            return await client.post(
                f"/api/v1/rooms/{room_id}/join", json={"display_name": pid[:8]}, headers=hdr(pid)
            )

        tasks = [asyncio.create_task(join(c, p)) for c, p in zip(clients, joiners, strict=True)]
        await asyncio.sleep(0.05)
        start.set()
        responses = await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 4, statuses
    assert statuses.count(409) == 26, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"room_full"}
    room = (await gw.get(f"/api/v1/rooms/{room_id}")).json()
    assert room["participant_count"] == 5
    listed = (await gw.get(f"/api/v1/rooms/{room_id}/participants")).json()["participants"]
    assert len(listed) == 5


async def test_the_same_participant_joining_10_times_at_once_gets_one_membership(gw):
    created = await gw.post("/api/v1/rooms", json={"title": "Dup"})
    room_id = created.json()["room"]["id"]
    pid = new_pid()
    responses = await asyncio.gather(
        *(
            gw.post(f"/api/v1/rooms/{room_id}/join", json={"display_name": "Same"}, headers=hdr(pid))
            for _ in range(10)
        )
    )
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert [r.status_code for r in responses].count(201) == 1
    listed = (await gw.get(f"/api/v1/rooms/{room_id}/participants")).json()["participants"]
    assert len(listed) == 2
