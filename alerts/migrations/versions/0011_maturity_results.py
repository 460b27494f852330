"""maturity_results: stored maturity-scan results (a subscriber's history, and anonymous
rows for the statistics)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 03:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from alerts.models import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "maturity_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("answers", JSON, nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("levels", JSON, nullable=False),
        sa.Column("percents", JSON, nullable=False),
        sa.Column("sector", sa.String(length=40), nullable=True),
        sa.Column("size_band", sa.String(length=10), nullable=True),
        sa.Column("region", sa.String(length=8), nullable=True),
        sa.Column("share_stats", sa.Boolean(), nullable=False),
        sa.Column("staff_may_view", sa.Boolean(), nullable=False),
        sa.Column("families_applied", sa.Boolean(), nullable=False),
        sa.Column("taken_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_maturity_results_subscriber", "maturity_results", ["subscriber_id", "taken_at"]
    )
    op.create_index("ix_maturity_results_stats", "maturity_results", ["version", "share_stats"])


def downgrade() -> None:
    op.drop_index("ix_maturity_results_stats", table_name="maturity_results")
    op.drop_index("ix_maturity_results_subscriber", table_name="maturity_results")
    op.drop_table("maturity_results")
