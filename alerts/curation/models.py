"""An alert: what staff wrote (per language), whom it targets, and where it is in its life
cycle. Issue 6 adds the editor and four-eyes approval; delivery needs only approved ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

import alerts.staff.models  # noqa: F401  (the staff table the foreign keys name)
from alerts.models import Base, JsonType, UtcDateTime

DRAFT, SUBMITTED, APPROVED, SCHEDULED = "draft", "submitted", "approved", "scheduled"
SENDING, SENT, REJECTED, CANCELLED = "sending", "sent", "rejected", "cancelled"
STATUSES = (DRAFT, SUBMITTED, APPROVED, SCHEDULED, SENDING, SENT, REJECTED, CANCELLED)
SENDABLE = (APPROVED, SCHEDULED, SENDING)  # statuses from which messages may go out


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_tier", "status", "tier"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tier: Mapped[str] = mapped_column(String(12))  # urgent | newsletter
    status: Mapped[str] = mapped_column(String(12), default=DRAFT)
    # language -> {title, what, affected, actions: [...], urgency}
    texts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # {families: [...], sectors: [...], regions: [...]}; empty lists mean everyone
    targeting: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    cves: Mapped[list[str]] = mapped_column(JsonType, default=list)
    known_exploited: Mapped[bool] = mapped_column(Boolean, default=False)
    links: Mapped[list[list[str]]] = mapped_column(JsonType, default=list)  # [label, url]
    # Referral block until the firm directory exists: [{name, website, phone, ...}]
    firms: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    fanned_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # its messages queued
    # Set while a fan-out queues its messages (committed as it goes, so workers start at
    # once): a second fan-out waits its turn, and the alert is not "sent" before it ends.
    fan_out_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Who wrote it, and who touched the text last (the approver must be someone else).
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    last_editor_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closing_reason: Mapped[str | None] = mapped_column(String(500))  # rejected / cancelled


class AlertAdvisory(Base):
    """The advisories an alert was written from."""

    __tablename__ = "alert_advisories"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    advisory_id: Mapped[int] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True, index=True
    )


DISMISSED, USED = "dismissed", "used"


class QueueDecision(Base):
    """What staff decided about an advisory in the queue: dismissed (with the reason) or
    used for an alert. An advisory with a decision leaves the queue."""

    __tablename__ = "queue_decisions"

    advisory_id: Mapped[int] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True
    )
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(300), default="")
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertView(Base):
    """Views of an alert's public page per Brussels day: a count, nothing about who.
    (Mail scanners that open links count too: read it as an upper bound.)"""

    __tablename__ = "alert_views"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    views: Mapped[int] = mapped_column(Integer, default=0)
