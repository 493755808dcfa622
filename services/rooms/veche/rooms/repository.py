"""All SQL of the rooms context. Functions flush; the use case owns the transaction."""

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from veche.common import tracing
from veche.common.events import RoomEvent, event_subject
from veche.rooms.models import LobbyRequest, Membership, OutboxEvent, Room


async def get_room(session: AsyncSession, room_id: UUID, *, lock: bool = False) -> Room | None:
    query = select(Room).where(Room.id == room_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def active_count(session: AsyncSession, room_id: UUID) -> int:
    query = select(func.count()).where(Membership.room_id == room_id, Membership.left_at.is_(None))
    return int((await session.execute(query)).scalar_one())


async def active_memberships(session: AsyncSession, room_id: UUID) -> list[Membership]:
    query = (
        select(Membership)
        .where(Membership.room_id == room_id, Membership.left_at.is_(None))
        .order_by(Membership.joined_at, Membership.id)
    )
    return list((await session.execute(query)).scalars())


async def active_membership(
    session: AsyncSession, room_id: UUID, participant_id: str, *, lock: bool = False
) -> Membership | None:
    query = select(Membership).where(
        Membership.room_id == room_id,
        Membership.participant_id == participant_id,
        Membership.left_at.is_(None),
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def membership_by_public_id(session: AsyncSession, room_id: UUID, public_id: UUID) -> Membership | None:
    query = select(Membership).where(Membership.room_id == room_id, Membership.id == public_id)
    return (await session.execute(query)).scalar_one_or_none()


async def history_of(session: AsyncSession, room_id: UUID, participant_id: str) -> list[Membership]:
    """Every membership this participant ever had in the room, newest first."""
    query = (
        select(Membership)
        .where(Membership.room_id == room_id, Membership.participant_id == participant_id)
        .order_by(Membership.joined_at.desc())
    )
    return list((await session.execute(query)).scalars())


async def lobby_requests_of(session: AsyncSession, room_id: UUID, participant_id: str) -> list[LobbyRequest]:
    """Every lobby request of this identity in the room, newest first."""
    query = (
        select(LobbyRequest)
        .where(LobbyRequest.room_id == room_id, LobbyRequest.participant_id == participant_id)
        .order_by(LobbyRequest.requested_at.desc(), LobbyRequest.id.desc())
    )
    return list((await session.execute(query)).scalars())


async def lobby_request(session: AsyncSession, room_id: UUID, request_id: UUID) -> LobbyRequest | None:
    query = select(LobbyRequest).where(LobbyRequest.room_id == room_id, LobbyRequest.id == request_id)
    return (await session.execute(query)).scalar_one_or_none()


async def waiting_requests(session: AsyncSession, room_id: UUID, since: datetime) -> list[LobbyRequest]:
    """The room's unanswered requests made after `since` (older ones expired), oldest first."""
    query = (
        select(LobbyRequest)
        .where(
            LobbyRequest.room_id == room_id,
            LobbyRequest.resolved_at.is_(None),
            LobbyRequest.requested_at > since,
        )
        .order_by(LobbyRequest.requested_at, LobbyRequest.id)
    )
    return list((await session.execute(query)).scalars())


async def pending_admissions(session: AsyncSession, room_id: UUID, since: datetime) -> int:
    """Identities admitted after `since` that have not joined since their admission: each
    holds a seat until it joins or the admission is older than `since`."""
    joined = (
        select(Membership.id)
        .where(
            Membership.room_id == LobbyRequest.room_id,
            Membership.participant_id == LobbyRequest.participant_id,
            Membership.joined_at >= LobbyRequest.resolved_at,
        )
        .exists()
    )
    query = select(func.count()).where(
        LobbyRequest.room_id == room_id,
        LobbyRequest.admitted.is_(True),
        LobbyRequest.resolved_at > since,
        ~joined,
    )
    return int((await session.execute(query)).scalar_one())


async def close_memberships(
    session: AsyncSession, room_id: UUID, at: datetime, reason: str
) -> list[Membership]:
    members = await active_memberships(session, room_id)
    for member in members:
        member.left_at = at
        member.leave_reason = reason
    await session.flush()
    return members


async def set_livekit_sid(
    session: AsyncSession, public_id: UUID, livekit_room: str, sid: str
) -> Membership | None:
    """Records the LiveKit connection of an active membership of an active room whose LiveKit
    room is `livekit_room`; None (nothing changed) for anyone else."""
    query = (
        update(Membership)
        .where(
            Membership.id == public_id,
            Membership.left_at.is_(None),
            Membership.room_id == Room.id,
            Room.livekit_room_name == livekit_room,
            Room.status == "active",
        )
        .values(livekit_sid=sid)
        .returning(Membership)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def room_by_livekit_name(session: AsyncSession, name: str) -> Room | None:
    query = select(Room).where(Room.livekit_room_name == name)
    return (await session.execute(query)).scalar_one_or_none()


def add_event(session: AsyncSession, prefix: str, event: RoomEvent) -> None:
    row = OutboxEvent(
        event_id=event.event_id,
        subject=event_subject(prefix, event.room_id, event.type),
        payload=json.loads(event.to_json()),
    )
    # The context of the request writing the event, so the relay's publish joins its trace.
    # NULL while tracing is off.
    trace_context = tracing.current_context()
    if trace_context is not None:
        row.trace_context = trace_context
    session.add(row)


# --- the join in one statement (migration 0005) -------------------------------------------

# One round trip, one implicit transaction (the connection is in autocommit): rooms_join_gate
# locks the room, checks it and, for a new membership, clears the room's expiry and adds
# participant.joined to the outbox; then the membership is inserted, or, for an active member,
# its display name updated (ON CONFLICT on the one-active-membership index). No row: the gate
# let nothing through and nothing changed. The statement is an INSERT, and is timed as one.
JOIN = """\
INSERT INTO room_participants AS p
    (id, room_id, participant_id, display_name, role, joined_at, client_ip, user_agent)
SELECT $1, $2, $3, $4, g.member_role, $5, $6::inet, $7
FROM rooms_join_gate($2, $3, $5, $8, $9, $10::jsonb, $11::jsonb, $12) AS g
ON CONFLICT (room_id, participant_id) WHERE left_at IS NULL
DO UPDATE SET display_name = EXCLUDED.display_name
RETURNING p.id, p.display_name, p.role, p.joined_at, p.livekit_sid, p.hand_raised_at"""


@dataclass(frozen=True)
class JoinRow:
    """The membership a one-statement join wrote: the new one, or the active one it found."""

    id: UUID
    display_name: str
    role: str
    joined_at: datetime
    livekit_sid: str | None
    hand_raised_at: datetime | None


async def join(
    engine: AsyncEngine,
    *,
    room_id: UUID,
    participant_id: str,
    member_id: UUID,
    display_name: str,
    at: datetime,
    client_ip: str | None,
    user_agent: str | None,
    prefix: str,
    event: RoomEvent,
    notify: bool,
) -> JoinRow | None:
    """A join in one statement (JOIN); None when it has to go the long way (see
    RoomsService.join). `event` is the participant.joined of the new membership, its role
    filled in by the gate; `notify` False leaves the relay's NOTIFY out (this process's relay
    leads and is woken in-process)."""
    trace_context = tracing.current_context()
    params = (
        member_id,
        room_id,
        participant_id,
        display_name,
        at,
        client_ip,
        user_agent,
        event.event_id,
        event_subject(prefix, room_id, event.type),
        event.to_json().decode(),
        json.dumps(trace_context) if trace_context is not None else None,
        notify,
    )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        row = (await conn.exec_driver_sql(JOIN, params)).first()
    if row is None:
        return None
    return JoinRow(row.id, row.display_name, row.role, row.joined_at, row.livekit_sid, row.hand_raised_at)


# Why the one-statement join let nothing through, read in one statement (one snapshot: the state
# of one instant, so the answer is the one a join at that instant gets). No row: no such room.
JOIN_REFUSAL = """\
SELECT r.status, r.locked, r.lobby, r.max_participants,
       coalesce(h.banned, false) AS banned,
       coalesce(h.active, false) AS active,
       coalesce(h.was_host, false) AS was_host,
       (SELECT count(*) FROM room_participants m WHERE m.room_id = r.id AND m.left_at IS NULL) AS active_count
FROM rooms r
LEFT JOIN LATERAL (
    SELECT bool_or(m.leave_reason = 'kicked') AS banned,
           bool_or(m.left_at IS NULL) AS active,
           bool_or(m.role = 'host') AS was_host
    FROM room_participants m
    WHERE m.room_id = r.id AND m.participant_id = $2
) AS h ON true
WHERE r.id = $1"""


@dataclass(frozen=True)
class JoinState:
    """What decides a join, as of one instant: the room and the caller's history in it."""

    status: str
    locked: bool
    lobby: bool
    max_participants: int
    banned: bool
    active: bool
    was_host: bool
    active_count: int


async def join_state(engine: AsyncEngine, room_id: UUID, participant_id: str) -> JoinState | None:
    """JOIN_REFUSAL: None when the room does not exist."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        row = (await conn.exec_driver_sql(JOIN_REFUSAL, (room_id, participant_id))).first()
    if row is None:
        return None
    return JoinState(
        row.status,
        row.locked,
        row.lobby,
        row.max_participants,
        row.banned,
        row.active,
        row.was_host,
        row.active_count,
    )


async def unpublished_events(session: AsyncSession, batch: int) -> list[OutboxEvent]:
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None))
        .order_by(OutboxEvent.seq)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


# --- the janitor's candidates: rooms answers them, so its tables stay its own ----------------


async def due_rooms(session: AsyncSession, now: datetime, limit: int) -> list[UUID]:
    """Active rooms whose empty-room expiry has passed, the longest overdue first."""
    query = (
        select(Room.id)
        .where(Room.status == "active", Room.expires_at <= now)
        .order_by(Room.expires_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def unconnected_members(
    session: AsyncSession, joined_before: datetime, after: tuple[datetime, UUID], limit: int
) -> list[Membership]:
    """A page, in (joined_at, id) order after `after`, of the active members of active rooms
    who joined before `joined_before` and hold no LiveKit connection."""
    query = (
        select(Membership)
        .join(Room, Room.id == Membership.room_id)
        .where(
            Membership.left_at.is_(None),
            Membership.livekit_sid.is_(None),
            Room.status == "active",
            Membership.joined_at < joined_before,
            tuple_(Membership.joined_at, Membership.id) > tuple_(literal(after[0]), literal(after[1])),
        )
        .order_by(Membership.joined_at, Membership.id)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


# Key of the transaction-level advisory lock that lets one retention pass run at a time.
_RETENTION_LOCK = 0x52455445


async def delete_rooms_ended_before(session: AsyncSession, cutoff: datetime) -> int | None:
    """Deletes the rooms ended before cutoff (memberships cascade); None when another
    retention pass holds the lock (it would only wait on the same rows)."""
    if not (await session.execute(select(func.pg_try_advisory_xact_lock(_RETENTION_LOCK)))).scalar_one():
        return None
    query = delete(Room).where(Room.status == "ended", Room.ended_at < cutoff).returning(Room.id)
    return len((await session.execute(query)).scalars().all())
