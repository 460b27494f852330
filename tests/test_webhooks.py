"""Provider webhooks: the pure tables (SendGrid events, Twilio messages and callbacks) and
the signed endpoints end to end, on SQLite and PostgreSQL.

SendGrid posts are signed here exactly as SendGrid signs them (ECDSA P-256 over timestamp +
body, base64 DER) with a key pair made for the test; Twilio posts with the documented
HMAC-SHA1 over the public URL and the sorted parameters."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerts.settings import SettingsError, load_settings
from alerts.web.app import create_app
from alerts.web.webhooks import twilio_signature
from subscribers.models import ConsentEvent, Subscriber, Suppression
from subscribers.webhooks import (
    SuppressionEvent,
    apply,
    keyword,
    sendgrid_suppressions,
    twilio_suppressions,
)

ADDRESS = "Info@Bakkerij-Jansens.be"
PHONE = "+32470123456"
TWILIO_TOKEN = "twilio-test-auth-token-0123456789"
PUBLIC_URL = "https://alerts.example.be"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

# --------------------------------------------------------------------------- pure tables


def _sendgrid(event: str, **fields) -> dict:
    return {"email": "a@example.be", "event": event, "sg_event_id": "ev-1", **fields}


@pytest.mark.parametrize(
    "event, expected",
    [
        (_sendgrid("bounce", type="bounce"), "hard-bounce"),
        (_sendgrid("bounce", type="blocked"), None),  # temporary: the server refused for now
        (_sendgrid("bounce"), None),
        (_sendgrid("dropped", reason="Bounced Address"), "hard-bounce"),
        (_sendgrid("dropped", reason="Spam Reporting Address"), "spam-complaint"),
        (_sendgrid("dropped", reason="Unsubscribed Address"), "provider-unsubscribe"),
        (_sendgrid("dropped", reason="Invalid"), "hard-bounce"),
        (_sendgrid("dropped", reason="Invalid SMTPAPI header"), None),  # our fault
        (_sendgrid("dropped", reason="Spam Content (if spam checker app enabled)"), None),
        (_sendgrid("dropped", reason="Recipient List over Package Quota"), None),
        (_sendgrid("dropped"), None),
        (_sendgrid("spamreport"), "spam-complaint"),
        (_sendgrid("unsubscribe"), "provider-unsubscribe"),
        (_sendgrid("group_unsubscribe", asm_group_id=1), "provider-unsubscribe"),
        (_sendgrid("group_resubscribe", asm_group_id=1), None),
        (_sendgrid("processed"), None),
        (_sendgrid("deferred", response="400 try again later"), None),
        (_sendgrid("delivered", response="250 OK"), None),
        (_sendgrid("open"), None),
        (_sendgrid("click", url="https://example.be"), None),
        (_sendgrid("something-new"), None),
    ],
)
def test_sendgrid_events(event, expected):
    found = sendgrid_suppressions([event])
    if expected is None:
        assert found == []
    else:
        assert found == [SuppressionEvent("email", "a@example.be", expected, "ev-1")]


def test_sendgrid_junk_entries_are_skipped():
    junk = [
        "bounce",
        None,
        {"event": "spamreport"},  # no address
        {"event": "spamreport", "email": ["a@example.be"]},
        {"event": ["spamreport"], "email": "a@example.be"},
        {"event": "bounce", "type": {"x": 1}, "email": "a@example.be"},
        {"event": "spamreport", "email": "x" * 400},
        {"event": "spamreport", "email": "   "},
    ]
    assert sendgrid_suppressions(junk) == []


def test_an_event_never_shows_its_address():
    (event,) = sendgrid_suppressions([_sendgrid("spamreport")])
    assert "a@example.be" not in repr(event) and "spam-complaint" in repr(event)


def _inbound(body: str, **fields) -> dict:
    return {"MessageSid": "SM1", "From": PHONE, "To": "+3225550000", "Body": body, **fields}


@pytest.mark.parametrize(
    "body",
    ["STOP", "stop", " Stop \n", "Stop.", "STOP!", "stopall", "Unsubscribe", "cancel", "END"]
    + ["quit", "Stoppen", "uitschrijven", "ARRÊT", "arret", "Arrêt !", "Abmelden", "désabonner"],
)
def test_twilio_opt_out_keywords(body):
    found = twilio_suppressions(_inbound(body))
    assert found == [SuppressionEvent("sms", PHONE, "provider-unsubscribe", "SM1")]


@pytest.mark.parametrize("body", ["", "START", "HELP", "Stop sending me this", "stoppe", "ok"])
def test_twilio_ordinary_messages_change_nothing(body):
    assert twilio_suppressions(_inbound(body)) == []


def test_twilio_advanced_opt_out_flag_counts():
    found = twilio_suppressions(_inbound("Halt", OptOutType="STOP"))
    assert [event.reason for event in found] == ["provider-unsubscribe"]


def _callback(status: str, error: str | None = None) -> dict:
    form = {"MessageSid": "SM2", "MessageStatus": status, "To": PHONE, "From": "+3225550000"}
    return form | ({"ErrorCode": error} if error else {})


@pytest.mark.parametrize(
    "form, expected",
    [
        (_callback("undelivered", "21610"), "provider-unsubscribe"),
        (_callback("failed", "21211"), "invalid-number"),
        (_callback("failed", "21614"), "invalid-number"),
        (_callback("undelivered", "30006"), "invalid-number"),
        (_callback("undelivered", "30003"), None),  # unreachable for now
        (_callback("undelivered", "30005"), None),
        (_callback("delivered"), None),
        (_callback("sent"), None),
    ],
)
def test_twilio_status_callbacks(form, expected):
    found = twilio_suppressions(form)
    if expected is None:
        assert found == []
    else:
        assert found == [SuppressionEvent("sms", PHONE, expected, "SM2")]


def test_keyword_normalisation():
    assert keyword("  Arrêt! ") == "ARRET"


def test_twilio_signature_matches_a_published_example():
    # A known answer: the URL, parameters and token of Twilio's classic validation example.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, list(params.items())) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


# --------------------------------------------------------------------------- endpoints


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _public_base64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def app_settings(settings, private_key):
    return load_settings(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        public_base_url=PUBLIC_URL,
        sendgrid_webhook_public_key=_public_base64(private_key),
        twilio_auth_token=TWILIO_TOKEN,
    )


@pytest.fixture
def app(app_settings, database):
    return create_app(app_settings, database)


@pytest.fixture
def client(app):
    return TestClient(app)


@pytest.fixture
def subscriber_id(app) -> int:
    service = app.state.subscriptions
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    row = Subscriber(
        status="active",
        organisation="Bakkerij Jansens",
        email=ADDRESS.lower(),
        email_key=service.signer.key("email", ADDRESS),
        phone=PHONE,
        phone_key=service.signer.key("sms", PHONE),
        phone_confirmed_at=now,
        language="nl",
        region="BE-VAN",
        sector="retail",
        size_band="2-9",
        families=[],
        created_at=now,
        updated_at=now,
        confirmed_at=now,
        sms_optout_code="optout-test-1",
    )
    with service.database.session() as session:
        session.add(row)
        session.flush()
        return row.id


def _signed(key, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE: base64.b64encode(signature).decode(),
        TIMESTAMP: stamp,
        "Content-Type": "application/json",
    }


def _body(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()


def _bounce(address: str = ADDRESS) -> dict:
    return {
        "email": address,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 unknown user",
        "timestamp": 1764234000,
        "sg_event_id": "bounce-1",
        "sg_message_id": "msg-1",
    }


def _suppressions(database) -> list[Suppression]:
    with database.session() as session:
        rows = list(session.scalars(select(Suppression)))
        session.expunge_all()
    return rows


def _events(database, kind: str = "suppressed") -> list[ConsentEvent]:
    with database.session() as session:
        rows = list(session.scalars(select(ConsentEvent).where(ConsentEvent.kind == kind)))
        session.expunge_all()
    return rows


def test_signed_bounce_suppresses_the_subscriber(
    client, app, database, private_key, subscriber_id, caplog
):
    body = _body(_bounce(), {"email": "other@example.be", "event": "delivered"})
    with caplog.at_level(logging.DEBUG):
        answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))
    assert answer.status_code == 200 and answer.json() == {"received": 2, "suppressed": 1}
    (row,) = _suppressions(database)
    assert (row.channel, row.reason, row.source) == ("email", "hard-bounce", "sendgrid-webhook")
    assert app.state.subscriptions.has_suppressed_email(subscriber_id)
    (event,) = _events(database)
    assert event.subscriber_id == subscriber_id and event.method == "sendgrid-webhook"
    assert event.channels == {"suppressed": "email", "reason": "hard-bounce"}
    assert ADDRESS.lower() not in caplog.text.lower()


def test_repeated_delivery_stores_one_suppression(client, database, private_key, subscriber_id):
    body = _body(_bounce(), {**_bounce(), "event": "dropped", "reason": "Bounced Address"})
    for _ in range(3):
        answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))
        assert answer.status_code == 200
    assert len(_suppressions(database)) == 1
    assert len(_events(database)) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda key, body: _signed(ec.generate_private_key(ec.SECP256R1()), body),  # other key
        lambda key, body: _signed(key, body.replace(b"bounce-1", b"bounce-2")),  # other body
        lambda key, body: {**_signed(key, body), TIMESTAMP: str(int(time.time()) + 1)},
        lambda key, body: {**_signed(key, body), SIGNATURE: "not base64 at all!"},
        lambda key, body: {**_signed(key, body), SIGNATURE: base64.b64encode(b"x").decode()},
        lambda key, body: {TIMESTAMP: str(int(time.time()))},
        lambda key, body: {k: v for k, v in _signed(key, body).items() if k != TIMESTAMP},
        lambda key, body: {},
    ],
    ids=["other-key", "other-body", "other-time", "garbage", "not-der", "no-sig", "no-ts", "none"],
)
def test_bad_signature_is_refused(client, database, private_key, subscriber_id, tamper):
    body = _body(_bounce())
    answer = client.post("/webhooks/sendgrid", content=body, headers=tamper(private_key, body))
    assert answer.status_code == 403
    assert _suppressions(database) == [] and _events(database) == []


@pytest.mark.parametrize("age", [11 * 60, -11 * 60])
def test_stale_or_future_signature_is_a_replay(client, database, private_key, age):
    body = _body(_bounce())
    headers = _signed(private_key, body, int(time.time()) - age)
    answer = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert answer.status_code == 403 and "10 minutes" in answer.json()["error"]
    assert _suppressions(database) == []


def test_unknown_address_is_suppressed_by_hash_only(client, app, database, private_key):
    stranger = "Nobody.Here@Example.org"
    body = _body({**_bounce(stranger), "event": "spamreport"})
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))
    assert answer.status_code == 200
    (row,) = _suppressions(database)
    assert row.address_key == app.state.subscriptions.signer.key("email", stranger)
    assert row.reason == "spam-complaint" and _events(database) == []
    with database.session() as session:
        columns = list(session.execute(select(Suppression.__table__)).one())
    assert not any(stranger.lower() in str(value).lower() for value in columns)
    assert not any("nobody.here" in str(value).lower() for value in columns)


def test_unknown_events_answer_200(client, database, private_key):
    body = _body({"event": "brand-new", "email": "a@example.be"}, {"event": "open"}, "junk")
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))
    assert answer.status_code == 200 and answer.json() == {"received": 3, "suppressed": 0}
    assert _suppressions(database) == []


@pytest.mark.parametrize(
    "body, status",
    [
        (b"[{not json", 400),
        (b'{"event": "bounce"}', 400),  # SendGrid always posts an array
        (b"\xff\xfe[]", 403),  # not UTF-8: SendGrid's verifier cannot even read it
    ],
)
def test_signed_but_malformed_body_is_refused(client, database, private_key, body, status):
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))
    assert answer.status_code == status
    assert _suppressions(database) == []


def test_body_above_one_megabyte_is_413(client, private_key):
    body = _body(*[_bounce(f"user{n}@example.be") for n in range(6000)])
    assert len(body) > 1024 * 1024
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(private_key, body))
    assert answer.status_code == 413


def test_body_above_one_megabyte_is_413_without_content_length(client, private_key):
    body = b"[" + b" " * (1024 * 1024) + b"]"
    headers = _signed(private_key, body)
    answer = client.post(
        "/webhooks/sendgrid", content=iter([body[:1000], body[1000:]]), headers=headers
    )
    assert answer.status_code == 413


def test_sendgrid_webhook_off_without_a_public_key(settings, database):
    client = TestClient(create_app(settings, database))
    body = _body(_bounce())
    answer = client.post("/webhooks/sendgrid", content=body)
    assert answer.status_code == 503
    assert "ALERTS_SENDGRID_WEBHOOK_PUBLIC_KEY" in answer.json()["error"]


@pytest.mark.parametrize("value", ["not a key", base64.b64encode(b"garbage").decode()])
def test_a_wrong_public_key_stops_start_up(tmp_path, value):
    with pytest.raises(SettingsError, match="ALERTS_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        load_settings(data_dir=tmp_path, sendgrid_webhook_public_key=value)


def test_public_key_in_pem_armour_is_accepted(tmp_path, private_key):
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    loaded = load_settings(data_dir=tmp_path, sendgrid_webhook_public_key=pem.decode())
    assert loaded.sendgrid_webhook_public_key == _public_base64(private_key)


# --------------------------------------------------------------------------- Twilio


def _twilio_post(client, form: dict, query: str = "", token: str = TWILIO_TOKEN):
    path = "/webhooks/twilio" + (f"?{query}" if query else "")
    signature = twilio_signature(token, PUBLIC_URL + path, list(form.items()))
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def test_twilio_stop_suppresses_the_number(client, app, database, subscriber_id):
    answer = _twilio_post(client, _inbound("Stop"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert "<Response/>" in answer.text
    (row,) = _suppressions(database)
    assert (row.channel, row.reason, row.source) == (
        "sms",
        "provider-unsubscribe",
        "twilio-webhook",
    )
    assert row.address_key == app.state.subscriptions.signer.key("sms", PHONE)
    (event,) = _events(database)
    assert event.subscriber_id == subscriber_id and event.method == "twilio-webhook"
    assert not app.state.subscriptions.has_suppressed_email(subscriber_id)


def test_twilio_status_callback_with_query_string(client, database, subscriber_id):
    answer = _twilio_post(client, _callback("failed", "21211"), query="reference=abc%2F1")
    assert answer.status_code == 200
    (row,) = _suppressions(database)
    assert (row.channel, row.reason) == ("sms", "invalid-number")


def test_twilio_ordinary_message_stores_nothing(client, database):
    answer = _twilio_post(client, _inbound("Thanks!"))
    assert answer.status_code == 200 and "<Response/>" in answer.text
    assert _suppressions(database) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "bm90IHRoZSBzaWduYXR1cmU="}, {"X-Twilio-Signature": b"\xe9t\xe9"}],
)
def test_twilio_wrong_signature_is_403(client, database, subscriber_id, headers):
    answer = client.post("/webhooks/twilio", data=_inbound("STOP"), headers=headers)
    assert answer.status_code == 403
    assert _suppressions(database) == [] and _events(database) == []


def test_twilio_signature_for_another_token_or_url_is_403(client, database):
    assert _twilio_post(client, _inbound("STOP"), token="another-token").status_code == 403
    form = _inbound("STOP")
    signature = twilio_signature(
        TWILIO_TOKEN, "http://testserver/webhooks/twilio", list(form.items())
    )
    answer = client.post("/webhooks/twilio", data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 403
    assert _suppressions(database) == []


def test_twilio_webhook_off_without_a_token(settings, database):
    client = TestClient(create_app(settings, database))
    answer = client.post("/webhooks/twilio", data=_inbound("STOP"))
    assert answer.status_code == 503 and "ALERTS_TWILIO_AUTH_TOKEN" in answer.json()["error"]


# --------------------------------------------------------------------------- apply


def test_apply_is_idempotent_and_counts_new_suppressions(app, database, subscriber_id):
    service = app.state.subscriptions
    events = [
        SuppressionEvent("email", ADDRESS.upper(), "hard-bounce"),
        SuppressionEvent("sms", PHONE, "invalid-number"),
    ]
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    with database.session() as session:
        assert apply(session, service.signer, events, "sendgrid-webhook", now) == 2
    with database.session() as session:
        assert apply(session, service.signer, events, "sendgrid-webhook", now) == 0
    assert len(_suppressions(database)) == 2 and len(_events(database)) == 2
