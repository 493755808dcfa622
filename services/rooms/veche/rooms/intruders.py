"""Members only in a LiveKit room: anyone LiveKit reports as joined who is no active member of
that room (left, kicked, the room ended, a token of another room) is removed at once.

A LiveKit token cannot be revoked and stays valid for its lifetime, so this is what makes a
kick or a leave final on the media side: the old token may open a connection, and the
participant_joined webhook of that connection closes it again."""

import logging

from prometheus_client import Counter

from veche.common.livekit import LiveKitRooms, LiveKitUnavailable

log = logging.getLogger("veche.rooms.livekit")

REMOVED = Counter(
    "veche_livekit_intruders_removed_total",
    "LiveKit participants removed because they are no active member of that room",
)


class IntruderRemoval:
    def __init__(self, livekit: LiveKitRooms | None) -> None:
        self.livekit = livekit

    async def close(self) -> None:
        if self.livekit is not None:
            await self.livekit.close()

    async def remove(self, livekit_room: str, identity: str) -> None:
        if self.livekit is None:
            return
        try:
            removed = await self.livekit.remove_participant(livekit_room, identity)
        except LiveKitUnavailable as exc:
            # LiveKit itself just called us, so this is rare; the connection then lives until
            # its token expires (LIVEKIT_TOKEN_TTL_SECONDS).
            log.warning("could not remove non-member %s from %s: %s", identity, livekit_room, exc)
            return
        if removed:
            REMOVED.inc()
            log.info("removed non-member %s from LiveKit room %s", identity, livekit_room)
