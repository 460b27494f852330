"""No secret in any log line or console output (issue 10).

The service is configured with recognisable "canary" secrets — the signing key, the SendGrid
API key, the Twilio auth token (also the webhook key), a database URL with a password — and
a staff password. Logging is set up as in production (alerts.logs.configure_logging at
DEBUG with JSON lines and its redaction filter) and read three ways: the JSON lines, every
raw record (caplog, before redaction) and the process's stdout/stderr (capfd). Then the
things that write logs happen: starting the service, `alerts config`, a failed start on an
unreachable database, failed SendGrid and Twilio sends (refused credentials, nobody
listening), error pages under a real uvicorn, a refused staff login and webhooks with bad
signatures. None of the canaries (nor the Basic-auth form of the Twilio pair) may appear.
"""

from __future__ import annotations

import base64
import io
import logging
import socket
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from alerts import cli
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.service import send_alert
from alerts.logs import JsonFormatter, RedactSecrets, configure_logging
from alerts.relevance.service import default_catalogue
from alerts.settings import get_settings, load_settings
from alerts.staff import accounts
from alerts.store import Database
from alerts.web.app import create_app
from tests.delivery_setup import add_alert, add_subscribers
from tests.fakes.sendgrid_server import SendGridServer
from tests.fakes.sms_server import SmsServer
from tests.subscriber_site import CSRF, SIGNUP

SECRET_KEY = "canary-signing-key-5e1f0c7a9b"
SENDGRID_KEY = "SG.canary-sendgrid-key-8d2b6f"
TWILIO_SID = "AC" + "c" * 32
TWILIO_TOKEN = "canary-twilio-token-3a9e71"
DB_PASSWORD = "canary-db-password-7c4d2e"
DB_URL = f"postgresql+psycopg://alerts:{DB_PASSWORD}@127.0.0.1:9/alerts"  # nobody on port 9
STAFF_EMAIL = "ann@gov.example"
STAFF_PASSWORD = "canary staff pass phrase 42"
WRONG_PASSWORD = "canary wrong pass phrase 17"
CANARIES = {
    "signing key": SECRET_KEY,
    "SendGrid API key": SENDGRID_KEY,
    "SendGrid key (body)": SENDGRID_KEY.removeprefix("SG."),
    "Twilio auth token": TWILIO_TOKEN,
    "Twilio Basic auth": base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode(),
    "database password": DB_PASSWORD,
    "staff password": STAFF_PASSWORD,
    "wrong staff password": WRONG_PASSWORD,
    "staff password (form-encoded)": quote(STAFF_PASSWORD, safe="").replace("%20", "+"),
    "wrong password (form-encoded)": quote(WRONG_PASSWORD, safe="").replace("%20", "+"),
}
NOISY = ("httpx", "alembic", "apscheduler", "python_http_client")


class Capture:
    """Production logging (JSON lines, redaction) into a buffer, plus pytest's raw records."""

    def __init__(self, caplog, capfd):
        self.caplog, self.capfd = caplog, capfd
        self.json = io.StringIO()
        self.extra: list[str] = []  # CLI output, response bodies, exception texts

    def install(self, level: str = "DEBUG", json_lines: bool = True) -> None:
        configure_logging(level, json_lines=json_lines)  # force=True: drops every handler
        root = logging.getLogger()
        handler = root.handlers[0]
        assert isinstance(handler.formatter, JsonFormatter)
        assert any(isinstance(f, RedactSecrets) for f in handler.filters)
        handler.setStream(self.json)
        self.caplog.handler.setLevel(logging.DEBUG)
        root.addHandler(self.caplog.handler)  # and pytest's, for the raw records

    def everything(self) -> dict[str, str]:
        out, err = self.capfd.readouterr()
        return {
            "JSON log": self.json.getvalue(),
            "raw log records": self.caplog.text,
            "stdout": out,
            "stderr": err,
            "output and answers": "\n".join(self.extra),
        }

    def assert_no_secrets(self, *expected_lines: str) -> None:
        seen = self.everything()
        for where, text in seen.items():
            for name, canary in CANARIES.items():
                assert canary not in text, f"the {name} appears in the {where}"
        logged = seen["JSON log"]
        for line in expected_lines:  # the capture works: what should be logged is there
            assert line in logged, f"{line!r} not logged"


@pytest.fixture
def capture(caplog, capfd):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in NOISY})
    get_settings.cache_clear()
    yield Capture(caplog, capfd)
    get_settings.cache_clear()
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """Traffic goes to 127.0.0.1 directly, whatever proxy this machine has configured."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def canary_settings(tmp_path, **overrides):
    values = {
        "database_url": f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
        "data_dir": tmp_path,
        "secret_key": SECRET_KEY,
        "email_channel": "sendgrid",
        "sendgrid_api_key": SENDGRID_KEY,
        "sendgrid_host": "http://127.0.0.1:9",
        "sms_channel": "twilio",
        "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_base_url": "http://127.0.0.1:9",
        "sms_from": "CyberAlert",
        "mail_from": "Alerts <alerts@alerts.example>",
        "public_base_url": "https://alerts.example",
        "http_timeout": 1.0,
        "allow_private_addresses": True,
    }
    return load_settings(**(values | overrides))


def canary_env(monkeypatch, tmp_path, **overrides) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")  # no polling of the real publishers
    values = {
        "ALERTS_DATABASE_URL": f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
        "ALERTS_DATA_DIR": str(tmp_path),
        "ALERTS_FEEDS_FILE": str(feeds),
        "ALERTS_SECRET_KEY": SECRET_KEY,
        "ALERTS_EMAIL_CHANNEL": "sendgrid",
        "ALERTS_SENDGRID_API_KEY": SENDGRID_KEY,
        "ALERTS_SMS_CHANNEL": "twilio",
        "ALERTS_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "ALERTS_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "ALERTS_SMS_FROM": "CyberAlert",
        "ALERTS_MAIL_FROM": "Alerts <alerts@alerts.example>",
        "ALERTS_LOG_LEVEL": "DEBUG",
        "ALERTS_LOG_JSON": "true",
        "COLUMNS": "250",
    }
    for name, value in (values | overrides).items():
        monkeypatch.setenv(name, value)


def _cli(monkeypatch, capture: Capture, *args: str):
    """`alerts ARGS` in-process, its logging configured by the CLI itself and captured."""
    monkeypatch.setattr(cli, "configure_logging", lambda level, json_lines: capture.install())
    result = CliRunner().invoke(cli.app, list(args))
    capture.extra += [result.output, str(result.exception or "")]
    if result.exc_info and result.exception and not isinstance(result.exception, SystemExit):
        import traceback

        capture.extra.append("".join(traceback.format_exception(*result.exc_info)))
    return result


# --------------------------------------------------------------------------- start-up


def test_starting_the_service(monkeypatch, tmp_path, capture):
    """`alerts run` up to the point uvicorn would take over, then an orderly stop."""
    canary_env(monkeypatch, tmp_path)
    started = []
    monkeypatch.setattr("alerts.service.uvicorn.run", lambda app, **options: started.append(app))
    result = _cli(monkeypatch, capture, "run")
    assert result.exit_code == 0, result.output
    assert started and "password (shown once)" in result.output  # the first admin
    capture.assert_no_secrets('"settings: ', "stopped")


def test_the_config_command_masks_every_secret(monkeypatch, tmp_path, capture):
    canary_env(monkeypatch, tmp_path, ALERTS_DATABASE_URL=DB_URL)
    result = _cli(monkeypatch, capture, "config")
    assert result.exit_code == 0, result.output
    assert "********" in result.output and "alerts:***@127.0.0.1:9" in result.output
    capture.assert_no_secrets()


def test_a_start_on_an_unreachable_database(monkeypatch, tmp_path, capture):
    """The error (and its traceback) names the server, never the password."""
    canary_env(monkeypatch, tmp_path, ALERTS_DATABASE_URL=DB_URL)
    result = _cli(monkeypatch, capture, "run")
    assert result.exit_code != 0 and "127.0.0.1" in str(result.exception)
    capture.assert_no_secrets()


# --------------------------------------------------------------------------- providers


@pytest.mark.parametrize("refusal", ["wrong key", "nobody listening"])
def test_failed_sendgrid_and_twilio_sends(tmp_path, capture, refusal):
    """The delivery worker with the real SendGrid client and Twilio channel: refused
    credentials (the fakes expect other ones: 401), or nothing on the port."""
    capture.install()
    with (
        SendGridServer(api_key="SG.another-key") as sendgrid,
        SmsServer(account_sid=TWILIO_SID, auth_token="another-token") as sms,
    ):
        hosts = {}
        if refusal == "wrong key":
            hosts = {"sendgrid_host": sendgrid.base, "twilio_base_url": sms.base}
        settings = canary_settings(tmp_path, **hosts)
        database = Database(settings.database_url)
        add_subscribers(database, settings, 2, phone="+3247000{n:04d}")
        send_alert(database, default_catalogue(), add_alert(database), now=datetime.now(UTC))
        dispatcher = Dispatcher.from_settings(database, settings)
        dispatcher.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
        dispatcher.drain()
        database.dispose()
        if refusal == "wrong key":
            assert sendgrid.hits and sms.hits  # the requests did go out, and were refused
    expected = "HTTP 401" if refusal == "wrong key" else "no answer"
    capture.assert_no_secrets("send failed", f"sendgrid: {expected}", f"twilio: {expected}")


def test_a_signup_whose_confirmation_cannot_be_sent(tmp_path, capture):
    """The web path: the subscriber's confirmation through SendGrid, refused."""
    capture.install()
    with SendGridServer(api_key="SG.another-key") as sendgrid:
        settings = canary_settings(tmp_path, sendgrid_host=sendgrid.base)
        database = Database(settings.database_url)
        client = TestClient(create_app(settings, database), base_url="https://testserver")
        token = CSRF.search(client.get("/subscribe").text).group(1)
        answer = client.post("/subscribe", data=SIGNUP | {"csrf_token": token})
        database.dispose()
    assert answer.status_code == 503 and sendgrid.hits
    capture.extra.append(answer.text)
    capture.assert_no_secrets()


# --------------------------------------------------------------------------- the web


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app):
    """The app under a real uvicorn (its own error logging included), as `alerts run` does."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_error_pages_when_the_database_is_down(tmp_path, capture):
    """A 500 on every page that needs the database, a 503 readiness with the error logged,
    a 404; the database URL carries a password and the server is unreachable."""
    capture.install()
    settings = canary_settings(tmp_path, database_url=DB_URL)
    database = Database(DB_URL, auto_migrate=False)
    app = create_app(settings, database)

    def broken() -> None:
        raise RuntimeError("an unexpected failure")

    app.add_api_route("/broken-for-this-test", broken)
    with serving(app) as base:  # a connection per request: a 500 closes its connection
        paths = ("/readyz", "/advisories", "/staff/login", "/nothing-here", "/broken-for-this-test")
        answers = {path: httpx.get(base + path, timeout=10) for path in paths}
    database.dispose()
    assert answers["/readyz"].status_code == 503
    assert answers["/advisories"].status_code == 500
    assert answers["/nothing-here"].status_code == 404
    assert answers["/broken-for-this-test"].status_code == 500
    capture.extra += [answer.text for answer in answers.values()]
    out_err = capture.capfd.readouterr()
    capture.extra += list(out_err)
    assert "Exception in ASGI application" in out_err.err  # uvicorn's own error log was read
    capture.assert_no_secrets("database unreachable")


def test_a_refused_staff_login(tmp_path, capture):
    capture.install()
    settings = canary_settings(tmp_path)
    database = Database(settings.database_url)
    with database.session() as session:
        accounts.add(session, STAFF_EMAIL, "Ann", "admin", STAFF_PASSWORD, datetime.now(UTC))
    client = TestClient(create_app(settings, database), base_url="https://testserver")
    for password in (WRONG_PASSWORD, STAFF_PASSWORD + "!", WRONG_PASSWORD * 20):
        token = CSRF.search(client.get("/staff/login").text).group(1)
        answer = client.post(
            "/staff/login",
            data={"csrf_token": token, "email": STAFF_EMAIL, "password": password},
        )
        assert answer.status_code == 401
        capture.extra.append(answer.text)
    database.dispose()
    capture.assert_no_secrets()


def test_webhooks_with_bad_signatures(tmp_path, capture):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    capture.install()
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = canary_settings(tmp_path, sendgrid_webhook_public_key=base64.b64encode(der).decode())
    database = Database(settings.database_url)
    client = TestClient(create_app(settings, database), base_url="https://testserver")
    stamp = str(int(time.time()))
    posts = [
        ("/webhooks/sendgrid", b'[{"event": "bounce"}]', {"Content-Type": "application/json"}),
        (
            "/webhooks/sendgrid",
            b"[]",
            {
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"forged").decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            },
        ),
        ("/webhooks/twilio", b"Body=STOP&From=%2B32470123456", {"X-Twilio-Signature": "forged"}),
        ("/webhooks/sms", b"MessageSid=SM1&MessageStatus=failed", {}),
    ]
    for path, body, headers in posts:
        answer = client.post(
            path,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"} | headers,
        )
        assert answer.status_code == 403, (path, answer.status_code)
        capture.extra.append(answer.text)
    database.dispose()
    capture.assert_no_secrets("sendgrid webhook refused", "twilio webhook refused")


def test_the_canaries_would_be_seen(capture):
    """The check itself: a secret that does reach a log line is caught."""
    capture.install()
    logging.getLogger("alerts.test").warning("oops, the key is %s", TWILIO_TOKEN)
    with pytest.raises(AssertionError, match="Twilio auth token"):
        capture.assert_no_secrets()


def test_the_settings_hold_the_canaries(tmp_path):
    """And the canaries are really the configured secrets (so their absence means something)."""
    settings = canary_settings(tmp_path, database_url=DB_URL)
    assert settings.signing_key() == SECRET_KEY
    assert isinstance(settings.sendgrid_api_key, SecretStr)
    assert settings.sendgrid_api_key.get_secret_value() == SENDGRID_KEY
    assert settings.twilio_auth_token.get_secret_value() == TWILIO_TOKEN
    assert DB_PASSWORD in settings.database_url
