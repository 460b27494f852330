"""The scheduler: when each stage runs. No business logic here — every job calls one stage
function with the runtime's clock.

The jobs are module-level functions with plain arguments, so the database job store
(APScheduler's SQLAlchemyJobStore, table `scheduler_jobs`) keeps them by reference across
restarts: a newsletter due at 07:00 while every instance was down goes out once when the
next leader starts (within the job's misfire grace), instead of being silently skipped.

Feed polls are the one exception to "a job per schedule": each feed's next poll time lives
in the feeds table (its interval with jitter, stretched by back-off after failures and by
the publisher's Retry-After), and the `poll-due` job submits, every 30 seconds, the feeds
whose time has come. A per-feed timer would duplicate that state and drift from it; the
poller's database lease keeps any feed from being polled twice at once, and an overdue
feed is polled once however many intervals it missed (misfires coalesce by construction).

Jobs not here because they never stop: the delivery workers retry temporary failures on
their own back-off and settle lost or unanswered requests every round; a known-exploited
(KEV) or EPSS update re-scores every advisory about its CVEs as part of the poll that
brought it (alerts.relevance.service.after_store)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alerts.delivery.newsletter import queue_newsletters
from alerts.delivery.service import send_scheduled
from alerts.ingest.poller import Poller
from alerts.referrals.jobs import expire_and_warn
from alerts.relevance.service import default_catalogue, sweep
from alerts.staff.sessions import purge_expired as purge_staff_sessions
from subscribers.privacy import purge_subscribers

log = logging.getLogger(__name__)
BRUSSELS = "Europe/Brussels"
JOB_TABLE = "scheduler_jobs"  # created by migration 0010
DAILY_GRACE = 6 * 3600  # a daily job missed by less than this still runs (once) on start


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """What the jobs work with: the poller (its database and settings) and a clock."""

    poller: Poller
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def database(self):
        return self.poller.database

    @property
    def settings(self):
        return self.poller.settings


_runtime: Runtime | None = None


def bind(runtime: Runtime | None) -> None:
    """Give the jobs their runtime (the job store keeps only references and arguments)."""
    global _runtime
    _runtime = runtime


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("scheduler jobs run only once a runtime is bound (alerts run)")
    return _runtime


# ----------------------------------------------------------------------------- the jobs


def poll_due_feeds() -> None:
    """Submit the polls of the feeds that are due; they run on the poller's own threads,
    so a slow feed never delays the others or this job."""
    runtime = _current()
    runtime.poller.poll_due(now=runtime.clock(), wait=False)


def score_unscored() -> None:
    """Anything left unscored (an upgrade, a scoring failure) is scored."""
    scored = sweep(_current().database)
    if scored:
        log.info("scored %d advisories left unscored", scored)


def purge_unconfirmed() -> None:
    """Unconfirmed sign-ups and long-left subscriptions are personal data we may not keep."""
    runtime = _current()
    days = runtime.settings.left_retention_days
    log.info("subscriber purge: %s", purge_subscribers(runtime.database, days, runtime.clock()))


def purge_sessions() -> None:
    """Expired staff sessions are refused anyway; their rows go."""
    runtime = _current()
    purge_staff_sessions(runtime.database, runtime.settings, runtime.clock())


def send_scheduled_alerts() -> None:
    """Approved alerts whose scheduled time has come are fanned out."""
    runtime = _current()
    sent = send_scheduled(runtime.database, default_catalogue(), runtime.clock())
    if sent:
        log.info("scheduled alerts sent: %s", sent)


def expire_firms() -> None:
    """Vettings that ended expire; staff are warned once of those ending within 30 days."""
    runtime = _current()
    log.info("firm expiry: %s", expire_and_warn(runtime.database, runtime.clock()))


def queue_newsletter(frequency: str) -> None:
    """One issue per due subscriber; the delivery workers send them like any message."""
    runtime = _current()
    counts = queue_newsletters(runtime.database, default_catalogue(), frequency, runtime.clock())
    log.info("%s newsletter: %s", frequency, counts)


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Schedule:
    id: str
    func: Callable[..., None]
    trigger: BaseTrigger
    grace: int  # seconds a missed run may be late and still run (once)
    args: tuple = ()

    @property
    def signature(self) -> tuple:
        """What makes two schedules the same job (a restart keeps such a job as stored)."""
        return _signature(f"{self.func.__module__}:{self.func.__qualname__}", self)


def _signature(func_ref: str, job) -> tuple:
    trigger = job.trigger
    zone = str(getattr(trigger, "timezone", ""))
    return (func_ref, tuple(job.args), str(trigger), zone, getattr(trigger, "jitter", None))


def schedules() -> list[Schedule]:
    """Every periodic job of the service (times in Brussels where people notice them)."""
    return [
        _every(30, "poll-due", poll_due_feeds),
        _every(600, "score-sweep", score_unscored),
        _every(3600, "purge-unconfirmed", purge_unconfirmed),
        _every(3600, "purge-staff-sessions", purge_sessions),
        _every(60, "send-scheduled", send_scheduled_alerts),
        _daily("expire-firms", expire_firms, CronTrigger(hour=6, minute=0, timezone=BRUSSELS)),
        _daily(
            "newsletter-daily",
            queue_newsletter,
            CronTrigger(hour=7, minute=0, timezone=BRUSSELS),
            "daily",
        ),
        _daily(
            "newsletter-weekly",
            queue_newsletter,
            CronTrigger(day_of_week="mon", hour=7, minute=0, timezone=BRUSSELS),
            "weekly",
        ),
    ]


def _every(seconds: int, job_id: str, func: Callable[[], None]) -> Schedule:
    """A periodic job; after downtime it runs once at start (missed runs coalesce)."""
    return Schedule(job_id, func, IntervalTrigger(seconds=seconds, timezone=UTC), seconds)


def _daily(job_id: str, func: Callable[..., None], trigger: CronTrigger, *args) -> Schedule:
    return Schedule(job_id, func, trigger, DAILY_GRACE, args)


def start_scheduler(runtime: Runtime, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    """Bind the runtime, open the job store in the service's database, bring the stored jobs
    in line with schedules() and start. Jobs unchanged since the last run keep their next
    run time; a missed run inside its grace runs once now."""
    bind(runtime)
    scheduler = scheduler or BackgroundScheduler(timezone=UTC)
    store = SQLAlchemyJobStore(engine=runtime.database.engine, tablename=JOB_TABLE)
    scheduler.add_jobstore(store)
    scheduler.start(paused=True)  # the store is open; nothing runs until reconciled
    reconcile(scheduler, schedules())
    scheduler.resume()
    return scheduler


def reconcile(scheduler: BaseScheduler, wanted: list[Schedule]) -> None:
    """Add new jobs, replace changed ones, remove those no longer wanted."""
    stored = {job.id: job for job in scheduler.get_jobs()}
    for schedule in wanted:
        job = stored.pop(schedule.id, None)
        if job is not None and _signature(job.func_ref, job) == schedule.signature:
            continue
        scheduler.add_job(
            schedule.func,
            schedule.trigger,
            args=schedule.args,
            id=schedule.id,
            name=schedule.id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=schedule.grace,
        )
        log.info("scheduler: %s %s", "changed" if job else "added", schedule.id)
    for job_id in stored:
        scheduler.remove_job(job_id)
        log.info("scheduler: removed %s", job_id)


def stored_jobs(session) -> dict[str, datetime | None]:
    """Each stored job's next run time, read straight from the job store's table (no
    scheduler needed): for `alerts status` and /metrics on any instance."""
    table = sa.table(JOB_TABLE, sa.column("id"), sa.column("next_run_time"))
    rows = session.execute(sa.select(table.c.id, table.c.next_run_time).order_by(table.c.id))
    return {
        job_id: None if moment is None else datetime.fromtimestamp(moment, UTC)
        for job_id, moment in rows
    }
