"""`alerts run`: the web app, a delivery worker and (on the leader) the scheduler in one
process, stopped in order on SIGTERM."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import uvicorn
from apscheduler.schedulers.base import BaseScheduler

from alerts.delivery.dispatch import Dispatcher
from alerts.feeds import Registry
from alerts.ingest.poller import Poller
from alerts.leader import Leadership, lead_when_possible
from alerts.scheduling import Runtime, start_scheduler
from alerts.settings import Settings
from alerts.staff import accounts
from alerts.staff.curation_pages import INDEX_SECONDS
from alerts.store import Database
from alerts.web.app import create_app
from subscribers import audience_cache

log = logging.getLogger(__name__)
WORKER_STOP_SECONDS = 60  # the request in flight and its record; longer is a hung provider


class Running:
    """The parts of a running instance, and their orderly stop."""

    def __init__(self, settings: Settings, database: Database, registry: Registry):
        self.database = database
        self.poller = Poller(database, settings, registry)
        self.dispatcher = Dispatcher.from_settings(database, settings)
        self.sender = threading.Thread(target=self.dispatcher.run, name="delivery", daemon=True)
        self.leadership = Leadership(database)
        self.stopping = threading.Event()
        self.scheduler = None
        self._stopped = threading.Lock()
        self._scheduling = threading.Lock()  # the leader thread vs. stop()

    def start(self, on_scheduler: Callable[[BaseScheduler | None], None]) -> None:
        self.sender.start()  # `alerts worker` adds more; they share the outbox

        def become_leader() -> None:
            with self._scheduling:
                if self.stopping.is_set():
                    return
                self.scheduler = start_scheduler(Runtime(self.poller))
            on_scheduler(self.scheduler)

        def step_down() -> None:
            on_scheduler(None)
            self._stop_scheduler()

        lead_when_possible(self.leadership, become_leader, self.stopping, step_down=step_down)

    def _stop_scheduler(self) -> None:
        with self._scheduling:
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)

    def stop(self) -> None:
        """Once, in order: no new jobs or polls; running jobs end; polls stop between
        documents; the delivery batch in flight finishes and unsent claims go back to the
        outbox; then the scheduler lock is released for another instance."""
        if not self._stopped.acquire(blocking=False):
            return
        log.info("stopping")
        self.stopping.set()
        self._stop_scheduler()
        self.poller.close()
        self.dispatcher.stop()
        self.sender.join(timeout=WORKER_STOP_SECONDS)
        if self.sender.is_alive():
            log.error(
                "delivery did not stop in %ss; its claims return after the lease",
                WORKER_STOP_SECONDS,
            )
        self.leadership.release()
        log.info("stopped")


def _stopping_on_shutdown(running: Running):
    @asynccontextmanager
    async def lifespan(_app):
        yield
        running.stop()

    return lifespan


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
    app = create_app(settings, database)
    # The staff pages' recipient counts read an audience index: start building it now, so
    # the first "Count recipients" does not wait for a million rows to be read.
    audience_cache.shared(app.state, database, refresh_seconds=INDEX_SECONDS)
    running = Running(settings, database, registry)
    # /readyz and /metrics report the scheduler of the leader
    running.start(on_scheduler=lambda scheduler: setattr(app.state, "scheduler", scheduler))
    # uvicorn re-raises SIGTERM after its own shutdown, so the `finally` below may never run:
    # everything is stopped when the app's lifespan ends.
    app.router.lifespan_context = _stopping_on_shutdown(running)
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
        running.stop()
        database.dispose()
