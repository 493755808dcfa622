"""Use cases of the media context: a LiveKit access token for a member, a host's mute.

The secret participant_id is only ever used to look the caller up; what reaches LiveKit, the
token and the answer is the public participant id."""

import json
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt
from livekit import api as lk
from prometheus_client import Counter

from veche.common.errors import NotHost, ParticipantNotFound, RoomEnded, Unavailable
from veche.common.events import PublicParticipant
from veche.common.livekit import LiveKitRooms, LiveKitUnavailable
from veche.common.livekit_names import livekit_room_name
from veche.common.membership import MembershipResolver
from veche.media_token.schemas import MediaToken, TrackKind
from veche.media_token.settings import MediaSettings

log = logging.getLogger("veche.media")

TOKENS = Counter("veche_media_tokens_total", "LiveKit access tokens issued", ["role"])
MUTES = Counter("veche_media_mutes_total", "Tracks muted by a host", ["kind"])


def mint_token(settings: MediaSettings, member: PublicParticipant, room_name: str) -> MediaToken:
    """A LiveKit access token for one member of one LiveKit room, signed with the API secret."""
    grants = lk.VideoGrants(
        room_join=True,
        room=room_name,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        room_admin=True if member.role == "host" else None,
    )
    token = (
        lk.AccessToken(settings.livekit_api_key, settings.livekit_api_secret)
        .with_identity(str(member.id))
        .with_name(member.display_name)
        .with_metadata(json.dumps({"role": member.role}))
        .with_grants(grants)
        .with_ttl(timedelta(seconds=settings.livekit_token_ttl_seconds))
        .to_jwt()
    )
    # The answer states the expiry the token itself carries, to the second.
    claims = jwt.decode(token, options={"verify_signature": False})
    return MediaToken(
        token=token,
        url=settings.livekit_url,
        room=room_name,
        identity=member.id,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


class MediaService:
    def __init__(
        self,
        settings: MediaSettings,
        membership: MembershipResolver,
        livekit: LiveKitRooms | None,
    ) -> None:
        self.settings = settings
        self.membership = membership
        self.livekit = livekit

    async def _active_member(self, room_id: UUID, participant_id: UUID | None) -> PublicParticipant:
        member = (await self.membership.resolve(room_id, participant_id)).require_active()
        await self.membership.state.touch(room_id, member.id)
        return member

    def _require_livekit(self) -> LiveKitRooms:
        if self.livekit is None:
            raise Unavailable("Video is not configured on this server (LIVEKIT_URL is empty)")
        return self.livekit

    async def token(self, room_id: UUID, participant_id: UUID | None) -> MediaToken:
        member = await self._active_member(room_id, participant_id)
        livekit = self._require_livekit()
        room_name = livekit_room_name(room_id)
        await self._ensure_livekit_room(livekit, room_id, room_name)
        TOKENS.labels(member.role).inc()
        return mint_token(self.settings, member, room_name)

    async def _ensure_livekit_room(self, livekit: LiveKitRooms, room_id: UUID, name: str) -> None:
        """LiveKit creates no room on a join (auto_create is off), so a token is only worth
        something while the platform's LiveKit room exists. It is made on room.created, but
        LiveKit closes an empty room after its timeout and forgets every room when it
        restarts: the token request makes sure it is there (CreateRoom keeps an existing
        one). A room that ends in between is closed again by room.ended, and anyone who
        joins it meanwhile is removed on LiveKit's participant_joined webhook."""
        room = await self.membership.rooms.room(room_id)  # RoomsUnavailable: 503
        if room is not None and room.status == "ended":
            raise RoomEnded(f"Room {room_id} has ended")
        max_participants = room.max_participants if room is not None else 0
        try:
            await livekit.create_room(
                name,
                max_participants,
                self.settings.livekit_empty_timeout_seconds,
                self.settings.livekit_departure_timeout_seconds,
            )
        except LiveKitUnavailable as exc:
            log.warning("token refused, the LiveKit room cannot be made: %s", exc)
            raise Unavailable("LiveKit cannot be reached") from exc

    async def mute(self, room_id: UUID, participant_id: UUID | None, target_id: UUID, kind: TrackKind) -> int:
        """Mutes every published track of that kind of the target; returns how many. A member
        who is not connected to LiveKit publishes nothing, so there is nothing to mute."""
        caller = await self._active_member(room_id, participant_id)
        if caller.role != "host":
            raise NotHost("Only the host may mute participants")
        members = await self.membership.members(room_id)
        if not any(m.id == target_id for m in members):
            raise ParticipantNotFound(f"No active participant {target_id} in this room")
        livekit = self._require_livekit()
        room, identity = livekit_room_name(room_id), str(target_id)
        try:
            tracks = await livekit.published_tracks(room, identity)
            unmuted = [t for t in tracks if t.kind == kind and not t.muted]
            for track in unmuted:
                await livekit.mute_track(room, identity, track.sid)
        except LiveKitUnavailable as exc:
            log.warning("mute failed: %s", exc)
            raise Unavailable("LiveKit cannot be reached") from exc
        MUTES.labels(kind).inc(len(unmuted))
        return len(unmuted)
