"""Delivery receipts: the pure table row by row, the parsers, precedence and dedupe in the
database, the signed SendGrid and Twilio webhooks end to end, and the simulator; on SQLite
and PostgreSQL. Posts are signed with the helpers of tests/test_webhooks.py."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerts.curation.models import Alert
from alerts.delivery.models import (
    CREATED,
    DELIVERED,
    PERMANENT,
    SENDING,
    TECHNICAL,
    TEMPORARY,
    DeliveryEvent,
    OutboxMessage,
)
from alerts.delivery.receipts import (
    RETRY_DELAY,
    Receipt,
    apply_events,
    below,
    outbox_id_from,
    reference_id,
    sendgrid_receipts,
    simulate,
    simulated_outcome,
    status_for,
    supersedes,
    twilio_receipt,
)
from alerts.settings import load_settings
from alerts.web.app import create_app
from alerts.web.webhooks import twilio_signature
from subscribers.models import Suppression
from tests.test_webhooks import (
    PUBLIC_URL,
    TWILIO_TOKEN,
    _body,
    _public_base64,
    _signed,
    _twilio_post,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
_keys = itertools.count(1)

# --------------------------------------------------------------------------- the pure table


@pytest.mark.parametrize(
    "provider, event, code, expected",
    [
        ("sendgrid", "processed", "", None),
        ("sendgrid", "deferred", "", None),
        ("sendgrid", "delivered", "", DELIVERED),
        ("sendgrid", "bounce", "bounce", PERMANENT),
        ("sendgrid", "bounce", "", PERMANENT),
        ("sendgrid", "bounce", "blocked", TEMPORARY),
        ("sendgrid", "bounce", "something-new", PERMANENT),
        ("sendgrid", "dropped", "", PERMANENT),
        ("sendgrid", "spamreport", "", DELIVERED),
        ("sendgrid", "unsubscribe", "", None),
        ("sendgrid", "group_unsubscribe", "", None),
        ("sendgrid", "group_resubscribe", "", None),
        ("sendgrid", "open", "", None),
        ("sendgrid", "click", "", None),
        ("sendgrid", "brand-new-event", "", None),
        ("twilio", "accepted", "", None),
        ("twilio", "scheduled", "", None),
        ("twilio", "queued", "", None),
        ("twilio", "sending", "", None),
        ("twilio", "sent", "", None),
        ("twilio", "delivered", "", DELIVERED),
        ("twilio", "undelivered", "", TEMPORARY),
        ("twilio", "undelivered", "30003", TEMPORARY),
        ("twilio", "undelivered", "30005", PERMANENT),
        ("twilio", "undelivered", "30006", PERMANENT),
        ("twilio", "undelivered", "30007", PERMANENT),
        ("twilio", "undelivered", "30008", TEMPORARY),
        ("twilio", "undelivered", "21610", PERMANENT),
        ("twilio", "undelivered", "39999", TEMPORARY),
        ("twilio", "failed", "", PERMANENT),
        ("twilio", "failed", "21211", PERMANENT),
        ("twilio", "failed", "30001", TEMPORARY),
        ("twilio", "receiving", "", None),
        ("simulator", DELIVERED, "", DELIVERED),
        ("simulator", TEMPORARY, "", TEMPORARY),
        ("simulator", PERMANENT, "", PERMANENT),
        ("sendgrid", "undelivered", "30006", None),  # one provider's words mean nothing to another
        ("nobody", "delivered", "", None),
    ],
)
def test_table(provider, event, code, expected):
    assert status_for(provider, event, {"code": code} if code else {}) == expected


@pytest.mark.parametrize(
    "new, current, expected",
    [
        (SENDING, CREATED, True),
        (SENDING, TECHNICAL, True),  # an unknown outcome yields to the provider's word
        (DELIVERED, SENDING, True),
        (DELIVERED, TEMPORARY, True),
        (TEMPORARY, DELIVERED, False),
        (SENDING, DELIVERED, False),
        (PERMANENT, DELIVERED, True),  # a mail server may accept, then bounce
        (DELIVERED, PERMANENT, False),
        (DELIVERED, DELIVERED, False),
        (TEMPORARY, TEMPORARY, False),
    ],
)
def test_precedence(new, current, expected):
    assert supersedes(new, current) is expected
    assert (current in below(new)) is expected


# --------------------------------------------------------------------------- parsers


def _sg(event: str, **fields) -> dict:
    base = {
        "email": "a@example.be",
        "event": event,
        "timestamp": 1764234000,
        "sg_event_id": f"ev-{event}",
        "sg_message_id": "msg-1.filter0001",
        "outbox_id": "7",
    }
    return base | fields


def test_sendgrid_receipts():
    (bounce,) = sendgrid_receipts([_sg("bounce", type="blocked")])
    assert bounce == Receipt(
        "ev-bounce", 7, "bounce", {"code": "blocked", "message_id": "msg-1.filter0001"}
    )
    assert "a@example.be" not in repr(bounce)


def test_sendgrid_receipts_skip_junk_and_engagement():
    junk = ["delivered", None, {"email": "a@example.be"}, {"event": ["delivered"]}]
    engagement = [_sg("open"), _sg("click", url="https://example.be")]
    assert sendgrid_receipts(junk + engagement) == []


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"outbox_id": "123"}, 123),
        ({"outbox_id": 123}, 123),
        ({"outbox_id": None, "reference": "outbox-45"}, 45),
        ({"outbox_id": "abc"}, None),
        ({"outbox_id": True}, None),
        ({"outbox_id": "0"}, None),
        ({"outbox_id": "9" * 30}, None),
        ({"outbox_id": None, "reference": "outbox-1; drop"}, None),
        ({"outbox_id": None}, None),
    ],
)
def test_sendgrid_outbox_ids(fields, expected):
    (receipt,) = sendgrid_receipts([_sg("delivered", **fields)])
    assert receipt.outbox_id == expected


def test_sendgrid_event_id_derived_when_missing():
    first = sendgrid_receipts([_sg("delivered", sg_event_id=None)])[0].event_id
    again = sendgrid_receipts([_sg("delivered", sg_event_id="")])[0].event_id
    other_event = sendgrid_receipts([_sg("processed", sg_event_id=None)])[0].event_id
    other_time = sendgrid_receipts([_sg("delivered", sg_event_id=None, timestamp=1)])[0].event_id
    assert first == again and first.startswith("sendgrid:") and len(first) <= 100
    assert len({first, other_event, other_time}) == 3
    bare = {"event": "delivered", "outbox_id": "7", "timestamp": 5}
    assert sendgrid_receipts([bare])[0].event_id == sendgrid_receipts([dict(bare)])[0].event_id
    long_id = sendgrid_receipts([_sg("delivered", sg_event_id="x" * 300)])[0].event_id
    assert long_id.startswith("sendgrid:") and len(long_id) <= 100


def _status(status: str, error: str | None = None, sid: str = "SM1") -> dict:
    form = {"MessageSid": sid, "MessageStatus": status, "To": "+32470123456", "From": "+3225550000"}
    return form | ({"ErrorCode": error} if error else {})


def test_twilio_receipt():
    receipt = twilio_receipt(_status("undelivered", "30003"), "outbox-12")
    assert receipt == Receipt(
        "SM1:undelivered", 12, "undelivered", {"code": "30003", "message_id": "SM1"}
    )
    assert "+32470123456" not in repr(receipt)


@pytest.mark.parametrize(
    "form, reference, expected",
    [
        (_status("delivered"), None, None),  # no reference: matched by message sid, if at all
        (_status("delivered"), "abc/1", None),
        (_status("delivered"), "outbox-", None),
        (_status("Delivered"), "outbox-3", 3),
    ],
)
def test_twilio_receipt_references(form, reference, expected):
    receipt = twilio_receipt(form, reference)
    assert receipt.outbox_id == expected and receipt.event == "delivered"


@pytest.mark.parametrize(
    "form",
    [
        {"MessageSid": "SM1", "From": "+32470123456", "Body": "STOP", "SmsStatus": "received"},
        {"MessageStatus": "delivered"},  # no sid: nothing stable to dedupe on
        {"MessageSid": "SM1"},
    ],
)
def test_twilio_posts_that_are_no_receipt(form):
    assert twilio_receipt(form, "outbox-1") is None


def test_id_helpers():
    assert outbox_id_from(" 42 ") == 42 and outbox_id_from(4.2) is None
    assert reference_id("outbox-42") == 42 and reference_id(42) is None
    assert reference_id("outbox-0") is None and reference_id("OUTBOX-4") is None


# --------------------------------------------------------------------------- the database


def _outbox(database, channel: str = "email", **values) -> int:
    with database.session() as session:
        alert = Alert(tier="urgent", status="sending", created_at=NOW, updated_at=NOW)
        session.add(alert)
        session.flush()
        fields = {
            "key": f"alert:{alert.id}:{next(_keys)}:{channel}",
            "alert_id": alert.id,
            "channel": channel,
            "kind": "alert",
            "status": SENDING,
            "attempts": 1,
            "next_attempt_at": NOW,
            "handed_off_at": NOW,
            "sent_at": NOW,
            "created_at": NOW,
            "updated_at": NOW,
        }
        row = OutboxMessage(**(fields | values))
        session.add(row)
        session.flush()
        return row.id


def _row(database, outbox_id: int) -> OutboxMessage:
    with database.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        session.expunge(row)
    return row


def _receipt_rows(database) -> list[DeliveryEvent]:
    with database.session() as session:
        rows = list(session.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id)))
        session.expunge_all()
    return rows


def _apply(database, provider: str, receipts: list[Receipt], now=LATER, **options):
    with database.session() as session:
        return apply_events(session, provider, receipts, now, **options)


def _r(outbox_id, event, event_id=None, **detail) -> Receipt:
    return Receipt(event_id or f"ev-{outbox_id}-{event}", outbox_id, event, detail)


def test_delivered_then_late_processed_keeps_delivered(database):
    outbox_id = _outbox(database)
    counts = _apply(database, "sendgrid", [_r(outbox_id, "delivered"), _r(outbox_id, "processed")])
    assert (counts.stored, counts.changed, counts.duplicates) == (2, 1, 0)
    row = _row(database, outbox_id)
    assert row.status == DELIVERED and row.updated_at == LATER
    events = _receipt_rows(database)
    assert [(e.provider, e.event, e.status, e.outbox_id) for e in events] == [
        ("sendgrid", "delivered", DELIVERED, outbox_id),
        ("sendgrid", "processed", None, outbox_id),
    ]


def test_unknown_outcome_resolved_by_processed(database):
    outbox_id = _outbox(database, status=TECHNICAL, outcome_unknown=True, sent_at=None)
    counts = _apply(database, "sendgrid", [_r(outbox_id, "processed")])
    assert (counts.resolved, counts.changed) == (1, 1)
    row = _row(database, outbox_id)
    assert (row.status, row.outcome_unknown, row.sent_at) == (SENDING, False, LATER)
    _apply(database, "sendgrid", [_r(outbox_id, "delivered")])
    assert _row(database, outbox_id).status == DELIVERED


def test_unknown_outcome_resolved_by_a_final_receipt_keeps_its_sent_at(database):
    outbox_id = _outbox(database, status=TECHNICAL, outcome_unknown=True)
    _apply(database, "twilio", [_r(outbox_id, "delivered")])
    row = _row(database, outbox_id)
    assert (row.status, row.outcome_unknown, row.sent_at) == (DELIVERED, False, NOW)


def test_same_webhook_twice_changes_nothing_more(database):
    outbox_id = _outbox(database)
    receipts = [_r(outbox_id, "bounce", code="bounce")]
    first = _apply(database, "sendgrid", receipts)
    again = _apply(database, "sendgrid", receipts, now=datetime(2026, 11, 28, tzinfo=UTC))
    assert (first.stored, first.changed) == (1, 1)
    assert (again.stored, again.duplicates, again.changed) == (0, 1, 0)
    assert len(_receipt_rows(database)) == 1
    row = _row(database, outbox_id)
    assert (row.status, row.updated_at, row.last_error) == (
        PERMANENT,
        LATER,
        "sendgrid: bounce/bounce",
    )


def test_unknown_outbox_ids_are_ignored(database):
    counts = _apply(
        database, "sendgrid", [_r(999_999, "delivered"), _r(None, "delivered", message_id="x")]
    )
    assert (counts.received, counts.unknown, counts.stored) == (2, 2, 0)
    assert _receipt_rows(database) == []


def test_delivered_beats_temporary_and_permanent_beats_delivered(database):
    outbox_id = _outbox(database, status=TEMPORARY)
    _apply(database, "twilio", [_r(outbox_id, "delivered")])
    assert _row(database, outbox_id).status == DELIVERED
    _apply(
        database, "sendgrid", [_r(outbox_id, "bounce", event_id="ev-late-bounce", code="bounce")]
    )
    _apply(database, "sendgrid", [_r(outbox_id, "delivered", event_id="ev-again")])
    assert _row(database, outbox_id).status == PERMANENT


def test_temporary_failure_goes_back_to_the_queue(database):
    outbox_id = _outbox(database, claimed_by="worker-1", claimed_at=NOW)
    counts = _apply(database, "twilio", [_r(outbox_id, "undelivered", code="30003")])
    row = _row(database, outbox_id)
    assert counts.changed == 1 and row.status == TEMPORARY
    assert row.next_attempt_at == LATER + RETRY_DELAY
    assert (row.sent_at, row.handed_off_at, row.claimed_by) == (None, None, None)
    assert row.last_error == "twilio: undelivered/30003"


def test_temporary_failure_without_attempts_left_gives_up(database):
    outbox_id = _outbox(database, attempts=3)
    _apply(database, "sendgrid", [_r(outbox_id, "bounce", code="blocked")], max_attempts=3)
    row = _row(database, outbox_id)
    assert row.status == TECHNICAL and row.next_attempt_at == NOW
    assert row.last_error == "sendgrid: bounce/blocked, after 3 attempts"


def test_late_receipt_of_an_earlier_attempt_changes_nothing(database):
    outbox_id = _outbox(database, provider_id="SM-second")
    counts = _apply(database, "twilio", [_r(outbox_id, "undelivered", message_id="SM-first")])
    assert (counts.stored, counts.changed) == (1, 0)
    assert _row(database, outbox_id).status == SENDING
    _apply(database, "sendgrid", [_r(outbox_id, "delivered", message_id="SM-second.filter1")])
    assert _row(database, outbox_id).status == DELIVERED


def test_twilio_receipt_without_reference_found_by_message_sid(database):
    outbox_id = _outbox(database, channel="sms", provider_id="SM77")
    receipt = twilio_receipt(_status("delivered", sid="SM77"), None)
    assert _apply(database, "twilio", [receipt]).changed == 1
    assert _row(database, outbox_id).status == DELIVERED


# --------------------------------------------------------------------------- simulator


@pytest.mark.parametrize(
    "channel, address, expected",
    [
        ("email", "delivered@simulator.sme-alerts.invalid", DELIVERED),
        ("email", "temporary-failure@simulator.sme-alerts.invalid", TEMPORARY),
        ("email", "permanent-failure@simulator.sme-alerts.invalid", PERMANENT),
        ("sms", "+447700900001", DELIVERED),
        ("sms", "+447700900002", TEMPORARY),
        ("sms", "+447700900003", PERMANENT),
    ],
)
def test_simulator_outcomes(database, channel, address, expected):
    assert simulated_outcome(address) == expected
    outbox_id = _outbox(database, channel=channel)
    with database.session() as session:
        counts = simulate(session, channel, outbox_id, address, LATER)
    assert (counts.stored, counts.changed) == (1, 1)
    assert _row(database, outbox_id).status == expected
    (event,) = _receipt_rows(database)
    assert (event.provider, event.event, event.status) == ("simulator", expected, expected)
    with database.session() as session:  # the same attempt simulated again: a duplicate
        assert simulate(session, channel, outbox_id, address, LATER).duplicates == 1


@pytest.mark.parametrize(
    "address",
    [
        "someone@example.be",
        "delivered@simulator.sme-alerts.invalid.example.be",
        "+447700900004",
        "+32470123456",
        "",
    ],
)
def test_real_recipients_are_not_simulated(address):
    assert simulated_outcome(address) is None


def test_simulator_address_forms():
    assert simulated_outcome(" Delivered@Simulator.SME-Alerts.invalid ") == DELIVERED
    assert simulated_outcome("Test <delivered@simulator.sme-alerts.invalid>") == DELIVERED


def test_simulate_refuses_real_or_mismatched_recipients(database):
    outbox_id = _outbox(database)
    with database.session() as session, pytest.raises(ValueError):
        simulate(session, "email", outbox_id, "someone@example.be", LATER)
    with database.session() as session, pytest.raises(ValueError):
        simulate(session, "email", outbox_id, "+447700900001", LATER)


def test_simulated_temporary_failure_is_retried_then_given_up(database):
    address = "temporary-failure@simulator.sme-alerts.invalid"
    outbox_id = _outbox(database)
    with database.session() as session:
        simulate(session, "email", outbox_id, address, LATER, max_attempts=2)
    assert _row(database, outbox_id).status == TEMPORARY
    with database.session() as session:  # the dispatcher claims it again: attempt 2
        row = session.get(OutboxMessage, outbox_id)
        row.status, row.attempts = SENDING, 2
    with database.session() as session:
        assert simulate(session, "email", outbox_id, address, LATER, max_attempts=2).stored == 1
    assert _row(database, outbox_id).status == TECHNICAL


# --------------------------------------------------------------------------- endpoints


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def client(settings, database, private_key):
    app_settings = load_settings(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        public_base_url=PUBLIC_URL,
        sendgrid_webhook_public_key=_public_base64(private_key),
        twilio_auth_token=TWILIO_TOKEN,
    )
    return TestClient(create_app(app_settings, database))


def _post_sendgrid(client, private_key, *events: dict):
    body = _body(*events)
    return client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))


def test_signed_sendgrid_receipts_update_the_outbox(client, database, private_key):
    outbox_id = _outbox(database)
    events = [
        _sg("processed", outbox_id=str(outbox_id)),
        _sg("delivered", outbox_id=str(outbox_id)),
        _sg("open", outbox_id=str(outbox_id)),
    ]
    for _ in range(2):  # SendGrid posting the same batch again changes nothing
        answer = _post_sendgrid(client, private_key, *events)
        assert answer.status_code == 200 and answer.json() == {"received": 3, "suppressed": 0}
    assert _row(database, outbox_id).status == DELIVERED
    assert [event.event for event in _receipt_rows(database)] == ["processed", "delivered"]


def test_signed_sendgrid_bounce_suppresses_and_fails_in_one_go(client, database, private_key):
    outbox_id = _outbox(database)
    answer = _post_sendgrid(
        client,
        private_key,
        _sg("bounce", type="bounce", reference=f"outbox-{outbox_id}") | {"outbox_id": None},
    )
    assert answer.status_code == 200 and answer.json()["suppressed"] == 1
    assert _row(database, outbox_id).status == PERMANENT
    with database.session() as session:
        assert session.scalar(select(Suppression.reason)) == "hard-bounce"


def test_sendgrid_receipts_for_unknown_messages_answer_200(client, database, private_key):
    answer = _post_sendgrid(
        client, private_key, _sg("delivered", outbox_id="424242"), _sg("bounce", outbox_id=None)
    )
    assert answer.status_code == 200 and answer.json()["received"] == 2
    assert _receipt_rows(database) == []


def _post_sms(client, path: str, form: dict, query: str, signed_path: str | None = None):
    url = PUBLIC_URL + (signed_path or path) + f"?{query}"
    signature = twilio_signature(TWILIO_TOKEN, url, list(form.items()))
    return client.post(f"{path}?{query}", data=form, headers={"X-Twilio-Signature": signature})


def test_signed_twilio_status_callback_updates_the_outbox(client, database):
    outbox_id = _outbox(database, channel="sms", provider_id="SM1")
    for status in ("sent", "delivered", "delivered", "sent"):
        answer = _twilio_post(client, _status(status), query=f"reference=outbox-{outbox_id}")
        assert answer.status_code == 200 and "<Response/>" in answer.text
    assert _row(database, outbox_id).status == DELIVERED
    assert [event.event_id for event in _receipt_rows(database)] == ["SM1:sent", "SM1:delivered"]


def test_twilio_permanent_error_fails_and_suppresses(client, database):
    outbox_id = _outbox(database, channel="sms")
    form = _status("undelivered", "30006")
    assert _twilio_post(client, form, query=f"reference=outbox-{outbox_id}").status_code == 200
    assert _row(database, outbox_id).status == PERMANENT
    with database.session() as session:
        assert session.scalar(select(Suppression.reason)) == "invalid-number"


def test_sms_path_is_the_same_webhook_signed_over_its_own_url(client, database):
    outbox_id = _outbox(database, channel="sms")
    query = f"reference=outbox-{outbox_id}"
    wrong = _post_sms(client, "/webhooks/sms", _status("delivered"), query, "/webhooks/twilio")
    assert wrong.status_code == 403
    assert _row(database, outbox_id).status == SENDING
    answer = _post_sms(client, "/webhooks/sms", _status("delivered"), query)
    assert answer.status_code == 200 and "<Response/>" in answer.text
    assert _row(database, outbox_id).status == DELIVERED


def test_twilio_callback_for_an_unknown_message_answers_200(client, database):
    answer = _twilio_post(client, _status("delivered", sid="SM404"), query="reference=outbox-77")
    assert answer.status_code == 200 and _receipt_rows(database) == []


def test_inbound_message_stores_no_receipt(client, database):
    outbox_id = _outbox(database, channel="sms")
    form = {"MessageSid": "SM9", "From": "+32470123456", "Body": "hello", "SmsStatus": "received"}
    assert _twilio_post(client, form, query=f"reference=outbox-{outbox_id}").status_code == 200
    assert _receipt_rows(database) == [] and _row(database, outbox_id).status == SENDING


def test_created_row_is_untouched_by_accepted_only_receipts(database):
    outbox_id = _outbox(database, status=CREATED, sent_at=None)
    assert _apply(database, "twilio", [_r(outbox_id, "queued")]).changed == 0
    assert _row(database, outbox_id).status == CREATED
