"""Poll feeds: fetch -> parse -> store. Several feeds at a time on the network; each feed
claimed by one poller at a time through a lease in the database. A broken feed is recorded
against itself and never stops the others."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
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
        self._pool.shutdown(wait=True)
        self.fetcher.close()

    # ------------------------------------------------------------------ scheduling

    def _due(self, now: datetime) -> list[FeedConfig]:
        with self.database.session() as session:
            names = set(session.scalars(select(Feed.name).where(*_claimable(now), _is_due(now))))
        return [config for config in self.registry.feeds if config.name in names]

    def _submit(self, config: FeedConfig, now: datetime, *, force: bool) -> Future | None:
        with self._lock:
            if config.name in self._in_flight:
                return None
            self._in_flight.add(config.name)
        return self._pool.submit(self._run, config, now, force)

    def _run(self, config: FeedConfig, now: datetime, force: bool) -> PollSummary:
        try:
            token = self._claim(config.name, now, force=force)
            if token is None:
                return _skipped(config.name)
            return self._poll_safely(config, token)
        finally:
            with self._lock:
                self._in_flight.discard(config.name)

    # ------------------------------------------------------------------ leases

    def _claim(self, name: str, now: datetime, *, force: bool) -> str | None:
        """Compare-and-set on the lease columns; returns the lease token, or None when the
        feed is disabled, gone, not due (unless forced) or held by another poller."""
        token = uuid.uuid4().hex
        conditions = [Feed.name == name, *_claimable(now)] + ([] if force else [_is_due(now)])
        with self.database.session() as session:
            claimed = session.execute(
                update(Feed)
                .where(*conditions)
                .values(polling_until=now + LEASE, lease_owner=token, last_polled_at=now)
            )
        return token if claimed.rowcount == 1 else None

    def _renew(self, name: str, token: str) -> None:
        with self.database.session() as session:
            session.execute(
                update(Feed)
                .where(Feed.name == name, Feed.lease_owner == token)
                .values(polling_until=datetime.now(UTC) + LEASE)
            )

    # ------------------------------------------------------------------ one feed

    def _poll_safely(self, config: FeedConfig, token: str) -> PollSummary:
        started = datetime.now(UTC)
        try:
            summary, fetched = self._poll(config, token)
        except Exception as error:  # last line of defence: one feed never stops the others
            log.exception("poll of %s crashed", config.name)
            summary = PollSummary(config.name, status="error", errors=[f"internal error: {error}"])
            fetched = None
        self._record_health(config, token, summary, fetched)
        record_run(self.database, summary, started)
        return summary

    def _poll(self, config: FeedConfig, token: str) -> tuple[PollSummary, FetchResult]:
        with self.database.session() as session:
            feed = session.execute(select(Feed).where(Feed.name == config.name)).scalar_one()
            url, etag, modified = feed.fetch_url, feed.etag, feed.last_modified
        fetched = self.fetcher.fetch(url, etag=etag, last_modified=modified)
        summary = PollSummary(config.name, http_status=fetched.status)
        if fetched.not_modified:
            summary.status = "not-modified"
        elif fetched.error:
            summary.status = "gone" if fetched.gone else "error"
            summary.errors.append(fetched.error)
        else:
            self._ingest(config, token, fetched, summary)
        return summary, fetched

    def _ingest(self, config: FeedConfig, token: str, fetched: FetchResult, summary) -> None:
        try:
            result = parsers.parse(fetched.body or b"", config.format, fetched.final_url)
        except ParseError as error:
            summary.status = "error"
            summary.errors.append(str(error))
            return
        store_result(self.database, config.name, result, summary, category=config.category)
        if result.links and config.format in LINKED_FORMAT:
            follower = LinkFollower(
                self.database,
                self.fetcher,
                self.settings.max_documents_per_poll,
                keep_lease=lambda: self._renew(config.name, token),
            )
            follower.follow(config.name, LINKED_FORMAT[config.format], result.links, summary)

    # ------------------------------------------------------------------ health

    def _record_health(
        self, config: FeedConfig, token: str, summary: PollSummary, fetched: FetchResult | None
    ) -> None:
        now = datetime.now(UTC)
        with self.database.session() as session:
            feed = session.execute(
                select(Feed).where(Feed.name == config.name).with_for_update()
            ).scalar_one()
            if feed.lease_owner != token:
                log.warning("%s: lease lost while polling; health not recorded", config.name)
                return
            if summary.failed:
                _note_failure(feed, summary, fetched)
            else:
                _note_success(feed, summary, fetched, now)
            delay = next_delay(config, fetched, feed.consecutive_failures, self.settings)
            feed.next_poll_at = now + timedelta(seconds=delay)
            feed.polling_until = feed.lease_owner = None


def _note_success(feed: Feed, summary: PollSummary, fetched: FetchResult, now: datetime):
    feed.last_success_at = now
    feed.last_error = None
    feed.consecutive_failures = 0
    if fetched.permanent_url:
        feed.current_url = fetched.permanent_url
    # Keep the validators only when everything the document lists is stored: otherwise a 304
    # next time would hide the documents still to fetch.
    if fetched.body is not None and not summary.pending:
        feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
    elif summary.pending:
        feed.etag = feed.last_modified = None


def _note_failure(feed: Feed, summary: PollSummary, fetched: FetchResult | None) -> None:
    feed.consecutive_failures += 1
    feed.last_error = "; ".join(summary.errors)[:2000]
    if fetched is not None and fetched.gone:
        feed.disabled_reason = "410 Gone"


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
