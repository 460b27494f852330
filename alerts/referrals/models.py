"""Tables of the referral directory: firms, the anonymous counts of where they were shown
and clicked, and the corrections firms ask for."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

import alerts.curation.models  # noqa: F401  (the alerts table the counts name)
from alerts.models import Base, JsonType, UtcDateTime

PENDING, VETTED, SUSPENDED, EXPIRED = "pending", "vetted", "suspended", "expired"
STATUSES = (PENDING, VETTED, SUSPENDED, EXPIRED)
SPECIALITIES = (
    "incident-response",
    "ransomware-recovery",
    "security-audit",  # includes the maturity scan
    "awareness-training",
    "managed-security",
    "web-cms-security",
    "network-firewall",
    "backup-recovery",
)


class Firm(Base):
    __tablename__ = "firms"
    __table_args__ = (
        Index("ix_firms_status_expires", "status", "expires_on"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    enterprise_number: Mapped[str] = mapped_column(String(10), unique=True)  # KBO/BCE digits
    website: Mapped[str] = mapped_column(String(300))  # https only; the only redirect target
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    regions: Mapped[list[str]] = mapped_column(JsonType, default=list)  # ISO 3166-2:BE codes
    languages: Mapped[list[str]] = mapped_column(JsonType, default=list)
    specialities: Mapped[list[str]] = mapped_column(JsonType, default=list)
    certifications: Mapped[list[str]] = mapped_column(JsonType, default=list)
    kmo_portefeuille: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    vetted_on: Mapped[date | None] = mapped_column(Date)
    vetted_by: Mapped[str | None] = mapped_column(String(320))
    expires_on: Mapped[date | None] = mapped_column(Date)
    expiry_warned_on: Mapped[date | None] = mapped_column(Date)  # staff told it is due
    notes: Mapped[str] = mapped_column(Text, default="")
    # In the firm's self-view link; changing it retires every link sent before.
    link_key: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralCount(Base):
    """How often a firm was shown (in which position) and clicked, per alert and day: counts
    only, nothing about the reader."""

    __tablename__ = "referral_counts"

    firm_id: Mapped[int] = mapped_column(
        ForeignKey("firms.id", ondelete="CASCADE"), primary_key=True
    )
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, Brussels
    shown: Mapped[int] = mapped_column(Integer, default=0)
    shown_first: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class CorrectionRequest(Base):
    """A firm asks to change its listing; staff review it."""

    __tablename__ = "firm_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | done | refused
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(320))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
