"""No process writes a participant's secret to its log, whatever the request did."""

import asyncio

import pytest

from tests.support import hdr, new_pid

pytestmark = pytest.mark.e2e


async def test_participant_secrets_never_reach_any_process_log(gw, stack):
    host, guest, kicked = new_pid(), new_pid(), new_pid()
    created = await gw.post("/api/v1/rooms", json={"title": "Logs"}, headers=hdr(host))
    assert created.status_code == 201
    rid = created.json()["room"]["id"]
    for pid, name in ((guest, "Guest"), (kicked, "Kicked")):
        joined = await gw.post(f"/api/v1/rooms/{rid}/join", json={"display_name": name}, headers=hdr(pid))
        assert joined.status_code == 201
    kicked_public = next(
        p["id"]
        for p in (await gw.get(f"/api/v1/rooms/{rid}/participants")).json()["participants"]
        if p["display_name"] == "Kicked"
    )
    # Requests of every kind, good and bad, through every service.
    await gw.post(f"/api/v1/rooms/{rid}/chat/messages", json={"content": "hi"}, headers=hdr(guest))
    await gw.get(f"/api/v1/rooms/{rid}/chat/messages", headers=hdr(guest))
    await gw.post(f"/api/v1/rooms/{rid}/chat/messages", json={"content": ""}, headers=hdr(guest))
    await gw.post(f"/api/v1/rooms/{rid}/media/token", headers=hdr(guest))
    await gw.post(f"/api/v1/rooms/{rid}/end", headers=hdr(guest))
    kick = await gw.post(f"/api/v1/rooms/{rid}/participants/{kicked_public}/kick", headers=hdr(host))
    assert kick.status_code == 204
    await gw.post(f"/api/v1/rooms/{rid}/join", json={"display_name": "again"}, headers=hdr(kicked))
    await gw.post(f"/api/v1/rooms/{rid}/media/token", headers=hdr(kicked))
    ended = await gw.post(f"/api/v1/rooms/{rid}/end", headers=hdr(host))
    assert ended.status_code == 200
    await asyncio.sleep(1.5)  # let consumers and relays log what they log about it

    logs = {path.name: path.read_text(errors="replace") for path in stack.run_dir.glob("*.log")}
    assert "rooms.log" in logs and "chat.log" in logs
    # The stack logs at INFO: every request left an access line (so the check below has teeth).
    assert "/api/v1/rooms/{room_id}/join" in logs["rooms.log"]
    for name, text in logs.items():
        for secret in (host, guest, kicked):
            assert secret not in text, f"{name} contains a participant secret"
