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
    priority: int


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


def enqueue_rows(session: Session, rows: list[dict]) -> list[int]:
    """Prepared rows (newsletter issues), insert-or-ignore on their keys; returns the
    subscriber ids of the rows actually written."""
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxMessage)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OutboxMessage.subscriber_id)
    )
    written: list[int] = []
    for start in range(0, len(rows), INSERT_BATCH):
        chunk = rows[start : start + INSERT_BATCH]
        written.extend(session.connection().execute(statement, chunk).scalars())
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


def _insert_only(session: Session, rows: list[dict]) -> None:
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(OutboxMessage).on_conflict_do_nothing(index_elements=["key"])
    session.execute(statement, rows)


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
    return sorted(rows, key=lambda row: (row.priority, row.id))  # urgent first, in order


_CLAIMED_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.alert_id,
    OutboxMessage.subscriber_id,
    OutboxMessage.channel,
    OutboxMessage.kind,
    OutboxMessage.attempts,
    OutboxMessage.payload,
    OutboxMessage.priority,
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


def hand_off(session: Session, ids: list[int], worker: str, now: datetime) -> set[int]:
    """Committed just before the provider request: from here on, a crash means 'unknown'.
    Only rows this worker still holds are marked and returned: a claim whose lease ran out
    may have been taken by another worker, which then sends it instead."""
    owned: set[int] = set()
    for chunk in chunks(ids, 5_000):
        statement = (
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(chunk),
                OutboxMessage.claimed_by == worker,
                OutboxMessage.status == SENDING,
                OutboxMessage.handed_off_at.is_(None),
            )
            .values(handed_off_at=now, updated_at=now)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        owned.update(session.connection().execute(statement).scalars())
    return owned


def accepted(
    session: Session, ids: list[int], provider_id: str, now: datetime, final: str = SENDING
) -> None:
    """The provider took them (`final` is delivered for channels that deliver at once). The
    status changes only on rows still 'sending': a receipt may have been quicker."""
    for chunk in chunks(ids, 5_000):
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


def failed(
    session: Session,
    ids: list[int],
    status: str,
    error: str,
    now: datetime,
    worker: str | None = None,
) -> None:
    """permanent-failure (the provider will never take it) or technical-failure (ours)."""
    _set(session, ids, worker=worker, status=status, last_error=error[:300], updated_at=now)


def outcome_unknown(session: Session, ids: list[int], error: str, now: datetime) -> None:
    """The request may have been acted on: recorded, not resent; a receipt may settle it."""
    _set(
        session, ids, status=TECHNICAL, outcome_unknown=True, last_error=error[:300], updated_at=now
    )


def release(session: Session, ids: list[int], worker: str, now: datetime) -> None:
    """Give back claimed rows this worker never handed off (it is stopping cleanly)."""
    _set(
        session,
        ids,
        worker=worker,
        not_handed_off=True,
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
    _update(session, and_(stale, _heard()), sent_at=now, updated_at=now)
    return _update(
        session,
        stale,
        status=TECHNICAL,
        outcome_unknown=True,
        updated_at=now,
        last_error="worker stopped while the provider request was in flight",
    )


def resend_unheard(
    session: Session, now: datetime, grace: timedelta, channels: tuple[str, ...]
) -> int:
    """Unknown outcomes that no provider receipt explained within `grace`, on channels whose
    provider reports every accepted message: it never took them, so they go once more —
    once only. Where no receipts are configured, unknown stays unknown (staff decide)."""
    if not channels:
        return 0
    unheard = and_(
        OutboxMessage.outcome_unknown.is_(True),
        OutboxMessage.resent_after_unknown.is_(False),
        OutboxMessage.status == TECHNICAL,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.channel.in_(channels),
        OutboxMessage.handed_off_at < now - grace,
        ~_heard(),
    )
    return _update(
        session,
        unheard,
        status=TEMPORARY,
        outcome_unknown=False,
        resent_after_unknown=True,
        handed_off_at=None,
        next_attempt_at=now,
        updated_at=now,
        last_error="no provider receipt after an unknown outcome: sent once more",
    )


def _heard():
    """A provider receipt for this attempt (one that came after its hand-off)."""
    return (
        select(DeliveryEvent.id)
        .where(
            DeliveryEvent.outbox_id == OutboxMessage.id,
            DeliveryEvent.at >= OutboxMessage.handed_off_at,
        )
        .exists()
    )


def counts(session: Session, alert_id: int | None = None) -> dict[tuple[str, str], int]:
    """(channel, status) -> rows, for one alert or all."""
    query = select(OutboxMessage.channel, OutboxMessage.status, func.count())
    if alert_id is not None:
        query = query.where(OutboxMessage.alert_id == alert_id)
    query = query.group_by(OutboxMessage.channel, OutboxMessage.status)
    return {(channel, status): n for channel, status, n in session.execute(query)}


def unfinished(session: Session, alert_id: int, receipt_channels: tuple[str, ...] = ()) -> int:
    """Rows of an alert that may still be sent (the alert is 'sent' when this is 0),
    unknown outcomes included where a receipt or a resend will still settle them."""
    unsettled = and_(
        OutboxMessage.outcome_unknown.is_(True),
        OutboxMessage.resent_after_unknown.is_(False),
        OutboxMessage.channel.in_(receipt_channels),
    )
    query = select(func.count()).where(
        OutboxMessage.alert_id == alert_id,
        or_(
            OutboxMessage.status.in_((CREATED, TEMPORARY)),
            and_(OutboxMessage.status == SENDING, OutboxMessage.sent_at.is_(None)),
            unsettled,
        ),
    )
    return session.scalar(query) or 0


def _set(
    session: Session,
    ids: list[int],
    worker: str | None = None,
    not_handed_off: bool = False,
    **values,
) -> None:
    """Update rows by id; with `worker`, only those it still holds."""
    for chunk in chunks(ids, 5_000):
        condition = OutboxMessage.id.in_(chunk)
        if worker is not None:
            condition = and_(condition, OutboxMessage.claimed_by == worker)
        if not_handed_off:
            condition = and_(
                condition, OutboxMessage.handed_off_at.is_(None), OutboxMessage.status == SENDING
            )
        _update(session, condition, **values)


def _update(session: Session, condition, **values) -> int:
    """One UPDATE on the Core connection; returns the rows changed."""
    statement = (
        update(OutboxMessage)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.connection().execute(statement).rowcount or 0


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
