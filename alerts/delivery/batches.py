"""An alert's emails as batches: one outbox_batches row per provider request.

The fan-out writes a batch per thousand subscribers of one language; a worker claims it,
marks it handed off, posts it and marks it accepted: three row writes per thousand messages.
Anything about one recipient — not sendable any more, a reserved test address, a failed or
unknown request, a receipt — gives that message a row of its own in the outbox ("exploding"
it), after which the per-message code (retries, unknown outcomes, receipts) takes over.

Every statement is a conditional update or an insert-or-ignore on the message key, so two
workers, a crash and a repeated fan-out can neither lose a recipient nor send one twice."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    case,
    cast,
    func,
    insert,
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

from alerts.delivery import outbox
from alerts.delivery.models import (
    BATCH_ACCEPTED,
    BATCH_CREATED,
    BATCH_DUE_SQL,
    BATCH_OPEN_SQL,
    BATCH_SENDING,
    BATCH_SETTLED,
    SENDING,
    OutboxBatch,
    OutboxMessage,
)
from alerts.delivery.outbox import CLAIMED_COLUMNS, Claimed
from subscribers.models import Subscriber

BATCH_SIZE = 1_000  # SendGrid's limit of personalizations per request
INSERT_CHUNK = 500  # batch rows per INSERT statement


class Batch(NamedTuple):
    """A claimed batch, as the dispatcher needs it."""

    id: int
    alert_id: int
    channel: str
    priority: int
    language: str
    subscriber_ids: list[int]
    attempts: int
    handed_off_at: datetime | None


_BATCH_COLUMNS = (
    OutboxBatch.id,
    OutboxBatch.alert_id,
    OutboxBatch.channel,
    OutboxBatch.priority,
    OutboxBatch.language,
    OutboxBatch.subscriber_ids,
    OutboxBatch.attempts,
    OutboxBatch.handed_off_at,
)


# --- fan-out ----------------------------------------------------------------------------


def batch_rows(
    recipients: Iterable[tuple[int, str]],
    alert_id: int,
    priority: int,
    now: datetime,
    queued: set[int],
    channel: str = "email",
    size: int = BATCH_SIZE,
    chunk: int = INSERT_CHUNK,
) -> Iterator[list[dict]]:
    """Batch rows of up to `size` subscribers of one language, `chunk` rows at a time as
    they fill up, from (subscriber id, language) pairs; subscribers in `queued` (a
    repeated fan-out) are left out. Pure: the caller writes each chunk."""
    open_ids: dict[str, list[int]] = {}
    rows: list[dict] = []
    for subscriber_id, language in recipients:
        if subscriber_id in queued:
            continue
        ids = open_ids.setdefault(language, [])
        ids.append(subscriber_id)
        if len(ids) == size:
            rows.append(_batch_row(alert_id, channel, priority, language, ids, now))
            open_ids[language] = []
            if len(rows) == chunk:
                yield rows
                rows = []
    rows += [
        _batch_row(alert_id, channel, priority, language, ids, now)
        for language, ids in open_ids.items()
        if ids
    ]
    if rows:
        yield rows


def _batch_row(
    alert_id: int, channel: str, priority: int, language: str, ids: list[int], now: datetime
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "channel": channel,
        "priority": priority,
        "language": language,
        "subscriber_ids": ids,
        "size": len(ids),
        "status": BATCH_CREATED,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def insert_batches(session: Session, rows: list[dict]) -> None:
    if rows:
        session.connection().execute(insert(OutboxBatch), rows)


def already_queued(session: Session, alert_id: int, channel: str) -> set[int]:
    """Subscribers with a message of this alert on `channel`, as a row or in a batch. Two
    cheap existence checks first: a first fan-out reads nothing more."""
    of_rows = select(OutboxMessage.subscriber_id).where(
        OutboxMessage.alert_id == alert_id, OutboxMessage.channel == channel
    )
    of_batches = select(OutboxBatch.subscriber_ids).where(
        OutboxBatch.alert_id == alert_id, OutboxBatch.channel == channel
    )
    queued: set[int] = set()
    if session.scalar(select(of_batches.exists())):
        for ids in session.connection().execute(of_batches).scalars():
            queued.update(ids)
    if session.scalar(select(of_rows.exists())):
        queued.update(session.connection().execute(of_rows).scalars())
    return queued


# --- the queue --------------------------------------------------------------------------


def claim(
    session: Session, worker: str, limit: int, now: datetime, lease: timedelta
) -> list[Batch]:
    """Up to `limit` batches now this worker's: first those whose claimer vanished before
    handing them off, then due ones, urgent first."""
    abandoned = select(OutboxBatch.id).where(
        BATCH_OPEN_SQL,
        OutboxBatch.status == BATCH_SENDING,
        OutboxBatch.handed_off_at.is_(None),
        OutboxBatch.claimed_at < now - lease,
    )
    batches = _claim(session, abandoned.order_by(OutboxBatch.claimed_at), limit, worker, now)
    if len(batches) < limit:
        due = select(OutboxBatch.id).where(BATCH_DUE_SQL)
        due = due.order_by(OutboxBatch.priority, OutboxBatch.id)
        batches += _claim(session, due, limit - len(batches), worker, now)
    return sorted(batches, key=lambda batch: (batch.priority, batch.id))


def _claim(session: Session, candidates, limit: int, worker: str, now: datetime) -> list[Batch]:
    claim = outbox.claim_update(session, OutboxBatch, candidates, limit, BATCH_SENDING, worker, now)
    return [Batch(*row) for row in claim.returning(*_BATCH_COLUMNS)]


def split(
    session: Session, batch: Batch, groups: list[list[int]], worker: str, now: datetime
) -> list[Batch] | None:
    """One batch per group of recipients that share a content (language, referred firms):
    the batch keeps the first group, new batches, claimed by this worker, take the others.
    Recipients in no group (given rows of their own) leave the batch; no groups at all
    settles it. None if this worker no longer holds the batch (its lease ran out)."""
    first, *others = groups or [[]]
    kept = update(OutboxBatch).where(*_held(batch.id, worker))
    values = {"subscriber_ids": first, "size": len(first), "updated_at": now}
    if not groups:
        values["status"] = BATCH_SETTLED
    changed = session.connection().execute(
        kept.values(**values).execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        return None
    parts = [batch._replace(subscriber_ids=first)] if groups else []
    for ids in others:
        row = _batch_row(batch.alert_id, batch.channel, batch.priority, batch.language, ids, now)
        row |= {"status": BATCH_SENDING, "claimed_by": worker, "claimed_at": now}
        row["attempts"] = batch.attempts
        new_id = session.connection().scalar(insert(OutboxBatch).returning(OutboxBatch.id), row)
        parts.append(batch._replace(id=new_id, subscriber_ids=ids))
    return parts


def _held(batch_id: int, worker: str) -> tuple:
    """The batch is claimed by this worker and not handed off yet."""
    return (OutboxBatch.id == batch_id, *_held_by(worker))


def _held_by(worker: str) -> tuple:
    return (
        OutboxBatch.claimed_by == worker,
        OutboxBatch.status == BATCH_SENDING,
        OutboxBatch.handed_off_at.is_(None),
    )


def hand_off(session: Session, batch_id: int, worker: str, now: datetime) -> bool:
    """Committed just before the request; False if this worker no longer holds the batch
    (its lease ran out and another worker took it)."""
    statement = (
        update(OutboxBatch)
        .where(*_held(batch_id, worker))
        .values(handed_off_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return (session.connection().execute(statement).rowcount or 0) == 1


def accepted(
    session: Session, batch_id: int, provider_id: str, now: datetime, final: str = SENDING
) -> None:
    """The provider took the request: its recipients are `final` (sending until receipts
    say more, or delivered for a channel that delivers at once). If a sweep took the batch
    for lost meanwhile (a request slower than the lease), its rows are marked instead."""
    provider_id = provider_id[:100]
    statement = (
        update(OutboxBatch)
        .where(OutboxBatch.id == batch_id, OutboxBatch.status == BATCH_SENDING)
        .values(
            status=BATCH_ACCEPTED,
            sent_at=now,
            provider_id=provider_id or None,
            final=final,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if session.connection().execute(statement).rowcount == 1:
        return
    unknown = (  # what the sweep recorded as unknown and nothing has settled since
        update(OutboxMessage)
        .where(
            OutboxMessage.batch_id == batch_id,
            OutboxMessage.outcome_unknown.is_(True),
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.resent_after_unknown.is_(False),
        )
        .values(
            status=final,
            outcome_unknown=False,
            sent_at=now,
            provider_id=provider_id or None,
            last_error=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(unknown)


def release(session: Session, batch_ids: list[int], worker: str, now: datetime) -> None:
    """Give back batches this worker claimed and never handed off (it is stopping)."""
    if not batch_ids:
        return
    statement = (
        update(OutboxBatch)
        .where(OutboxBatch.id.in_(batch_ids), *_held_by(worker))
        .values(
            status=BATCH_CREATED,
            claimed_by=None,
            claimed_at=None,
            attempts=OutboxBatch.attempts - 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(statement)


def _update_batch(session: Session, batch_id: int, now: datetime, **values) -> None:
    statement = (
        update(OutboxBatch)
        .where(OutboxBatch.id == batch_id)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(statement)


# --- messages of their own --------------------------------------------------------------


def explode(
    session: Session,
    batch: Batch,
    subscriber_ids: list[int],
    worker: str,
    now: datetime,
    *,
    settle_if: tuple | None = None,
) -> list[Claimed]:
    """Give these recipients of a claimed batch rows of their own, as claimed by `worker`
    (handed off if the batch was), for the per-message code to finish. With `settle_if`
    (conditions on the batch), they are all of its recipients and the batch is settled
    first — only if the conditions still hold (else nothing is done: another worker or a
    record got there first). Recipients that have a row already (a receipt came first) keep
    it and are not returned."""
    if settle_if is not None:
        settle = (
            update(OutboxBatch)
            .where(OutboxBatch.id == batch.id, *settle_if)
            .values(status=BATCH_SETTLED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if session.connection().execute(settle).rowcount != 1:
            return []
    values = {
        "status": SENDING,
        "attempts": batch.attempts,
        "claimed_by": worker,
        "claimed_at": now,
        "handed_off_at": batch.handed_off_at,
        "batch_id": batch.id if settle_if is not None else None,
    }
    return materialize(session, batch, subscriber_ids, values, now)


def held(batch_id: int, worker: str) -> tuple:
    """Conditions: the batch is claimed by this worker and not handed off yet."""
    return _held(batch_id, worker)[1:]


def handed_off_by(worker: str) -> tuple:
    """Conditions: the batch is this worker's, handed off, no outcome recorded yet."""
    return (
        OutboxBatch.claimed_by == worker,
        OutboxBatch.status == BATCH_SENDING,
        OutboxBatch.handed_off_at.is_not(None),
    )


def lost(now: datetime, lease: timedelta) -> tuple:
    """Conditions: handed off by a worker that died before hearing back."""
    return (
        OutboxBatch.status == BATCH_SENDING,
        OutboxBatch.claimed_at < now - lease,
        OutboxBatch.handed_off_at < now - lease,
    )


def materialize(
    session: Session, batch: Batch, subscriber_ids: list[int], values: dict, now: datetime
) -> list[Claimed]:
    """Insert-or-ignore (on the message key) one outbox row per subscriber of the batch's
    alert and channel, with `values`; an erased subscriber's row has no subscriber id."""
    if not subscriber_ids:
        return []
    postgresql = session.bind.dialect.name == "postgresql"
    if postgresql:
        array = cast(bindparam("ids", list(subscriber_ids), ARRAY(BigInteger)), ARRAY(BigInteger))
        listed = func.unnest(array).table_valued("value").render_derived()
    else:
        encoded = orjson.dumps(list(subscriber_ids)).decode()
        listed = func.json_each(bindparam("ids", encoded)).table_valued("value")
    given = listed.c.value
    columns = {
        "key": literal(f"alert:{batch.alert_id}:")
        + cast(given, String)
        + literal(f":{batch.channel}"),
        "alert_id": literal(batch.alert_id, Integer),
        "subscriber_id": Subscriber.id,
        "channel": literal(batch.channel, String),
        "kind": literal("alert", String),
        "priority": literal(batch.priority, Integer),
        "payload": literal_column("'{}'::jsonb" if postgresql else "'{}'"),
        "next_attempt_at": literal(now, OutboxMessage.__table__.c.next_attempt_at.type),
        "outcome_unknown": literal(False),
        "resent_after_unknown": literal(False),
        "created_at": literal(now, OutboxMessage.__table__.c.created_at.type),
        "updated_at": literal(now, OutboxMessage.__table__.c.updated_at.type),
    }
    table = OutboxMessage.__table__
    columns |= {name: literal(value, table.c[name].type) for name, value in values.items()}
    rows = (
        select(*columns.values())
        .select_from(listed)
        .outerjoin(Subscriber, Subscriber.id == given)
        .where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
    )
    insert_ = postgresql_insert if postgresql else sqlite_insert
    statement = (
        insert_(OutboxMessage)
        .from_select(list(columns), rows)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(*CLAIMED_COLUMNS)
    )
    return [Claimed(*row) for row in session.connection().execute(statement)]


def receipt_row(session: Session, batch_id: int, subscriber_id: int, now: datetime) -> int | None:
    """The outbox row of one recipient of a batch, created from the batch when a receipt
    is the first thing we hear of that message: None if the batch never handed it off."""
    found = session.get(OutboxBatch, batch_id)
    if found is None:
        return None
    key = f"alert:{found.alert_id}:{subscriber_id}:{found.channel}"
    existing = session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))
    handed_off = found.status in (BATCH_SENDING, BATCH_ACCEPTED) and found.handed_off_at
    if existing is not None or not handed_off or subscriber_id not in found.subscriber_ids:
        return existing
    values = {
        "status": found.final or SENDING,
        "attempts": found.attempts,
        "claimed_by": found.claimed_by,
        "claimed_at": found.handed_off_at,
        "handed_off_at": found.handed_off_at,
        "sent_at": found.sent_at or now,  # a receipt proves the provider took it
        "provider_id": found.provider_id,
        "batch_id": found.id,
    }
    batch = Batch(*(getattr(found, column.key) for column in _BATCH_COLUMNS))
    materialize(session, batch, [subscriber_id], values, now)
    return session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))


# --- recovery and figures ---------------------------------------------------------------


def stale_handed_off(session: Session, now: datetime, lease: timedelta) -> list[Batch]:
    """Batches handed off by a worker that died before hearing back."""
    query = select(*_BATCH_COLUMNS).where(BATCH_OPEN_SQL, *lost(now, lease))
    return [Batch(*row) for row in session.execute(query)]


def open_for(session: Session, alert_id: int) -> bool:
    """Whether a batch of the alert is still waiting or in flight."""
    query = select(OutboxBatch.id).where(BATCH_OPEN_SQL, OutboxBatch.alert_id == alert_id)
    return bool(session.scalar(select(query.exists())))


def open_for_any(session: Session) -> bool:
    """Whether any batch is still waiting or in flight."""
    return bool(session.scalar(select(select(OutboxBatch.id).where(BATCH_OPEN_SQL).exists())))


def own_rows():
    """Per batch, how many of its recipients have rows of their own (counted there)."""
    return (
        select(OutboxMessage.batch_id, func.count().label("own"))
        .where(OutboxMessage.batch_id.is_not(None))
        .group_by(OutboxMessage.batch_id)
        .subquery()
    )


def derived_status():
    """The status of a batch's recipients without a row of their own."""
    return case(
        (OutboxBatch.status == BATCH_ACCEPTED, func.coalesce(OutboxBatch.final, SENDING)),
        (OutboxBatch.status == BATCH_SENDING, SENDING),
        else_=BATCH_CREATED,
    )


def batch_counts(session: Session, alert_id: int | None = None) -> dict[tuple[str, str], int]:
    """(channel, status) -> messages still counted by their batch (not settled ones)."""
    own = own_rows()
    status = derived_status()
    query = (
        select(
            OutboxBatch.channel,
            status,
            func.sum(OutboxBatch.size - func.coalesce(own.c.own, 0)),
        )
        .outerjoin(own, own.c.batch_id == OutboxBatch.id)
        .where(OutboxBatch.status != BATCH_SETTLED)
        .group_by(OutboxBatch.channel, status)
    )
    if alert_id is not None:
        query = query.where(OutboxBatch.alert_id == alert_id)
    return {(channel, state): int(n or 0) for channel, state, n in session.execute(query) if n}


def recipient_status(batch_status: str, final: str | None) -> str:
    """What derived_status computes in SQL, for one batch in Python."""
    if batch_status == BATCH_ACCEPTED:
        return final or SENDING
    return SENDING if batch_status == BATCH_SENDING else BATCH_CREATED


def unsettled(session: Session, alert_id: int | None = None) -> list[OutboxBatch]:
    """The batches that still tell some of their recipients' messages, detached."""
    query = select(OutboxBatch).where(OutboxBatch.status != BATCH_SETTLED)
    if alert_id is not None:
        query = query.where(OutboxBatch.alert_id == alert_id)
    found = list(session.scalars(query.order_by(OutboxBatch.id)))
    for batch in found:
        session.expunge(batch)
    return found
