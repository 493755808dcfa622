"""Members in a real call: each joins through the platform's API (gateway), asks it for a
LiveKit token and connects to the real LiveKit server with the `livekit` real-time SDK, as a
browser would. Camera and microphone are synthetic sources."""

import asyncio
import contextlib
import math
import os
import time
from typing import Any

import httpx
from livekit import rtc

from tests.support import hdr, new_pid

WIDTH, HEIGHT, FPS = 160, 120, 30


class Member:
    def __init__(self, gw: httpx.AsyncClient, room_id: str, pid: str, public_id: str, name: str) -> None:
        self.gw, self.room_id, self.pid, self.public_id, self.name = gw, room_id, pid, public_id, name
        self.room: rtc.Room | None = None
        self.disconnected = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.frames: dict[str, int] = {}  # remote identity → decoded video frames
        self.first_frame_at: dict[str, float] = {}
        self.connected_at = 0.0

    @classmethod
    async def create_room(cls, gw: httpx.AsyncClient, name: str = "Host", **room: Any) -> "Member":
        pid = new_pid()
        body = {"title": "Call", "display_name": name, **room}
        response = await gw.post("/api/v1/rooms", json=body, headers=hdr(pid))
        assert response.status_code == 201, response.text
        data = response.json()
        return cls(gw, data["room"]["id"], pid, data["participant"]["id"], name)

    async def invite(self, name: str) -> "Member":
        pid = new_pid()
        response = await self.gw.post(
            f"/api/v1/rooms/{self.room_id}/join", json={"display_name": name}, headers=hdr(pid)
        )
        assert response.status_code == 201, response.text
        return Member(self.gw, self.room_id, pid, response.json()["id"], name)

    async def token(self) -> dict[str, Any]:
        response = await self.gw.post(f"/api/v1/rooms/{self.room_id}/media/token", headers=hdr(self.pid))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def connect(self, token: dict[str, Any] | None = None) -> rtc.Room:
        """Connects with a fresh token from the platform (or the one given)."""
        token = token or await self.token()
        room = rtc.Room()
        self.disconnected = asyncio.Event()
        room.on("disconnected", lambda *_: self.disconnected.set())
        room.on("track_subscribed", self._on_track)
        await room.connect(token["url"], token["token"])
        self.connected_at = time.monotonic()
        self.room = room
        return room

    def _on_track(self, track: rtc.Track, _pub: Any, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            self.tasks.append(asyncio.ensure_future(self._count_frames(track, participant.identity)))

    async def _count_frames(self, track: rtc.Track, identity: str) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for _ in stream:
                if identity not in self.first_frame_at:
                    self.first_frame_at[identity] = time.monotonic()
                self.frames[identity] = self.frames.get(identity, 0) + 1
        finally:
            await stream.aclose()

    async def publish_camera(self, width: int = WIDTH, height: int = HEIGHT) -> str:
        assert self.room is not None
        source = rtc.VideoSource(width, height)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        publication = await self.room.local_participant.publish_track(track, options)
        self.tasks.append(asyncio.ensure_future(self._pump_video(source, width, height)))
        return publication.sid

    async def _pump_video(self, source: rtc.VideoSource, width: int, height: int) -> None:
        """Frames that change every time: a shade that moves, and a band of noise, so the
        encoder has something to send."""
        n = 0
        noise = os.urandom(width * 4 * 8)
        while True:
            shade = bytes([n * 7 % 256, 80, 160, 255])
            band = noise[(n * 64) % len(noise) :] + noise[: (n * 64) % len(noise)]
            pixels = shade * (width * (height - 8)) + band
            source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, pixels))
            n += 1
            await asyncio.sleep(1 / FPS)

    async def publish_microphone(self) -> str:
        assert self.room is not None
        rate, chunk = 48000, 480
        source = rtc.AudioSource(rate, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await self.room.local_participant.publish_track(track, options)

        async def pump() -> None:
            t = 0
            while True:
                frame = rtc.AudioFrame.create(rate, 1, chunk)
                samples = frame.data
                for i in range(chunk):
                    samples[i] = int(8000 * math.sin(2 * math.pi * 440 * (t + i) / rate))
                t += chunk
                await source.capture_frame(frame)

        self.tasks.append(asyncio.ensure_future(pump()))
        return publication.sid

    async def frames_from(self, other: "Member", count: int = 20, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.frames.get(other.public_id, 0) < count:
            assert time.monotonic() < deadline, (
                f"{self.name} decoded {self.frames.get(other.public_id, 0)} frames of {other.name}"
            )
            await asyncio.sleep(0.05)
        return self.frames[other.public_id]

    def remote(self, other: "Member") -> rtc.RemoteParticipant | None:
        assert self.room is not None
        return self.room.remote_participants.get(other.public_id)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        if self.room is not None:
            with contextlib.suppress(Exception):
                await self.room.disconnect()
            self.room = None


async def within(seconds: float, condition: Any, what: str) -> float:
    """Waits for condition() to hold; returns how long it took, fails after `seconds`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds}s: {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start
