"""The outbox's delivery round costs the same whatever the number of messages already
accepted and waiting for their receipts.

Before the partial indexes, every claim, sweep and "is this alert finished?" check visited
every accepted row: a million-recipient send grew with the square of its size. SQLite counts
the virtual-machine instructions each statement runs (its progress handler), which makes
the work of a round measurable without timing anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from alerts.delivery import outbox
from alerts.delivery.models import CREATED, DELIVERED, SENDING, TECHNICAL, OutboxMessage
from alerts.store import Database
from tests.delivery_setup import add_alert

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _row(alert_id: int, number: int, status: str, **values) -> dict:
    return {
        "key": f"alert:{alert_id}:{number}:email",
        "alert_id": alert_id,
        "subscriber_id": None,
        "channel": "email",
        "kind": "alert",
        "priority": 0,
        "payload": {},
        "status": status,
        "attempts": 1 if status != CREATED else 0,
        "next_attempt_at": NOW - timedelta(hours=1),
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW - timedelta(hours=1),
    } | values


def _fill(database: Database, alert_id: int, waiting: int) -> None:
    """`waiting` accepted messages awaiting receipts, a few delivered and unknown, and ten
    due: the round claims them all, so "is the alert finished?" must look at what is in flight."""
    sent = NOW - timedelta(minutes=30)
    rows = [
        _row(alert_id, n, SENDING, claimed_at=sent, handed_off_at=sent, sent_at=sent)
        for n in range(waiting)
    ]
    rows += [_row(alert_id, waiting + n, DELIVERED, sent_at=sent) for n in range(50)]
    lately = NOW - timedelta(minutes=1)  # within the grace period: not resent yet
    rows += [
        _row(alert_id, waiting + 50 + n, TECHNICAL, outcome_unknown=True, handed_off_at=lately)
        for n in range(5)
    ]
    rows += [_row(alert_id, waiting + 60 + n, CREATED) for n in range(10)]
    with database.session() as session:
        session.execute(insert(OutboxMessage), rows)


def _instructions(database: Database, alert_id: int) -> int:
    """SQLite VM instructions (in hundreds) for one delivery round's bookkeeping."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0  # carry on

    with database.session() as session:
        driver = session.connection().connection.driver_connection
        driver.set_progress_handler(count, 100)
        try:
            outbox.sweep_unknown(session, NOW, LEASE)
            outbox.resend_unheard(session, NOW, timedelta(minutes=10), ("email",))
            claimed = outbox.claim(session, "worker", 10, NOW, LEASE)
            outbox.unfinished(session, alert_id, ("email",))
        finally:
            driver.set_progress_handler(None, 0)
        session.rollback()  # the same round, measured on both tables
    assert len(claimed) == 10
    return counted[0]


def test_a_round_does_not_grow_with_the_messages_awaiting_receipts(tmp_path):
    """SQLite only: PostgreSQL's planner chooses by its statistics, not by these rules."""
    counts = []
    for waiting in (200, 20_000):
        database = Database(f"sqlite:///{tmp_path / f'{waiting}.sqlite3'}")
        try:
            alert_id = add_alert(database)
            _fill(database, alert_id, waiting)
            counts.append(_instructions(database, alert_id))
        finally:
            database.dispose()
    small, large = counts
    # A hundred times the rows; a scan of them would cost a hundred times the instructions.
    assert large < 2 * small + 20, (small, large)
