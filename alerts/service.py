"""`alerts run`: the web app and the feed scheduler in one process."""

from __future__ import annotations

import logging

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from alerts.feeds import Registry
from alerts.ingest.poller import Poller
from alerts.relevance.service import sweep
from alerts.settings import Settings
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
    scheduler.start()
    scheduler.modify_job("poll-due", next_run_time=_soon())
    return scheduler


def _soon():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=2)


def serve(settings: Settings, database: Database, registry: Registry) -> None:
    log.info("settings: %s", settings.masked())
    poller = Poller(database, settings, registry)
    scheduler = start_scheduler(poller)
    app = create_app(settings, database)
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
        scheduler.shutdown(wait=True)
        poller.close()
        database.dispose()
