"""Poll feeds: fetch -> parse -> store. Several feeds at a time on the network; each feed
claimed by one poller at a time through a lease in the database. A broken feed is recorded
against itself and never stops the others."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from alerts.feeds import FeedConfig, Registry, sync_feeds
from alerts.ingest import parsers
from alerts.ingest.fetch import Fetcher, FetchResult
from alerts.ingest.linked import LINKED_FORMAT, LinkFollower
from alerts.ingest.outcome import PollSummary, record_run, store_result
from alerts.ingest.records import ParseError
from alerts.models import Feed
from alerts.settings import Settings
from alerts.store import Database

log = logging.getLogger(__name__)
MAX_JITTER_SECONDS = 300.0
LEASE = timedelta(minutes=10)  # renewed between documents; a dead poller's lease runs out


class Poller:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        registry: Registry,
        fetcher: Fetcher | None = None,
    ):
        self.database = database
        self.settings = settings
        self.registry = registry
        self.fetcher = fetcher or Fetcher(settings)
        self._pool = ThreadPoolExecutor(settings.poll_workers, thread_name_prefix="poll")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        with database.session() as session:
            sync_feeds(session, registry)

    # ------------------------------------------------------------------ entry points

    def poll_due(self, *, now: datetime | None = None, wait: bool = True) -> list[PollSummary]:
        """Poll every enabled feed whose next poll time has come.

        With wait=False (the scheduler) the polls run in the background and a slow feed never
        holds up the others; a feed still being polled is not submitted twice."""
        now = now or datetime.now(UTC)
        futures = [self._submit(config, now, force=False) for config in self._due(now)]
        if not wait:
            return []
        results = [future.result() for future in futures if future is not None]
        return [summary for summary in results if summary.status != "skipped"]

    def poll_feeds(self, names: Iterable[str], *, now: datetime | None = None):
        """Poll the named feeds now, due or not (still one poller per feed at a time)."""
        now = now or datetime.now(UTC)
        configs = [self.registry.by_name(name) for name in names]
        futures = [(c, self._submit(c, now, force=True)) for c in configs]
        return [f.result() if f else _skipped(c.name) for c, f in futures]

    def close(self) -> None:
        """Stop: queued polls are cancelled, running ones stop between documents and
        record what they did (what is left waits in linked_documents)."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.fetcher.close()

    # ------------------------------------------------------------------ scheduling

    def _due(self, now: datetime) -> list[FeedConfig]:
        with self.database.session() as session:
            names = set(session.scalars(select(Feed.name).where(*_claimable(now), _is_due(now))))
        return [config for config in self.registry.feeds if config.name in names]

    def _submit(self, config: FeedConfig, now: datetime, *, force: bool) -> Future | None:
        with self._lock:
            if config.name in self._in_flight or self._stopping.is_set():
                return None
            self._in_flight.add(config.name)
        future = self._pool.submit(self._run, config, now, force)
        future.add_done_callback(lambda done: self._finished(config.name, done))
        return future

    def _finished(self, name: str, future: Future) -> None:
        with self._lock:
            self._in_flight.discard(name)
        if not future.cancelled() and future.exception() is not None:
            log.error("poll of %s failed: %s", name, future.exception())

    def _run(self, config: FeedConfig, now: datetime, force: bool) -> PollSummary:
        """Never raises: a database hiccup here is reported against this feed only."""
        token = None
        try:
            token = self._claim(config.name, now, force=force)
            if token is None:
                return _skipped(config.name)
            return self._poll_safely(config, token)
        except Exception as error:
            log.exception("poll of %s could not run", config.name)
            self._release(config.name, token)
            return PollSummary(config.name, status="error", errors=[f"internal error: {error}"])

    # ------------------------------------------------------------------ leases

    def _claim(self, name: str, now: datetime, *, force: bool) -> str | None:
        """Compare-and-set on the lease columns; returns the lease token, or None when the
        feed is disabled, gone, not due (unless forced) or held by another poller."""
        token = uuid.uuid4().hex
        started = datetime.now(UTC)  # the lease starts now, not when the poll was queued
        due = [] if force else [_is_due(now)]
        with self.database.session() as session:
            claimed = session.execute(
                update(Feed)
                .where(Feed.name == name, *_claimable(started), *due)
                .values(polling_until=started + LEASE, lease_owner=token, last_polled_at=started)
            )
        return token if claimed.rowcount == 1 else None

    def _renew(self, name: str, token: str) -> bool:
        """Extend the lease between documents; False when it was lost or we are stopping."""
        if self._stopping.is_set():
            return False
        with self.database.session() as session:
            renewed = session.execute(
                update(Feed)
                .where(Feed.name == name, Feed.lease_owner == token)
                .values(polling_until=datetime.now(UTC) + LEASE)
            )
        return renewed.rowcount == 1

    def _release(self, name: str, token: str | None) -> None:
        if token is None:
            return
        try:
            with self.database.session() as session:
                session.execute(
                    update(Feed)
                    .where(Feed.name == name, Feed.lease_owner == token)
                    .values(polling_until=None, lease_owner=None)
                )
        except Exception:  # the lease then simply runs out
            log.exception("could not release the lease of %s", name)

    # ------------------------------------------------------------------ one feed

    def _poll_safely(self, config: FeedConfig, token: str) -> PollSummary:
        started = datetime.now(UTC)
        url = None
        try:
            summary, fetched, url = self._poll(config, token)
        except Exception as error:  # last line of defence: one feed never stops the others
            log.exception("poll of %s crashed", config.name)
            summary = PollSummary(config.name, status="error", errors=[f"internal error: {error}"])
            fetched = None
        self._record_health(config, token, summary, fetched, url)
        record_run(self.database, summary, started)
        return summary

    def _poll(self, config: FeedConfig, token: str):
        with self.database.session() as session:
            feed = session.execute(select(Feed).where(Feed.name == config.name)).scalar_one()
            url, etag, modified = feed.fetch_url, feed.etag, feed.last_modified
        fetched = self.fetcher.fetch(url, etag=etag, last_modified=modified)
        summary = PollSummary(config.name, http_status=fetched.status)
        follower = self._follower(config, token)  # one per poll: it remembers slow-downs
        if fetched.not_modified:
            summary.status = "not-modified"
        elif fetched.error:
            summary.status = "gone" if fetched.gone else "error"
            summary.errors.append(fetched.error)
        else:
            self._ingest(config, follower, fetched, summary)
        if config.format in LINKED_FORMAT and not summary.failed:
            follower.retry_due(config.name, LINKED_FORMAT[config.format], summary)
        return summary, fetched, url

    def _follower(self, config: FeedConfig, token: str) -> LinkFollower:
        return LinkFollower(
            self.database,
            self.fetcher,
            self.settings.max_documents_per_poll,
            keep_going=lambda: self._renew(config.name, token),
        )

    def _ingest(
        self, config: FeedConfig, follower: LinkFollower, fetched: FetchResult, summary: PollSummary
    ) -> None:
        try:
            result = parsers.parse(fetched.body or b"", config.format, fetched.final_url)
        except ParseError as error:
            summary.status = "error"
            summary.errors.append(str(error))
            return
        store_result(self.database, config.name, result, summary, category=config.category)
        if result.links and config.format in LINKED_FORMAT:
            follower.follow(config.name, LINKED_FORMAT[config.format], result.links, summary)

    # ------------------------------------------------------------------ health

    def _record_health(
        self,
        config: FeedConfig,
        token: str,
        summary: PollSummary,
        fetched: FetchResult | None,
        polled_url: str | None,
    ) -> None:
        """One conditional UPDATE: written only while we hold the lease and the feed still
        has the address we polled (feeds.yaml may have changed meanwhile)."""
        with self.database.session() as session:
            failures = (
                session.scalar(select(Feed.consecutive_failures).where(Feed.name == config.name))
                or 0
            )
            values = _health_values(config, summary, fetched, failures, self.settings)
            conditions = [Feed.name == config.name, Feed.lease_owner == token]
            if polled_url is not None:
                conditions.append(or_(Feed.current_url == polled_url, Feed.url == polled_url))
            written = session.execute(update(Feed).where(*conditions).values(**values))
        if written.rowcount != 1:
            log.warning(
                "%s: lease lost or feed changed while polling; health not recorded", config.name
            )
            self._release(config.name, token)


def _health_values(
    config, summary: PollSummary, fetched: FetchResult | None, failures: int, settings: Settings
) -> dict:
    now = datetime.now(UTC)
    values: dict = {"polling_until": None, "lease_owner": None}
    if summary.failed:
        failures += 1
        values |= {"consecutive_failures": failures, "last_error": "; ".join(summary.errors)[:2000]}
        if fetched is not None and fetched.gone:
            values["disabled_reason"] = "410 Gone"
    else:
        failures = 0
        values |= {"consecutive_failures": 0, "last_error": None, "last_success_at": now}
        if fetched.permanent_url:
            values["current_url"] = fetched.permanent_url
        if fetched.body is not None:
            values |= {"etag": fetched.etag, "last_modified": fetched.last_modified}
    delay = next_delay(config, fetched, failures, settings) + poll_jitter(config.interval)
    return values | {"next_poll_at": now + timedelta(seconds=delay)}


def _claimable(now: datetime) -> list:
    return [
        Feed.enabled.is_(True),
        Feed.disabled_reason.is_(None),
        or_(Feed.polling_until.is_(None), Feed.polling_until < now),
    ]


def _is_due(now: datetime):
    return or_(Feed.next_poll_at.is_(None), Feed.next_poll_at <= now)


def _skipped(name: str) -> PollSummary:
    return PollSummary(name, status="skipped", errors=["disabled, gone, or being polled"])


def poll_jitter(interval: int, draw: Callable[[float, float], float] = random.uniform) -> float:
    """A random delay added to every next poll (a tenth of the interval, at most five
    minutes): feeds started together drift apart, and many instances of this service do not
    reach a publisher at the same second."""
    return draw(0.0, min(interval / 10, MAX_JITTER_SECONDS))


def next_delay(
    config: FeedConfig, fetched: FetchResult | None, failures: int, settings: Settings
) -> float:
    """Seconds until the next poll: the interval, stretched by the publisher's freshness
    hints or Retry-After, and backed off exponentially while the feed keeps failing."""
    delay = float(config.interval)
    if fetched is not None and fetched.max_age:
        delay = max(delay, min(fetched.max_age, settings.max_backoff_seconds))
    if failures:
        delay = min(config.interval * 2 ** (failures - 1), settings.max_backoff_seconds)
    if fetched is not None and fetched.retry_after:
        delay = max(delay, min(fetched.retry_after, settings.max_backoff_seconds))
    return delay
