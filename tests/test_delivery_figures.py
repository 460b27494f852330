"""Delivery figures of one alert: per channel and subscriber language, from outbox rows
written directly with every status the delivery code can leave behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import delete, insert, update

from alerts.delivery.figures import Counts, delivery_figures
from alerts.delivery.models import (
    CREATED,
    DELIVERED,
    PERMANENT,
    SENDING,
    TECHNICAL,
    TEMPORARY,
    OutboxMessage,
)
from subscribers.models import Subscriber
from tests.delivery_setup import add_alert, add_subscribers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ACCEPTED = NOW - timedelta(minutes=20)
_keys = count()


def _row(alert_id: int, subscriber_id: int | None, channel: str, status: str, **values) -> dict:
    return {
        "key": f"test:{alert_id}:{next(_keys)}",
        "alert_id": alert_id,
        "subscriber_id": subscriber_id,
        "channel": channel,
        "kind": "alert",
        "priority": 0,
        "payload": {},
        "status": status,
        "attempts": 0 if status == CREATED else 1,
        "next_attempt_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    } | values


@pytest.fixture
def people(database, settings) -> dict[str, int]:
    """One subscriber per language: en, nl and fr (fr gets no message)."""
    ids = {}
    for start, language in enumerate(("en", "nl", "fr")):
        added = add_subscribers(database, settings, 1, start=start, language=language)
        ids[language] = added[-1]
    return ids


def _fill(database, alert_id: int, people: dict[str, int]) -> None:
    en, nl = people["en"], people["nl"]
    rows = [
        # English, email: every status once, and the failures before and after acceptance
        _row(alert_id, en, "email", CREATED),
        _row(alert_id, en, "email", TEMPORARY),
        _row(alert_id, en, "email", SENDING, claimed_at=NOW),  # claimed, not yet accepted
        _row(alert_id, en, "email", SENDING, sent_at=ACCEPTED),  # accepted, no receipt yet
        _row(alert_id, en, "email", DELIVERED, sent_at=ACCEPTED),
        _row(alert_id, en, "email", PERMANENT, sent_at=ACCEPTED),  # bounced after acceptance
        _row(alert_id, en, "email", TECHNICAL, outcome_unknown=True, handed_off_at=ACCEPTED),
        _row(alert_id, en, "email", TECHNICAL),  # our failure, never handed off
        _row(alert_id, en, "email", TECHNICAL, sent_at=ACCEPTED),  # gave up after acceptance
        # Dutch, email: delivered, and refused outright by the provider
        _row(alert_id, nl, "email", DELIVERED, sent_at=ACCEPTED),
        _row(alert_id, nl, "email", PERMANENT),
        # an erased subscriber's rows
        _row(alert_id, None, "email", DELIVERED, sent_at=ACCEPTED),
        _row(alert_id, None, "email", CREATED),
        # SMS
        _row(alert_id, en, "sms", DELIVERED, sent_at=ACCEPTED),
        _row(alert_id, None, "sms", TECHNICAL, outcome_unknown=True, handed_off_at=ACCEPTED),
    ]
    with database.session() as session:
        session.execute(insert(OutboxMessage), rows)


def test_figures_per_channel_and_language(database, people):
    alert_id, other_alert = add_alert(database), add_alert(database)
    _fill(database, alert_id, people)
    _fill(database, other_alert, people)  # another alert's rows are not counted
    with database.session() as session:
        figures = delivery_figures(session, alert_id)
    assert figures.alert_id == alert_id
    assert figures.by_language == {
        "email": {
            "en": Counts(
                total=9, queued=3, sent=4, delivered=1, bounced=1, failed=2, outcome_unknown=1
            ),
            "nl": Counts(total=2, sent=1, delivered=1, bounced=1),
            "unknown": Counts(total=2, queued=1, sent=1, delivered=1),
        },
        "sms": {
            "en": Counts(total=1, sent=1, delivered=1),
            "unknown": Counts(total=1, outcome_unknown=1),
        },
    }
    assert figures.channels == {
        "email": Counts(
            total=13, queued=4, sent=6, delivered=3, bounced=2, failed=2, outcome_unknown=1
        ),
        "sms": Counts(total=2, sent=1, delivered=1, outcome_unknown=1),
    }
    assert figures.total == Counts(
        total=15, queued=4, sent=7, delivered=4, bounced=2, failed=2, outcome_unknown=2
    )


def test_an_alert_without_messages_has_zero_figures_on_both_channels(database):
    alert_id = add_alert(database)
    with database.session() as session:
        figures = delivery_figures(session, alert_id)
    assert figures.by_language == {}
    assert figures.channels == {"email": Counts(), "sms": Counts()}
    assert figures.total == Counts()


def test_the_current_language_counts_and_erasure_moves_rows_to_unknown(database, people):
    alert_id = add_alert(database)
    en, nl = people["en"], people["nl"]
    rows = [
        _row(alert_id, en, "email", DELIVERED, sent_at=ACCEPTED),
        _row(alert_id, nl, "email", DELIVERED, sent_at=ACCEPTED),
    ]
    with database.session() as session:
        session.execute(insert(OutboxMessage), rows)
        session.execute(update(Subscriber).where(Subscriber.id == en).values(language="de"))
        session.execute(delete(Subscriber).where(Subscriber.id == nl))  # ON DELETE SET NULL
    with database.session() as session:
        figures = delivery_figures(session, alert_id)
    one = Counts(total=1, sent=1, delivered=1)
    assert figures.by_language == {"email": {"de": one, "unknown": one}}
