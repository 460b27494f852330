"""Kill -9 a real `alerts worker` process at random moments of a fan-out, five times, then
let a last worker finish: every recipient has exactly one message accepted by the (fake)
provider.

A kill while a request is in flight leaves its messages with an unknown outcome. They are
never resent blindly: the provider reports every message it accepted (SendGrid's
"processed" event), and only the ones it never reported go once more after the grace
period. The test plays the provider's event webhook for what the fake accepted."""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import and_, func, or_, select

from alerts.delivery import batches, outbox
from alerts.delivery.models import OutboxMessage
from alerts.delivery.receipts import apply_events, sendgrid_receipts
from alerts.delivery.service import send_alert
from alerts.relevance.service import default_catalogue
from alerts.store import Database
from tests.delivery_setup import SENDGRID_KEY, add_alert, add_subscribers
from tests.fakes.sendgrid_server import SendGridServer, recipients

ALERTS = Path(sys.executable).with_name("alerts")
RECIPIENTS = 5_000
KILLS = 5


def _environment(database_url: str, data_dir: Path, sendgrid: SendGridServer) -> dict:
    return os.environ | {
        "ALERTS_DATABASE_URL": database_url,
        "ALERTS_DATA_DIR": str(data_dir),
        "ALERTS_EMAIL_CHANNEL": "sendgrid",
        "ALERTS_SENDGRID_API_KEY": SENDGRID_KEY,
        "ALERTS_SENDGRID_HOST": sendgrid.base,
        "ALERTS_MAIL_FROM": "Cyber alerts <alerts@alerts.example>",
        "ALERTS_SECRET_KEY": "crash-test-signing-key-0123456789",
        "ALERTS_DELIVERY_LEASE_SECONDS": "1",
        "ALERTS_RECEIPT_GRACE_SECONDS": "2",
        # Receipts are expected (the test plays the webhook), so unheard messages are resent.
        "ALERTS_SENDGRID_WEBHOOK_PUBLIC_KEY": _public_key(),
        "ALERTS_EMAIL_PER_SECOND": "1000",
        "ALERTS_HTTP_TIMEOUT": "5",
        "ALERTS_LOG_LEVEL": "WARNING",
    }


def _public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _worker(environment: dict, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ALERTS), "worker"], env=environment, stdout=stdout, stderr=subprocess.DEVNULL
    )


def _waiting(database: Database) -> int:
    """Messages a worker may still send: batches waiting or in flight, rows queued,
    claimed, or unknown and not yet settled."""
    with database.session() as session:
        if batches.open_for_any(session):
            return 1
        pending = and_(
            OutboxMessage.status.in_(("created", "temporary-failure", "sending")),
            OutboxMessage.sent_at.is_(None),
        )
        unsettled = and_(
            OutboxMessage.outcome_unknown.is_(True),
            OutboxMessage.resent_after_unknown.is_(False),
        )
        return session.scalar(select(func.count()).where(or_(pending, unsettled)))


def test_kill_9_mid_fan_out_never_doubles_or_loses(database_url, tmp_path, settings):
    with SendGridServer() as sendgrid:
        sendgrid.latency = 0.5  # each batch of 1,000 is in flight for a while
        environment = _environment(database_url, tmp_path, sendgrid)
        configured = settings.model_copy(update={"database_url": database_url})
        database = Database(database_url)
        add_subscribers(database, _signing(configured), RECIPIENTS)
        send_alert(database, default_catalogue(), add_alert(database))
        webhook = _EventWebhook(database, sendgrid)
        webhook.start()

        rng = random.Random(20261127)
        kills = 0
        while kills < KILLS and _waiting(database):
            worker = _worker(environment)
            if not _kill_in_flight(worker, sendgrid, rng):
                break  # nothing more was sent: the queue ran dry under this worker
            kills += 1
            time.sleep(1.1)  # past the lease: abandoned claims may be taken again

        before_last = len(recipients(sendgrid))
        last = _worker(environment, stdout=subprocess.PIPE)
        assert b"running" in last.stdout.readline()  # its signal handlers are in place
        deadline = time.monotonic() + 120
        while _waiting(database) and time.monotonic() < deadline:
            time.sleep(0.5)
        last.send_signal(signal.SIGTERM)
        assert last.wait(timeout=30) == 0  # a clean stop on SIGTERM
        webhook.stop()

        accepted = Counter(address for address, _ in recipients(sendgrid))
        with database.session() as session:
            messages = outbox.messages(session)
    database.dispose()

    resent = sum(1 for message in messages if message.resent_after_unknown)
    print(
        f"\ncrash test: {len(messages)} messages, {before_last} accepted before the last "
        f"worker, {resent} resent after an unknown outcome"
    )
    assert kills >= 3  # the kills did land while requests were in flight
    assert len(messages) == len({m.subscriber_id for m in messages}) == RECIPIENTS
    assert len(accepted) == RECIPIENTS  # every subscriber's address reached the provider
    assert set(accepted.values()) == {1}  # and none twice
    assert not any(message.outcome_unknown for message in messages)


def _kill_in_flight(worker: subprocess.Popen, sendgrid: SendGridServer, rng) -> int:
    """SIGKILL shortly after the worker's next request reaches the provider: while it is in
    flight (0.5 s) or just answered, the moments where a crash can lose or double."""
    target = sendgrid.arrived + 1
    deadline = time.monotonic() + 10
    while sendgrid.arrived < target and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.7))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    return int(sendgrid.arrived >= target)


class _EventWebhook(threading.Thread):
    """SendGrid's event webhook: a "processed" receipt for every message the fake accepted,
    a fraction of a second later."""

    def __init__(self, database: Database, sendgrid: SendGridServer):
        super().__init__(daemon=True)
        self.database, self.sendgrid = database, sendgrid
        self.reported = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.report()

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.report()

    def report(self) -> None:
        accepted = recipients(self.sendgrid)[self.reported :]
        events = sendgrid_receipts(
            [
                {"event": "processed", "sg_event_id": f"processed-{ref}", "outbox_id": ref}
                for _, ref in accepted
            ]
        )
        if events:
            with self.database.session() as session:
                apply_events(session, "sendgrid", events, datetime.now(UTC))
        self.reported += len(accepted)


def _signing(settings):
    from pydantic import SecretStr

    return settings.model_copy(
        update={"secret_key": SecretStr("crash-test-signing-key-0123456789")}
    )
