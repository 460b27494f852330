"""Fan-out and dispatch through the real SendGrid client and SMS channel, aimed at fake
providers on 127.0.0.1, on SQLite and PostgreSQL: batching, links per recipient, retries,
unknown outcomes, permanent refusals, suppressions and the alert's own status."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.curation.models import DRAFT, SENT, Alert
from alerts.delivery import outbox
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.newsletter import queue_newsletters
from alerts.delivery.receipts import Receipt, apply_events
from alerts.delivery.service import SendRefused, send_alert
from alerts.relevance.service import default_catalogue
from subscribers.models import Subscriber, Suppression
from tests.delivery_setup import TEXTS, add_alert, add_subscribers, provider_settings
from tests.fakes.sendgrid_server import Reply, SendGridServer, hang, recipients, reset
from tests.fakes.sms_server import SmsServer

TEXTS_WITH_MARKUP = TEXTS["en"] | {"title": "<b>FortiGate</b> flaw exploited"}


class Clock:
    """A minute ahead of real time (so rows just queued are due), then moves only when told."""

    def __init__(self):
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self):
        return self.now


@pytest.fixture
def providers():
    with SendGridServer() as sendgrid, SmsServer() as sms:
        yield sendgrid, sms


@pytest.fixture
def env(settings, database, providers):
    sendgrid, sms = providers
    configured = provider_settings(settings, sendgrid, sms)
    clock = Clock()
    dispatcher = Dispatcher.from_settings(database, configured)
    dispatcher.clock = clock
    return database, configured, dispatcher, sendgrid, sms, clock


def _rows(database) -> list[outbox.Message]:
    """Every message: its own row, or its batch's recipient."""
    with database.session() as session:
        return outbox.messages(session)


def _send(database, alert_id):
    return send_alert(database, default_catalogue(), alert_id, now=datetime.now(UTC))


def test_one_request_per_thousand_with_each_recipients_own_links(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 1_205)
    alert_id = add_alert(database)
    fan_out = _send(database, alert_id)
    assert fan_out.audience["email"] == 1_205 and fan_out.written == 1_205

    assert dispatcher.drain() == 1_205
    assert [len(r.body["personalizations"]) for r in sendgrid.accepted] == [1000, 205]
    first = sendgrid.accepted[0].body
    assert "[[PREFERENCES]]" in first["content"][0]["value"]  # substituted by SendGrid
    person = first["personalizations"][0]
    assert person["substitutions"]["[[PREFERENCES]]"].startswith(settings.public_base_url)
    assert person["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert person["headers"]["List-Unsubscribe"].startswith("<http")
    sent = recipients(sendgrid)
    assert len({address for address, _ in sent}) == 1_205  # each once
    rows = _rows(database)
    assert {row.status for row in rows} == {"sending"} and all(row.sent_at for row in rows)
    assert {row.provider_id for row in rows} == {r.reference for r in sendgrid.accepted}
    with database.session() as session:
        assert session.get(Alert, alert_id).status == SENT


def test_fan_out_is_idempotent_and_only_for_approved_alerts(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 10)
    alert_id = add_alert(database)
    assert _send(database, alert_id).written == 10
    assert _send(database, alert_id).written == 0
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 10
    with pytest.raises(SendRefused, match="only approved"):
        _send(database, add_alert(database, status=DRAFT))


def test_targeting_reaches_only_those_who_run_the_product(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 3)
    add_subscribers(database, settings, 2, start=100, families=["wordpress"])
    assert _send(database, add_alert(database)).audience["email"] == 3
    everyone = add_alert(database, targeting={})
    assert _send(database, everyone).audience["email"] == 5


def test_dry_run_counts_and_writes_nothing(env):
    database, settings, *_ = env
    add_subscribers(database, settings, 4)
    fan_out = send_alert(database, default_catalogue(), add_alert(database), dry_run=True)
    assert fan_out.audience["email"] == 4 and fan_out.written == 0 and _rows(database) == []


def test_throttled_batch_waits_for_retry_after_then_goes(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 3)
    _send(database, add_alert(database))
    sendgrid.fail(Reply(429, {"Retry-After": "120"}))
    dispatcher.run_once()
    rows = _rows(database)
    assert {row.status for row in rows} == {"temporary-failure"}
    assert rows[0].next_attempt_at >= clock.now + timedelta(seconds=120)
    assert dispatcher.run_once() == 0  # not due yet
    clock.now += timedelta(seconds=121)
    dispatcher.drain()
    assert {row.status for row in _rows(database)} == {"sending"}
    assert len(recipients(sendgrid)) == 3


def test_server_errors_retry_up_to_a_bound_then_technical_failure(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    sendgrid.fail(*[Reply(500)] * settings.delivery_max_attempts)
    for _ in range(settings.delivery_max_attempts):
        dispatcher.run_once()
        clock.now += timedelta(hours=2)
    rows = _rows(database)
    assert {row.status for row in rows} == {"technical-failure"}
    assert {row.attempts for row in rows} == {settings.delivery_max_attempts}
    assert not any(row.outcome_unknown for row in rows) and recipients(sendgrid) == []


@pytest.mark.parametrize("fault", [hang(5), reset()], ids=["timeout", "reset"])
def test_unknown_outcome_is_recorded_and_never_resent(env, fault):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    sendgrid.fail(fault)
    dispatcher.run_once()
    rows = _rows(database)
    assert {row.status for row in rows} == {"technical-failure"}
    assert all(row.outcome_unknown for row in rows)
    clock.now += timedelta(seconds=settings.receipt_grace_seconds - 60)  # a receipt may come
    assert dispatcher.run_once() == 0 and recipients(sendgrid) == []


def test_provider_unreachable_is_retried(env, providers):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    dispatcher.email_channel = Dispatcher.from_settings(
        database, settings.model_copy(update={"sendgrid_host": "http://127.0.0.1:9"})
    ).email_channel
    dispatcher.run_once()
    rows = _rows(database)
    assert {row.status for row in rows} == {"temporary-failure"}
    assert not any(row.outcome_unknown for row in rows)


def test_a_refused_email_request_is_ours_to_fix_and_suppresses_nobody(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    sendgrid.fail(Reply(400, body={"errors": [{"field": "content", "message": "bad"}]}))
    dispatcher.run_once()
    assert {row.status for row in _rows(database)} == {"technical-failure"}
    with database.session() as session:
        assert session.scalar(select(Suppression.id)) is None

    add_subscribers(database, settings, 1, start=50, families=["wordpress"])
    lone = add_alert(database, targeting={"families": ["wordpress"]})
    _send(database, lone)
    sendgrid.fail(Reply(400, body={"errors": [{"field": "personalizations.0.to"}]}))
    dispatcher.run_once()
    (row,) = [row for row in _rows(database) if row.alert_id == lone]
    assert row.status == "technical-failure"  # email bounces arrive through receipts
    with database.session() as session:
        assert session.scalar(select(Suppression.id)) is None


def test_who_left_before_sending_gets_nothing(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    ids = add_subscribers(database, settings, 3)
    _send(database, add_alert(database))
    with database.session() as session:
        session.get(Subscriber, ids[0]).status = "left"
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 2
    statuses = sorted(row.status for row in _rows(database))
    assert statuses == ["permanent-failure", "sending", "sending"]


def test_sms_one_request_each_with_opt_out_link(env):
    database, settings, dispatcher, sendgrid, sms, _ = env
    add_subscribers(database, settings, 2, phone="+3247000{n:04d}")
    _send(database, add_alert(database))
    dispatcher.drain()
    assert len(sms.accepted) == 2
    body = sms.accepted[0].body["Body"]
    assert f"{settings.public_base_url}/s/opt" in body and "/alerts/" in body
    assert "reference=outbox-" in sms.accepted[0].body["StatusCallback"]
    sms_rows = [row for row in _rows(database) if row.channel == "sms"]
    assert {row.status for row in sms_rows} == {"sending"}


def test_invalid_number_is_permanent_and_suppressed(env):
    database, settings, dispatcher, _, sms, _ = env
    add_subscribers(database, settings, 1, phone="+3247000{n:04d}")
    _send(database, add_alert(database))
    sms.fail(Reply(400, body={"code": 21211, "message": "invalid", "status": 400}))
    dispatcher.drain()
    sms_row = [row for row in _rows(database) if row.channel == "sms"][0]
    assert sms_row.status == "permanent-failure" and "21211" in sms_row.last_error
    with database.session() as session:
        assert session.scalar(select(Suppression.channel)) == "sms"


def test_urgent_goes_before_newsletter(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 2)
    news = add_alert(database, tier="newsletter", targeting={})
    with database.session() as session:
        session.get(Alert, news).approved_at = datetime.now(UTC) - timedelta(hours=1)
    queue_newsletters(database, default_catalogue(), "weekly", datetime.now(UTC))
    urgent = add_alert(database)
    _send(database, urgent)  # queued after the newsletter issues
    dispatcher.drain()
    kinds = []
    by_reference = {message.reference: message.kind for message in _rows(database)}
    for received in sendgrid.accepted:
        outbox_id = received.body["personalizations"][0]["custom_args"]["outbox_id"]
        kinds.append(by_reference[outbox_id])
    assert kinds == ["alert", "newsletter"]


def test_a_cancelled_alert_is_not_sent(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 2)
    alert_id = add_alert(database)
    _send(database, alert_id)
    with database.session() as session:
        session.get(Alert, alert_id).status = "cancelled"
    dispatcher.drain()
    assert sendgrid.hits == 0
    assert {row.status for row in _rows(database)} == {"technical-failure"}


def test_a_bad_credential_fails_messages_but_suppresses_nobody(env):
    database, settings, dispatcher, _, sms, _ = env
    add_subscribers(database, settings, 1, phone="+3247000{n:04d}")
    _send(database, add_alert(database))
    sms.fail(Reply(401, body={"code": 20003, "message": "Authenticate", "status": 401}))
    dispatcher.drain()
    sms_row = [row for row in _rows(database) if row.channel == "sms"][0]
    assert sms_row.status == "technical-failure"
    with database.session() as session:
        assert session.scalar(select(Suppression.id)) is None


def test_rows_taken_over_by_another_worker_are_not_sent_twice(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 3)
    _send(database, add_alert(database))
    with database.session() as session:  # a slow worker claims, then its lease runs out
        slow = outbox.claim(session, "slow", 10, clock.now, timedelta(seconds=1))
    clock.now += timedelta(seconds=settings.delivery_lease_seconds + 1)
    dispatcher.drain()  # the live worker takes them over and sends them
    with database.session() as session:
        assert outbox.hand_off(session, [row.id for row in slow], "slow", clock.now) == set()
        outbox.release(session, [row.id for row in slow], "slow", clock.now)
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 3
    assert {row.status for row in _rows(database)} == {"sending"}


def test_one_broken_group_does_not_hold_up_the_others(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 1)
    broken = add_alert(database, texts={"nl": TEXTS["nl"]})  # no English to fall back on
    _send(database, broken)
    _send(database, add_alert(database))
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 1
    statuses = {row.alert_id: row.status for row in _rows(database)}
    assert statuses[broken] == "technical-failure"


def test_simulator_addresses_never_reach_the_provider(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    for number, outcome in enumerate(("delivered", "temporary-failure", "permanent-failure")):
        add_subscribers(
            database, settings, 1, start=number, email=f"{outcome}@simulator.sme-alerts.invalid"
        )
    _send(database, add_alert(database))
    dispatcher.drain()
    assert sendgrid.hits == 0
    assert sorted(row.status for row in _rows(database)) == [
        "delivered",
        "permanent-failure",
        "temporary-failure",
    ]


def test_stopping_gives_back_what_was_not_handed_off(env):
    database, settings, dispatcher, sendgrid, _, _ = env
    add_subscribers(database, settings, 3)
    _send(database, add_alert(database))
    dispatcher.stop()
    dispatcher.run_once()
    rows = _rows(database)
    assert {row.status for row in rows} == {"created"} and {row.attempts for row in rows} == {0}
    assert sendgrid.hits == 0


def test_unknown_outcome_without_receipt_is_sent_once_more_after_the_grace(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 2)
    _send(database, add_alert(database))
    dispatcher.receipt_channels = ("email",)  # as when SendGrid's event webhook is set up
    sendgrid.fail(hang(5))  # the provider never saw it complete: no receipt will come
    dispatcher.run_once()
    clock.now += timedelta(seconds=settings.receipt_grace_seconds + 1)
    dispatcher.drain()
    rows = _rows(database)
    assert {row.status for row in rows} == {"sending"} and all(r.resent_after_unknown for r in rows)
    clock.now += timedelta(days=1)
    dispatcher.drain()
    assert len(recipients(sendgrid)) == 2  # once more, and only once


def test_unknown_outcome_explained_by_a_receipt_is_not_resent(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 1)
    _send(database, add_alert(database))
    sendgrid.fail(hang(5))
    dispatcher.run_once()
    (row,) = _rows(database)
    with database.session() as session:
        apply_events(session, "sendgrid", [Receipt("ev-1", row.id, "processed", {})], clock.now)
    clock.now += timedelta(seconds=settings.receipt_grace_seconds + 1)
    dispatcher.drain()
    (row,) = _rows(database)
    assert row.status == "sending" and not row.outcome_unknown and not row.resent_after_unknown
    assert recipients(sendgrid) == []


def test_file_channel_sends_and_previews(settings, database):
    from alerts.delivery.channels.files import write_index

    configured = settings.model_copy(update={"email_channel": "file"})
    add_subscribers(database, configured, 3)
    _send(database, add_alert(database, texts={"en": TEXTS_WITH_MARKUP}))
    dispatcher = Dispatcher.from_settings(database, configured)
    dispatcher.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
    dispatcher.drain()
    assert {row.status for row in _rows(database)} == {"delivered"}
    index = write_index(configured.outbox_dir()).read_text()
    assert index.count("<li>") == 3 and "&lt;b&gt;" in index and "<b>" not in index.split("<h1>")[1]


def test_without_receipts_an_unknown_outcome_waits_for_staff(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 1)
    _send(database, add_alert(database))
    sendgrid.fail(hang(5))
    dispatcher.run_once()
    clock.now += timedelta(days=2)
    dispatcher.drain()
    (row,) = _rows(database)
    assert row.outcome_unknown and recipients(sendgrid) == []


def test_several_workers_share_the_queue_without_sending_twice(env, database_url, monkeypatch):
    database, settings, _, sendgrid, _, clock = env
    monkeypatch.setattr("alerts.delivery.dispatch.BATCH_CLAIM_LIMIT", 1)  # many small claims
    add_subscribers(database, settings, 2_500)
    _send(database, add_alert(database))
    workers = []
    for name in ("one", "two", "three"):
        worker = Dispatcher.from_settings(database, settings)
        worker.clock, worker.worker = clock, name
        workers.append(worker)
    threads = [threading.Thread(target=worker.drain) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sent = [reference for _, reference in recipients(sendgrid)]
    assert len(sent) == len(set(sent)) == 2_500
    claimers = {message.claimed_by for message in _rows(database)}
    if database_url.startswith("postgresql"):  # SKIP LOCKED lets them work side by side
        assert len(claimers) >= 2


def test_an_alert_is_sent_only_when_unknown_outcomes_are_settled(env):
    database, settings, dispatcher, sendgrid, _, clock = env
    add_subscribers(database, settings, 1)
    alert_id = add_alert(database)
    _send(database, alert_id)
    dispatcher.receipt_channels = ("email",)
    sendgrid.fail(hang(5))
    dispatcher.run_once()
    with database.session() as session:
        assert session.get(Alert, alert_id).status == "sending"
    clock.now += timedelta(seconds=settings.receipt_grace_seconds + 1)
    dispatcher.drain()
    with database.session() as session:
        assert session.get(Alert, alert_id).status == SENT


def test_the_published_day_is_the_belgian_one():
    from alerts.curation.content import alert_content

    late = Alert(
        id=1,
        tier="urgent",
        texts={},
        cves=[],
        links=[],
        known_exploited=False,
        approved_at=datetime(2026, 11, 26, 23, 30, tzinfo=UTC),
    )
    assert str(alert_content(late, "http://x").published) == "2026-11-27"
