"""SIGTERM to a real `alerts run` in the middle of a fan-out: the request in flight
finishes and is recorded, every claim not handed off goes back to the outbox, nothing is
left half-sent; a worker started afterwards sends the rest, and every recipient has
exactly one message accepted by the (fake) provider."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

from alerts.delivery import outbox
from alerts.delivery.service import send_alert
from alerts.relevance.service import default_catalogue
from alerts.store import Database
from tests.delivery_setup import add_alert, add_subscribers
from tests.fakes.sendgrid_server import SendGridServer, recipients
from tests.test_delivery_crash import ALERTS, _environment, _signing, _waiting
from tests.test_service_run import REGISTRY, _port, _ready

RECIPIENTS = 6_000  # two claims of 4,000 at most, requests of 1,000


def _run(environment: dict, tmp_path, port: int) -> subprocess.Popen:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(REGISTRY, encoding="utf-8")
    environment = environment | {
        "ALERTS_FEEDS_FILE": str(feeds),
        "ALERTS_PORT": str(port),
        "ALERTS_ALLOW_PRIVATE_ADDRESSES": "true",
        "ALERTS_SENDGRID_WEBHOOK_PUBLIC_KEY": "",  # no receipts expected: nothing resent
        "ALERTS_LOG_LEVEL": "INFO",
    }
    return subprocess.Popen(
        [str(ALERTS), "run"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _by_state(database: Database) -> dict[str, int]:
    with database.session() as session:
        messages = outbox.messages(session)
    states: Counter = Counter()
    for message in messages:
        if message.outcome_unknown:
            states["outcome unknown"] += 1
        elif message.sent_at:
            states["accepted"] += 1
        elif message.claimed_by:
            states["claimed or handed off"] += 1
        else:
            states[f"waiting ({message.status})"] += 1
    return dict(states)


def test_sigterm_mid_dispatch_loses_and_doubles_nothing(database_url, tmp_path, settings):
    with SendGridServer() as sendgrid:
        sendgrid.latency = 0.5  # each request of 1,000 is in flight for half a second
        environment = _environment(database_url, tmp_path, sendgrid)
        database = Database(database_url)
        add_subscribers(database, _signing(settings), RECIPIENTS)
        port = _port()
        service = _run(environment, tmp_path, port)
        try:
            _ready(port, "running")
            send_alert(database, default_catalogue(), add_alert(database))
            deadline = time.monotonic() + 30
            while sendgrid.arrived < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sendgrid.arrived >= 2, "the service never started sending"
            service.send_signal(signal.SIGTERM)  # a request is in flight right now
            output, _ = service.communicate(timeout=90)
        finally:
            if service.poll() is None:
                service.kill()
        stopped = _by_state(database)
        accepted_before = len(recipients(sendgrid))

        worker = subprocess.Popen(
            [str(ALERTS), "worker"], env=environment, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while _waiting(database) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        accepted = Counter(address for address, _ in recipients(sendgrid))
        with database.session() as session:
            messages = outbox.messages(session)
    database.dispose()

    assert b"stopped" in output  # the orderly stop ran to its end
    # At the stop: what the provider accepted is recorded as accepted; the rest waits in
    # the outbox, unclaimed; nothing handed off without a record, nothing unknown.
    assert stopped.get("accepted") == accepted_before
    assert 0 < accepted_before < RECIPIENTS  # the stop did land mid-dispatch
    assert set(stopped) <= {"accepted", "waiting (created)"}
    assert sum(stopped.values()) == RECIPIENTS
    # After a worker finished the job: every recipient exactly once.
    assert len(messages) == len({m.subscriber_id for m in messages}) == RECIPIENTS
    assert len(accepted) == RECIPIENTS and set(accepted.values()) == {1}
