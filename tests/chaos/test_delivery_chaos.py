"""Delivery under faults, at scale: crashes, a provider in trouble, a database that goes
away. Every case counts messages lost (no accepted copy and no explicit failure) and
duplicated (accepted more than once by the fake provider); both must be zero.

The provider's receipts are played as SendGrid's event webhook and Twilio's status
callbacks would send them: an outcome that was unknown (a timeout, a crash mid-request) is
settled by the receipt when the provider did take the message, and sent once more only
when it never reported it."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, text

from alerts.delivery import outbox
from alerts.delivery.channels import email_channel, sms_channel
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.models import DELIVERED, PERMANENT, TECHNICAL, OutboxMessage
from alerts.delivery.receipts import Receipt, apply_events, sendgrid_receipts
from alerts.delivery.service import send_alert
from alerts.relevance.service import default_catalogue
from alerts.store import Database
from subscribers.models import Subscriber
from tests.delivery_setup import add_alert, add_subscribers, provider_settings
from tests.fakes.sendgrid_server import Reply, SendGridServer, hang, recipients, reset
from tests.fakes.sms_server import SmsServer
from tests.test_delivery_crash import (
    _environment,
    _EventWebhook,
    _kill_in_flight,
    _public_key,
    _signing,
    _waiting,
    _worker,
)

pytestmark = pytest.mark.chaos
FAULT_RATE = 0.2
RETRY_AFTER = 45  # seconds; longer than the first planned back-off, so honouring it shows
CLIENT_TIMEOUT = 1.0
EXPLICIT_FAILURES = (PERMANENT, TECHNICAL)


# ----------------------------------------------------------------------------- helpers


class Clock:
    """The dispatcher's time, moved by the test: back-offs of minutes pass in a moment."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Troubled:
    """Mix-in for the fake providers: a fifth of the requests meet trouble — 429 with
    Retry-After, 500, a reset connection, silence past the client's timeout, or an
    acceptance answered too late (the provider took the messages; we do not know)."""

    FAULTS = ("429", "500", "reset", "hang", "slow-accept")

    def setup_trouble(self, clock: Clock, seed: int) -> None:
        self.clock, self.rng = clock, random.Random(seed)
        self.faults: Counter = Counter()
        self.throttled: dict[str, datetime] = {}  # reference -> when it got a 429
        self.early_retries: list[tuple[str, float]] = []

    def _next(self, path, headers, body):
        references = self.references_in(headers, body)
        for reference in references:
            if reference in self.throttled:
                waited = (self.clock() - self.throttled.pop(reference)).total_seconds()
                if waited < RETRY_AFTER:
                    self.early_retries.append((reference, waited))
        if self.rng.random() >= FAULT_RATE:
            return super()._next(path, headers, body)
        fault = self.rng.choice(self.FAULTS)
        self.faults[fault] += 1
        if fault == "429":
            for reference in references:
                self.throttled[reference] = self.clock()
            return self.too_many()
        if fault == "500":
            return Reply(500, body={"errors": [{"message": "internal error"}]})
        if fault == "reset":
            return reset()
        if fault == "hang":
            return hang(CLIENT_TIMEOUT + 0.3)
        accepted = super()._next(path, headers, body)  # taken, but answered too late
        time.sleep(CLIENT_TIMEOUT + 0.3)
        return accepted


class TroubledSendGrid(Troubled, SendGridServer):
    def references_in(self, headers, body) -> list[str]:
        """The recipients' addresses: a message's outbox id changes when a failed batch
        gives it a row of its own, its address does not."""
        try:
            payload = json.loads(body)
        except ValueError:
            return []
        return [to["email"] for item in payload.get("personalizations", []) for to in item["to"]]

    def too_many(self) -> Reply:
        body = {"errors": [{"message": "too many requests"}]}
        return Reply(429, {"Retry-After": str(RETRY_AFTER)}, body)


class TroubledSms(Troubled, SmsServer):
    def references_in(self, headers, body) -> list[str]:
        return [_sms_reference(parse_qs(body.decode()))]

    def too_many(self) -> Reply:
        body = {"code": 20429, "message": "Too Many Requests", "status": 429}
        return Reply(429, {"Retry-After": str(RETRY_AFTER)}, body)


def _sms_reference(form: dict) -> str:
    """Our outbox id, from the status callback URL's reference ("outbox-<id>")."""
    callback = (form.get("StatusCallback") or [""])[0]
    reference = (parse_qs(urlsplit(callback).query).get("reference") or [""])[0]
    return reference.rpartition("-")[2]


def _accepted_sms(server: SmsServer) -> list[tuple[str, str]]:
    """(provider sid, outbox id) of every SMS the fake accepted."""
    found = []
    for received in server.accepted:
        form = received.body if isinstance(received.body, dict) else {}
        reference = _sms_reference({k: v if isinstance(v, list) else [v] for k, v in form.items()})
        found.append((received.reference, reference))
    return found


class Receipts:
    """The providers' reports of what they accepted, then delivered (each once)."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database, self.clock = database, clock
        self.email_seen = self.sms_seen = 0

    def play(self, sendgrid: SendGridServer, sms: SmsServer | None = None) -> None:
        """Like the providers, a report that could not be stored (the database is away)
        is sent again later: the cursor moves only once the events are stored."""
        emails = recipients(sendgrid)[self.email_seen :]
        events = sendgrid_receipts(
            [
                {"event": event, "sg_event_id": f"{event}-{reference}", "outbox_id": reference}
                for _, reference in emails
                for event in ("processed", "delivered")
            ]
        )
        self._apply("sendgrid", events)
        self.email_seen += len(emails)
        if sms is not None:
            texts = _accepted_sms(sms)[self.sms_seen :]
            events = [Receipt(f"{sid}-delivered", int(ref), "delivered") for sid, ref in texts]
            self._apply("twilio", events)
            self.sms_seen += len(texts)

    def _apply(self, provider: str, events: list[Receipt]) -> None:
        if events:
            with self.database.session() as session:
                apply_events(session, provider, events, self.clock())


def _outcome(database: Database, accepted: Counter) -> tuple[int, int, Counter]:
    """Lost, duplicated, and the final statuses, per message. `accepted` counts what the
    fakes took: emails by address (a batch's message and the row it may get later carry
    different references), text messages by outbox id."""
    with database.session() as session:
        messages = outbox.messages(session)
        addresses = dict(session.execute(select(Subscriber.id, Subscriber.email)).all())
    statuses = Counter(message.status for message in messages)

    def copies(message) -> int:
        if message.channel == "email":
            return accepted[addresses.get(message.subscriber_id, "")]
        return accepted[str(message.id)]

    lost = sum(1 for m in messages if copies(m) == 0 and m.status not in EXPLICIT_FAILURES)
    duplicated = sum(1 for m in messages if copies(m) > 1)
    return lost, duplicated, statuses


# ----------------------------------------------------------------------------- the cases


def test_kill_9_during_a_100k_fan_out(database_url, tmp_path, settings, chaos_report):
    """kill -9 a real `alerts worker` five times at random moments while requests are in
    flight, then let a last worker finish: one accepted message per recipient."""
    recipients_count, kills_wanted = 100_000, 5
    with SendGridServer() as sendgrid:
        sendgrid.latency = 0.5
        environment = _environment(database_url, tmp_path, sendgrid)
        database = Database(database_url)
        add_subscribers(database, _signing(settings), recipients_count)
        send_alert(database, default_catalogue(), add_alert(database))
        webhook = _EventWebhook(database, sendgrid)
        webhook.start()
        rng, kills = random.Random(20261128), 0
        while kills < kills_wanted and _waiting(database):
            if not _kill_in_flight(_worker(environment), sendgrid, rng):
                break
            kills += 1
            time.sleep(1.1)  # past the lease
        last = _worker(environment)
        deadline = time.monotonic() + 900
        while _waiting(database) and time.monotonic() < deadline:
            time.sleep(1)
        last.terminate()
        last.wait(timeout=60)
        webhook.stop()
        accepted = Counter(address for address, _ in recipients(sendgrid))
        with database.session() as session:
            resent = session.scalar(
                select(func.count()).where(OutboxMessage.resent_after_unknown.is_(True))
            )
    lost, duplicated, _ = _outcome(database, accepted)
    database.dispose()
    chaos_report.messages, chaos_report.lost, chaos_report.duplicated = (
        recipients_count,
        lost,
        duplicated,
    )
    chaos_report.notes.append(f"{kills} kills; {resent} answers lost in flight, sent once more")
    assert kills == kills_wanted
    assert (lost, duplicated) == (0, 0)
    assert sum(accepted.values()) == recipients_count


def test_provider_trouble_on_email_and_sms(database, settings, chaos_report):
    """A fifth of all requests to both providers fail in one of five ways: every message
    ends delivered or explicitly failed, none twice, and 429's Retry-After is honoured."""
    clock = Clock()
    with TroubledSendGrid() as sendgrid, TroubledSms() as sms:
        sendgrid.setup_trouble(clock, 1)
        sms.setup_trouble(clock, 2)
        configured = provider_settings(
            settings,
            sendgrid,
            sms,
            http_timeout=CLIENT_TIMEOUT,
            email_per_second=1e7,
            sms_per_second=1e7,
            sendgrid_webhook_public_key=_public_key(),
            receipt_grace_seconds=120,
            delivery_lease_seconds=60,
            delivery_max_attempts=10,
        )
        add_subscribers(database, configured, 8_000)
        add_subscribers(database, configured, 300, start=8_000, phone="+32470{n:06d}")
        send_alert(database, default_catalogue(), add_alert(database), now=clock())
        email = email_channel(configured)
        email.batch_size = 100  # many requests, so that a fifth of them is many faults
        dispatcher = Dispatcher(database, configured, email, sms_channel(configured), clock)
        receipts = Receipts(database, clock)
        for _ in range(400):
            dispatcher.run_once()
            receipts.play(sendgrid, sms)
            if not _waiting(database):
                break
            clock.advance(15)
        accepted = Counter(address for address, _ in recipients(sendgrid))
        accepted.update(ref for _, ref in _accepted_sms(sms))
        faults = sendgrid.faults + sms.faults
        early = sendgrid.early_retries + sms.early_retries
    lost, duplicated, statuses = _outcome(database, accepted)
    chaos_report.messages, chaos_report.lost, chaos_report.duplicated = (
        8_300 + 300,
        lost,
        duplicated,
    )
    chaos_report.notes.append(f"faults {dict(faults)}; final {dict(statuses)}")
    with database.session() as session:
        reasons = Counter(
            f"{channel}: {error}"
            for channel, error in session.execute(
                select(OutboxMessage.channel, OutboxMessage.last_error).where(
                    OutboxMessage.status.in_(EXPLICIT_FAILURES)
                )
            )
        )
    if reasons:
        chaos_report.notes.append(f"explicit failures {dict(reasons)}")
    assert not _waiting(database)
    assert all(faults[fault] > 0 for fault in Troubled.FAULTS)
    assert not early, f"retried before Retry-After: {early[:5]}"
    assert (lost, duplicated) == (0, 0)
    assert set(statuses) <= {DELIVERED, *EXPLICIT_FAILURES}


def test_sqlite_locked_by_another_process(tmp_path, settings, chaos_report, caplog):
    """Another process holds SQLite's write lock longer than our busy timeout: the worker
    reports the failed round, waits, and sends everything once the lock is gone."""
    url = f"sqlite:///{tmp_path / 'locked.sqlite3'}"
    database = Database(url)
    with SendGridServer() as sendgrid:
        configured = provider_settings(settings, sendgrid, email_per_second=1e7)
        add_subscribers(database, configured, 3_000)
        send_alert(database, default_catalogue(), add_alert(database))
        locker = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(tmp_path / "locked.sqlite3"), "33"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert locker.stdout.readline().strip() == "locked"
        dispatcher = Dispatcher.from_settings(database, configured)
        sender = threading.Thread(target=dispatcher.run, kwargs={"idle_seconds": 0.2})
        with caplog.at_level(logging.ERROR, logger="alerts.delivery.dispatch"):
            sender.start()
            locker.wait(timeout=60)
            deadline = time.monotonic() + 60
            while _waiting(database) and time.monotonic() < deadline:
                time.sleep(0.2)
            dispatcher.stop()
            sender.join(timeout=60)
        accepted = Counter(address for address, _ in recipients(sendgrid))
    lost, duplicated, _ = _outcome(database, accepted)
    database.dispose()
    reported = [r for r in caplog.records if "delivery round failed" in r.getMessage()]
    chaos_report.messages, chaos_report.lost, chaos_report.duplicated = 3_000, lost, duplicated
    chaos_report.notes.append(f"{len(reported)} failed round(s) reported while locked")
    assert reported, "the lock was never noticed"
    assert (lost, duplicated) == (0, 0)
    assert sum(accepted.values()) == 3_000


_LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


@pytest.mark.parametrize("fault", ["connections-dropped", "server-restarted"])
def test_postgresql_goes_away_during_a_send(database_url, settings, chaos_report, fault):
    """The database drops every connection (or restarts) three times while a worker sends:
    the worker reports, reconnects and finishes; nothing lost or doubled."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL fault")
    if fault == "server-restarted" and not _can_restart():
        pytest.skip("restarting the server needs CHAOS_PG_RESTART=1 and pg_ctlcluster")
    database, admin = Database(database_url), Database(database_url)
    with SendGridServer() as sendgrid:
        sendgrid.latency = 0.2
        configured = provider_settings(
            settings,
            sendgrid,
            email_per_second=1e7,
            sendgrid_webhook_public_key=_public_key(),
            # Longer than an outage: receipts held up by the outage still arrive in time
            # (as in production, where the grace is minutes and providers retry webhooks).
            receipt_grace_seconds=30,
            delivery_lease_seconds=2,
        )
        add_subscribers(database, configured, 20_000)
        send_alert(database, default_catalogue(), add_alert(database))
        dispatcher = Dispatcher.from_settings(database, configured)
        sender = threading.Thread(target=dispatcher.run, kwargs={"idle_seconds": 0.2})
        receipts = Receipts(database, Clock())
        sender.start()
        for round_ in range(3):
            _wait_for_requests(sendgrid, 3 * (round_ + 1))
            _break(admin, fault)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            receipts.clock.now = datetime.now(UTC)
            _retrying(lambda: receipts.play(sendgrid))
            if not _retrying(lambda: _waiting(database), default=1):
                break
            time.sleep(0.5)
        dispatcher.stop()
        sender.join(timeout=60)
        receipts.play(sendgrid)
        accepted = Counter(address for address, _ in recipients(sendgrid))
    lost, duplicated, statuses = _outcome(database, accepted)
    database.dispose()
    admin.dispose()
    chaos_report.messages, chaos_report.lost, chaos_report.duplicated = 20_000, lost, duplicated
    chaos_report.notes.append(f"final {dict(statuses)}")
    assert (lost, duplicated) == (0, 0)
    assert sum(accepted.values()) == 20_000


def _wait_for_requests(server, count: int) -> None:
    deadline = time.monotonic() + 60
    while server.arrived < count and time.monotonic() < deadline:
        time.sleep(0.02)


def _break(admin: Database, fault: str) -> None:
    if fault == "server-restarted":
        subprocess.run(["pg_ctlcluster", *_cluster(), "restart"], check=True, timeout=120)
        return
    with admin.engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        connection.commit()


def _can_restart() -> bool:
    return os.environ.get("CHAOS_PG_RESTART") == "1" and shutil.which("pg_ctlcluster") is not None


def _cluster() -> list[str]:
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    version, name = listing.stdout.split()[:2]
    return [version, name]


def _retrying(action, default=None):
    """The test's own reads ride out the outage too."""
    for _ in range(60):
        try:
            return action()
        except Exception:
            time.sleep(0.5)
    return default
