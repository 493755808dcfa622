"""the outbox keeps the trace context of the request that wrote each event

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # The W3C headers (traceparent, tracestate) of the span that wrote the row, NULL while
    # tracing is off; the relay sends them with the NATS message. A nullable column without a
    # default: PostgreSQL adds it without rewriting the table, and older code never names it.
    op.execute("ALTER TABLE outbox ADD COLUMN trace_context JSONB")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox DROP COLUMN trace_context")
