"""Staff page: the health of every feed in the registry, failing ones first.

The registry (feeds.yaml) says which feeds exist and what they are; the `feeds` rows hold
their run-time health; `poll_runs` tells what the last poll found and when the last error
happened. The page only reads: it never syncs the registry into the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from alerts.feeds import (
    FeedConfig,
    Registry,
    RegistryError,
    enable_feed,
    load_registry,
    sync_feeds,
)
from alerts.models import Feed, PollRun
from alerts.staff import audit
from alerts.staff.models import ADMIN, StaffUser
from alerts.staff.web import _form, message, page, staff_user
from alerts.templating import N_

router = APIRouter(prefix="/staff")
log = logging.getLogger(__name__)
FAILED_RUNS = ("error", "gone")
ERROR_WINDOW = timedelta(days=30)  # how far back a recovered feed's last error is looked for
# A feed's state on the page; failing and gone need someone's attention.
OK, FAILING, GONE, DISABLED, NEW, REMOVED = "ok", "failing", "gone", "disabled", "new", "removed"
ATTENTION = (FAILING, GONE)


@dataclass(frozen=True)
class LastRun:
    status: str  # ok | not-modified | error | gone
    at: datetime
    new: int
    updated: int


@dataclass(frozen=True)
class FeedHealth:
    name: str
    title: str
    publisher: str | None
    format: str
    state: str
    disabled_reason: str | None  # e.g. "410 Gone"
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int
    next_poll_at: datetime | None
    last_run: LastRun | None

    @property
    def failing(self) -> bool:
        return self.state in ATTENTION

    def sort_key(self) -> tuple:
        return (not self.failing, -self.failures, self.state == REMOVED, self.name)


# --- reading -------------------------------------------------------------------------------


def _latest_run_id(failed_since: datetime | None = None):
    """The newest poll_runs row (or failed one since `failed_since`) of the feed in the outer
    query: one walk down the (source, started_at) index per feed, in the select list."""
    run = aliased(PollRun)
    query = select(run.id).where(run.source == Feed.name)
    if failed_since is not None:
        query = query.where(run.status.in_(FAILED_RUNS), run.started_at >= failed_since)
    query = query.order_by(run.started_at.desc(), run.id.desc()).limit(1)
    return query.correlate(Feed).scalar_subquery()


def _stored(
    session: Session, now: datetime
) -> dict[str, tuple[Feed, PollRun | None, PollRun | None]]:
    """Per feed name: its row, its last poll and its last failed poll (within ERROR_WINDOW,
    so a feed that never fails does not have its whole history read)."""
    query = select(Feed, _latest_run_id(), _latest_run_id(failed_since=now - ERROR_WINDOW))
    rows = session.execute(query).all()
    ids = {run_id for _, *run_ids in rows for run_id in run_ids if run_id is not None}
    runs = {run.id: run for run in session.scalars(select(PollRun).where(PollRun.id.in_(ids)))}
    return {feed.name: (feed, runs.get(last), runs.get(bad)) for feed, last, bad in rows}


def feed_health(session: Session, registry: Registry | None, now: datetime) -> list[FeedHealth]:
    """Every configured feed (and any stored feed no longer configured), failing first.
    Without a registry (it could not be read), the stored feeds only."""
    stored = _stored(session, now)
    configs = {c.name: c for c in registry.feeds} if registry else {}
    names = list(configs) + [name for name in stored if name not in configs]
    rows = [
        _health(name, configs.get(name), *stored.get(name, (None, None, None)), registry is None)
        for name in names
    ]
    return sorted(rows, key=FeedHealth.sort_key)


def _health(
    name: str,
    config: FeedConfig | None,
    feed: Feed | None,
    run: PollRun | None,
    failed: PollRun | None,
    unknown_registry: bool,
) -> FeedHealth:
    last_error = (feed.last_error if feed else None) or (failed.error if failed else None)
    last_error_at = (failed.finished_at or failed.started_at) if failed else None
    if last_error_at is None and feed is not None and feed.last_error:
        last_error_at = feed.last_polled_at  # failing for longer than ERROR_WINDOW
    return FeedHealth(
        name=name,
        title=config.title if config else "",
        publisher=config.publisher if config else None,
        format=config.format if config else feed.format,
        state=_state(config, feed, unknown_registry),
        disabled_reason=feed.disabled_reason if feed else None,
        last_success_at=feed.last_success_at if feed else None,
        last_error=last_error,
        last_error_at=last_error_at,
        failures=feed.consecutive_failures if feed else 0,
        next_poll_at=feed.next_poll_at if feed else None,
        last_run=_last_run(run),
    )


def _state(config: FeedConfig | None, feed: Feed | None, unknown_registry: bool) -> str:
    if config is None and not unknown_registry:
        return REMOVED
    if not (config.enabled if config else feed.enabled):
        return DISABLED
    if feed is None or (feed.last_polled_at is None and feed.last_success_at is None):
        return NEW
    if feed.disabled_reason:
        return GONE
    return FAILING if feed.consecutive_failures else OK


def _last_run(run: PollRun | None) -> LastRun | None:
    if run is None:
        return None
    return LastRun(run.status, run.finished_at or run.started_at, run.new, run.updated)


# --- the page ------------------------------------------------------------------------------


def _registry(request: Request) -> tuple[Registry | None, str]:
    """The registry as configured now, or the reason it cannot be read."""
    try:
        return load_registry(request.app.state.settings.feeds_file), ""
    except RegistryError as error:
        log.warning("feed page: %s", error)
        return None, str(error)


@router.get("/feeds", response_class=HTMLResponse)
def feeds_page(request: Request) -> Response:
    user = staff_user(request)
    if user.must_change_password:
        return RedirectResponse("/staff/password", status_code=303)
    registry, registry_error = _registry(request)
    with request.app.state.database.session() as session:
        feeds = feed_health(session, registry, datetime.now(UTC))
    return page(
        request,
        "feeds.html",
        user,
        section="feeds",
        feeds=feeds,
        failing=sum(feed.failing for feed in feeds),
        registry_error=registry_error,
    )


@router.post("/feeds/{name}/enable", response_class=HTMLResponse)
async def enable(request: Request, name: str) -> Response:
    """Admins re-enable a feed the publisher marked gone (as `alerts feeds enable`)."""
    user = staff_user(request, ADMIN)
    await _form(request)
    registry, registry_error = _registry(request)
    if registry is None:
        return message(request, user, 409, N_("Nothing was changed"), registry_error)
    now = datetime.now(UTC)
    with request.app.state.database.session() as session:
        sync_feeds(session, registry)
        if not enable_feed(session, name[:100]):
            return message(request, user, 404, N_("Not found"), N_("There is no such page."))
        audit.record(
            session, now, session.get(StaffUser, user.id), "feed-enabled", f"feed:{name[:50]}"
        )
    return RedirectResponse("/staff/feeds", status_code=303)
