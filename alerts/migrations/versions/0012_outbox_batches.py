"""outbox_batches: an alert's emails queued as one row per provider request;
alerts.fan_out_started_at: a fan-out in progress

At a million recipients, three row writes per message (claim, hand-off, acceptance) were
most of the fan-out's time; a batch is claimed, handed off and accepted once per thousand.
A message gets an outbox row of its own only when a receipt, a failure or an unknown
outcome gives it something to say (outbox.batch_id then names its batch).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 05:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from alerts.models import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DUE = sa.text("status = 'created'")
OPEN = sa.text("status IN ('created', 'sending')")


def upgrade() -> None:
    op.create_table(
        "outbox_batches",
        sa.Column("id", ID, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("subscriber_ids", JSON, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=60), nullable=True),
        sa.Column("claimed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("handed_off_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("final", sa.String(length=20), nullable=True),
        sa.Column("provider_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_outbox_batches_due",
        "outbox_batches",
        ["priority", "id"],
        sqlite_where=DUE,
        postgresql_where=DUE,
    )
    op.create_index(
        "ix_outbox_batches_open",
        "outbox_batches",
        ["claimed_at"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_outbox_batches_alert", "outbox_batches", ["alert_id", "channel"])
    # A plain ADD COLUMN with its reference, not a batch-mode table copy (which would have to
    # carry the outbox's partial indexes over); alembic does not write that one for SQLite.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE outbox ADD COLUMN batch_id INTEGER "
            "REFERENCES outbox_batches (id) ON DELETE SET NULL"
        )
    else:
        op.add_column(
            "outbox",
            sa.Column(
                "batch_id",
                ID,
                sa.ForeignKey("outbox_batches.id", ondelete="SET NULL"),
                nullable=True,
            ),
        )
    op.create_index("ix_outbox_batch_id", "outbox", ["batch_id"])
    op.add_column(
        "alerts", sa.Column("fan_out_started_at", UtcDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("fan_out_started_at")
    op.drop_index("ix_outbox_batch_id", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("batch_id")
    op.drop_index("ix_outbox_batches_alert", table_name="outbox_batches")
    op.drop_index("ix_outbox_batches_open", table_name="outbox_batches")
    op.drop_index("ix_outbox_batches_due", table_name="outbox_batches")
    op.drop_table("outbox_batches")
