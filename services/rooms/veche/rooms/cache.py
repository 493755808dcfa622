"""rooms' view of the room state in Redis (veche.common.roomstate): the same operations, with
the cached room typed as rooms' own RoomView."""

from uuid import UUID

from veche.common.roomstate import RoomState, parse_member
from veche.rooms.schemas import RoomView

__all__ = ["RoomCache", "parse_member"]


class RoomCache(RoomState):
    async def cached_view(self, room_id: UUID) -> tuple[RoomView | None, str]:
        """(the cached room or None, the cache generation to hand back to cache_view)."""
        raw, generation = await self.cached_room(room_id)
        return (RoomView.model_validate_json(raw) if raw else None), generation

    async def cache_view(self, room: RoomView, generation: str) -> None:
        await self.cache_room(room.id, room.model_dump_json(), generation)
