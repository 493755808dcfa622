"""room controls: locked and lobby rooms, end-to-end encrypted rooms, raised hands, the lobby

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # Columns with a constant default: PostgreSQL adds them without rewriting the table.
    op.execute("ALTER TABLE rooms ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE")
    op.execute("ALTER TABLE rooms ADD COLUMN lobby BOOLEAN NOT NULL DEFAULT FALSE")
    # Set at creation, never changed afterwards.
    op.execute("ALTER TABLE rooms ADD COLUMN e2ee BOOLEAN NOT NULL DEFAULT FALSE")
    op.execute("ALTER TABLE room_participants ADD COLUMN hand_raised_at TIMESTAMPTZ")
    op.execute(
        """
        CREATE TABLE lobby_requests (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            room_id UUID NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            participant_id TEXT NOT NULL,
            display_name VARCHAR(255) NOT NULL,
            requested_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            resolved_at TIMESTAMPTZ,
            admitted BOOLEAN
        )
        """
    )
    # The waiting requests of a room, oldest first (the lobby list, a knock's own request).
    op.execute(
        "CREATE INDEX idx_lobby_waiting ON lobby_requests (room_id, requested_at) WHERE resolved_at IS NULL"
    )
    op.execute("CREATE INDEX idx_lobby_identity ON lobby_requests (room_id, participant_id)")


def downgrade() -> None:
    op.execute("DROP TABLE lobby_requests")
    op.execute("ALTER TABLE room_participants DROP COLUMN hand_raised_at")
    op.execute("ALTER TABLE rooms DROP COLUMN e2ee")
    op.execute("ALTER TABLE rooms DROP COLUMN lobby")
    op.execute("ALTER TABLE rooms DROP COLUMN locked")
