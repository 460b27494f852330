"""Fan-out: one urgent alert to N confirmed subscribers, from "approved" to "every request
accepted" by a SendGrid-compatible fake on 127.0.0.1 (another process, counting only), and
the same number of pre-built requests sent straight to the fake: the wire limit.

    python -m bench.fanout --n 100000 [--db sqlite|postgresql|URL] [--workers K] [--runs R]
                           [--floor]

Subscribers are created and the delivery worker processes started before the clock starts.
One JSON line: the common keys plus db, workers, wire_seconds and ratio (fan-out seconds /
wire seconds); peak_rss_mb is the largest of this process and its children.

`--floor` ("fanout-floor") measures what no outbox design can beat on this machine: K
processes that only read the audience (one query), read each request's recipients, sign
their links and post the requests with the dispatcher's own code, writing nothing to the
database — the per-recipient work every send needs, side by side with the wire limit.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import create_engine, insert, text

from alerts.compose import PLACEHOLDERS, compose_email
from alerts.curation.content import alert_content
from alerts.curation.models import APPROVED, Alert
from alerts.delivery.channels import BatchRecipient, SendGridChannel
from alerts.delivery.channels.sendgrid_email import batch_payload
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.messages import EmailMessage
from alerts.delivery.service import send_alert
from alerts.relevance.service import default_catalogue
from alerts.settings import load_settings
from alerts.store import Database
from bench.common import children_peak_rss_mb, emit, peak_rss_mb, progress
from subscribers.models import Subscriber
from subscribers.tokens import Signer

KEY = "SG.bench-key"
SECRET = "bench-signing-key-0123456789abcdef"
POSTGRESQL = os.environ.get("BENCH_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432")
TEXT = {
    "title": "FortiGate SSL-VPN flaw exploited",
    "what": "Attackers take over FortiGate firewalls through a flaw in the SSL-VPN.",
    "affected": "Businesses with a Fortinet FortiGate firewall.",
    "actions": ["Update FortiOS today.", "Check the logs for unknown VPN logins."],
    "urgency": "Act today",
}


def start_fake() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.sendgrid_server", KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return process, process.stdout.readline().strip()


def accepted(channel: SendGridChannel) -> int:
    """Personalizations the fake has accepted so far."""
    import json

    response = channel._client.client._("stats").post(request_body={}, timeout=10)
    return json.loads(response.body)["personalizations"]


def fill(database: Database, n: int, now: datetime) -> None:
    signer = Signer(SECRET)
    with database.session() as session:
        for start in range(0, n, 10_000):
            rows = [
                _subscriber(signer, number, now) for number in range(start, min(n, start + 10_000))
            ]
            session.execute(insert(Subscriber), rows)


def _subscriber(signer: Signer, number: int, now: datetime) -> dict:
    email = f"owner{number}@shop{number % 997}.example"
    return {
        "status": "active",
        "organisation": f"Shop {number}",
        "email": email,
        "email_key": signer.key("email", email),
        "language": ("nl", "fr", "en", "de")[number % 4],
        "region": "BE-VAN",
        "sector": "retail",
        "size_band": "2-9",
        "families": ["fortinet-fortigate"],
        "knows_products": True,
        "urgent_email": True,
        "urgent_sms": False,
        "newsletter": "weekly",
        "source": "import",
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now,
        "link_key": f"k{number:011d}",
        "sms_optout_code": f"o{number}",
        "sms_code_attempts": 0,
    }


def approved_alert(database: Database, now: datetime) -> int:
    with database.session() as session:
        alert = Alert(
            tier="urgent",
            status=APPROVED,
            texts={"en": TEXT},
            targeting={"families": ["fortinet-fortigate"]},
            cves=[],
            links=[],
            firms=[],
            known_exploited=True,
            created_at=now,
            updated_at=now,
            approved_at=now,
        )
        session.add(alert)
        session.flush()
        return alert.id


def fan_out(database: Database, alert_id: int, n: int, channel, workers: list) -> float:
    """From "approved" to every personalization accepted, the workers already running."""
    target = accepted(channel) + n
    start = time.perf_counter()
    send_alert(database, default_catalogue(), alert_id)
    while accepted(channel) < target:
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit("bench.fanout: a delivery worker stopped")
        time.sleep(0.02)
    return time.perf_counter() - start


def start_workers(count: int, url: str, folder: str, base_url: str) -> list[subprocess.Popen]:
    """Delivery workers in their own processes (started, imported and polling an empty
    queue before the clock starts), as `alerts worker` runs them."""
    command = [sys.executable, "-m", "bench.fanout", "--worker", url, folder, base_url]
    return [subprocess.Popen(command, stdin=subprocess.PIPE) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.stdin.close()
    for worker in workers:
        worker.wait(timeout=60)


def bench_settings(url: str, folder: str, base_url: str):
    return load_settings(
        database_url=url,
        data_dir=Path(folder),
        email_channel="sendgrid",
        sendgrid_api_key=SecretStr(KEY),
        sendgrid_host=base_url,
        secret_key=SecretStr(SECRET),
        mail_from="Cyber alerts <alerts@alerts.example>",
        email_per_second=10_000_000,
        delivery_lease_seconds=600,
    )


def start_floor_workers(count: int, url: str, folder: str, base_url: str) -> list:
    command = [sys.executable, "-m", "bench.fanout", "--floor-worker", url, folder, base_url]
    return [
        subprocess.Popen([*command, str(index), str(count)], stdin=subprocess.PIPE, text=True)
        for index in range(count)
    ]


def floor_fan_out(database: Database, alert_id: int, n: int, channel, workers: list) -> float:
    """From "go" to every personalization accepted: no outbox, no status written."""
    target = accepted(channel) + n
    start = time.perf_counter()
    for process in workers:
        process.stdin.write(f"{alert_id}\n")
        process.stdin.flush()
    while accepted(channel) < target:
        if any(process.poll() is not None for process in workers):
            raise SystemExit("bench.fanout: a floor worker stopped")
        time.sleep(0.02)
    return time.perf_counter() - start


def floor_worker(url: str, folder: str, base_url: str, index: str, count: str) -> None:
    """Per alert id read from stdin: the audience in one query, grouped by language in
    requests of 1,000, every `count`-th request from `index`, each built and posted with
    the dispatcher's own code (recipients read at send time, links signed per recipient)."""
    from sqlalchemy import select

    from subscribers.models import Subscriber

    database = Database(url)
    dispatcher = Dispatcher.from_settings(database, bench_settings(url, folder, base_url))
    batch = dispatcher.email_channel.batch_size
    gc.freeze()  # as Dispatcher.run does
    for line in sys.stdin:
        alert = dispatcher._alert(int(line))
        query = select(Subscriber.id, Subscriber.language).where(
            Subscriber.status == "active", Subscriber.urgent_email.is_(True)
        )
        by_language: dict[str, list[int]] = {}
        with database.session() as session:
            for subscriber_id, language in session.connection().execute(query):
                by_language.setdefault(language, []).append(subscriber_id)
        requests = [
            ids[at : at + batch] for ids in by_language.values() for at in range(0, len(ids), batch)
        ]
        # One request in flight while the next is built, as the dispatcher does.
        with ThreadPoolExecutor(max_workers=1) as sender:
            in_flight = None
            for ids in requests[int(index) :: int(count)]:
                message, built = _floor_request(dispatcher, alert, ids)
                if in_flight is not None:
                    in_flight.result()
                in_flight = sender.submit(dispatcher.email_channel.send_batch, message, built)
            if in_flight is not None:
                in_flight.result()


def _floor_request(dispatcher: Dispatcher, alert, ids: list[int]):
    recipients = dispatcher._recipients(ids)
    first = recipients[ids[0]]
    message = dispatcher._email(alert, first.language, first.email)
    return message, [dispatcher._batch_recipient(f"b0.{i}", i, recipients[i]) for i in ids]


def worker(url: str, folder: str, base_url: str) -> None:
    """One delivery worker: claims and sends until stdin closes."""
    dispatcher = Dispatcher.from_settings(Database(url), bench_settings(url, folder, base_url))
    threading.Thread(target=lambda: (sys.stdin.read(), dispatcher.stop()), daemon=True).start()
    dispatcher.run(idle_seconds=0.02)


def wire(channel: SendGridChannel, database: Database, alert_id: int, n: int, base: int) -> float:
    """The same number of requests, built before the clock: 10 distinct bodies of 1,000
    personalizations each, sent round-robin (same size and shape as the real ones)."""
    with database.session() as session:
        alert = session.get(Alert, alert_id)
        composed = compose_email(alert_content(alert, "http://127.0.0.1:8000"), "en", PLACEHOLDERS)
    message = EmailMessage(
        to="x@shop.example",
        subject=composed.subject,
        text=composed.text,
        html=composed.html,
        category="alert-urgent",
    )
    bodies = [
        batch_payload(message, _recipients(b * 1000), channel.mail_from, False) for b in range(10)
    ]
    start = time.perf_counter()
    for index in range(n // 1000):
        channel._post(bodies[index % 10])
    if n % 1000:
        channel._post(batch_payload(message, _recipients(0)[: n % 1000], channel.mail_from, False))
    while accepted(channel) < base + n:
        time.sleep(0.01)
    return time.perf_counter() - start


def _recipients(offset: int) -> list[BatchRecipient]:
    url = "http://127.0.0.1:8000/preferences/{0}.k00000000000.AAAAAAAAAAAAAAAAAAAAAA"
    return [
        BatchRecipient(
            to=f"owner{offset + i}@shop.example",
            substitutions={
                PLACEHOLDERS.preferences: url.format(offset + i),
                PLACEHOLDERS.unsubscribe: url.format(offset + i),
            },
            headers={
                "List-Unsubscribe": f"<{url.format(offset + i)}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            reference=str(offset + i),
        )
        for i in range(1000)
    ]


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return worker(*sys.argv[2:5])
    if sys.argv[1:2] == ["--floor-worker"]:
        return floor_worker(*sys.argv[2:7])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="subscribers (default 100000)")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="sqlite (a fresh file, the default), postgresql (a fresh database on "
        "127.0.0.1, dropped afterwards) or a URL of an empty database",
    )
    parser.add_argument("--workers", type=int, default=1, help="delivery worker processes")
    parser.add_argument(
        "--runs", type=int, default=1, help="fan-outs to time, each with its wire limit"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="the per-recipient work alone, no outbox (see the module's docstring)",
    )
    args = parser.parse_args()
    fake, base_url = start_fake()
    with tempfile.TemporaryDirectory() as folder, scratch_database(args.db, folder) as url:
        database = Database(url)
        now = datetime.now(UTC)
        progress(f"bench.fanout: creating {args.n} subscribers")
        fill(database, args.n, now)
        channel = SendGridChannel.from_settings(bench_settings(url, folder, base_url))
        start = start_floor_workers if args.floor else start_workers
        workers = start(args.workers, url, folder, base_url)
        send = floor_fan_out if args.floor else fan_out
        timings, wires = [], []
        try:
            for run in range(args.runs):
                progress(f"bench.fanout: fan-out {run + 1}/{args.runs}, {args.workers} worker(s)")
                alert_id = approved_alert(database, datetime.now(UTC))
                timings.append(send(database, alert_id, args.n, channel, workers))
                progress("bench.fanout: wire limit")  # side by side with the run it measures
                wires.append(wire(channel, database, alert_id, args.n, accepted(channel)))
        finally:
            stop_workers(workers)
        database.dispose()
    fake.stdin.close()
    fake.wait(timeout=30)
    wire_seconds = statistics.median(wires)
    emit(
        "fanout-floor" if args.floor else "fanout",
        args.n,
        timings,
        db="postgresql" if url.startswith("postgresql") else "sqlite",
        workers=args.workers,
        wire_seconds=round(wire_seconds, 3),
        ratio=round(statistics.median(timings) / wire_seconds, 2),
        peak_rss_mb=max(peak_rss_mb(), children_peak_rss_mb()),
    )


@contextmanager
def scratch_database(choice: str, folder: str) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in `folder`, or a PostgreSQL database
    created for this run and dropped after it."""
    if choice == "sqlite":
        yield f"sqlite:///{Path(folder) / 'fanout.sqlite3'}"
        return
    if choice != "postgresql":
        yield choice
        return
    name = f"alerts_bench_{os.getpid()}"
    admin = create_engine(f"{POSTGRESQL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{POSTGRESQL}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
