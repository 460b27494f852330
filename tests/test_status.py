"""`alerts status`: feeds, this week's advisories per tier, outbox and alerts, from
aggregate queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text, update
from typer.testing import CliRunner

from alerts.cli import app
from alerts.delivery.models import OutboxMessage
from alerts.ingest.persist import store_records
from alerts.ingest.records import AdvisoryRecord
from alerts.models import Advisory, Feed
from alerts.status import status_report
from alerts.store import Database
from tests.delivery_setup import add_alert

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _feed(name: str, **values) -> Feed:
    return Feed(name=name, url=f"https://{name}.example/", format="rss", **values)


def _fill(database: Database, now: datetime) -> None:
    with database.session() as session:
        session.add_all(
            [
                _feed("good", last_success_at=now),
                _feed("fresh"),
                _feed("broken", consecutive_failures=4, last_error="HTTP 503 from broken.example"),
                _feed("gone", enabled=False, consecutive_failures=1, disabled_reason="410 Gone"),
            ]
        )
        records = [AdvisoryRecord(item_id=str(n), title=f"Advisory {n}") for n in range(4)]
        store_records(session, "cert", records)
        session.flush()
        recent, old = now - timedelta(days=2), now - timedelta(days=30)
        tiers = {"0": ("urgent", recent), "1": ("urgent", recent), "2": (None, recent)}
        tiers["3"] = ("urgent", old)  # outside the week
        for item, (tier, seen) in tiers.items():
            session.execute(
                update(Advisory)
                .where(Advisory.item_id == item)
                .values(tier=tier, first_seen_at=seen)
            )
        rows = [
            {
                "key": f"test:{n}",
                "channel": channel,
                "kind": "alert",
                "status": status,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for n, (channel, status) in enumerate(
                [("email", "created"), ("email", "created"), ("sms", "delivered")]
            )
        ]
        session.execute(insert(OutboxMessage), rows)
    add_alert(database, status="approved")
    add_alert(database, status="draft")
    add_alert(database, status="draft")


def test_status_report_counts(database):
    _fill(database, NOW)
    with database.session() as session:
        report = status_report(session, NOW)
    assert report == {
        "feeds": {
            "ok": 2,
            "failing": 1,
            "disabled": 1,
            "failing_feeds": [
                {
                    "name": "broken",
                    "consecutive_failures": 4,
                    "last_error": "HTTP 503 from broken.example",
                }
            ],
        },
        "advisories_last_7_days": {"urgent": 2, "unscored": 1},
        "outbox": {"email": {"created": 2}, "sms": {"delivered": 1}},
        "alerts": {"approved": 1, "draft": 2},
        "scheduler": {"jobs": {}, "overdue": []},
    }


def test_status_report_flags_overdue_jobs(database):
    """A job whose next run lies well in the past: no instance runs the scheduler."""
    moments = {
        "newsletter-daily": NOW - timedelta(hours=1),
        "poll-due": NOW + timedelta(seconds=20),
    }
    with database.session() as session:
        for job, moment in moments.items():
            session.execute(
                text(
                    "INSERT INTO scheduler_jobs (id, next_run_time, job_state) VALUES (:i, :t, :s)"
                ),
                {"i": job, "t": moment.timestamp(), "s": b"state"},
            )
        report = status_report(session, NOW)["scheduler"]
    assert report["overdue"] == ["newsletter-daily"]
    assert report["jobs"]["poll-due"] == moments["poll-due"].isoformat()


def test_status_report_of_an_empty_database(database):
    with database.session() as session:
        report = status_report(session, NOW)
    assert report["feeds"] == {"ok": 0, "failing": 0, "disabled": 0, "failing_feeds": []}
    assert report["advisories_last_7_days"] == report["outbox"] == report["alerts"] == {}


def test_status_command_names_the_failing_feed(cli_env, database_url):
    database = Database(database_url)
    try:
        _fill(database, datetime.now(UTC))
    finally:
        database.dispose()
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "broken" in result.output
    assert "HTTP 503 from broken.example" in result.output
    assert "Advisories, last 7 days" in result.output and "urgent" in result.output
    assert "approved" in result.output and "delivered" in result.output
