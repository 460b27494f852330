"""Delivery figures for one alert: per channel and per subscriber language, how many
messages wait, were accepted by the provider, were delivered, bounced, failed, or have an
unknown outcome. One GROUP BY over the alert's outbox rows and one over its batches (the
messages with no row of their own, counted in the language they were queued in): the
database counts, not Python, so a million-recipient alert costs two queries.

The figures are a funnel, not a partition: `sent` counts every message the provider
accepted, so it includes the delivered ones and the failures that came after acceptance
(a bounce). `failed` is our technical failure with a known outcome; an outcome-unknown row
(the provider may have taken it) is counted under `outcome_unknown` only."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.orm import Session

from alerts.delivery import batches
from alerts.delivery.models import (
    BATCH_ACCEPTED,
    BATCH_SETTLED,
    CREATED,
    DELIVERED,
    PERMANENT,
    SENDING,
    TECHNICAL,
    TEMPORARY,
    OutboxBatch,
    OutboxMessage,
)
from subscribers.models import Subscriber

CHANNELS = ("email", "sms")
UNKNOWN_LANGUAGE = "unknown"  # the subscriber was erased: their rows keep anonymous counts


@dataclass(frozen=True)
class Counts:
    total: int = 0
    queued: int = 0  # created, temporary-failure, or claimed and not yet accepted
    sent: int = 0  # accepted by the provider (whatever happened next)
    delivered: int = 0
    bounced: int = 0  # permanent-failure
    failed: int = 0  # technical-failure, outcome known
    outcome_unknown: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class Figures:
    alert_id: int
    # channel -> language -> counts; only the languages that have rows
    by_language: dict[str, dict[str, Counts]]

    @property
    def channels(self) -> dict[str, Counts]:
        """Totals per channel; email and sms always present (zeros when nothing was sent)."""
        return {channel: self.channel(channel) for channel in self._channel_names()}

    def channel(self, channel: str) -> Counts:
        return sum(self.by_language.get(channel, {}).values(), Counts())

    @property
    def total(self) -> Counts:
        return sum(self.channels.values(), Counts())

    def _channel_names(self) -> list[str]:
        return list(CHANNELS) + sorted(set(self.by_language) - set(CHANNELS))


def _accepted():
    """The provider took it: sent_at is written when it accepts (or a receipt proves it)."""
    waiting = OutboxMessage.status.in_((CREATED, TEMPORARY))
    return or_(
        OutboxMessage.status == DELIVERED,
        and_(OutboxMessage.sent_at.is_not(None), not_(waiting)),
    )


def _conditions() -> dict:
    """Each figure as a condition on one outbox row."""
    status, unknown = OutboxMessage.status, OutboxMessage.outcome_unknown.is_(True)
    return {
        "queued": or_(
            status.in_((CREATED, TEMPORARY)),
            and_(status == SENDING, OutboxMessage.sent_at.is_(None)),
        ),
        "sent": _accepted(),
        "delivered": status == DELIVERED,
        "bounced": status == PERMANENT,
        "failed": and_(status == TECHNICAL, not_(unknown)),
        "outcome_unknown": unknown,
    }


def delivery_figures(session: Session, alert_id: int) -> Figures:
    """The figures of one alert's messages, from one query."""
    conditions = _conditions()
    query = (
        select(
            OutboxMessage.channel,
            Subscriber.language,  # NULL only without a subscriber: language is required
            func.count().label("total"),
            *(
                func.count(case((condition, 1))).label(name)
                for name, condition in conditions.items()
            ),
        )
        .select_from(OutboxMessage)
        .outerjoin(Subscriber, Subscriber.id == OutboxMessage.subscriber_id)
        .where(OutboxMessage.alert_id == alert_id)
        .group_by(OutboxMessage.channel, Subscriber.language)
    )
    by_language: dict[str, dict[str, Counts]] = {}
    for row in session.execute(query).mappings():  # a row per (channel, language)
        counts = Counts(**{name: row[name] for name in ("total", *conditions)})
        language = row["language"] or UNKNOWN_LANGUAGE
        by_language.setdefault(row["channel"], {})[language] = counts
    for channel, language, counts in _batch_figures(session, alert_id):
        languages = by_language.setdefault(channel, {})
        languages[language] = languages.get(language, Counts()) + counts
    return Figures(alert_id, by_language)


def _batch_figures(session: Session, alert_id: int) -> list[tuple[str, str, Counts]]:
    """The messages still told by their batch (no row of their own), by the language the
    batch was queued in: waiting or in flight (queued), or accepted (sent, and delivered
    for a channel that delivers at once)."""
    own = batches.own_rows()
    messages = OutboxBatch.size - func.coalesce(own.c.own, 0)
    accepted = OutboxBatch.status == BATCH_ACCEPTED
    delivered = and_(accepted, OutboxBatch.final == DELIVERED)

    def total(condition=None):
        return func.sum(messages if condition is None else case((condition, messages), else_=0))

    query = (
        select(
            OutboxBatch.channel,
            OutboxBatch.language,
            total(),
            total(not_(accepted)),
            total(accepted),
            total(delivered),
        )
        .outerjoin(own, own.c.batch_id == OutboxBatch.id)
        .where(OutboxBatch.alert_id == alert_id, OutboxBatch.status != BATCH_SETTLED)
        .group_by(OutboxBatch.channel, OutboxBatch.language)
    )
    return [
        (channel, language, Counts(int(n or 0), int(q or 0), int(a or 0), int(d or 0)))
        for channel, language, n, q, a, d in session.execute(query)
        if n
    ]
