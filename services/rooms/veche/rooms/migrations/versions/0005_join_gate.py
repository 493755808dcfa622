"""a join in one statement: the room's checks under its row lock, in the database

Revision ID: 0005
Revises: 0004

`rooms_join_gate` is the checking half of a join (RoomsService.join, repository.JOIN). It runs
inside the one statement that also writes the membership, so a join is one round trip and one
implicit transaction, and the room's row lock is held only while PostgreSQL itself works and
commits. A PL/pgSQL function, not a plain CTE, because of snapshots: in READ COMMITTED a single
statement reads every table as of its start, before it waited for the row lock, so a CTE would
count the members without the joins committed while it waited. A VOLATILE function takes a
fresh snapshot for each query it runs, after the lock, exactly like the statements of a
transaction.

The gate answers one row (the role of the membership to write) when the join goes straight in:
the caller is an active member already (the statement then only updates the display name) or
a new membership may start (the gate has then cleared `expires_at`, set `updated_at` and added
`participant.joined` to the outbox). It answers no row, and changes nothing, in every other
case (unknown or ended room, a ban, a locked room, the lobby, a full room): the service then
runs the full join in Python, which answers the error or knocks on the lobby.

The outbox trigger of 0002 keeps sending NOTIFY, unless the transaction set
`veche.outbox_notify` to `off`: a join on the replica whose relay leads wakes it in-process, and
NOTIFY would only add the commit-time lock PostgreSQL takes for every notifying transaction
(their commits, WAL flush included, queue behind one another)."""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION rooms_join_gate(
            p_room uuid,
            p_participant text,
            p_at timestamptz,
            p_event uuid,
            p_subject text,
            p_payload jsonb,
            p_trace jsonb,
            p_notify boolean
        ) RETURNS TABLE (member_role text)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_status text;
            v_locked boolean;
            v_lobby boolean;
            v_max integer;
            v_banned boolean;
            v_active boolean;
            v_was_host boolean;
            v_count integer;
        BEGIN
            -- Serialises the joins (and every other change) of the room.
            SELECT r.status, r.locked, r.lobby, r.max_participants
              INTO v_status, v_locked, v_lobby, v_max
              FROM rooms r WHERE r.id = p_room FOR UPDATE;
            IF NOT FOUND OR v_status <> 'active' THEN
                RETURN;
            END IF;
            SELECT coalesce(bool_or(m.leave_reason = 'kicked'), false),
                   coalesce(bool_or(m.left_at IS NULL), false),
                   coalesce(bool_or(m.role = 'host'), false)
              INTO v_banned, v_active, v_was_host
              FROM room_participants m
             WHERE m.room_id = p_room AND m.participant_id = p_participant;
            IF v_banned THEN
                RETURN;
            END IF;
            IF v_active THEN
                -- The statement's ON CONFLICT finds the active membership and keeps its role.
                member_role := 'participant';
                RETURN NEXT;
                RETURN;
            END IF;
            IF (v_locked OR v_lobby) AND NOT v_was_host THEN
                RETURN;
            END IF;
            SELECT count(*) INTO v_count
              FROM room_participants m WHERE m.room_id = p_room AND m.left_at IS NULL;
            IF v_count >= v_max THEN
                RETURN;
            END IF;
            member_role := CASE WHEN v_was_host THEN 'host' ELSE 'participant' END;
            UPDATE rooms SET expires_at = NULL, updated_at = p_at WHERE id = p_room;
            IF NOT p_notify THEN
                PERFORM set_config('veche.outbox_notify', 'off', true);
            END IF;
            INSERT INTO outbox (event_id, subject, payload, trace_context)
            VALUES (
                p_event,
                p_subject,
                jsonb_set(p_payload, '{participant,role}', to_jsonb(member_role)),
                p_trace
            );
            RETURN NEXT;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('veche.outbox_notify', true) IS DISTINCT FROM 'off' THEN
                PERFORM pg_notify('veche_outbox', '');
            END IF;
            RETURN NULL;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('veche_outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("DROP FUNCTION rooms_join_gate(uuid, text, timestamptz, uuid, text, jsonb, jsonb, boolean)")
