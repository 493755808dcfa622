"""Use cases of the rooms context. Each one owns its transaction and writes Redis through
before the caller answers, in the order that fails closed:

- a membership that starts (create, join) is committed first, then added to the Redis hash:
  the answer is a success either way (what is committed is real and announced); if Redis
  fails, a background repair rebuilds the room's hash from PostgreSQL once Redis answers
  (and a repeated join, idempotent, repairs it too);
- a membership that ends (leave, kick, end, timeout) is removed from the hash while the room
  row is still locked, before the commit, with a short timeout (REDIS_IN_LOCK_TIMEOUT_SECONDS)
  so that a frozen Redis never holds the row lock long: if Redis fails, nothing is committed
  and a kicked member can never keep chatting on a stale hash.

Then the outbox relay is woken to publish the committed events."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from veche.common.errors import (
    AlreadyResolved,
    Banned,
    LastHost,
    LobbyDenied,
    LobbyRequestNotFound,
    NotAParticipant,
    NotHost,
    ParticipantNotFound,
    RoomEnded,
    RoomFull,
    RoomLocked,
    RoomNotFound,
    Unavailable,
    ValidationFailed,
    is_dependency_error,
)
from veche.common.events import (
    EventType,
    LeaveReason,
    LobbyRequestView,
    PublicParticipant,
    RoomEvent,
    UpdateKind,
)
from veche.common.livekit_names import livekit_room_name
from veche.common.tasks import stop_tasks
from veche.common.timefmt import utcnow
from veche.rooms import repository as repo
from veche.rooms.cache import RoomCache, parse_member
from veche.rooms.models import LobbyRequest, Membership, Room
from veche.rooms.schemas import CreateRoom, RoomView, SelfView, UpdateRoom
from veche.rooms.settings import RoomsSettings

log = logging.getLogger("veche.rooms.service")

# How long a room's hash repair keeps retrying after a failed write (see _after_commit).
REPAIR_SECONDS = 300.0
# A lobby request nobody answered expires after this; an admission reserves a seat as long.
LOBBY_REQUEST_TTL = timedelta(minutes=10)
# One-statement joins a join tries while seats keep coming free between them (see join).
JOIN_ATTEMPTS = 3


def public_view(member: Membership) -> PublicParticipant:
    return PublicParticipant(
        id=member.id,
        display_name=member.display_name,
        role=member.role,  # type: ignore[arg-type]
        joined_at=member.joined_at,
        livekit_sid=member.livekit_sid,
        hand_raised_at=member.hand_raised_at,
    )


def self_view(member: Membership) -> SelfView:
    return SelfView(
        id=member.id,
        room_id=member.room_id,
        participant_id=UUID(member.participant_id),
        display_name=member.display_name,
        role=member.role,  # type: ignore[arg-type]
        joined_at=member.joined_at,
        left_at=member.left_at,
    )


def room_view(room: Room, participant_count: int) -> RoomView:
    return RoomView(
        id=room.id,
        livekit_room_name=room.livekit_room_name,
        title=room.title,
        description=room.description,
        status=room.status,  # type: ignore[arg-type]
        max_participants=room.max_participants,
        participant_count=participant_count,
        created_at=room.created_at,
        updated_at=room.updated_at,
        expires_at=room.expires_at,
        locked=room.locked,
        lobby=room.lobby,
        e2ee=room.e2ee,
    )


def lobby_view(request: LobbyRequest) -> LobbyRequestView:
    return LobbyRequestView(
        id=request.id, display_name=request.display_name, requested_at=request.requested_at
    )


# The refusals of a join (docs/api.md), the same whichever way the join went.
def room_not_found(room_id: UUID) -> RoomNotFound:
    return RoomNotFound(f"Room {room_id} does not exist")


def room_ended(room_id: UUID) -> RoomEnded:
    return RoomEnded(f"Room {room_id} has ended")


def banned() -> Banned:
    return Banned("You were removed from this room by its host")


def room_locked() -> RoomLocked:
    return RoomLocked("The room is locked: nobody new may join")


def room_full(room_id: UUID, count: int) -> RoomFull:
    return RoomFull(f"Room {room_id} already has {count} participants")


@dataclass
class Caller:
    participant_id: str
    client_ip: str | None = None
    user_agent: str | None = None


@dataclass
class JoinResult:
    """A membership (created or the active one), or the lobby request the caller waits on."""

    member: Membership | None
    created: bool
    waiting: LobbyRequest | None = None


class RoomsService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: RoomCache,
        settings: RoomsSettings,
        on_events: Callable[[], None] = lambda: None,
        relay_leads: Callable[[], bool] = lambda: False,
    ) -> None:
        """`on_events` wakes this process's outbox relay after a commit that added events;
        `relay_leads` says whether that relay is the one publishing (then a join needs no
        NOTIFY to wake it)."""
        self.sessions = sessions
        self.engine: AsyncEngine = sessions.kw["bind"]
        self.cache = cache
        self.settings = settings
        self.on_events = on_events
        self.relay_leads = relay_leads
        self._repairs: dict[UUID, asyncio.Task[None]] = {}
        # A join holds a pooled connection for one statement. Past the pool's size, more joins
        # at once would not go faster: each would open an overflow connection (a new backend)
        # for one statement and close it again. They wait for a slot instead; two of the
        # pool's connections stay for everything else (the outbox relay holds one for good).
        size = getattr(self.engine.pool, "size", lambda: 0)()
        self._join_slots = asyncio.Semaphore(max(size - 2, 2))

    async def close(self) -> None:
        """Stops the hash repairs still waiting for Redis (their rooms rebuild on demand)."""
        await stop_tasks(list(self._repairs.values()))

    async def _after_commit(self, room_id: UUID, write: Callable[[], Awaitable[None]]) -> None:
        """A Redis write after a committed start of membership. Its failure must not turn a
        real, announced membership into an error: the room's hash is repaired in the
        background instead."""
        try:
            await write()
        except Exception as exc:
            if not is_dependency_error(exc):
                raise
            log.warning(
                "redis write after commit failed (%s); repairing room %s", type(exc).__name__, room_id
            )
            self._repair_later(room_id)

    def _repair_later(self, room_id: UUID) -> None:
        if room_id in self._repairs:
            return
        task = asyncio.create_task(self._repair(room_id), name=f"rooms-repair-{room_id}")
        self._repairs[room_id] = task
        task.add_done_callback(lambda _: self._repairs.pop(room_id, None))

    async def _repair(self, room_id: UUID) -> None:
        """Rebuilds the room's hash (and everyone's presence, seeded) from PostgreSQL, retrying
        until Redis answers, for at most REPAIR_SECONDS; a later request rebuilds it anyway
        when the hash is missing."""
        delay = 0.2
        deadline = asyncio.get_running_loop().time() + REPAIR_SECONDS
        while True:
            try:
                async with self.sessions() as session:
                    room = await repo.get_room(session, room_id)
                    if room is None:
                        return
                    members = await repo.active_memberships(session, room_id)
                await self.cache.rebuild(
                    room_id, room.status, [(m.participant_id, public_view(m)) for m in members], room.e2ee
                )
                await self.cache.seed_presence([(room_id, m.id) for m in members])
                log.info("room %s: membership hash repaired", room_id)
                return
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("room %s: hash repair gave up (%s)", room_id, type(exc).__name__)
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _in_lock(self, write: Awaitable[None]) -> None:
        """A Redis write while the room row is locked: bounded by a short timeout, so a frozen
        Redis fails the request quickly (503, nothing committed) instead of holding the lock."""
        try:
            async with asyncio.timeout(self.settings.redis_in_lock_timeout_seconds):
                await write
        except TimeoutError as exc:
            raise Unavailable("Redis did not answer in time") from exc

    def _emit(self, session: AsyncSession, event: RoomEvent) -> None:
        repo.add_event(session, self.settings.nats_subject_prefix, event)

    def _emit_member(
        self,
        session: AsyncSession,
        event_type: EventType,
        room_id: UUID,
        member: Membership,
        occurred_at: datetime,
        **fields: Any,
    ) -> None:
        """An event about one member: its public view, never its secret participant id."""
        self._emit(
            session,
            RoomEvent(
                type=event_type,
                room_id=room_id,
                participant=public_view(member),
                occurred_at=occurred_at,
                **fields,
            ),
        )

    # --- create / read -------------------------------------------------------------------

    async def create(self, body: CreateRoom, caller: Caller) -> tuple[RoomView, Membership]:
        room_id = uuid4()
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = Room(
                id=room_id,
                livekit_room_name=livekit_room_name(room_id),
                title=body.title,
                description=body.description,
                max_participants=body.max_participants,
                status="active",
                created_at=now,
                updated_at=now,
                locked=body.locked,
                lobby=body.lobby,
                e2ee=body.e2ee,
            )
            host = Membership(
                id=uuid4(),
                room_id=room_id,
                participant_id=caller.participant_id,
                display_name=body.display_name or "Host",
                role="host",
                joined_at=now,
                client_ip=caller.client_ip,
                user_agent=caller.user_agent,
            )
            session.add(room)
            await session.flush()
            session.add(host)
            await session.flush()
            self._emit(session, RoomEvent(type="room.created", room_id=room_id, occurred_at=now))
            self._emit_member(session, "participant.joined", room_id, host, now)
        view = room_view(room, 1)
        self.on_events()
        await self._after_commit(
            room_id,
            lambda: self.cache.rebuild(
                room_id, "active", [(caller.participant_id, public_view(host))], body.e2ee
            ),
        )
        await self._after_commit(room_id, lambda: self.cache.touch(room_id, host.id))
        return view, host

    async def get(self, room_id: UUID) -> RoomView:
        cached, generation = await self.cache.cached_view(room_id)
        if cached is not None:
            return cached
        async with self.sessions() as session:
            room = await repo.get_room(session, room_id)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            view = room_view(room, await repo.active_count(session, room_id))
        await self.cache.cache_view(view, generation)
        return view

    async def participants(self, room_id: UUID) -> list[PublicParticipant]:
        async with self.sessions() as session:
            room = await repo.get_room(session, room_id)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            members = await repo.active_memberships(session, room_id)
        return [public_view(m) for m in members]

    # --- join / leave --------------------------------------------------------------------

    async def join(self, room_id: UUID, display_name: str, caller: Caller) -> JoinResult:
        """A join goes in at once, in one statement (the new membership, or the active one
        with its display name updated). When the statement lets nothing through (it then
        changed nothing), one read of the room says why: the refusal of docs/api.md, or the
        lobby, for which the join takes the full way (_join). When nothing refuses it any
        more (a seat came free meanwhile), it goes again."""
        for _ in range(JOIN_ATTEMPTS):
            result = await self._join_at_once(room_id, display_name, caller)
            if result is not None:
                return result
            if await self._refuse(room_id, caller):
                break
        try:
            return await self._join(room_id, display_name, caller)
        except IntegrityError:
            # A concurrent join of the same participant won the unique active index: it is
            # active now, so this join is the idempotent case.
            return await self._join(room_id, display_name, caller)

    async def _join_at_once(self, room_id: UUID, display_name: str, caller: Caller) -> JoinResult | None:
        """repository.join: the room's checks (under its row lock), the membership, the room's
        expiry and the outbox row in one round trip and one transaction; None when it let
        nothing through (see join). Then, as in _join, the member goes into the hash."""
        now = utcnow()
        member_id = uuid4()
        # Its role ("participant" here) is the gate's to set: a former host is host again.
        event = RoomEvent(
            type="participant.joined",
            room_id=room_id,
            participant=PublicParticipant(
                id=member_id, display_name=display_name, role="participant", joined_at=now
            ),
            occurred_at=now,
        )
        async with self._join_slots:
            row = await repo.join(
                self.engine,
                room_id=room_id,
                participant_id=caller.participant_id,
                member_id=member_id,
                display_name=display_name,
                at=now,
                client_ip=caller.client_ip,
                user_agent=caller.user_agent,
                prefix=self.settings.nats_subject_prefix,
                event=event,
                notify=not self.relay_leads(),
            )
        if row is None:
            return None
        member = Membership(
            id=row.id,
            room_id=room_id,
            participant_id=caller.participant_id,
            display_name=row.display_name,
            role=row.role,
            joined_at=row.joined_at,
            left_at=None,
            livekit_sid=row.livekit_sid,
            hand_raised_at=row.hand_raised_at,
        )
        created = row.id == member_id
        if created:
            self.on_events()
        view = public_view(member)
        await self._after_commit(room_id, lambda: self.cache.joined(room_id, caller.participant_id, view))
        return JoinResult(member, created)

    async def _refuse(self, room_id: UUID, caller: Caller) -> bool:
        """After a one-statement join that let nothing through: raises the refusal the room
        gives this caller now, in the order of docs/api.md; True when the lobby has to answer
        (the full way), False when nothing refuses the join any more."""
        async with self._join_slots:
            state = await repo.join_state(self.engine, room_id, caller.participant_id)
        if state is None:
            raise room_not_found(room_id)
        if state.status == "ended":
            raise room_ended(room_id)
        if state.banned:
            raise banned()
        if state.active:
            return False
        if state.locked and not state.was_host:
            raise room_locked()
        if state.lobby and not state.was_host:
            return True
        if state.active_count >= state.max_participants:
            raise room_full(room_id, state.active_count)
        return False

    async def _join(self, room_id: UUID, display_name: str, caller: Caller) -> JoinResult:
        """The full join, every case of docs/api.md in its order. rooms_join_gate (migration
        0005) follows the same rules for the two cases it completes itself (an active member,
        a new membership); a change to one is a change to the other."""
        now = utcnow()
        waiting: LobbyRequest | None = None
        created = False
        async with self.sessions() as session, session.begin():
            # The room row lock serialises joins of one room: the capacity check and the insert
            # below see every committed join before them.
            room = await repo.get_room(session, room_id, lock=True)
            if room is None:
                raise room_not_found(room_id)
            if room.status == "ended":
                raise room_ended(room_id)
            history = await repo.history_of(session, room_id, caller.participant_id)
            if any(m.leave_reason == "kicked" for m in history):
                raise banned()
            active = next((m for m in history if m.left_at is None), None)
            if active is not None:
                if active.display_name != display_name:
                    active.display_name = display_name
                    await session.flush()
                member = active
            else:
                was_host = any(m.role == "host" for m in history)
                if room.locked and not was_host:
                    raise room_locked()
                if room.lobby and not was_host:
                    waiting = await self._knock(session, room, display_name, caller, now)
                if waiting is None:
                    count = await repo.active_count(session, room_id)
                    if count >= room.max_participants:
                        raise room_full(room_id, count)
                    member = Membership(
                        id=uuid4(),
                        room_id=room_id,
                        participant_id=caller.participant_id,
                        display_name=display_name,
                        role="host" if was_host else "participant",
                        joined_at=now,
                        client_ip=caller.client_ip,
                        user_agent=caller.user_agent,
                    )
                    session.add(member)
                    room.expires_at = None
                    room.updated_at = now
                    await session.flush()
                    self._emit_member(session, "participant.joined", room_id, member, now)
                    created = True
        if waiting is not None:
            self.on_events()
            return JoinResult(None, False, waiting)
        if created:
            self.on_events()
        view = public_view(member)
        await self._after_commit(room_id, lambda: self.cache.joined(room_id, caller.participant_id, view))
        return JoinResult(member, created)

    async def _knock(
        self, session: AsyncSession, room: Room, display_name: str, caller: Caller, now: datetime
    ) -> LobbyRequest | None:
        """A join of a lobby room by someone who is not a host: None when a host admitted this
        identity (the join goes on), else the waiting request (an earlier one still waiting, or
        a new one, announced to the hosts); 403 lobby_denied once a host denied it. Caller
        holds the room row lock."""
        requests = await repo.lobby_requests_of(session, room.id, caller.participant_id)
        if any(r.admitted for r in requests):
            return None
        latest = requests[0] if requests else None
        if latest is not None and latest.admitted is False:
            raise LobbyDenied("A host denied you entry to this room")
        if latest is not None and latest.resolved_at is None:
            if latest.requested_at > now - LOBBY_REQUEST_TTL:
                if latest.display_name != display_name:
                    latest.display_name = display_name
                    await session.flush()
                return latest
            # Nobody answered in time: it expires, and this knock makes a new one.
            latest.resolved_at = now
            await session.flush()
            self._emit(
                session,
                RoomEvent(
                    type="lobby.resolved",
                    room_id=room.id,
                    request_id=latest.id,
                    admitted=False,
                    occurred_at=now,
                ),
            )
        request = LobbyRequest(
            id=uuid4(),
            room_id=room.id,
            participant_id=caller.participant_id,
            display_name=display_name,
            requested_at=now,
        )
        session.add(request)
        await session.flush()
        self._emit(
            session,
            RoomEvent(type="lobby.requested", room_id=room.id, request=lobby_view(request), occurred_at=now),
        )
        return request

    async def _closed_committed(self, room_id: UUID) -> None:
        """After a committed change that closed memberships: the cached room view is dropped
        again (a reader between the drop inside the transaction and the commit may have
        cached the state from before), and the outbox relay is woken for the events."""
        await self.cache.invalidate_room(room_id)
        self.on_events()

    async def leave(self, room_id: UUID, participant_id: str) -> None:
        async with self.sessions() as session, session.begin():
            room = await repo.get_room(session, room_id, lock=True)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            history = await repo.history_of(session, room_id, participant_id)
            if not history:
                raise ParticipantNotFound("You never joined this room")
            active = next((m for m in history if m.left_at is None), None)
            if active is None:
                return
            heir = await self._close(session, room, active, "left")
            await self._in_lock(self.cache.drop_members(room_id, [participant_id], room.status))
            await self._put_in_lock(room, heir)
        await self._closed_committed(room_id)

    async def _close(
        self, session: AsyncSession, room: Room, member: Membership, reason: LeaveReason
    ) -> Membership | None:
        """Marks one membership left, emits the event, and starts the room's expiry when it
        was the last one; when it was the last active host while others remain, hands the
        room over (see _hand_over) and returns the new host. Caller holds the room row lock."""
        now = utcnow()
        member.left_at = now
        member.leave_reason = reason
        room.updated_at = now
        await session.flush()
        self._emit_member(session, "participant.left", room.id, member, now, reason=reason)
        remaining = await repo.active_memberships(session, room.id)
        if not remaining:
            room.expires_at = now + timedelta(seconds=self.settings.room_empty_ttl_seconds)
            await session.flush()
            return None
        if member.role != "host" or any(m.role == "host" for m in remaining):
            return None
        return await self._hand_over(session, room, remaining[0], now)

    async def _hand_over(
        self, session: AsyncSession, room: Room, heir: Membership, now: datetime
    ) -> Membership:
        """The room lost its last active host: `heir` (the active member who joined first, by
        joined_at then id) becomes host in the same transaction. Caller holds the room lock."""
        heir.role = "host"
        await session.flush()
        self._emit_member(session, "participant.updated", room.id, heir, now, change="host_changed")
        return heir

    async def _put_in_lock(self, room: Room, member: Membership | None) -> None:
        """Writes a changed active member (a new role) to the hash while the room row is
        locked, a failed write fails the change (nothing committed) and the hash never keeps a
        role that was taken away."""
        if member is not None:
            await self._in_lock(
                self.cache.put_member(room.id, member.participant_id, public_view(member), room.status)
            )

    # --- host powers ---------------------------------------------------------------------

    async def _require_host(
        self, session: AsyncSession, room: Room, participant_id: str | None
    ) -> Membership:
        if participant_id is None:
            raise NotAParticipant("X-Participant-ID is required")
        member = await repo.active_membership(session, room.id, participant_id)
        if member is None:
            raise NotAParticipant("You are not in this room")
        if member.role != "host":
            raise NotHost("Only the host may do this")
        return member

    async def end(self, room_id: UUID, participant_id: str | None) -> RoomView:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await repo.get_room(session, room_id, lock=True)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            if room.status == "ended":
                history = await repo.history_of(session, room_id, participant_id or "")
                if any(m.role == "host" for m in history):
                    return room_view(room, 0)
                raise RoomEnded(f"Room {room_id} has ended")
            await self._require_host(session, room, participant_id)
            closed = await self._end_locked(session, room, now)
            view = room_view(room, 0)
            await self._in_lock(self.cache.drop_members(room_id, [m.participant_id for m in closed], "ended"))
        await self._closed_committed(room_id)
        return view

    async def _end_locked(self, session: AsyncSession, room: Room, now) -> list[Membership]:  # type: ignore[no-untyped-def]
        closed = await repo.close_memberships(session, room.id, now, "room_ended")
        for member in closed:
            self._emit_member(session, "participant.left", room.id, member, now, reason="room_ended")
        room.status = "ended"
        room.ended_at = now
        room.updated_at = now
        room.expires_at = None
        await session.flush()
        self._emit(session, RoomEvent(type="room.ended", room_id=room.id, occurred_at=now))
        return closed

    async def kick(self, room_id: UUID, participant_id: str | None, target_id: UUID) -> None:
        async with self.sessions() as session, session.begin():
            room = await repo.get_room(session, room_id, lock=True)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            if room.status == "ended":
                raise RoomEnded(f"Room {room_id} has ended")
            host = await self._require_host(session, room, participant_id)
            target = await repo.membership_by_public_id(session, room_id, target_id)
            if target is None or target.left_at is not None:
                raise ParticipantNotFound(f"No active participant {target_id} in this room")
            if target.id == host.id:
                raise ValidationFailed(
                    [{"field": "participant_public_id", "message": "the host cannot kick itself"}]
                )
            heir = await self._close(session, room, target, "kicked")
            await self._in_lock(self.cache.drop_members(room_id, [target.participant_id], room.status))
            await self._put_in_lock(room, heir)
        await self._closed_committed(room_id)

    # --- room controls -------------------------------------------------------------------

    async def _locked_active_room(self, session: AsyncSession, room_id: UUID) -> Room:
        room = await repo.get_room(session, room_id, lock=True)
        if room is None:
            raise RoomNotFound(f"Room {room_id} does not exist")
        if room.status == "ended":
            raise RoomEnded(f"Room {room_id} has ended")
        return room

    async def update(self, room_id: UUID, participant_id: str | None, body: UpdateRoom) -> RoomView:
        """PATCH: a host changes any of title, description, max_participants, locked, lobby;
        a room.updated event carries the Room after the change."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await self._locked_active_room(session, room_id)
            await self._require_host(session, room, participant_id)
            count = await repo.active_count(session, room_id)
            given = body.model_fields_set
            if body.max_participants is not None and body.max_participants < count:
                raise ValidationFailed(
                    [
                        {
                            "field": "max_participants",
                            "message": f"the room has {count} active participants already",
                        }
                    ]
                )
            if body.title is not None:
                room.title = body.title
            if "description" in given:
                room.description = body.description
            if body.max_participants is not None:
                room.max_participants = body.max_participants
            if body.locked is not None:
                room.locked = body.locked
            if body.lobby is not None:
                room.lobby = body.lobby
            room.updated_at = now
            await session.flush()
            view = room_view(room, count)
            self._emit(
                session,
                RoomEvent(
                    type="room.updated", room_id=room_id, room=view.model_dump(mode="json"), occurred_at=now
                ),
            )
        await self._closed_committed(room_id)
        return view

    async def set_role(
        self, room_id: UUID, participant_id: str | None, target_id: UUID, role: str
    ) -> PublicParticipant:
        """promote (role host) or demote (role participant) an active member; 409 last_host
        when demoting the only active host. The hash's role changes while the room row is
        locked: media-token reads the role from it."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await self._locked_active_room(session, room_id)
            await self._require_host(session, room, participant_id)
            target = await repo.membership_by_public_id(session, room_id, target_id)
            if target is None or target.left_at is not None:
                raise ParticipantNotFound(f"No active participant {target_id} in this room")
            if target.role == role:
                return public_view(target)
            if role == "participant":
                hosts = [m for m in await repo.active_memberships(session, room_id) if m.role == "host"]
                if len(hosts) <= 1:
                    raise LastHost("The only host of the room cannot be demoted")
            target.role = role
            room.updated_at = now
            await session.flush()
            change: UpdateKind = "promoted" if role == "host" else "demoted"
            view = public_view(target)
            self._emit(
                session,
                RoomEvent(
                    type="participant.updated",
                    room_id=room_id,
                    participant=view,
                    change=change,
                    occurred_at=now,
                ),
            )
            await self._put_in_lock(room, target)
        await self._closed_committed(room_id)
        return view

    async def raise_hand(self, room_id: UUID, participant_id: str | None, raised: bool) -> PublicParticipant:
        """The caller raises (hand_raised_at = now, kept when already raised) or lowers its hand."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            await self._locked_active_room(session, room_id)
            member = (
                await repo.active_membership(session, room_id, participant_id) if participant_id else None
            )
            if member is None:
                raise NotAParticipant("You are not in this room")
            changed = (member.hand_raised_at is None) == raised
            if changed:
                member.hand_raised_at = now if raised else None
                await session.flush()
                self._emit_member(session, "participant.updated", room_id, member, now, change="hand")
            view = public_view(member)
        if changed:
            self.on_events()
            await self._after_commit(
                room_id, lambda: self.cache.put_member(room_id, member.participant_id, view)
            )
        return view

    # --- the lobby -----------------------------------------------------------------------

    async def lobby(self, room_id: UUID, participant_id: str | None) -> list[LobbyRequestView]:
        """The waiting requests (not expired), oldest first; hosts only."""
        async with self.sessions() as session:
            room = await repo.get_room(session, room_id)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            await self._require_host(session, room, participant_id)
            waiting = await repo.waiting_requests(session, room_id, utcnow() - LOBBY_REQUEST_TTL)
        return [lobby_view(r) for r in waiting]

    async def resolve(self, room_id: UUID, participant_id: str | None, request_id: UUID, admit: bool) -> None:
        """A host admits or denies a waiting request. The room row lock serialises answers
        (and joins): two hosts admitting one request admit it once (the second answer finds it
        admitted and changes nothing). An admission reserves a seat: it is refused (409
        room_full) when the active members and the admitted identities that have not joined
        yet fill the room. Answering a request again the same way is a no-op; the other way,
        409 already_resolved."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await self._locked_active_room(session, room_id)
            await self._require_host(session, room, participant_id)
            request = await repo.lobby_request(session, room_id, request_id)
            if request is None:
                raise LobbyRequestNotFound(f"No lobby request {request_id} in this room")
            if request.resolved_at is not None:
                if request.admitted is admit:
                    return
                if request.admitted is None:  # expired
                    raise LobbyRequestNotFound(f"Lobby request {request_id} expired")
                raise AlreadyResolved("The request was answered the other way already")
            if request.requested_at <= now - LOBBY_REQUEST_TTL:
                raise LobbyRequestNotFound(f"Lobby request {request_id} expired")
            if admit:
                taken = await repo.active_count(session, room_id) + await repo.pending_admissions(
                    session, room_id, now - LOBBY_REQUEST_TTL
                )
                if taken >= room.max_participants:
                    raise RoomFull(f"Room {room_id} has no free seat ({taken} taken or promised)")
            request.resolved_at = now
            request.admitted = admit
            await session.flush()
            self._emit(
                session,
                RoomEvent(
                    type="lobby.resolved",
                    room_id=room_id,
                    request_id=request.id,
                    admitted=admit,
                    occurred_at=now,
                ),
            )
        self.on_events()

    # --- lookups for chat, media-token and the janitor -----------------------------------

    async def membership(
        self, room_id: UUID, participant_id: str | None
    ) -> tuple[RoomView, PublicParticipant | None]:
        """The room and the caller's active membership, rebuilding the Redis hash from
        PostgreSQL on the way (it is only asked for when the hash is missing)."""
        async with self.sessions() as session:
            room = await repo.get_room(session, room_id)
            if room is None:
                raise RoomNotFound(f"Room {room_id} does not exist")
            members = await repo.active_memberships(session, room_id)
        await self.cache.rebuild(
            room_id, room.status, [(m.participant_id, public_view(m)) for m in members], room.e2ee
        )
        mine = next((m for m in members if m.participant_id == participant_id), None)
        return room_view(room, len(members)), public_view(mine) if mine else None

    async def seen(self, room_id: UUID, participant_id: str) -> None:
        """Records a sign of life of the caller, when it is a member of the room."""
        _, raw = await self.cache.member(room_id, participant_id)
        if raw:
            await self.cache.touch(room_id, parse_member(raw).id)
            await self.cache.refresh(room_id)

    # --- asked by the janitor; each re-checks under the room lock, so repeats are no-ops ---

    async def expire(self, room_id: UUID) -> bool:
        """Ends the room when it is still active, empty and past its expires_at."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await repo.get_room(session, room_id, lock=True)
            if room is None or room.status != "active" or room.expires_at is None:
                return False
            if room.expires_at > now or await repo.active_count(session, room_id) > 0:
                return False
            await self._end_locked(session, room, now)
            await self._in_lock(self.cache.drop_members(room_id, [], "ended"))
        await self._closed_committed(room_id)
        return True

    async def time_out(self, room_id: UUID, public_id: UUID, idle_since_ms: int) -> bool:
        """Marks a member left with reason `timeout` when it still shows no sign of life:
        no LiveKit connection and no request or socket heartbeat since idle_since_ms. A caller
        cannot make it earlier than PRESENCE_TIMEOUT_SECONDS ago: no fresher member is timed out."""
        latest = int((utcnow().timestamp() - self.settings.presence_timeout_seconds) * 1000)
        idle_since_ms = min(idle_since_ms, latest)
        async with self.sessions() as session, session.begin():
            room = await repo.get_room(session, room_id, lock=True)
            if room is None or room.status != "active":
                return False
            member = await repo.membership_by_public_id(session, room_id, public_id)
            if member is None or member.left_at is not None or member.livekit_sid:
                return False
            if member.joined_at.timestamp() * 1000 >= idle_since_ms:
                return False
            last_seen = await self.cache.last_seen(room_id, public_id)
            if last_seen is None:
                # No sign recorded at all: Redis lost it, which says nothing about the member.
                # Seen now, so a member who really vanished times out one timeout later.
                await self.cache.seed_presence([(room_id, public_id)])
                return False
            if last_seen >= idle_since_ms:
                return False
            heir = await self._close(session, room, member, "timeout")
            await self._in_lock(self.cache.drop_members(room_id, [member.participant_id], "active"))
            await self._put_in_lock(room, heir)
        await self._closed_committed(room_id)
        return True

    async def delete_ended_before(self, cutoff: datetime) -> int:
        """Deletes rooms ended before cutoff, with their memberships (stored IP addresses and
        user agents must not outlive their purpose). Never younger than ROOM_RETENTION_DAYS,
        whatever the cutoff asked for."""
        cutoff = min(cutoff, utcnow() - timedelta(days=self.settings.room_retention_days))
        async with self.sessions() as session, session.begin():
            deleted = await repo.delete_rooms_ended_before(session, cutoff)
        return deleted or 0

    async def due_rooms(self, limit: int) -> list[UUID]:
        """The rooms `expire` would end now (a candidate list: expire re-checks each)."""
        async with self.sessions() as session:
            return await repo.due_rooms(session, utcnow(), limit)

    async def unconnected_members(
        self, joined_before: datetime, after: tuple[datetime, UUID], limit: int
    ) -> list[Membership]:
        """Candidates for `time_out`: active members with no LiveKit connection who joined
        before joined_before, a page after `after` in (joined_at, id) order."""
        async with self.sessions() as session:
            return await repo.unconnected_members(session, joined_before, after, limit)

    # --- LiveKit webhooks ----------------------------------------------------------------

    async def livekit_joined(self, public_id: UUID, livekit_room: str, sid: str) -> bool:
        """Records the LiveKit connection of a member; False when the identity is no active
        member of the room whose LiveKit room this is (left, kicked, ended room, another
        room): the caller then removes it from LiveKit."""
        async with self.sessions() as session, session.begin():
            member = await repo.set_livekit_sid(session, public_id, livekit_room, sid)
        if member is None:
            return False
        await self.cache.put_member(member.room_id, member.participant_id, public_view(member))
        await self.cache.touch(member.room_id, member.id)
        return True

    async def livekit_left(
        self, public_id: UUID, livekit_room: str, sid: str, *, left_the_call: bool
    ) -> None:
        """A LiveKit connection closed. Applied only to the connection recorded for that
        membership in that LiveKit room (an older connection of the same member closing, a
        member who never connected, or another room's event changes nothing). A member who
        left the call leaves the room; a connection the platform lost (LiveKit shutting down,
        network timeout) only clears livekit_sid, so presence decides, as for anyone else."""
        if not sid:
            return
        async with self.sessions() as session, session.begin():
            probe = await session.get(Membership, public_id)
            if probe is None or probe.left_at is not None or probe.livekit_sid != sid:
                return
            room = await repo.get_room(session, probe.room_id, lock=True)
            member = await session.get(Membership, public_id, with_for_update=True, populate_existing=True)
            if room is None or member is None or member.left_at is not None:
                return
            if room.livekit_room_name != livekit_room or member.livekit_sid != sid:
                return
            if not left_the_call:
                member.livekit_sid = None
                await self.cache.touch(room.id, member.id)
                view = public_view(member)
            else:
                heir = await self._close(session, room, member, "left")
                await self._in_lock(self.cache.drop_members(room.id, [member.participant_id], room.status))
                await self._put_in_lock(room, heir)
        if left_the_call:
            await self._closed_committed(room.id)
        else:
            await self.cache.put_member(room.id, member.participant_id, view)

    async def livekit_room_finished(self, room_name: str) -> None:
        async with self.sessions() as session, session.begin():
            room = await repo.room_by_livekit_name(session, room_name)
            if room is not None:
                room.livekit_finished_at = utcnow()
