"""Newsletter issues: for every subscriber due (daily or weekly), the published alerts since
their last issue that concern them, as one outbox row; nothing when there is nothing.

Subscribers are streamed in batches and matched with the pure audience rules, so the job's
memory does not grow with the list. Which alerts an issue holds is decided here and stored
on the row, so a resend after a crash sends the same issue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.curation.models import SENDABLE, SENT, Alert
from alerts.delivery import outbox
from alerts.delivery.models import NEWSLETTER
from alerts.delivery.service import alert_targeting
from alerts.relevance.catalogue import Catalogue
from alerts.store import Database
from subscribers import directory
from subscribers.audience import Member, Targeting, channels_for
from subscribers.models import ACTIVE, Subscriber

FIRST_ISSUE_LOOKBACK = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
BATCH = directory.BATCH


@dataclass(frozen=True)
class Published:
    alert_id: int
    approved_at: datetime
    targeting: Targeting


def queue_newsletters(
    database: Database, catalogue: Catalogue, frequency: str, now: datetime
) -> dict[str, int]:
    """One issue per due subscriber with something to read; returns counts."""
    with database.session() as session:
        published = _published(session, catalogue, now - timedelta(days=62))
        issues = empty = 0
        issued: list[int] = []
        for batch in _batches(_due(session, frequency)):
            rows, nothing = _issues(batch, published, frequency, now)
            written = outbox.enqueue_rows(session, rows)  # an issue queued already stays
            issues += len(written)
            empty += nothing
            issued.extend(written)
        _mark_issued(session, issued, now)  # after reading: not while the cursor is open
    return {"issues": issues, "nothing to send": empty}


def _published(session: Session, catalogue: Catalogue, since: datetime) -> list[Published]:
    query = (
        select(Alert)
        .where(Alert.status.in_((*SENDABLE, SENT)), Alert.approved_at >= since)
        .order_by(Alert.approved_at)
    )
    found = []
    for alert in session.scalars(query):
        targeting = alert_targeting(alert, catalogue)
        if targeting is not None:
            found.append(Published(alert.id, alert.approved_at, targeting))
    return found


def _due(session: Session, frequency: str) -> Iterator[tuple[Member, datetime | None]]:
    """Active subscribers on this cadence, with the moment of their last issue."""
    due = (Subscriber.status == ACTIVE, Subscriber.newsletter == frequency)
    for member, (last,) in directory.rows(session, *due, extra=(Subscriber.last_newsletter_at,)):
        yield member, last


def _issues(batch, published: list[Published], frequency: str, now: datetime):
    """Outbox rows for the batch; and how many had nothing new."""
    rows, empty = [], 0
    lookback = now - FIRST_ISSUE_LOOKBACK[frequency]
    for member, last in batch:
        # Since the last issue; a first issue looks back one period (recent alerts still
        # matter to someone who just joined).
        since = last or lookback
        items = [
            p.alert_id
            for p in published
            if p.approved_at > since and "newsletter" in channels_for(member, p.targeting)
        ]
        if items:
            rows.append(_row(member.id, items, now))
        else:
            empty += 1
    return rows, empty


def _row(subscriber_id: int, alert_ids: list[int], now: datetime) -> dict:
    return {
        "key": f"newsletter:{subscriber_id}:{now:%Y%m%d%H}",
        "alert_id": None,
        "subscriber_id": subscriber_id,
        "channel": "email",
        "kind": "newsletter",
        "priority": NEWSLETTER,
        "payload": {"alerts": alert_ids},
        "status": outbox.CREATED,
        "attempts": 0,
        "next_attempt_at": now,
        "outcome_unknown": False,
        "created_at": now,
        "updated_at": now,
    }


def _mark_issued(session: Session, subscriber_ids: list[int], now: datetime) -> None:
    for start in range(0, len(subscriber_ids), BATCH):
        chunk = subscriber_ids[start : start + BATCH]
        session.query(Subscriber).filter(Subscriber.id.in_(chunk)).update(
            {Subscriber.last_newsletter_at: now}, synchronize_session=False
        )


def _batches(items, size: int = BATCH):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
