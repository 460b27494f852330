"""The outbox as a queue: write rows before sending (fan-out), claim them with a
conditional update, record what the provider said.

Every row moves created → sending → (provider receipts) delivered, or to one of the failure
statuses. Claiming is one UPDATE over a sub-select (on PostgreSQL `FOR UPDATE SKIP LOCKED`,
so several workers share the queue; SQLite has one writer at a time anyway). A row claimed
but never handed to the provider is claimed again when its lease runs out; a row handed off
without an answer is marked outcome-unknown and never blindly sent again."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from alerts.delivery.models import (
    CREATED,
    DUE_SQL,
    DUE_STATUSES,
    IN_FLIGHT_SQL,
    SENDING,
    TECHNICAL,
    TEMPORARY,
    UNSETTLED_SQL,
    DeliveryEvent,
    OutboxMessage,
)
from alerts.models import UtcDateTime
from alerts.store import among

INSERT_BATCH = 5_000
FAN_OUT_BATCH = 50_000


class Claimed(NamedTuple):
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
    """Write one row per (subscriber, channel); rows that exist already are left alone
    (insert-or-ignore on the key), so a repeated fan-out is harmless. Returns the rows
    written.

    The rows are built by the database from a list of subscriber ids (one INSERT … SELECT
    per 50,000): at a million recipients, building and binding a dict per row in Python
    took most of the fan-out."""
    written = 0
    for channel, ids in _runs_by_channel(recipients, FAN_OUT_BATCH):
        statement = _fan_out_statement(session, alert_id, channel, ids, priority, now)
        written += _inserted(session, statement)
    return written


def _inserted(session: Session, statement) -> int:
    """Rows an insert-or-ignore wrote. psycopg reports no row count for INSERT … SELECT
    here, so on PostgreSQL the inserted ids are counted by the database itself."""
    if session.bind.dialect.name != "postgresql":
        return session.connection().execute(statement).rowcount
    inserted = statement.returning(OutboxMessage.id).cte("inserted")
    return session.connection().scalar(select(func.count()).select_from(inserted)) or 0


def _runs_by_channel(
    recipients: Iterable[tuple[int, str]], size: int
) -> Iterator[tuple[str, list[int]]]:
    """Consecutive subscriber ids of one channel, at most `size` at a time."""
    channel, ids = "", []
    for subscriber_id, next_channel in recipients:
        if ids and (next_channel != channel or len(ids) == size):
            yield channel, ids
            ids = []
        channel = next_channel
        ids.append(subscriber_id)
    if ids:
        yield channel, ids


def _fan_out_statement(
    session: Session, alert_id: int, channel: str, ids: list[int], priority: int, now: datetime
):
    """INSERT … SELECT over the ids, unpacked by the database (json_each on SQLite, unnest
    of a bigint array on PostgreSQL)."""
    postgresql = session.bind.dialect.name == "postgresql"
    if postgresql:
        source = func.unnest(cast(bindparam("ids", ids, ARRAY(BigInteger)), ARRAY(BigInteger)))
        values = source.table_valued("value").render_derived()
        empty = literal_column("'{}'::jsonb")
    else:
        values = func.json_each(bindparam("ids", orjson.dumps(ids).decode())).table_valued("value")
        empty = literal_column("'{}'")
    subscriber = values.c.value
    moment = literal(now, UtcDateTime())
    rows = select(
        literal(f"alert:{alert_id}:") + cast(subscriber, String) + literal(f":{channel}"),
        literal(alert_id, Integer),
        subscriber,
        literal(channel, String),
        literal("alert", String),
        literal(priority, Integer),
        empty,
        literal(CREATED, String),
        literal(0, Integer),
        moment,
        literal(False, Boolean),
        literal(False, Boolean),
        moment,
        moment,
    ).where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
    insert = postgresql_insert if postgresql else sqlite_insert
    columns = [
        "key",
        "alert_id",
        "subscriber_id",
        "channel",
        "kind",
        "priority",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "outcome_unknown",
        "resent_after_unknown",
        "created_at",
        "updated_at",
    ]
    return (
        insert(OutboxMessage)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["key"])
    )


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


def claim(
    session: Session, worker: str, limit: int, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Up to `limit` rows now marked as this worker's: first those whose claimer vanished
    before handing them off, then due rows, urgent first. Each query walks a partial index
    in order and stops at the limit, however many rows the table holds."""
    abandoned = select(OutboxMessage.id).where(
        IN_FLIGHT_SQL,
        OutboxMessage.handed_off_at.is_(None),
        OutboxMessage.claimed_at < now - lease,
    )
    rows = _claim(session, abandoned.order_by(OutboxMessage.claimed_at), limit, worker, now)
    if len(rows) < limit:
        due = select(OutboxMessage.id).where(DUE_SQL, OutboxMessage.next_attempt_at <= now)
        due = due.order_by(OutboxMessage.priority, OutboxMessage.id)
        rows += _claim(session, due, limit - len(rows), worker, now)
    return sorted(rows, key=lambda row: (row.priority, row.id))  # urgent first, in order


def _claim(session: Session, candidates, limit: int, worker: str, now: datetime) -> list[Claimed]:
    rows = claim_update(session, OutboxMessage, candidates, limit, SENDING, worker, now)
    return [Claimed(*row) for row in rows.returning(*CLAIMED_COLUMNS)]


class _Claim:
    """One claiming UPDATE, given its RETURNING columns (see claim_update)."""

    def __init__(self, session: Session, statement) -> None:
        self.session, self.statement = session, statement

    def returning(self, *columns):
        if self.statement is None:
            return []
        return self.session.connection().execute(self.statement.returning(*columns))


def claim_update(
    session: Session, model, candidates, limit: int, status: str, worker: str, now: datetime
) -> _Claim:
    """Mark up to `limit` of the `candidates` (a select of ids, in claim order) as this
    worker's: one UPDATE over a sub-select, which on PostgreSQL skips rows another worker
    is claiming (`FOR UPDATE SKIP LOCKED`). Shared by outbox rows and batches."""
    if limit <= 0:
        return _Claim(session, None)
    candidates = candidates.limit(limit)
    if session.bind.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(model)
        .where(model.id.in_(candidates.scalar_subquery()))
        .values(
            status=status,
            claimed_by=worker,
            claimed_at=now,
            attempts=model.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return _Claim(session, statement)


CLAIMED_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.alert_id,
    OutboxMessage.subscriber_id,
    OutboxMessage.channel,
    OutboxMessage.kind,
    OutboxMessage.attempts,
    OutboxMessage.payload,
    OutboxMessage.priority,
)


def hand_off(session: Session, ids: list[int], worker: str, now: datetime) -> set[int]:
    """Committed just before the provider request: from here on, a crash means 'unknown'.
    Only rows this worker still holds are marked and returned: a claim whose lease ran out
    may have been taken by another worker, which then sends it instead."""
    owned: set[int] = set()
    for chunk in chunks(ids, 5_000):
        statement = (
            update(OutboxMessage)
            .where(
                among(OutboxMessage.id, chunk, _dialect(session)),
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
            among(OutboxMessage.id, chunk, _dialect(session)),
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
    """permanent-failure (the provider will never take it) or technical-failure (ours).
    With `worker`: only rows it holds and has not handed off (those are the provider's)."""
    _set(
        session,
        ids,
        worker=worker,
        not_handed_off=worker is not None,
        status=status,
        last_error=error[:300],
        updated_at=now,
    )


def outcome_unknown(session: Session, ids: list[int], error: str, now: datetime) -> None:
    """The request may have been acted on: recorded, not resent; a receipt may settle it.
    Rows a receipt has moved on meanwhile (the provider did take them) are left alone."""
    for chunk in chunks(ids, 5_000):
        condition = and_(
            among(OutboxMessage.id, chunk, _dialect(session)),
            OutboxMessage.status == SENDING,
            OutboxMessage.sent_at.is_(None),
        )
        _update(
            session,
            condition,
            status=TECHNICAL,
            outcome_unknown=True,
            last_error=error[:300],
            updated_at=now,
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
    cutoff = now - lease
    stale = and_(
        IN_FLIGHT_SQL,
        OutboxMessage.claimed_at < cutoff,  # claimed before handed off: keeps to the index
        OutboxMessage.handed_off_at < cutoff,
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
        UNSETTLED_SQL,
        OutboxMessage.handed_off_at < now - grace,
        OutboxMessage.status == TECHNICAL,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.channel.in_(channels),
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
    """(channel, status) -> messages, for one alert or all: the rows, and the recipients
    still counted by their batch."""
    from alerts.delivery import batches  # it builds on this module

    query = select(OutboxMessage.channel, OutboxMessage.status, func.count())
    if alert_id is not None:
        query = query.where(OutboxMessage.alert_id == alert_id)
    query = query.group_by(OutboxMessage.channel, OutboxMessage.status)
    found = {(channel, status): n for channel, status, n in session.execute(query)}
    for key, n in batches.batch_counts(session, alert_id).items():
        found[key] = found.get(key, 0) + n
    return found


def unfinished(session: Session, alert_id: int, receipt_channels: tuple[str, ...] = ()) -> bool:
    """Whether rows of an alert may still be sent (the alert is 'sent' when none may):
    due, in flight, or an unknown outcome that a receipt or a resend will still settle.
    Three existence checks, each on an index that holds only such rows, and one for a
    batch still waiting or in flight."""
    from alerts.delivery import batches  # it builds on this module

    if batches.open_for(session, alert_id):
        return True
    of_alert = OutboxMessage.alert_id == alert_id
    checks = [
        select(OutboxMessage.id).where(of_alert, OutboxMessage.status.in_(DUE_STATUSES)),
        # "+ 0" keeps the planners off the (alert_id, status) index, which would visit every
        # accepted row of the alert still waiting for its receipt: a million, each round.
        select(OutboxMessage.id).where(IN_FLIGHT_SQL, OutboxMessage.alert_id + 0 == alert_id),
    ]
    if receipt_channels:
        unsettled = select(OutboxMessage.id).where(
            of_alert,
            OutboxMessage.status == TECHNICAL,
            UNSETTLED_SQL,
            OutboxMessage.channel.in_(receipt_channels),
        )
        checks.append(unsettled)
    return any(session.scalar(select(check.exists())) for check in checks)


def _set(
    session: Session,
    ids: list[int],
    worker: str | None = None,
    not_handed_off: bool = False,
    **values,
) -> None:
    """Update rows by id; with `worker`, only those it still holds."""
    for chunk in chunks(ids, 5_000):
        condition = among(OutboxMessage.id, chunk, _dialect(session))
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


def _dialect(session: Session) -> str:
    return session.bind.dialect.name


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Message(NamedTuple):
    """One message as staff and tests see it: its row, or its batch's recipient."""

    id: int | None  # the row's id; None while the message is its batch's
    reference: str  # what the provider echoes back: the row id, or "b<batch>.<subscriber>"
    alert_id: int | None
    subscriber_id: int | None
    channel: str
    kind: str
    status: str
    attempts: int
    claimed_by: str | None
    sent_at: datetime | None
    provider_id: str | None
    last_error: str | None
    outcome_unknown: bool
    resent_after_unknown: bool
    handed_off_at: datetime | None
    next_attempt_at: datetime | None
    batch_id: int | None


def messages(session: Session, alert_id: int | None = None) -> list[Message]:
    """Every message, one per recipient and channel, rows first (by id), then the ones
    still told by their batch. For inspection and tests: it reads everything."""
    from alerts.delivery import batches  # it builds on this module

    rows = select(OutboxMessage).order_by(OutboxMessage.id)
    if alert_id is not None:
        rows = rows.where(OutboxMessage.alert_id == alert_id)
    found = [_message(row) for row in session.scalars(rows)]
    own = {(m.batch_id, m.subscriber_id) for m in found if m.batch_id is not None}
    for batch in batches.unsettled(session, alert_id):
        status = batches.recipient_status(batch.status, batch.final)
        found += [
            Message(
                None,
                f"b{batch.id}.{subscriber}",
                batch.alert_id,
                subscriber,
                batch.channel,
                "alert",
                status,
                batch.attempts,
                batch.claimed_by,
                batch.sent_at,
                batch.provider_id,
                None,
                False,
                False,
                batch.handed_off_at,
                None,
                batch.id,
            )
            for subscriber in batch.subscriber_ids
            if (batch.id, subscriber) not in own
        ]
    return found


def _message(row: OutboxMessage) -> Message:
    return Message(
        row.id,
        str(row.id),
        row.alert_id,
        row.subscriber_id,
        row.channel,
        row.kind,
        row.status,
        row.attempts,
        row.claimed_by,
        row.sent_at,
        row.provider_id,
        row.last_error,
        row.outcome_unknown,
        row.resent_after_unknown,
        row.handed_off_at,
        row.next_attempt_at,
        row.batch_id,
    )
