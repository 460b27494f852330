"""The outbox: what is to be sent, written before anything is sent, and the provider
receipts that tell what became of each message.

An alert's emails are queued as batches (`OutboxBatch`): one row per provider request of up
to 1,000 subscribers of one language, which the delivery worker claims, hands off and marks
accepted as a whole — three row writes per thousand messages instead of three per message.
A message gets a row of its own (`OutboxMessage`) only when it has something of its own to
say: a receipt, a failure, an unknown outcome, a simulated address; SMS messages and
newsletter issues are queued as such rows from the start. A subscriber's message is thus
its row if it has one, else its batch (see outbox.counts).

A row holds no address and no language: the dispatcher reads both from the subscriber when
it sends (their choice at that moment), so an erased subscriber's rows keep only anonymous
counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from alerts.models import Base, JsonType, UtcDateTime

# One status vocabulary (STYLE.md practice 9).
CREATED, SENDING, DELIVERED = "created", "sending", "delivered"
TEMPORARY, PERMANENT, TECHNICAL = "temporary-failure", "permanent-failure", "technical-failure"
STATUSES = (CREATED, SENDING, DELIVERED, TEMPORARY, PERMANENT, TECHNICAL)
URGENT, NEWSLETTER = 0, 1  # priority: lower goes first
DUE_STATUSES = (CREATED, TEMPORARY)
# Spelled exactly like the queries' conditions, so both databases use the partial indexes.
DUE_SQL = text("status IN ('created', 'temporary-failure')")
IN_FLIGHT_SQL = text("status = 'sending' AND sent_at IS NULL")
# Unknown outcomes still waiting for a receipt or a resend: normally none.
UNSETTLED_SQL = text("outcome_unknown = TRUE AND resent_after_unknown = FALSE")

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite rowids are 64-bit already


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # Partial indexes keep the two hot questions small at a million rows: "what is due"
        # (walked in claim order, stops at the limit) and "what is in flight" (claimed, not
        # yet accepted: a few thousand rows at most, whatever the size of the table).
        Index("ix_outbox_due", "priority", "id", sqlite_where=DUE_SQL, postgresql_where=DUE_SQL),
        Index(
            "ix_outbox_in_flight",
            "claimed_at",
            sqlite_where=IN_FLIGHT_SQL,
            postgresql_where=IN_FLIGHT_SQL,
        ),
        Index(
            "ix_outbox_unsettled",
            "handed_off_at",
            sqlite_where=UNSETTLED_SQL,
            postgresql_where=UNSETTLED_SQL,
        ),
        Index("ix_outbox_alert_status", "alert_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # alert:12:345:email
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(10))  # email | sms
    kind: Mapped[str] = mapped_column(String(12))  # alert | newsletter
    priority: Mapped[int] = mapped_column(Integer, default=URGENT)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # newsletter items
    status: Mapped[str] = mapped_column(String(20), default=CREATED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(60))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set (and committed) just before the provider request: a row claimed but never handed
    # off can be sent again safely; one handed off without an answer cannot.
    handed_off_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the provider accepted it
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An unknown outcome with no provider receipt after the grace period was sent once more.
    resent_after_unknown: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    provider_id: Mapped[str | None] = mapped_column(String(100), index=True)
    last_error: Mapped[str | None] = mapped_column(String(300))
    # The batch this message went out in, when a receipt gave it a row of its own: the
    # batch counts its other recipients only.
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_batches.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# A batch's own vocabulary: waiting, claimed by a worker (handed off once handed_off_at is
# set), accepted by the provider as one request, or settled (every recipient has a row).
BATCH_CREATED, BATCH_SENDING, BATCH_ACCEPTED, BATCH_SETTLED = (
    "created",
    "sending",
    "accepted",
    "settled",
)
BATCH_DUE_SQL = text("status = 'created'")
BATCH_OPEN_SQL = text("status IN ('created', 'sending')")


class OutboxBatch(Base):
    """One provider request's worth of an alert's emails: up to 1,000 subscribers of one
    language. Their messages are the batch's until one gets a row of its own."""

    __tablename__ = "outbox_batches"
    __table_args__ = (
        Index(
            "ix_outbox_batches_due",
            "priority",
            "id",
            sqlite_where=BATCH_DUE_SQL,
            postgresql_where=BATCH_DUE_SQL,
        ),
        Index(
            "ix_outbox_batches_open",
            "claimed_at",
            sqlite_where=BATCH_OPEN_SQL,
            postgresql_where=BATCH_OPEN_SQL,
        ),
        Index("ix_outbox_batches_alert", "alert_id", "channel"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(10))  # email
    priority: Mapped[int] = mapped_column(Integer, default=URGENT)
    language: Mapped[str] = mapped_column(String(2))  # at fan-out; the figures group by it
    subscriber_ids: Mapped[list[int]] = mapped_column(JsonType)
    size: Mapped[int] = mapped_column(Integer)  # len(subscriber_ids)
    status: Mapped[str] = mapped_column(String(20), default=BATCH_CREATED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(60))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handed_off_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # What an accepted batch's recipients without a row of their own are: sending (waiting
    # for receipts) or delivered (a channel that delivers at once, the file outbox).
    final: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeliveryEvent(Base):
    """A provider receipt, kept once (deduplicated on the provider's event id)."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL"), index=True
    )
    event: Mapped[str] = mapped_column(String(30))
    status: Mapped[str | None] = mapped_column(String(20))  # what it mapped to, if anything
    at: Mapped[datetime] = mapped_column(UtcDateTime)
