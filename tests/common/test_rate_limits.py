"""Rate limits: each trips at its configured value and resets; addresses cannot be spoofed."""

import asyncio
import os
import time

import httpx

from tests.support import GATEWAY_PEER, app_client, hdr, new_pid
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings


def assert_rate_limited(response: httpx.Response, max_retry: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= max_retry


def limited_rooms(**limits: str) -> RoomsSettings:
    return RoomsSettings(**limits)


async def _wait_until_accepted(call, timeout: float = 5.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = await call()
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_create_room_limit_trips_at_its_value_and_resets():
    settings = limited_rooms(rate_limit_create_room="3/2seconds")
    async with app_client(create_app(settings), client=GATEWAY_PEER) as client:
        # A fresh address of its own for this test, so no other test shares its counter.
        ip = {"X-Real-IP": f"192.0.2.{os.getpid() % 250}"}
        statuses = []
        for _ in range(3):
            response = await client.post("/api/v1/rooms", json={"title": "r"}, headers=ip)
            statuses.append(response.status_code)
        assert statuses == [201, 201, 201]
        over = await client.post("/api/v1/rooms", json={"title": "r"}, headers=ip)
        assert_rate_limited(over, max_retry=2)
        other_address = await client.post(
            "/api/v1/rooms", json={"title": "r"}, headers={"X-Real-IP": "192.0.2.251"}
        )
        assert other_address.status_code == 201
        again = await _wait_until_accepted(
            lambda: client.post("/api/v1/rooms", json={"title": "r"}, headers=ip)
        )
        assert again.status_code == 201


async def test_a_forwarded_address_from_anyone_but_the_gateway_is_not_believed():
    """Somebody who reaches the rooms port directly cannot pick the address a limit counts:
    its X-Real-IP / X-Forwarded-For are ignored, its own address is counted."""
    settings = limited_rooms(rate_limit_create_room="2/2seconds")
    async with app_client(create_app(settings), client=("198.51.100.23", 4000)) as client:
        statuses = []
        for i in range(3):
            spoof = {"X-Real-IP": f"192.0.2.{10 + i}", "X-Forwarded-For": f"192.0.2.{20 + i}"}
            response = await client.post("/api/v1/rooms", json={"title": "r"}, headers=spoof)
            statuses.append(response.status_code)
        assert statuses == [201, 201, 429]


async def test_join_limit_trips_per_address():
    settings = limited_rooms(rate_limit_join="2/2seconds")
    async with app_client(create_app(settings), client=GATEWAY_PEER) as client:
        room_id = (await client.post("/api/v1/rooms", json={"title": "r"})).json()["room"]["id"]
        ip = {"X-Real-IP": "192.0.2.77"}

        async def join():
            return await client.post(
                f"/api/v1/rooms/{room_id}/join", json={"display_name": "n"}, headers={**ip, **hdr(new_pid())}
            )

        assert (await join()).status_code == 201
        assert (await join()).status_code == 201
        assert_rate_limited(await join(), max_retry=2)
        assert (await _wait_until_accepted(join)).status_code == 201


async def test_room_limit_counts_all_requests_of_one_room_and_no_other():
    settings = limited_rooms(rate_limit_room="5/2seconds")
    async with app_client(create_app(settings)) as client:
        busy = (await client.post("/api/v1/rooms", json={"title": "busy"})).json()["room"]["id"]
        quiet = (await client.post("/api/v1/rooms", json={"title": "quiet"})).json()["room"]["id"]
        for _ in range(5):
            assert (await client.get(f"/api/v1/rooms/{busy}")).status_code == 200
        assert_rate_limited(await client.get(f"/api/v1/rooms/{busy}/participants"), max_retry=2)
        assert (await client.get(f"/api/v1/rooms/{quiet}")).status_code == 200
        assert (await _wait_until_accepted(lambda: client.get(f"/api/v1/rooms/{busy}"))).status_code == 200
