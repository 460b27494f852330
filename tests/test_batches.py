"""An alert's emails as batches (alerts/delivery/batches.py): a batch is one provider
request, claimed, handed off and accepted as a whole; a message gets a row of its own only
when something is said of it alone (a receipt, a failure, a reserved address, leaving).
On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from alerts.curation.models import Alert
from alerts.delivery import batches, outbox
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.figures import delivery_figures
from alerts.delivery.models import OutboxBatch, OutboxMessage
from alerts.delivery.receipts import apply_events, sendgrid_receipts
from alerts.delivery.service import SendRefused, send_alert
from alerts.relevance.service import default_catalogue
from subscribers import audience_sql
from subscribers.models import Subscriber
from tests.delivery_setup import add_alert, add_subscribers, provider_settings
from tests.fakes.sendgrid_server import Reply, SendGridServer, hang, recipients
from tests.test_delivery import Clock


@pytest.fixture
def env(settings, database):
    with SendGridServer() as sendgrid:
        configured = provider_settings(settings, sendgrid, delivery_lease_seconds=60)
        dispatcher = Dispatcher.from_settings(database, configured)
        dispatcher.clock = Clock()
        yield database, configured, dispatcher, sendgrid


def _send(database, alert_id):
    return send_alert(database, default_catalogue(), alert_id, now=datetime.now(UTC))


def _batches(database) -> list[OutboxBatch]:
    with database.session() as session:
        return batches.unsettled(session)


def _row_count(database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage))


def _messages(database, alert_id=None):
    with database.session() as session:
        return outbox.messages(session, alert_id)


def _languages(database, settings, counts: dict[str, int]) -> None:
    start = 0
    for language, count in counts.items():
        add_subscribers(database, settings, count, start=start, language=language)
        start += count


def test_fan_out_writes_one_batch_per_thousand_of_one_language(env):
    database, settings, _, _ = env
    _languages(database, settings, {"nl": 1_500, "fr": 300})
    fan_out = _send(database, add_alert(database))
    assert fan_out.written == 1_800 and fan_out.audience["email"] == 1_800
    found = sorted((b.language, b.size) for b in _batches(database))
    assert found == [("fr", 300), ("nl", 500), ("nl", 1_000)]
    assert _row_count(database) == 0  # no message has a row of its own yet
    with database.session() as session:
        assert outbox.counts(session) == {("email", "created"): 1_800}


def test_a_repeated_fan_out_queues_only_the_newcomers(env):
    database, settings, _, _ = env
    add_subscribers(database, settings, 3)
    alert_id = add_alert(database)
    assert _send(database, alert_id).written == 3
    assert _send(database, alert_id).written == 0
    add_subscribers(database, settings, 2, start=3)
    assert _send(database, alert_id).written == 2
    subscribers = [m.subscriber_id for m in _messages(database, alert_id)]
    assert len(subscribers) == len(set(subscribers)) == 5


def test_a_sent_batch_is_three_writes_and_no_rows(env):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 1_205)
    alert_id = add_alert(database)
    _send(database, alert_id)
    assert dispatcher.drain() == 1_205
    assert [len(r.body["personalizations"]) for r in sendgrid.accepted] == [1_000, 205]
    assert _row_count(database) == 0
    (first, second) = _batches(database)
    assert (first.status, first.provider_id) == ("accepted", sendgrid.accepted[0].reference)
    assert second.sent_at is not None and second.final == "sending"
    references = [ref for _, ref in recipients(sendgrid)]
    assert references[0] == f"b{first.id}.{first.subscriber_ids[0]}"
    with database.session() as session:
        assert outbox.counts(session) == {("email", "sending"): 1_205}
        figures = delivery_figures(session, alert_id).channel("email")
    assert (figures.total, figures.sent, figures.queued) == (1_205, 1_205, 0)


def test_a_receipt_gives_one_message_a_row_and_the_counts_stay_whole(env):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 3)
    alert_id = add_alert(database)
    _send(database, alert_id)
    dispatcher.drain()
    (_, reference), *_ = recipients(sendgrid)
    message_id = sendgrid.accepted[0].reference
    event = {"event": "delivered", "sg_event_id": "e1", "outbox_id": reference}
    event["sg_message_id"] = f"{message_id}.filter0001"
    bounce = event | {"sg_event_id": "e2", "event": "bounce", "outbox_id": "b999.1"}
    with database.session() as session:
        counts = apply_events(session, "sendgrid", sendgrid_receipts([event, bounce]), clock())
    assert (counts.changed, counts.unknown) == (1, 1)  # an unknown batch changes nothing
    with database.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.status, row.provider_id, row.attempts) == ("delivered", message_id, 1)
        assert outbox.counts(session) == {("email", "sending"): 2, ("email", "delivered"): 1}
        figures = delivery_figures(session, alert_id).channel("email")
    assert (figures.total, figures.sent, figures.delivered) == (3, 3, 1)


def clock():
    return datetime.now(UTC)


def test_a_receipt_naming_someone_outside_the_batch_is_ignored(env):
    database, settings, dispatcher, sendgrid = env
    ids = add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    dispatcher.drain()
    (batch,) = _batches(database)
    stranger = max(ids) + 1
    forged = {"event": "delivered", "sg_event_id": "f1", "outbox_id": f"b{batch.id}.{stranger}"}
    with database.session() as session:
        counts = apply_events(session, "sendgrid", sendgrid_receipts([forged]), clock())
    assert counts.unknown == 1 and _row_count(database) == 0


def test_a_failed_request_gives_its_messages_rows_that_retry_each_once(env):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 3)
    _send(database, add_alert(database))
    sendgrid.fail(Reply(429, headers={"Retry-After": "1"}))
    dispatcher.drain()
    with database.session() as session:
        rows = list(session.scalars(select(OutboxMessage)))
        assert {row.status for row in rows} == {"temporary-failure"}
        assert {row.batch_id for row in rows} == {_settled_batch(session)}
    dispatcher.clock.now += timedelta(minutes=5)
    dispatcher.drain()
    addresses = Counter(address for address, _ in recipients(sendgrid))
    assert len(addresses) == 3 and set(addresses.values()) == {1}
    assert {m.status for m in _messages(database)} == {"sending"}


def _settled_batch(session) -> int:
    return session.scalar(select(OutboxBatch.id).where(OutboxBatch.status == "settled"))


def test_a_timeout_is_an_unknown_outcome_a_receipt_settles(env):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    sendgrid.fail(hang(3.0))
    dispatcher.drain()
    messages = _messages(database)
    assert all(m.outcome_unknown and m.status == "technical-failure" for m in messages)
    receipt = {"event": "processed", "sg_event_id": "p1", "outbox_id": messages[0].reference}
    with database.session() as session:
        apply_events(session, "sendgrid", sendgrid_receipts([receipt]), clock())
    unknown = [m.outcome_unknown for m in _messages(database)]
    assert sorted(unknown) == [False, True]


def test_who_left_or_is_reserved_goes_the_per_message_way(env):
    database, settings, dispatcher, sendgrid = env
    ids = add_subscribers(database, settings, 4)
    with database.session() as session:
        session.get(Subscriber, ids[1]).email = "delivered@simulator.sme-alerts.invalid"
    alert_id = add_alert(database)
    _send(database, alert_id)
    with database.session() as session:
        session.get(Subscriber, ids[0]).status = "left"
        session.delete(session.get(Subscriber, ids[2]))  # erased before sending
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 1  # the one left in the batch
    by_subscriber = {m.subscriber_id: m for m in _messages(database, alert_id)}
    assert by_subscriber[ids[0]].status == "permanent-failure"
    assert by_subscriber[None].status == "permanent-failure"  # erased: an anonymous count
    assert by_subscriber[ids[1]].status == "delivered"  # simulated, never sent
    assert by_subscriber[ids[3]].status == "sending" and by_subscriber[ids[3]].id is None


def test_a_language_changed_since_the_fan_out_gets_its_own_request(env):
    database, settings, dispatcher, sendgrid = env
    ids = add_subscribers(database, settings, 3)
    _send(database, add_alert(database))
    with database.session() as session:
        session.get(Subscriber, ids[0]).language = "nl"
    dispatcher.drain()
    sizes = sorted(len(r.body["personalizations"]) for r in sendgrid.accepted)
    assert sizes == [1, 2]
    subjects = {r.body["subject"] for r in sendgrid.accepted}
    assert len(subjects) == 2  # composed in each language
    assert sorted(b.size for b in _batches(database)) == [1, 2]


def test_a_batch_whose_worker_died_after_handing_off_becomes_unknown(env):
    database, settings, dispatcher, _ = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    now, lease = dispatcher.clock(), timedelta(seconds=60)
    with database.session() as session:
        (batch,) = batches.claim(session, "dead-worker", 4, now, lease)
        assert batches.hand_off(session, batch.id, "dead-worker", now)
    dispatcher.clock.now = now + timedelta(minutes=2)
    assert dispatcher.drain() == 0  # nothing is sent again blindly
    messages = _messages(database)
    assert len(messages) == 2 and all(m.outcome_unknown for m in messages)
    assert {m.batch_id for m in messages} == {batch.id}


def test_a_worker_whose_lease_ran_out_cannot_split_or_hand_off(env):
    database, settings, _, _ = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    now, lease = clock(), timedelta(seconds=60)
    with database.session() as session:
        (mine,) = batches.claim(session, "slow", 4, now, lease)
    later = now + timedelta(minutes=2)
    with database.session() as session:
        (taken,) = batches.claim(session, "quick", 4, later, lease)  # abandoned: taken over
    assert taken.id == mine.id and taken.attempts == 2
    with database.session() as session:
        assert batches.split(session, mine, [mine.subscriber_ids], "slow", later) is None
        assert not batches.hand_off(session, mine.id, "slow", later)
        assert batches.hand_off(session, taken.id, "quick", later)


def test_stopping_gives_back_the_batches_not_handed_off(env):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    dispatcher.stop()
    dispatcher.run_once()
    assert not sendgrid.accepted
    (batch,) = _batches(database)
    assert (batch.status, batch.claimed_by, batch.attempts) == ("created", None, 0)


def test_an_alert_is_sent_only_once_its_batches_are(env):
    database, settings, dispatcher, _ = env
    add_subscribers(database, settings, 2)
    alert_id = add_alert(database)
    _send(database, alert_id)
    with database.session() as session:
        assert outbox.unfinished(session, alert_id)
    dispatcher.drain()
    with database.session() as session:
        assert not outbox.unfinished(session, alert_id)


def test_a_part_that_cannot_be_composed_fails_alone(env, monkeypatch):
    database, settings, dispatcher, sendgrid = env
    _languages(database, settings, {"en": 2, "nl": 1})
    _send(database, add_alert(database))
    compose = dispatcher._email

    def broken_in_dutch(alert, language, *args):
        if language == "nl":
            raise ValueError("a broken template")
        return compose(alert, language, *args)

    monkeypatch.setattr(dispatcher, "_email", broken_in_dutch)
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 2
    statuses = sorted(m.status for m in _messages(database))
    assert statuses == ["sending", "sending", "technical-failure"]


def test_a_channel_taking_smaller_requests_gets_them(env):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 250)
    _send(database, add_alert(database))
    dispatcher.email_channel.batch_size = 100
    dispatcher.drain()
    assert [len(r.body["personalizations"]) for r in sendgrid.accepted] == [100, 100, 50]
    assert sorted(b.size for b in _batches(database)) == [50, 100, 100]


def test_two_fan_outs_at_once_queue_each_subscriber_once(env):
    database, settings, _, _ = env
    add_subscribers(database, settings, 3_000)
    alert_id = add_alert(database)
    outcomes: list = []

    def fan_out():
        try:
            outcomes.append(_send(database, alert_id).written)
        except Exception as error:  # SQLite may refuse the second writer: nothing written
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=fan_out) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    subscribers = [m.subscriber_id for m in _messages(database, alert_id)]
    assert len(subscribers) == len(set(subscribers)) == 3_000
    assert 3_000 in outcomes


def test_workers_send_the_first_batches_while_the_fan_out_goes_on(env, monkeypatch):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 25_000)
    alert_id = add_alert(database)
    listed = audience_sql.recipients
    seen: dict[str, object] = {}

    def meanwhile(session, targeting, channels):
        for position, recipient in enumerate(listed(session, targeting, channels)):
            if position == 20_000:  # two commits of ten batches are in: a worker sends them
                seen["sent"] = dispatcher.drain()
                with database.session() as other:
                    seen["alert"] = other.get(Alert, alert_id).status
            yield recipient

    monkeypatch.setattr("alerts.delivery.service.audience_sql.recipients", meanwhile)
    assert _send(database, alert_id).written == 25_000
    assert seen == {"sent": 20_000, "alert": "approved"}  # not "sent" before the fan-out ends
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 25_000
    with database.session() as session:
        assert session.get(Alert, alert_id).status == "sent"


def test_a_fan_out_that_died_is_taken_over_after_its_lease(env):
    database, settings, _, _ = env
    add_subscribers(database, settings, 2)
    alert_id = add_alert(database)
    started = datetime.now(UTC)
    with database.session() as session:
        session.get(Alert, alert_id).fan_out_started_at = started  # another one is running
    with pytest.raises(SendRefused, match="being sent right now"):
        send_alert(database, default_catalogue(), alert_id, now=started + timedelta(minutes=1))
    later = started + timedelta(minutes=11)
    assert send_alert(database, default_catalogue(), alert_id, now=later).written == 2
    with database.session() as session:
        assert session.get(Alert, alert_id).fan_out_started_at is None


LISTING = "alerts.delivery.service.audience_sql.recipients"


def _pausing_at(position_wanted: int, action):
    """audience_sql.recipients, calling `action` once the fan-out has listed that many."""
    listed = audience_sql.recipients

    def recipients_(session, targeting, channels):
        for position, recipient in enumerate(listed(session, targeting, channels)):
            if position == position_wanted:
                action()
            yield recipient

    return recipients_


def test_an_alert_cancelled_during_its_fan_out_stays_cancelled(env, monkeypatch):
    database, settings, dispatcher, sendgrid = env
    add_subscribers(database, settings, 12_000)
    alert_id = add_alert(database)

    def cancel():
        with database.session() as session:
            session.get(Alert, alert_id).status = "cancelled"

    monkeypatch.setattr(
        "alerts.delivery.service.audience_sql.recipients", _pausing_at(11_000, cancel)
    )
    _send(database, alert_id)
    dispatcher.drain()
    assert not sendgrid.accepted
    with database.session() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.status, alert.fan_out_started_at) == ("cancelled", None)
    assert {m.status for m in _messages(database)} == {"technical-failure"}


def test_a_fan_out_whose_place_was_taken_stops_at_its_next_write(env, monkeypatch):
    database, settings, _, _ = env
    add_subscribers(database, settings, 12_000)
    alert_id = add_alert(database)

    def take_over():
        with database.session() as session:
            session.get(Alert, alert_id).fan_out_started_at = datetime.now(UTC)

    monkeypatch.setattr(
        "alerts.delivery.service.audience_sql.recipients", _pausing_at(11_000, take_over)
    )
    with pytest.raises(SendRefused, match="another fan-out took over"):
        _send(database, alert_id)
    assert len(_messages(database, alert_id)) == 10_000  # the first ten batches only
    with database.session() as session:
        assert session.get(Alert, alert_id).fan_out_started_at is not None  # still theirs


def test_an_alert_whose_fan_out_ends_after_its_last_batch_went_is_still_finished(env):
    database, settings, dispatcher, _ = env
    add_subscribers(database, settings, 2)
    alert_id = add_alert(database)
    _send(database, alert_id)
    dispatcher.drain()
    with database.session() as session:  # as if the fan-out had ended only now
        session.get(Alert, alert_id).status = "sending"
    dispatcher.run_once()  # an idle round
    with database.session() as session:
        assert session.get(Alert, alert_id).status == "sent"


def test_a_receipt_between_a_failure_and_its_record_is_kept(env):
    database, settings, _, _ = env
    add_subscribers(database, settings, 1)
    _send(database, add_alert(database))
    now, lease = clock(), timedelta(seconds=60)
    with database.session() as session:
        (batch,) = batches.claim(session, "w", 4, now, lease)
        batches.hand_off(session, batch.id, "w", now)
        (row,) = batches.explode(
            session,
            batch._replace(handed_off_at=now),
            batch.subscriber_ids,
            "w",
            now,
            settle_if=batches.handed_off_by("w"),
        )
        session.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.id == row.id)
            .values(status="delivered", sent_at=now)
        )  # the provider's receipt, first
        outbox.outcome_unknown(session, [row.id], "timed out", now)
        stored = session.get(OutboxMessage, row.id)
        assert (stored.status, stored.outcome_unknown) == ("delivered", False)
