"""Tables for subscribers: the subscription, its consent ledger, suppressions, rate limits.

Personal data lives only in `subscribers` (and, until erasure, the IP address and user agent
of `consent_events`); suppressions and rate limits hold keyed hashes, never an address, so
that erasing a subscriber leaves nothing that names them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from alerts.models import Base, JsonType, UtcDateTime
from subscribers.tokens import link_key as new_link_key

# Subscription states. "pending" waits for the email confirmation and is purged when it
# expires; "left" keeps no channel at all (the row stays so a preference link still works).
PENDING, ACTIVE, PAUSED, LEFT = "pending", "active", "paused", "left"
STATUSES = (PENDING, ACTIVE, PAUSED, LEFT)


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        Index("ix_subscribers_status_expires", "status", "confirm_expires_at"),
        # Ids appear in links: SQLite must never hand an erased subscriber's id to someone new.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    organisation: Mapped[str] = mapped_column(String(200))
    enterprise_number: Mapped[str | None] = mapped_column(String(10))  # KBO/BCE, 10 digits
    email: Mapped[str] = mapped_column(String(320))  # as normalised by email-validator
    email_key: Mapped[str] = mapped_column(String(64), unique=True)  # keyed hash, lower-case
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    phone_key: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    language: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(8))
    sector: Mapped[str] = mapped_column(String(40))
    size_band: Mapped[str] = mapped_column(String(10))
    families: Mapped[list[str]] = mapped_column(JsonType, default=list)
    knows_products: Mapped[bool] = mapped_column(Boolean, default=True)
    urgent_email: Mapped[bool] = mapped_column(Boolean, default=True)
    urgent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    newsletter: Mapped[str] = mapped_column(String(8), default="weekly")  # none|daily|weekly
    source: Mapped[str] = mapped_column(String(10), default="web")  # web | import
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    confirm_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Every link carries link_key; a new one (after an address change) kills all old links.
    link_key: Mapped[str] = mapped_column(String(24), default=new_link_key)
    # One-use links: a token carries the nonce it was issued with; using it clears the nonce.
    confirm_nonce: Mapped[str | None] = mapped_column(String(32))
    email_nonce: Mapped[str | None] = mapped_column(String(32))  # for pending_email
    # A sign-up with a known address, or an address change, waits for the link in the email:
    # nobody changes a subscription by knowing its address alone.
    pending_profile: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    pending_email: Mapped[str | None] = mapped_column(String(320))
    sms_code_hash: Mapped[str | None] = mapped_column(String(64))
    sms_code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sms_code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    sms_optout_code: Mapped[str] = mapped_column(String(16), unique=True)  # short SMS link
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_newsletter_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ConsentEvent(Base):
    """Append-only: every agreement, confirmation, change and withdrawal, with the notice
    version shown. Erasure clears the subscriber link, IP address and user agent only."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))  # see subscribers.consent.KINDS
    channels: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    notice_version: Mapped[str | None] = mapped_column(String(40))
    notice_sha256: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(20))  # web-form, email-link, sms-code, ...
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Suppression(Base):
    """An address we must not send to: hard bounce, spam complaint, provider unsubscribe.
    Keyed by a hash of the address so it survives erasure without naming anyone."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | sms
    address_key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(30))  # hard-bounce, spam-complaint, ...
    source: Mapped[str] = mapped_column(String(30))  # sendgrid, twilio, staff
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lifted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class RateLimitHit(Base):
    """Fixed-window counters shared by every web process (keys are hashes)."""

    __tablename__ = "rate_limit_hits"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
