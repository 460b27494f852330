"""outbox: partial indexes for the due queue, the messages in flight, unknown outcomes

The full (status, priority, next_attempt_at) index made every claim and every sweep visit
all rows of a status: at a million accepted messages awaiting receipts, each delivery round
read the whole table (fan-out time grew with the square of the audience).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DUE = sa.text("status IN ('created', 'temporary-failure')")
IN_FLIGHT = sa.text("status = 'sending' AND sent_at IS NULL")
UNSETTLED = sa.text("outcome_unknown = TRUE AND resent_after_unknown = FALSE")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_claim")
        batch_op.create_index(
            "ix_outbox_due", ["priority", "id"], sqlite_where=DUE, postgresql_where=DUE
        )
        batch_op.create_index(
            "ix_outbox_in_flight",
            ["claimed_at"],
            sqlite_where=IN_FLIGHT,
            postgresql_where=IN_FLIGHT,
        )
        batch_op.create_index(
            "ix_outbox_unsettled",
            ["handed_off_at"],
            sqlite_where=UNSETTLED,
            postgresql_where=UNSETTLED,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unsettled")
        batch_op.drop_index("ix_outbox_in_flight")
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index(
            "ix_outbox_claim", ["status", "priority", "next_attempt_at"], unique=False
        )
