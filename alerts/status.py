"""`alerts status`: the state of the service at a glance, from aggregate queries only.

`status_report` is pure data (tests read it directly); `status` prints it as rich tables.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.curation.models import Alert
from alerts.delivery import outbox as outbox_queue
from alerts.models import Advisory, Feed
from alerts.scheduling import stored_jobs

RECENT = timedelta(days=7)
OVERDUE = timedelta(minutes=5)  # a job this late means no instance runs the scheduler
UNSCORED = "unscored"
console = Console()


def feed_summary(session: Session) -> dict:
    counts: Counter[str] = Counter()
    # Grouped by the raw columns: PostgreSQL refuses a GROUP BY on an expression whose bound
    # parameters differ from the SELECT's. A handful of groups, folded here.
    query = select(Feed.enabled, Feed.consecutive_failures, func.count()).group_by(
        Feed.enabled, Feed.consecutive_failures
    )
    for enabled, failures, count in session.execute(query):
        counts["disabled" if not enabled else "failing" if failures else "ok"] += count
    failing = select(Feed.name, Feed.consecutive_failures, Feed.last_error).where(
        Feed.enabled.is_(True), Feed.consecutive_failures > 0
    )
    return {
        "ok": counts["ok"],
        "failing": counts["failing"],
        "disabled": counts["disabled"],
        "failing_feeds": [
            {"name": name, "consecutive_failures": failures, "last_error": error or ""}
            for name, failures, error in session.execute(failing.order_by(Feed.name))
        ],
    }


def status_report(session: Session, now: datetime) -> dict:
    recent = (
        select(Advisory.tier, func.count())
        .where(Advisory.first_seen_at >= now - RECENT)
        .group_by(Advisory.tier)
    )
    outbox: dict[str, dict[str, int]] = {}
    for (channel, status), count in sorted(outbox_queue.counts(session).items()):
        outbox.setdefault(channel, {})[status] = count
    alerts = select(Alert.status, func.count()).group_by(Alert.status)
    return {
        "feeds": feed_summary(session),
        "advisories_last_7_days": {t or UNSCORED: n for t, n in session.execute(recent)},
        "outbox": outbox,
        "alerts": {status: count for status, count in session.execute(alerts)},
        "scheduler": scheduler_summary(session, now),
    }


def scheduler_summary(session: Session, now: datetime) -> dict:
    jobs = stored_jobs(session)
    late = sorted(job for job, moment in jobs.items() if moment and moment < now - OVERDUE)
    return {
        "jobs": {job: moment.isoformat() if moment else None for job, moment in jobs.items()},
        "overdue": late,
    }


def _counts_table(key: str, counts: dict[str, int]) -> Table:
    table = Table(key, "count")
    for name in sorted(counts):
        table.add_row(name, str(counts[name]))
    return table


def _feeds_table(feeds: dict) -> Table:
    table = Table("feed", "failures in a row", "last error")
    for feed in feeds["failing_feeds"]:
        table.add_row(feed["name"], str(feed["consecutive_failures"]), feed["last_error"])
    return table


def _outbox_table(outbox: dict[str, dict[str, int]]) -> Table:
    statuses = sorted({status for counts in outbox.values() for status in counts})
    table = Table("channel", *statuses)
    for channel in sorted(outbox):
        table.add_row(channel, *(str(outbox[channel].get(s, 0)) for s in statuses))
    return table


def _scheduler_table(scheduler: dict) -> Table:
    table = Table("job", "next run", "")
    for job, moment in scheduler["jobs"].items():
        late = "[red]overdue: is a scheduler running?[/red]" if job in scheduler["overdue"] else ""
        table.add_row(job, moment or "paused", late)
    return table


def print_report(report: dict, out: Console = console) -> None:
    feeds = report["feeds"]
    states = {state: feeds[state] for state in ("ok", "failing", "disabled")}
    sections = [("Feeds", _counts_table("state", states))]
    if feeds["failing_feeds"]:
        sections.append(("Failing feeds", _feeds_table(feeds)))
    sections += [
        ("Advisories, last 7 days", _counts_table("tier", report["advisories_last_7_days"])),
        ("Outbox", _outbox_table(report["outbox"])),
        ("Alerts", _counts_table("status", report["alerts"])),
        ("Scheduler (next runs, UTC)", _scheduler_table(report["scheduler"])),
    ]
    for title, table in sections:
        out.print(f"[bold]{title}[/bold]")
        out.print(table)


def status() -> None:
    """Feeds (ok / failing / disabled), advisories per tier this week, outbox, alerts."""
    from alerts.cli import _database, _settings

    database = _database(_settings())
    try:
        with database.session() as session:
            report = status_report(session, datetime.now(UTC))
    finally:
        database.dispose()
    print_report(report)
