"""LiveKit's RoomService, as the platform uses it: Twirp over HTTP through `livekit-api`.
media-token creates, closes and moderates LiveKit rooms with it; rooms removes a LiveKit
participant that is no member (reported by a webhook).

Every call either succeeds, reports "LiveKit does not know that" (a result, not an error), or
raises LiveKitUnavailable. The API key and secret sign each call; nothing here mints tokens."""

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from livekit import api as lk

from veche.common.settings import LiveKitSettings


class LiveKitUnavailable(Exception):
    """LiveKit could not be reached, timed out, or answered with an error."""


@dataclass(frozen=True)
class PublishedTrack:
    sid: str
    kind: str  # "audio" | "video"
    muted: bool


T = TypeVar("T")

_KINDS = {lk.TrackType.AUDIO: "audio", lk.TrackType.VIDEO: "video"}


def _is_not_found(exc: lk.ServerError) -> bool:
    return exc.code == lk.ServerErrorCode.NOT_FOUND or exc.status == 404


class LiveKitRooms:
    def __init__(self, settings: LiveKitSettings) -> None:
        # Failover is for LiveKit Cloud regions; retries are the callers' business.
        self.api = lk.LiveKitAPI(
            settings.livekit_http_url,
            settings.livekit_api_key,
            settings.livekit_api_secret,
            timeout=aiohttp.ClientTimeout(total=settings.livekit_api_timeout_seconds),
            failover=False,
        )

    async def close(self) -> None:
        await self.api.aclose()

    async def _call(self, what: str, call: Awaitable[T]) -> T | None:
        """Awaits one RoomService call; None when LiveKit answers not_found."""
        try:
            return await call
        except lk.ServerError as exc:
            if _is_not_found(exc):
                return None
            raise LiveKitUnavailable(f"{what}: LiveKit answered {exc.code} ({exc.status})") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LiveKitUnavailable(f"{what}: {type(exc).__name__}") from exc

    async def create_room(
        self, name: str, max_participants: int, empty_timeout: int, departure_timeout: int
    ) -> None:
        """Creates the LiveKit room, or keeps the one that exists (CreateRoom is idempotent)."""
        request = lk.CreateRoomRequest(
            name=name,
            max_participants=max_participants,
            empty_timeout=empty_timeout,
            departure_timeout=departure_timeout,
        )
        await self._call("CreateRoom", self.api.room.create_room(request))

    async def delete_room(self, name: str) -> bool:
        """Closes the LiveKit room for everyone; False when LiveKit had no such room."""
        found = await self._call("DeleteRoom", self.api.room.delete_room(lk.DeleteRoomRequest(room=name)))
        return found is not None

    async def remove_participant(self, room: str, identity: str) -> bool:
        """Disconnects one identity; False when it was not in that LiveKit room."""
        request = lk.RoomParticipantIdentity(room=room, identity=identity)
        return await self._call("RemoveParticipant", self.api.room.remove_participant(request)) is not None

    async def published_tracks(self, room: str, identity: str) -> list[PublishedTrack]:
        """The audio and video tracks the identity publishes; empty when it is not connected."""
        request = lk.RoomParticipantIdentity(room=room, identity=identity)
        info = await self._call("GetParticipant", self.api.room.get_participant(request))
        if info is None:
            return []
        return [
            PublishedTrack(track.sid, _KINDS[track.type], track.muted)
            for track in info.tracks
            if track.type in _KINDS
        ]

    async def mute_track(self, room: str, identity: str, track_sid: str) -> None:
        request = lk.MuteRoomTrackRequest(room=room, identity=identity, track_sid=track_sid, muted=True)
        await self._call("MutePublishedTrack", self.api.room.mute_published_track(request))
