"""Every message channel through one harness, against fake providers on 127.0.0.1.

Each case builds its channel the way production does (settings -> registry) and checks
what reached the wire or the outbox; the HTTP channels then meet the same faults: 4xx, 5xx,
429 with Retry-After, a hang, a reset, a refused connection.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import python_http_client
import sendgrid

from alerts.delivery.channels import (
    EMAIL_CHANNELS,
    SMS_CHANNELS,
    SendError,
    TwilioSmsChannel,
    email_channel,
    sms_channel,
)
from alerts.delivery.messages import EmailMessage, SmsMessage
from alerts.settings import load_settings
from tests.fakes.sendgrid_server import ProviderServer, Reply, SendGridServer, hang, reset
from tests.fakes.sms_server import INVALID_NUMBER, SmsServer

KEY = "SG.secret-key-never-shown"
SID = "AC" + "1" * 32
TOKEN = "twilio-token-never-shown"
SENDER = "+15005550006"
MAIL_FROM = "SME threat alerts <alerts@alerts.example>"

EMAIL = EmailMessage(
    to="it@example.com",
    subject="Critical: patch FortiOS",
    text="Patch FortiOS now.\n",
    html="<p>Patch <b>FortiOS</b> now.</p>\n",
    headers={
        "List-Unsubscribe": "<https://alerts.example/u/abc>, <mailto:u@alerts.example?subject=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
    category="alert",
    reference="email-42",
)
SMS = SmsMessage(to="+33612345678", body="Critical: patch FortiOS now.", reference="sms-42")
REGISTRIES = {"email": (email_channel, EMAIL_CHANNELS), "sms": (sms_channel, SMS_CHANNELS)}


@dataclass
class Refusal:
    """A real refusal by the fake provider, and the words the error must carry."""

    expected: str
    overrides: dict[str, Any] = field(default_factory=dict)
    message: EmailMessage | SmsMessage | None = None


@dataclass
class Case:
    kind: str  # "email" | "sms"
    key: str  # the registry key / ALERTS_*_CHANNEL value
    message: EmailMessage | SmsMessage
    settings: dict[str, Any]
    check: Callable[[Harness, str], None]  # what a successful send left behind
    server: Callable[[], ProviderServer] | None = None
    host_setting: str = ""
    secrets: tuple[str, ...] = ()
    refusals: dict[str, Refusal] = field(default_factory=dict)


@dataclass
class Harness:
    case: Case
    server: Any
    outbox: Path
    data_dir: Path

    def channel(self, **overrides):
        build, _ = REGISTRIES[self.case.kind]
        return build(self.settings(**overrides))

    def settings(self, **overrides):
        values = {f"{self.case.kind}_channel": self.case.key, **self.case.settings}
        if self.server is not None:
            values[self.case.host_setting] = self.server.base
        values.update(overrides)
        return load_settings(data_dir=self.data_dir, mail_from=MAIL_FROM, **values)


# ----------------------------------------------------------------- what reached the wire


def check_sendgrid(harness: Harness, reference: str) -> None:
    [received] = harness.server.accepted
    assert reference == received.reference
    assert received.headers["authorization"] == f"Bearer {KEY}"
    payload = received.body
    assert payload["from"] == {"name": "SME threat alerts", "email": "alerts@alerts.example"}
    assert payload["personalizations"] == [{"to": [{"email": EMAIL.to}]}]
    assert payload["subject"] == EMAIL.subject
    assert payload["content"] == [
        {"type": "text/plain", "value": EMAIL.text},
        {"type": "text/html", "value": EMAIL.html},
    ]
    assert payload["headers"] == dict(EMAIL.headers)
    assert payload["categories"] == ["alert"]
    assert payload["custom_args"] == {"reference": "email-42"}


def check_twilio(harness: Harness, reference: str) -> None:
    [received] = harness.server.accepted
    assert reference == received.reference and reference.startswith("SM")
    callback = f"{harness.settings().public_base_url}/webhooks/twilio?reference=sms-42"
    assert received.body == {
        "To": SMS.to,
        "From": SENDER,
        "Body": SMS.body,
        "StatusCallback": callback,  # receipts come back to our webhook
    }


def check_eml(harness: Harness, reference: str) -> None:
    path = harness.outbox / "email" / reference
    with path.open("rb") as file:
        mime = BytesParser(policy=policy.default).parse(file)
    assert (mime["From"], mime["To"], mime["Subject"]) == (MAIL_FROM, EMAIL.to, EMAIL.subject)
    assert mime["Message-ID"].endswith("@alerts.example>") and mime["Date"]
    for name, value in EMAIL.headers:  # long ones are folded; unfolding leaves a leading space
        assert mime[name].strip() == value
    assert (mime["X-Alerts-Category"], mime["X-Alerts-Reference"]) == ("alert", "email-42")
    assert mime.get_content_type() == "multipart/alternative"
    text, html = mime.iter_parts()
    assert (text.get_content_type(), text.get_content()) == ("text/plain", EMAIL.text)
    assert (html.get_content_type(), html.get_content()) == ("text/html", EMAIL.html)
    assert path.with_suffix(".html").read_text() == EMAIL.html
    assert sorted(p.name for p in path.parent.iterdir()) == [
        path.stem + ".eml",
        path.stem + ".html",
    ]


def check_sms_json(harness: Harness, reference: str) -> None:
    path = harness.outbox / "sms" / reference
    record = json.loads(path.read_text())
    assert record.pop("created_at")
    assert record == {"to": SMS.to, "from": SENDER, "body": SMS.body, "reference": "sms-42"}
    assert [p.name for p in path.parent.iterdir()] == [reference]  # no temporary files left


CASES = {
    "file-email": Case("email", "file", EMAIL, {}, check_eml),
    "file-sms": Case("sms", "file", SMS, {"sms_from": SENDER}, check_sms_json),
    "sendgrid": Case(
        "email",
        "sendgrid",
        EMAIL,
        {"sendgrid_api_key": KEY},
        check_sendgrid,
        server=lambda: SendGridServer(api_key=KEY),
        host_setting="sendgrid_host",
        secrets=(KEY,),
        refusals={
            "wrong key": Refusal("HTTP 401, API key rejected", {"sendgrid_api_key": "SG.wrong"}),
        },
    ),
    "twilio": Case(
        "sms",
        "twilio",
        SMS,
        {"twilio_account_sid": SID, "twilio_auth_token": TOKEN, "sms_from": SENDER},
        check_twilio,
        server=lambda: SmsServer(account_sid=SID, auth_token=TOKEN),
        host_setting="twilio_base_url",
        secrets=(TOKEN,),
        refusals={
            "wrong token": Refusal("HTTP 401, error 20003", {"twilio_auth_token": "wrong"}),
            "unknown account": Refusal("HTTP 404, error 20404", {"twilio_account_sid": "AC9"}),
            "invalid number": Refusal(
                "HTTP 400, error 21211", message=replace(SMS, to=INVALID_NUMBER)
            ),  # noqa: E501
        },
    ),
}
HTTP_CASES = [name for name, case in CASES.items() if case.server]
REFUSALS = [(name, label) for name, case in CASES.items() for label in case.refusals]

FAULTS = {  # scripted answer -> (permanent, retry_after)
    "500": (Reply(500), False, None),
    "503 with Retry-After": (Reply(503, {"Retry-After": "120"}), False, 120.0),
    "429 with Retry-After": (Reply(429, {"Retry-After": "30"}), False, 30.0),
    "429 with a date": (Reply(429, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}), False, 0.0),
    "400": (Reply(400, body={"errors": [{"field": "subject"}]}), True, None),
    "403": (Reply(403), True, None),
    "hang": (hang(), False, None),
    "reset": (reset(), False, None),
}


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """Traffic goes to 127.0.0.1 directly, whatever proxy this machine has configured."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def harness(request, tmp_path):
    case = CASES[request.param]
    with case.server() if case.server else nullcontext() as server:
        yield Harness(case, server, tmp_path / "outbox", tmp_path)


def assert_discreet(error: SendError, case: Case, *hidden: str) -> None:
    """No credential and no recipient in anything an error shows."""
    shown = str(error) + repr(error) + "".join(traceback.format_exception(error))
    for text in (*case.secrets, *hidden, case.message.to):
        assert text not in shown


# ------------------------------------------------------------------------------ the harness


@pytest.mark.parametrize("harness", list(CASES), indirect=True)
def test_send_delivers_the_whole_message(harness, caplog):
    caplog.set_level(logging.DEBUG)
    channel = harness.channel()
    assert type(channel) is REGISTRIES[harness.case.kind][1][harness.case.key]
    reference = channel.send(harness.case.message)
    harness.case.check(harness, reference)
    for secret in harness.case.secrets:
        assert secret not in caplog.text


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("harness", HTTP_CASES, indirect=True)
def test_failures_say_whether_a_retry_can_help(harness, fault):
    reply, permanent, retry_after = FAULTS[fault]
    harness.server.fail(reply)
    channel = harness.channel(http_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SendError) as caught:
        channel.send(harness.case.message)
    assert time.monotonic() - started < 3
    assert (caught.value.permanent, caught.value.retry_after) == (permanent, retry_after)
    assert_discreet(caught.value, harness.case)
    assert channel.send(harness.case.message)  # the fault is over: the next try goes through


@pytest.mark.parametrize("harness, refusal", REFUSALS, indirect=["harness"])
def test_provider_refusals_are_permanent(harness, refusal):
    rule = harness.case.refusals[refusal]
    with pytest.raises(SendError) as caught:
        harness.channel(**rule.overrides).send(rule.message or harness.case.message)
    assert caught.value.permanent and caught.value.retry_after is None
    assert str(caught.value).endswith(rule.expected)
    assert_discreet(caught.value, harness.case, (rule.message or harness.case.message).to)


@pytest.mark.parametrize("harness", HTTP_CASES, indirect=True)
def test_nobody_listening_is_temporary(harness):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = harness.channel(**{harness.case.host_setting: f"http://127.0.0.1:{port}"})
    with pytest.raises(SendError) as caught:
        channel.send(harness.case.message)
    assert not caught.value.permanent
    assert_discreet(caught.value, harness.case)


def test_every_registered_channel_is_in_the_harness():
    registered = {(kind, key) for kind, (_, table) in REGISTRIES.items() for key in table}
    assert registered == {(case.kind, case.key) for case in CASES.values()}


# ----------------------------------------------------------------------- channel details


@pytest.mark.parametrize("harness", ["file-email", "file-sms"], indirect=True)
def test_outbox_names_are_unique_and_sort_by_time(harness):
    channel = harness.channel()
    references = [channel.send(harness.case.message) for _ in range(5)]
    assert sorted(references) == references and len(set(references)) == 5


def test_twilio_status_callback_carries_our_reference():
    with SmsServer(account_sid=SID, auth_token=TOKEN) as server:
        callback = "https://alerts.example/webhooks/twilio"
        channel = TwilioSmsChannel(SID, TOKEN, server.base, SENDER, 2.0, status_callback=callback)
        channel.send(SMS)
    assert server.accepted[0].body["StatusCallback"] == f"{callback}?reference=sms-42"


def test_sendgrid_fake_rejects_a_malformed_payload_like_sendgrid():
    with SendGridServer(api_key=KEY) as server:
        client = sendgrid.SendGridAPIClient(api_key=KEY, host=server.base)
        with pytest.raises(python_http_client.exceptions.BadRequestsError) as caught:
            client.client.mail.send.post(request_body={"subject": ""}, timeout=2)
    fields = {error["field"] for error in json.loads(caught.value.body)["errors"]}
    assert fields == {"personalizations", "from.email", "subject", "content"}


NO_CREDENTIALS = {
    "sendgrid_api_key": None,
    "twilio_account_sid": "",
    "twilio_auth_token": None,
    "sms_from": "",
}


@pytest.mark.parametrize(
    "overrides, variable",
    [
        ({"email_channel": "sendgrid"}, "ALERTS_SENDGRID_API_KEY"),
        ({"email_channel": "sendgrid", "sendgrid_api_key": ""}, "ALERTS_SENDGRID_API_KEY"),
        ({"sms_channel": "twilio", "twilio_auth_token": TOKEN, "sms_from": SENDER}, "_SID"),
        ({"sms_channel": "twilio", "twilio_account_sid": SID, "sms_from": SENDER}, "_TOKEN"),
        ({"sms_channel": "twilio", "twilio_account_sid": SID, "twilio_auth_token": TOKEN}, "_FROM"),
    ],
)
def test_missing_credentials_name_the_variable(tmp_path, overrides, variable):
    settings = load_settings(data_dir=tmp_path, **{**NO_CREDENTIALS, **overrides})
    build = email_channel if "email_channel" in overrides else sms_channel
    with pytest.raises(ValueError, match=variable):
        build(settings)


@pytest.mark.parametrize(
    "build",
    [
        lambda: replace(EMAIL, to="it@example.com\r\nBcc: all@example.com"),
        lambda: replace(EMAIL, to="not an address"),
        lambda: replace(EMAIL, headers={"Bcc": "all@example.com"}),
        lambda: replace(EMAIL, headers={"X-Note": "one\nInjected: yes"}),
        lambda: replace(SMS, to="0612345678"),
    ],
)
def test_messages_refuse_what_no_channel_can_send_safely(build):
    with pytest.raises(ValueError):
        build()


def test_messages_are_hashable_values():
    assert hash(EMAIL) == hash(replace(EMAIL)) and replace(EMAIL) == EMAIL
    assert EMAIL.headers[1] == ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
