"""referral directory: firms, anonymous shown/clicked counts, correction requests

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 22:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import alerts.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, alerts.models.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "firms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enterprise_number", sa.String(length=10), nullable=False),
        sa.Column("website", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("regions", JSON, nullable=False),
        sa.Column("languages", JSON, nullable=False),
        sa.Column("specialities", JSON, nullable=False),
        sa.Column("certifications", JSON, nullable=False),
        sa.Column("kmo_portefeuille", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("vetted_on", sa.Date(), nullable=True),
        sa.Column("vetted_by", sa.String(length=320), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("expiry_warned_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("link_key", sa.String(length=24), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enterprise_number"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("firms", schema=None) as batch_op:
        batch_op.create_index("ix_firms_status_expires", ["status", "expires_on"], unique=False)
    op.create_table(
        "referral_counts",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("shown_first", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("firm_id", "alert_id", "day"),
    )
    op.create_table(
        "firm_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        _at("created_at"),
        sa.Column("reviewed_by", sa.String(length=320), nullable=True),
        _at("reviewed_at", nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("firm_corrections", schema=None) as batch_op:
        batch_op.create_index("ix_firm_corrections_firm_id", ["firm_id"], unique=False)


def downgrade() -> None:
    op.drop_table("firm_corrections")
    op.drop_table("referral_counts")
    op.drop_table("firms")
