"""rooms, room_participants and the outbox

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    op.execute(
        """
        CREATE TABLE rooms (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            livekit_room_name VARCHAR(255) UNIQUE NOT NULL,
            title VARCHAR(255) NOT NULL,
            description TEXT,
            status VARCHAR(50) NOT NULL DEFAULT 'active',
            max_participants INTEGER NOT NULL DEFAULT 10,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            expires_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            livekit_finished_at TIMESTAMPTZ,
            CONSTRAINT rooms_status_check CHECK (status IN ('active', 'ended')),
            CONSTRAINT rooms_max_participants_check CHECK (max_participants BETWEEN 2 AND 100)
        )
        """
    )
    op.execute("CREATE INDEX idx_rooms_status ON rooms (status)")
    op.execute("CREATE INDEX idx_rooms_expires_at ON rooms (expires_at) WHERE expires_at IS NOT NULL")
    op.execute("CREATE INDEX idx_rooms_ended_at ON rooms (ended_at) WHERE ended_at IS NOT NULL")
    op.execute(
        """
        CREATE TABLE room_participants (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            room_id UUID NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            participant_id VARCHAR(255) NOT NULL,
            display_name VARCHAR(255) NOT NULL,
            role VARCHAR(50) NOT NULL DEFAULT 'participant',
            livekit_sid VARCHAR(255),
            joined_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            left_at TIMESTAMPTZ,
            leave_reason VARCHAR(32),
            client_ip INET,
            user_agent TEXT,
            CONSTRAINT room_participants_role_check CHECK (role IN ('host', 'participant'))
        )
        """
    )
    op.execute("CREATE INDEX idx_participants_room ON room_participants (room_id)")
    op.execute("CREATE INDEX idx_participants_active ON room_participants (room_id, left_at)")
    op.execute("CREATE INDEX idx_participants_identity ON room_participants (room_id, participant_id)")
    # At most one active membership per participant and room, whatever races happen.
    op.execute(
        "CREATE UNIQUE INDEX uq_participants_one_active ON room_participants (room_id, participant_id)"
        " WHERE left_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE outbox (
            seq BIGSERIAL PRIMARY KEY,
            event_id UUID UNIQUE NOT NULL,
            subject VARCHAR(512) NOT NULL,
            payload JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            published_at TIMESTAMPTZ
        )
        """
    )
    op.execute("CREATE INDEX idx_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE outbox")
    op.execute("DROP TABLE room_participants")
    op.execute("DROP TABLE rooms")
