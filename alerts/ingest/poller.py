"""Poll feeds: fetch -> parse -> store, one feed at a time in the database, several at a time
on the network. A broken feed is recorded against itself and never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from alerts.feeds import FeedConfig, Registry, sync_feeds
from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.fetch import Fetcher, FetchResult
from alerts.ingest.persist import StoreCounts, store_epss, store_records
from alerts.ingest.records import DocumentLink, ParseError, ParseResult
from alerts.models import Advisory, Feed, PollRun
from alerts.settings import Settings
from alerts.store import Database

log = logging.getLogger(__name__)

# Directory-style formats: the feed lists documents, and this is the format of those documents.
LINKED_FORMAT = {
    "csaf-rolie": "csaf",
    "csaf-index": "csaf",
    "csaf-changes": "csaf",
    "cvelist-delta": "cve",
    "msrc-updates": "cvrf",
    "csaf-provider": None,  # links to directories or ROLIE feeds: detected per link
}
LEASE = timedelta(minutes=10)  # how long a claimed feed stays claimed if a poller dies


@dataclass
class PollSummary:
    source: str
    status: str = "ok"  # ok | not-modified | error | gone | skipped
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    epss: int = 0
    documents: int = 0  # linked documents fetched
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def absorb(self, counts: StoreCounts) -> None:
        self.new += counts.new
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.warnings.extend(counts.warnings)


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
        with database.session() as session:
            sync_feeds(session, registry)

    # ------------------------------------------------------------------ public entry points

    def poll_due(self, *, now: datetime | None = None) -> list[PollSummary]:
        """Poll every enabled feed whose next poll time has come."""
        now = now or datetime.now(UTC)
        due = [c for c in self.registry.feeds if self._claim(c.name, now, force=False)]
        return self._poll_many(due)

    def poll_feeds(self, names: Iterable[str], *, now: datetime | None = None):
        """Poll the named feeds now, due or not (still one poller per feed at a time)."""
        now = now or datetime.now(UTC)
        configs = [self.registry.by_name(name) for name in names]
        claimed = [c for c in configs if self._claim(c.name, now, force=True)]
        skipped = [
            PollSummary(c.name, status="skipped", errors=["disabled, gone, or being polled"])
            for c in configs
            if c not in claimed
        ]
        return self._poll_many(claimed) + skipped

    def close(self) -> None:
        self.fetcher.close()

    # ------------------------------------------------------------------ claiming

    def _claim(self, name: str, now: datetime, *, force: bool) -> bool:
        """Compare-and-set on a lease column, so two pollers never poll one feed at once.

        A poller that dies keeps its lease only until it expires (LEASE)."""
        condition = [
            Feed.name == name,
            Feed.enabled.is_(True),
            Feed.disabled_reason.is_(None),
            or_(Feed.polling_until.is_(None), Feed.polling_until < now),
        ]
        if not force:
            condition.append(or_(Feed.next_poll_at.is_(None), Feed.next_poll_at <= now))
        with self.database.session() as session:
            claimed = session.execute(
                update(Feed).where(*condition).values(polling_until=now + LEASE, last_polled_at=now)
            )
            return claimed.rowcount == 1

    # ------------------------------------------------------------------ polling

    def _poll_many(self, configs: list[FeedConfig]) -> list[PollSummary]:
        if not configs:
            return []
        workers = min(self.settings.poll_workers, len(configs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
            return list(pool.map(self._poll_one_safely, configs))

    def _poll_one_safely(self, config: FeedConfig) -> PollSummary:
        try:
            return self._poll_one(config)
        except Exception as error:  # last line of defence: one feed never stops the others
            log.exception("poll of %s crashed", config.name)
            summary = PollSummary(config.name, status="error", errors=[f"internal error: {error}"])
            self._record_failure(config, summary, None)
            return summary

    def _poll_one(self, config: FeedConfig) -> PollSummary:
        started = datetime.now(UTC)
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
            self._ingest_fetched(config, fetched, summary)
        if summary.status in ("error", "gone"):
            self._record_failure(config, summary, fetched)
        else:
            self._record_success(config, summary, fetched)
        self._record_run(summary, started)
        _log_summary(summary)
        return summary

    def _ingest_fetched(self, config: FeedConfig, fetched: FetchResult, summary: PollSummary):
        base_url = fetched.final_url or fetched.url
        try:
            result = parsers.parse(fetched.body or b"", config.format, base_url)
        except ParseError as error:
            summary.status = "error"
            summary.errors.append(str(error))
            return
        self._store_result(config.name, result, summary, category=config.category)
        if result.links and config.format in LINKED_FORMAT:
            self._follow_links(config, result.links, LINKED_FORMAT[config.format], summary)

    def _store_result(
        self, source: str, result: ParseResult, summary: PollSummary, *, category: str | None = None
    ) -> None:
        if category == "news":
            for record in result.advisories:
                if record.kind == "advisory":
                    record.kind = "news"
        summary.warnings.extend(result.warnings)
        with self.database.session() as session:
            summary.absorb(store_records(session, source, result.advisories))
            if result.epss:
                summary.epss += store_epss(session, result.epss)

    # ------------------------------------------------------------------ linked documents

    def _follow_links(
        self,
        config: FeedConfig,
        links: list[DocumentLink],
        format: str | None,
        summary: PollSummary,
        depth: int = 0,
    ) -> None:
        """Fetch the documents a directory lists, newest first, skipping those stored with
        the same or a newer date, up to the per-poll budget."""
        todo = self._links_to_fetch(config.name, links)
        budget = self.settings.max_documents_per_poll - summary.documents
        if len(todo) > budget:
            summary.warnings.append(f"{len(todo) - budget} linked documents left for next poll")
            todo = todo[: max(budget, 0)]
        for link in todo:
            self._fetch_linked(config, link, format, summary, depth)

    def _links_to_fetch(self, source: str, links: list[DocumentLink]) -> list[DocumentLink]:
        ordered = sorted(
            links, key=lambda link: link.updated or datetime.min.replace(tzinfo=UTC), reverse=True
        )
        with self.database.session() as session:
            ids = [link.item_id for link in ordered if link.item_id]
            known = _stored_versions(session, source, ids)
        return [link for link in ordered if not _is_current(link, known)]

    def _fetch_linked(
        self,
        config: FeedConfig,
        link: DocumentLink,
        format: str | None,
        summary: PollSummary,
        depth: int,
    ) -> None:
        summary.documents += 1
        fetched = self.fetcher.fetch(link.url)
        if fetched.error or not fetched.body:
            summary.warnings.append(f"{link.url}: {fetched.error or 'empty response'}")
            return
        try:
            kind = format or detect_format(fetched.body, link.url)
            result = parsers.parse(fetched.body, kind, fetched.final_url or link.url)
        except ParseError as error:
            summary.warnings.append(f"{link.url}: {error}")
            return
        self._store_result(config.name, result, summary)
        if result.links and depth < 1 and kind in LINKED_FORMAT:
            self._follow_links(config, result.links, LINKED_FORMAT[kind], summary, depth + 1)

    # ------------------------------------------------------------------ feed health

    def _record_success(self, config: FeedConfig, summary: PollSummary, fetched: FetchResult):
        now = datetime.now(UTC)
        with self.database.session() as session:
            feed = session.execute(select(Feed).where(Feed.name == config.name)).scalar_one()
            feed.last_success_at = now
            feed.last_error = None
            feed.consecutive_failures = 0
            if fetched.body is not None:
                feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
            if fetched.permanent_url:
                feed.current_url = fetched.permanent_url
            delay = next_delay(config, fetched, 0, self.settings)
            feed.next_poll_at = now + timedelta(seconds=delay)
            feed.polling_until = None

    def _record_failure(
        self, config: FeedConfig, summary: PollSummary, fetched: FetchResult | None
    ) -> None:
        now = datetime.now(UTC)
        with self.database.session() as session:
            feed = session.execute(select(Feed).where(Feed.name == config.name)).scalar_one()
            feed.consecutive_failures += 1
            feed.last_error = "; ".join(summary.errors)[:2000]
            if fetched is not None and fetched.gone:
                feed.disabled_reason = "410 Gone"
            delay = next_delay(config, fetched, feed.consecutive_failures, self.settings)
            feed.next_poll_at = now + timedelta(seconds=delay)
            feed.polling_until = None

    def _record_run(self, summary: PollSummary, started: datetime) -> None:
        with self.database.session() as session:
            session.add(
                PollRun(
                    source=summary.source,
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    status=summary.status,
                    http_status=summary.http_status,
                    new=summary.new,
                    updated=summary.updated,
                    unchanged=summary.unchanged,
                    error="; ".join(summary.errors)[:2000] or None,
                )
            )


def _log_summary(summary: PollSummary) -> None:
    if summary.status in ("error", "gone"):
        log.warning("%s: %s (%s)", summary.source, summary.status, "; ".join(summary.errors))
    else:
        log.info(
            "%s: %s, %d new, %d updated, %d unchanged, %d documents",
            summary.source,
            summary.status,
            summary.new,
            summary.updated,
            summary.unchanged,
            summary.documents,
        )


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


def _stored_versions(session: Session, source: str, item_ids: list[str]) -> dict[str, tuple]:
    from alerts.ingest.persist import item_key

    keys = {item_key(i): i for i in item_ids}
    known: dict[str, tuple] = {}
    key_list = list(keys)
    for start in range(0, len(key_list), 500):
        rows = session.execute(
            select(Advisory.item_key, Advisory.updated, Advisory.is_stub).where(
                Advisory.source == source, Advisory.item_key.in_(key_list[start : start + 500])
            )
        )
        for key, updated, is_stub in rows:
            known[keys[key]] = (updated, is_stub)
    return known


def _is_current(link: DocumentLink, known: dict[str, tuple]) -> bool:
    """Already stored as a full document at least as new as the link says."""
    if not link.item_id or link.item_id not in known:
        return False
    updated, is_stub = known[link.item_id]
    if is_stub:
        return False
    return bool(updated and link.updated and updated >= link.updated)


def ingest_file(
    database: Database, path: Path, *, format: str | None = None, source: str | None = None
) -> PollSummary:
    """Parse a local file and store it (tests, back-fills). Links are listed, not fetched."""
    source = source or f"file:{path.name}"
    summary = PollSummary(source)
    started = datetime.now(UTC)
    try:
        data = path.read_bytes()
        kind = format or detect_format(data, path.name)
        result = parsers.parse(data, kind, None)  # links stay relative: a file has no URL
    except OSError as error:
        summary.status, summary.errors = "error", [f"cannot read {path}: {error.strerror}"]
        return summary
    except ParseError as error:
        summary.status, summary.errors = "error", [str(error)]
    else:
        _store_file_result(database, source, result, summary)
    _record_file_run(database, summary, started)
    return summary


def _store_file_result(
    database: Database, source: str, result: ParseResult, summary: PollSummary
) -> None:
    summary.warnings.extend(result.warnings)
    if result.links:
        summary.warnings.append(
            f"{len(result.links)} linked documents listed (not fetched "
            "from a file; poll the feed URL to follow them)"
        )
    with database.session() as session:
        summary.absorb(store_records(session, source, result.advisories))
        if result.epss:
            summary.epss += store_epss(session, result.epss)


def _record_file_run(database: Database, summary: PollSummary, started: datetime) -> None:
    with database.session() as session:
        session.add(
            PollRun(
                source=summary.source,
                started_at=started,
                finished_at=datetime.now(UTC),
                status=summary.status,
                new=summary.new,
                updated=summary.updated,
                unchanged=summary.unchanged,
                error="; ".join(summary.errors)[:2000] or None,
            )
        )
