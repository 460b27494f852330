"""GDPR: everything we hold about a subscriber (export), erasing it, and purging sign-ups
that were never confirmed. Erasure keeps anonymous aggregates: the consent events stay as
counts (kind, time, notice version) with the subscriber link, IP address and user agent
removed; suppressions and rate limits never held an address in the first place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.orm import Session

from alerts.maturity.models import MaturityResult
from subscribers import ratelimit
from subscribers.consent import NOTICE_VERSION, Origin
from subscribers.models import LEFT, PENDING, ConsentEvent, Subscriber, Suppression

EXPORTED_FIELDS = (
    "id",
    "status",
    "organisation",
    "enterprise_number",
    "email",
    "phone",
    "phone_confirmed_at",
    "language",
    "region",
    "sector",
    "size_band",
    "families",
    "knows_products",
    "urgent_email",
    "urgent_sms",
    "newsletter",
    "source",
    "created_at",
    "updated_at",
    "confirmed_at",
    "pending_email",
    "pending_profile",
    "left_at",
    "last_newsletter_at",
)
RESULT_FIELDS = (
    "version",
    "language",
    "answers",
    "level",
    "percent",
    "levels",
    "percents",
    "share_stats",
    "staff_may_view",
    "families_applied",
    "taken_at",
)
EVENT_FIELDS = ("kind", "channels", "notice_version", "method", "ip_address", "user_agent", "at")


def export(session: Session, subscriber_id: int) -> dict[str, Any]:
    """Every stored fact about one subscriber, as JSON-ready values."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    events = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(ConsentEvent.at, ConsentEvent.id)
    )
    return {
        "subscription": {name: _plain(getattr(subscriber, name)) for name in EXPORTED_FIELDS},
        "consent_events": [{n: _plain(getattr(e, n)) for n in EVENT_FIELDS} for e in events],
        "suppressions": _suppressions(session, subscriber),
        "maturity_results": _maturity_results(session, subscriber_id),
    }


def erase(session: Session, subscriber_id: int, origin: Origin, now: datetime) -> None:
    """Remove the subscriber and every identifying value; keep anonymous counts."""
    if session.get(Subscriber, subscriber_id) is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    _anonymise_events(session, [subscriber_id])
    session.add(
        ConsentEvent(
            subscriber_id=None,
            kind="erased",
            channels={},
            notice_version=NOTICE_VERSION,
            method=origin.method,
            at=now,
        )
    )
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber_id))


def purge_expired(
    session: Session, now: datetime, keep_left: timedelta = timedelta(days=30)
) -> dict[str, int]:
    """Unconfirmed sign-ups past their deadline disappear, and so do subscriptions left
    longer than `keep_left` ago (kept that long so a change of mind is one click);
    unconfirmed changes of live subscriptions are forgotten; old rate-limit windows go."""
    expired = _ids(session, Subscriber.status == PENDING, Subscriber.confirm_expires_at < now)
    gone = _ids(session, Subscriber.status == LEFT, Subscriber.left_at < now - keep_left)
    _anonymise_events(session, expired + gone)
    if expired or gone:
        session.execute(delete(Subscriber).where(Subscriber.id.in_(expired + gone)))
    stale = session.execute(
        update(Subscriber)
        .where(and_(Subscriber.status != PENDING, Subscriber.confirm_expires_at < now))
        .values(
            pending_profile=None, pending_email=None, confirm_nonce=None, confirm_expires_at=None
        )
    ).rowcount
    return {
        "sign-ups purged": len(expired),
        "left subscriptions erased": len(gone),
        "changes forgotten": stale,
        "rate-limit windows": ratelimit.purge(session, now),
    }


def purge_subscribers(database, keep_left_days: int, now: datetime | None = None) -> dict[str, int]:
    """The scheduler's hourly job."""
    with database.session() as session:
        return purge_expired(session, now or datetime.now(UTC), timedelta(days=keep_left_days))


def _ids(session: Session, *conditions) -> list[int]:
    return list(session.scalars(select(Subscriber.id).where(*conditions)))


def _maturity_results(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """Kept scan results; erasure deletes them with the subscriber (foreign key cascade)."""
    query = (
        select(MaturityResult)
        .where(MaturityResult.subscriber_id == subscriber_id)
        .order_by(MaturityResult.taken_at, MaturityResult.id)
    )
    return [{n: _plain(getattr(r, n)) for n in RESULT_FIELDS} for r in session.scalars(query)]


def _anonymise_events(session: Session, subscriber_ids: list[int]) -> None:
    if subscriber_ids:
        session.execute(
            update(ConsentEvent)
            .where(ConsentEvent.subscriber_id.in_(subscriber_ids))
            .values(subscriber_id=None, ip_address=None, user_agent=None)
        )


def _suppressions(session: Session, subscriber: Subscriber) -> list[dict[str, Any]]:
    keys = [("email", subscriber.email_key), ("sms", subscriber.phone_key)]
    found = []
    for channel, key in keys:
        if key is None:
            continue
        for row in session.scalars(
            select(Suppression).where(
                Suppression.channel == channel, Suppression.address_key == key
            )
        ):
            found.append(
                {
                    "channel": channel,
                    "reason": row.reason,
                    "source": row.source,
                    "since": _plain(row.created_at),
                    "lifted": row.lifted,
                }
            )
    return found


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
