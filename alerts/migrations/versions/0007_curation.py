"""curation: who wrote and approved an alert, scheduling, reasons, the advisories an alert
was written from, and staff decisions about queued advisories

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 22:15:00
"""

import sqlalchemy as sa
from alembic import op

import alerts.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STAFF_COLUMNS = ("created_by_id", "last_editor_id", "approved_by_id")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, alerts.models.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        for column in STAFF_COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                f"fk_alerts_{column}", "staff_users", [column], ["id"], ondelete="SET NULL"
            )
        batch_op.add_column(_at("submitted_at"))
        batch_op.add_column(_at("scheduled_for"))
        batch_op.add_column(sa.Column("closing_reason", sa.String(length=500), nullable=True))
    op.create_table(
        "alert_advisories",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("advisory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["advisory_id"], ["advisories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id", "advisory_id"),
    )
    with op.batch_alter_table("alert_advisories", schema=None) as batch_op:
        batch_op.create_index("ix_alert_advisories_advisory_id", ["advisory_id"], unique=False)
    op.create_table(
        "queue_decisions",
        sa.Column("advisory_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        _at("decided_at", nullable=False),
        sa.ForeignKeyConstraint(["advisory_id"], ["advisories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff_users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("advisory_id"),
    )


def downgrade() -> None:
    op.drop_table("queue_decisions")
    op.drop_table("alert_advisories")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        for name in ("closing_reason", "scheduled_for", "submitted_at"):
            batch_op.drop_column(name)
        for column in STAFF_COLUMNS:
            batch_op.drop_constraint(f"fk_alerts_{column}", type_="foreignkey")
            batch_op.drop_column(column)
