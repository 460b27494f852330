"""`alerts run`: the web app and the feed scheduler in one process."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from alerts.curation.service import due_scheduled
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.newsletter import queue_newsletters
from alerts.delivery.service import send_alert
from alerts.feeds import Registry
from alerts.ingest.poller import Poller
from alerts.leader import Leadership, lead_when_possible
from alerts.referrals.jobs import expire_and_warn
from alerts.relevance.service import default_catalogue, sweep
from alerts.settings import Settings
from alerts.staff import accounts
from alerts.staff.sessions import purge_expired as purge_staff_sessions
from alerts.store import Database
from alerts.web.app import create_app
from subscribers.privacy import purge_subscribers

log = logging.getLogger(__name__)


def start_scheduler(poller: Poller) -> BackgroundScheduler:
    """Every minute, start polls of the feeds that are due. The job only submits them: the
    polls run in the poller's own threads, so a slow feed never delays the others."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        lambda: poller.poll_due(wait=False),
        "interval",
        minutes=1,
        id="poll-due",
        max_instances=1,
        coalesce=True,
        next_run_time=None,
    )
    # Anything left unscored (an upgrade, a scoring failure) is scored within ten minutes.
    scheduler.add_job(
        lambda: sweep(poller.database),
        "interval",
        minutes=10,
        id="score-sweep",
        max_instances=1,
        coalesce=True,
    )
    # Unconfirmed sign-ups are personal data we may not keep: purged within the hour.
    scheduler.add_job(
        lambda: purge_subscribers(poller.database, poller.settings.left_retention_days),
        "interval",
        hours=1,
        id="purge-unconfirmed",
        max_instances=1,
        coalesce=True,
    )
    # Scheduled alerts go out within a minute of their time.
    scheduler.add_job(
        lambda: send_scheduled(poller.database),
        "interval",
        minutes=1,
        id="send-scheduled",
        max_instances=1,
        coalesce=True,
    )
    # Expired staff sessions are refused anyway; their rows go within the hour.
    scheduler.add_job(
        lambda: purge_staff_sessions(poller.database, poller.settings),
        "interval",
        hours=1,
        id="purge-staff-sessions",
        max_instances=1,
        coalesce=True,
    )
    # Vettings that ended expire, and staff are warned once of those ending within 30 days.
    scheduler.add_job(
        lambda: log.info("firm expiry: %s", expire_and_warn(poller.database)),
        CronTrigger(hour=6, minute=0, timezone="Europe/Brussels"),
        id="expire-firms",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=6 * 3600,
    )
    _add_newsletter_jobs(scheduler, poller.database)
    scheduler.start()
    scheduler.modify_job("poll-due", next_run_time=_soon())
    return scheduler


def _add_newsletter_jobs(scheduler: BackgroundScheduler, database: Database) -> None:
    """Issues are queued at 07:00 Brussels time (daily; weekly on Mondays); the delivery
    workers send them like any other message."""

    def queue(frequency: str) -> None:
        counts = queue_newsletters(database, default_catalogue(), frequency, datetime.now(UTC))
        log.info("%s newsletter: %s", frequency, counts)

    for frequency, days in (("daily", "*"), ("weekly", "mon")):
        scheduler.add_job(
            queue,
            CronTrigger(day_of_week=days, hour=7, timezone="Europe/Brussels"),
            args=[frequency],
            id=f"newsletter-{frequency}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=6 * 3600,
        )


def _stopping_on_shutdown(dispatcher: Dispatcher, sender: threading.Thread):
    @asynccontextmanager
    async def lifespan(_app):
        yield
        _stop(dispatcher, sender)

    return lifespan


def _stop(dispatcher: Dispatcher, sender: threading.Thread) -> None:
    """The batch in flight finishes; claims not handed off are given back."""
    dispatcher.stop()
    sender.join(timeout=60)


def _soon():
    return datetime.now(UTC) + timedelta(seconds=2)


def send_scheduled(database: Database, now: datetime | None = None) -> list[int]:
    """Fan out every scheduled alert whose time has come; one failing alert does not hold
    up the others. Returns the alerts sent."""
    now = now or datetime.now(UTC)
    with database.session() as session:
        due = due_scheduled(session, now)
    sent = []
    for alert_id in due:
        try:
            send_alert(database, default_catalogue(), alert_id, now=now)
        except Exception:  # logged; the alert stays scheduled and is tried next minute
            log.exception("could not send scheduled alert %s", alert_id)
            continue
        sent.append(alert_id)
    return sent


def _first_admin(database: Database) -> None:
    """With no staff account yet, create an admin and show its password once, on the
    console only (never in the log)."""
    with database.session() as session:
        created = accounts.first_admin(session, datetime.now(UTC))
    if created:
        email, password = created
        print(  # noqa: T201 - deliberately not logged
            f"\nFirst staff account: {email}\npassword (shown once): {password}\n"
            "Log in at /staff/login and change it; add real accounts with `alerts users add`.\n",
            flush=True,
        )


def serve(settings: Settings, database: Database, registry: Registry) -> None:
    """The web app, a delivery worker and — on the one instance that holds the scheduler
    lock — the scheduler; the others take over the scheduler if that instance goes."""
    log.info("settings: %s", settings.masked())
    _first_admin(database)
    poller = Poller(database, settings, registry)
    dispatcher = Dispatcher.from_settings(database, settings)
    sender = threading.Thread(target=dispatcher.run, name="delivery", daemon=True)
    sender.start()  # `alerts worker` adds more; they share the outbox
    app = create_app(settings, database)
    leadership, stopping = Leadership(database), threading.Event()

    def become_leader() -> None:
        app.state.scheduler = start_scheduler(poller)  # /readyz and /metrics report it

    lead_when_possible(leadership, become_leader, stopping)
    # uvicorn re-raises SIGTERM after its own shutdown, so the `finally` below may never run:
    # the delivery thread is stopped when the app's lifespan ends instead.
    app.router.lifespan_context = _stopping_on_shutdown(dispatcher, sender)
    log.info("web app on http://%s:%s", settings.host, settings.port)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            proxy_headers=True,  # rate limits and the consent ledger need the client's address
            forwarded_allow_ips=settings.trusted_proxies,
        )
    finally:
        stopping.set()
        _stop(dispatcher, sender)
        scheduler = getattr(app.state, "scheduler", None)
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        leadership.release()
        poller.close()
        database.dispose()
