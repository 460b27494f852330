"""The outbox as a queue: write rows before sending (fan-out), claim them with a
conditional update, record what the provider said.

Every row moves created → sending → (provider receipts) delivered, or to one of the failure
statuses. Claiming is one UPDATE over a sub-select (on PostgreSQL `FOR UPDATE SKIP LOCKED`,
so several workers share the queue; SQLite has one writer at a time anyway). A row claimed
but never handed to the provider is claimed again when its lease runs out; a row handed off
without an answer is marked outcome-unknown and never blindly sent again."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from alerts.delivery.models import (
    CREATED,
    SENDING,
    TECHNICAL,
    TEMPORARY,
    DeliveryEvent,
    OutboxMessage,
)

INSERT_BATCH = 5_000


@dataclass(frozen=True)
class Claimed:
    """A claimed row, as the dispatcher needs it."""

    id: int
    alert_id: int | None
    subscriber_id: int | None
    channel: str
    kind: str
    attempts: int
    payload: dict


def message_key(alert_id: int, subscriber_id: int, channel: str) -> str:
    return f"alert:{alert_id}:{subscriber_id}:{channel}"


def enqueue(
    session: Session,
    alert_id: int,
    recipients: Iterable[tuple[int, str]],
    priority: int,
    now: datetime,
) -> int:
    """Write one row per (subscriber, channel), in batches; rows that exist already are
    left alone (insert-or-ignore on the key), so a repeated fan-out is harmless. Returns
    the rows written."""
    before = _alert_rows(session, alert_id)
    batch: list[dict] = []
    for subscriber_id, channel in recipients:
        batch.append(_row(alert_id, subscriber_id, channel, priority, now))
        if len(batch) == INSERT_BATCH:
            _insert_only(session, batch)
            batch = []
    if batch:
        _insert_only(session, batch)
    return _alert_rows(session, alert_id) - before


def _alert_rows(session: Session, alert_id: int) -> int:
    return session.scalar(select(func.count()).where(OutboxMessage.alert_id == alert_id)) or 0


def enqueue_rows(session: Session, rows: list[dict]) -> int:
    """Prepared rows (newsletter issues), insert-or-ignore on their keys."""
    written = 0
    for start in range(0, len(rows), INSERT_BATCH):
        written += _insert(session, rows[start : start + INSERT_BATCH])
    return written


def _row(alert_id: int, subscriber_id: int, channel: str, priority: int, now: datetime) -> dict:
    return {
        "key": message_key(alert_id, subscriber_id, channel),
        "alert_id": alert_id,
        "subscriber_id": subscriber_id,
        "channel": channel,
        "kind": "alert",
        "priority": priority,
        "payload": {},
        "status": CREATED,
        "attempts": 0,
        "next_attempt_at": now,
        "outcome_unknown": False,
        "created_at": now,
        "updated_at": now,
    }


def _insert(session: Session, rows: list[dict]) -> int:
    """Rows written (drivers give no row count for executemany: count the batch's keys)."""
    before = _present(session, rows)
    _insert_only(session, rows)
    return _present(session, rows) - before


def _insert_only(session: Session, rows: list[dict]) -> None:
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(OutboxMessage).on_conflict_do_nothing(index_elements=["key"])
    session.execute(statement, rows)


def _present(session: Session, rows: list[dict]) -> int:
    keys = [row["key"] for row in rows]
    return session.scalar(select(func.count()).where(OutboxMessage.key.in_(keys))) or 0


def claim(
    session: Session, worker: str, limit: int, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Up to `limit` due rows, urgent first, now marked as this worker's."""
    due = select(OutboxMessage.id).where(_claimable(now, lease))
    due = due.order_by(OutboxMessage.priority, OutboxMessage.id).limit(limit)
    if session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(
            status=SENDING,
            claimed_by=worker,
            claimed_at=now,
            attempts=OutboxMessage.attempts + 1,
            updated_at=now,
        )
        .returning(*_CLAIMED_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    rows = [Claimed(*row) for row in session.connection().execute(statement)]
    return sorted(rows, key=lambda row: row.id)


_CLAIMED_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.alert_id,
    OutboxMessage.subscriber_id,
    OutboxMessage.channel,
    OutboxMessage.kind,
    OutboxMessage.attempts,
    OutboxMessage.payload,
)


def _claimable(now: datetime, lease: timedelta):
    """New or retry-due rows, and rows whose claimer vanished before handing them off."""
    waiting = and_(
        OutboxMessage.status.in_((CREATED, TEMPORARY)), OutboxMessage.next_attempt_at <= now
    )
    abandoned = and_(
        OutboxMessage.status == SENDING,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.handed_off_at.is_(None),
        OutboxMessage.claimed_at < now - lease,
    )
    return or_(waiting, abandoned)


def hand_off(session: Session, ids: list[int], now: datetime) -> None:
    """Committed just before the provider request: from here on, a crash means 'unknown'."""
    _set(session, ids, handed_off_at=now, updated_at=now)


def accepted(
    session: Session, ids: list[int], provider_id: str, now: datetime, final: str = SENDING
) -> None:
    """The provider took them (`final` is delivered for channels that deliver at once). The
    status changes only on rows still 'sending': a receipt may have been quicker."""
    for chunk in _chunks(ids, 5_000):
        _update(
            session,
            OutboxMessage.id.in_(chunk),
            status=case((OutboxMessage.status == SENDING, final), else_=OutboxMessage.status),
            sent_at=func.coalesce(OutboxMessage.sent_at, now),
            provider_id=provider_id[:100] or None,
            last_error=None,
            updated_at=now,
        )


def failed_temporarily(
    session: Session,
    rows: list[Claimed],
    error: str,
    retry_at: datetime,
    max_attempts: int,
    now: datetime,
) -> None:
    """Back in the queue (not handed to anyone: the provider refused), or given up on."""
    retry = [row.id for row in rows if row.attempts < max_attempts]
    exhausted = [row.id for row in rows if row.attempts >= max_attempts]
    _set(
        session,
        retry,
        status=TEMPORARY,
        next_attempt_at=retry_at,
        handed_off_at=None,
        last_error=error[:300],
        updated_at=now,
    )
    _set(session, exhausted, status=TECHNICAL, last_error=error[:300], updated_at=now)


def failed(session: Session, ids: list[int], status: str, error: str, now: datetime) -> None:
    """permanent-failure (the provider will never take it) or technical-failure (ours)."""
    _set(session, ids, status=status, last_error=error[:300], updated_at=now)


def outcome_unknown(session: Session, ids: list[int], error: str, now: datetime) -> None:
    """The request may have been acted on: recorded, not resent; a receipt may settle it."""
    _set(
        session, ids, status=TECHNICAL, outcome_unknown=True, last_error=error[:300], updated_at=now
    )


def release(session: Session, ids: list[int], now: datetime) -> None:
    """Give back claimed rows that were never handed off (a worker stopping cleanly)."""
    _set(
        session,
        ids,
        status=CREATED,
        claimed_by=None,
        claimed_at=None,
        handed_off_at=None,
        attempts=OutboxMessage.attempts - 1,
        updated_at=now,
    )


def sweep_unknown(session: Session, now: datetime, lease: timedelta) -> int:
    """Rows handed off by a worker that died before hearing back. A provider receipt for
    one proves it was accepted; the others have an unknown outcome."""
    stale = and_(
        OutboxMessage.status == SENDING,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.handed_off_at < now - lease,
    )
    heard = OutboxMessage.id.in_(select(DeliveryEvent.outbox_id))
    _update(session, and_(stale, heard), sent_at=now, updated_at=now)
    statement = (
        update(OutboxMessage)
        .where(stale)
        .values(
            status=TECHNICAL,
            outcome_unknown=True,
            updated_at=now,
            last_error="worker stopped while the provider request was in flight",
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount or 0


def resend_unheard(session: Session, now: datetime, grace: timedelta) -> int:
    """Unknown outcomes that no provider receipt explained within `grace`: the provider never
    took them (it reports every accepted message), so they go once more — once only."""
    heard = select(DeliveryEvent.outbox_id).where(DeliveryEvent.outbox_id.is_not(None))
    statement = (
        update(OutboxMessage)
        .where(
            OutboxMessage.outcome_unknown.is_(True),
            OutboxMessage.resent_after_unknown.is_(False),
            OutboxMessage.status == TECHNICAL,
            OutboxMessage.handed_off_at < now - grace,
            OutboxMessage.id.not_in(heard),
        )
        .values(
            status=TEMPORARY,
            outcome_unknown=False,
            resent_after_unknown=True,
            handed_off_at=None,
            next_attempt_at=now,
            updated_at=now,
            last_error="no provider receipt after an unknown outcome: sent once more",
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount or 0


def counts(session: Session, alert_id: int | None = None) -> dict[tuple[str, str], int]:
    """(channel, status) -> rows, for one alert or all."""
    query = select(OutboxMessage.channel, OutboxMessage.status, func.count())
    if alert_id is not None:
        query = query.where(OutboxMessage.alert_id == alert_id)
    query = query.group_by(OutboxMessage.channel, OutboxMessage.status)
    return {(channel, status): n for channel, status, n in session.execute(query)}


def unfinished(session: Session, alert_id: int) -> int:
    """Rows of an alert that may still be sent (the alert is 'sent' when this is 0)."""
    query = select(func.count()).where(
        OutboxMessage.alert_id == alert_id,
        or_(
            OutboxMessage.status.in_((CREATED, TEMPORARY)),
            and_(OutboxMessage.status == SENDING, OutboxMessage.sent_at.is_(None)),
        ),
    )
    return session.scalar(query) or 0


def _set(session: Session, ids: list[int], **values) -> None:
    for chunk in _chunks(ids, 5_000):
        _update(session, OutboxMessage.id.in_(chunk), **values)


def _update(session: Session, condition, **values) -> None:
    session.connection().execute(
        update(OutboxMessage)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
