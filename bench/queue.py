"""The staff queue with N scored advisories: the first page, a page far down (through the
keyset cursor), a text search and a CVE search, each rendered through the real app and a
logged-in session.

    python -m bench.queue --n 100000

One JSON line per page kind: the common keys plus p95_ms (the issue's target: under 200 ms).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert, select

from alerts.models import Advisory, AdvisoryCve
from alerts.settings import load_settings
from alerts.staff import accounts
from alerts.store import Database
from alerts.web.app import create_app
from bench.common import RUNS, emit, progress

PASSWORD = "queue measuring 0123456789"
TIERS = ("urgent", "newsletter", "ignore")


def fill(database: Database, n: int, now: datetime) -> None:
    """N advisories: a third in each tier, scores spread, a CVE each."""
    for start in range(0, n, 10_000):
        rows = [_advisory(number, now) for number in range(start, min(n, start + 10_000))]
        with database.session() as session:
            session.execute(insert(Advisory), rows)
            ids = session.execute(select(Advisory.id, Advisory.uid).where(Advisory.id > start))
            links = [{"advisory_id": i, "cve_id": f"CVE-2026-{int(uid[2:]):06d}"} for i, uid in ids]
            session.execute(insert(AdvisoryCve), links)


def _advisory(number: int, now: datetime) -> dict:
    item = f"item-{number}"
    return {
        "uid": f"b-{number}",
        "source": ("cisa-kev", "certfr-avis", "ncsc-nl", "bsi-wid")[number % 4],
        "item_id": item,
        "item_key": hashlib.sha256(item.encode()).hexdigest(),
        "kind": "advisory",
        "title": f"Flaw {number} in product {number % 500}",
        "summary_text": "A vulnerability allows remote attackers to execute code.",
        "cve_ids": [f"CVE-2026-{number:06d}"],
        "known_exploited": number % 7 == 0,
        "tier": TIERS[number % 3],
        "score": number % 100,
        "reasons": [{"rule": "bench", "weight": 10, "text": "bench", "texts": {}}],
        "families": ["fortinet-fortigate"] if number % 5 == 0 else [],
        "content_hash": "0" * 64,
        "first_seen_at": now,
        "last_seen_at": now,
        "queued_at": now - timedelta(minutes=number),
        "links": [],
        "facts": {},
        "is_stub": False,
        "revision": 1,
        "ransomware": False,
    }


def timings(client: TestClient, path: str) -> list[float]:
    client.get(path)  # warm
    result = []
    for _ in range(max(RUNS, 20)):
        start = time.perf_counter()
        response = client.get(path)
        result.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return result


def deep_cursor(client: TestClient, pages: int) -> str:
    """The path of page `pages`, following each page's "older" link."""
    import re

    path = "/staff/queue?tier=urgent"
    for _ in range(pages):
        link = re.search(r'href="(/staff/queue\?[^"]*after=[^"]+)"', client.get(path).text)
        path = link.group(1).replace("&amp;", "&")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="advisories (default 100000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'queue.sqlite3'}"
        settings = load_settings(
            database_url=url, data_dir=Path(folder), secret_key=SecretStr("b" * 32)
        )
        database = Database(url)
        now = datetime.now(UTC)
        progress(f"bench.queue: {args.n} advisories")
        fill(database, args.n, now)
        with database.session() as session:
            user = accounts.add(session, "bench@gov.example", "Bench", "editor", PASSWORD, now)
            user.must_change_password = False
        client = TestClient(create_app(settings, database), follow_redirects=False)
        token = client.get("/staff/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post(
            "/staff/login",
            data={"csrf_token": token, "email": "bench@gov.example", "password": PASSWORD},
        )
        pages = {
            "first": "/staff/queue?tier=urgent",
            "page-40": deep_cursor(client, 40),
            "text": "/staff/queue?tier=urgent&q=product+42",
            "cve": f"/staff/queue?tier=urgent&q=CVE-2026-{args.n // 2 - (args.n // 2) % 3:06d}",
        }
        for name, path in pages.items():
            measured = timings(client, path)
            p95 = statistics.quantiles(measured, n=20)[-1]
            emit(f"queue.{name}", args.n, measured, p95_ms=round(p95 * 1000, 1), db="sqlite")
        database.dispose()


if __name__ == "__main__":
    main()
