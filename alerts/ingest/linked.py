"""Following the documents a directory-style feed lists (CSAF, CVE List, MSRC CVRF).

Each listed document is remembered per source (by URL) with the date the listing gave it,
so a poll fetches only what is new or changed, newest first, within a per-poll budget.
What the budget leaves, and what failed for a passing reason, waits in the same table with
a retry time and is fetched even when the listing itself answers 304. Listings named by a
provider file (its changes.csv and ROLIE feeds) are read on every poll. One bad document is
a warning, never a failed feed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite

from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.fetch import Fetcher, FetchResult
from alerts.ingest.outcome import PollSummary, store_result
from alerts.ingest.records import DocumentLink, ParseError
from alerts.models import LinkedDocument
from alerts.store import Database

log = logging.getLogger(__name__)

# The format of the documents each directory-style format lists; None: detect per link.
LINKED_FORMAT: dict[str, str | None] = {
    "csaf-rolie": "csaf",
    "csaf-index": "csaf",
    "csaf-changes": "csaf",
    "cvelist-delta": "cve",
    "msrc-updates": "cvrf",
    "csaf-provider": None,
}
# What a provider's links may turn out to be: never an arbitrary format chosen by the file.
PROVIDER_LINK_FORMATS = {"csaf-rolie", "csaf-index", "csaf-changes", "csaf"}
TRANSIENT = {"timeout", "connect", "rate-limited", "decoding", "http-5xx"}
SLOW_DOWN = {"rate-limited"}  # the host asks us to wait: stop for this poll
FIRST_RETRY = timedelta(minutes=10)
LAST_RETRY = timedelta(days=1)
_EPOCH = datetime.min.replace(tzinfo=UTC)


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class Stop(Exception):
    """Following stops for this poll (shutdown, lost lease, a host asking us to wait)."""


class LinkFollower:
    def __init__(
        self,
        database: Database,
        fetcher: Fetcher,
        budget: int,
        keep_going: Callable[[], bool] = lambda: True,
    ):
        self.database = database
        self.fetcher = fetcher
        self.budget = budget
        self.keep_going = keep_going  # renews the feed's lease; False: stop now
        self.wait_until: datetime | None = None  # set when a host asked us to slow down

    # ------------------------------------------------------------------ entry points

    def follow(
        self,
        source: str,
        format: str | None,
        links: list[DocumentLink],
        summary: PollSummary,
        depth: int = 0,
    ) -> None:
        usable = [link for link in links if _usable(link, summary)]
        if format is None:  # a provider's listings: read each time, they carry no dates
            todo = [(link, None) for link in usable]
        else:
            todo = self._to_fetch(source, usable)
        self._fetch_all(source, format, todo, summary, depth)

    def retry_due(self, source: str, format: str | None, summary: PollSummary) -> None:
        """Documents left by an earlier budget or a passing failure, whose time has come."""
        if format is None or self.wait_until is not None:
            return
        now = datetime.now(UTC)
        with self.database.session() as session:
            rows = session.scalars(
                select(LinkedDocument)
                .where(
                    LinkedDocument.source == source,
                    LinkedDocument.status.in_(("pending", "error")),
                    or_(LinkedDocument.next_try_at.is_(None), LinkedDocument.next_try_at <= now),
                )
                .order_by(LinkedDocument.listed_updated.desc())
                .limit(max(self.budget - summary.documents, 0))
            ).all()
        todo = [(DocumentLink(row.url, row.listed_updated), row) for row in rows]
        self._fetch_all(source, format, todo, summary, 0)

    # ------------------------------------------------------------------ choosing

    def _to_fetch(self, source: str, links: list[DocumentLink]):
        """New documents first, then changed ones, then due retries; newest first."""
        known = self._known(source, links)
        now = datetime.now(UTC)
        new, changed, retry = [], [], []
        for link in links:
            row = known.get(url_key(link.url))
            if row is None:
                new.append((link, None))
            elif row.next_try_at is not None and row.next_try_at > now:
                continue  # waiting after a passing failure
            elif _changed(link, row):
                changed.append((link, row))
            elif row.status in ("pending", "error"):
                retry.append((link, row))
        return _newest_first(new) + _newest_first(changed) + _newest_first(retry)

    def _known(self, source: str, links: list[DocumentLink]) -> dict[str, LinkedDocument]:
        keys = [url_key(link.url) for link in links]
        found: dict[str, LinkedDocument] = {}
        with self.database.session() as session:
            for start in range(0, len(keys), 500):
                query = select(LinkedDocument).where(
                    LinkedDocument.source == source,
                    LinkedDocument.url_key.in_(keys[start : start + 500]),
                )
                found.update((row.url_key, row) for row in session.scalars(query))
        return found

    # ------------------------------------------------------------------ fetching

    def _fetch_all(self, source, format, todo, summary: PollSummary, depth: int) -> None:
        room = max(self.budget - summary.documents, 0)
        for index, (link, known) in enumerate(todo):
            if self.wait_until is not None:
                self._postpone(source, todo[index:], summary, "wait: a host asked us to slow down")
                return
            if index >= room or not self.keep_going():
                self._postpone(source, todo[index:], summary, "left for the next poll")
                return
            try:
                self._fetch_one(source, format, link, known, summary, depth)
            except Stop as reason:
                self._postpone(source, todo[index + 1 :], summary, str(reason))
                return

    def _fetch_one(self, source, format, link, known, summary, depth) -> None:
        summary.documents += 1
        validators = (
            {}
            if known is None or format is None
            else {"etag": known.etag, "last_modified": known.last_modified}
        )
        fetched = self.fetcher.fetch(link.url, **validators)
        problem, kind = None, None
        if fetched.error or (fetched.body is None and not fetched.not_modified):
            problem, kind = fetched.error or "empty response", _failure_kind(fetched)
        elif not fetched.not_modified:
            problem = self._ingest(source, format, link, fetched, summary, depth)
            kind = "parse" if problem else None
        if problem:
            summary.pending += 1
            summary.warnings.append(f"{link.url}: {problem}")
        if format is not None:  # provider listings are not remembered: read every poll
            self._remember(source, link, fetched, problem, kind, known)
        if kind in SLOW_DOWN:
            self.wait_until = datetime.now(UTC) + _backoff(1, fetched.retry_after)
            raise Stop(f"wait: {link.url} asked us to slow down")

    def _ingest(self, source, format, link, fetched: FetchResult, summary, depth) -> str | None:
        """Parse and store one document; the problem as text, or None."""
        try:
            kind = format or detect_format(fetched.body, link.url)
            if format is None and kind not in PROVIDER_LINK_FORMATS:
                return f"a provider may only link CSAF listings and documents, not {kind}"
            result = parsers.parse(fetched.body, kind, fetched.final_url or link.url)
            store_result(self.database, source, result, summary)
        except ParseError as error:
            return str(error)
        except Exception as error:  # a storage failure for this document only
            log.exception("storing %s failed", link.url)
            return f"could not store: {type(error).__name__}: {error}"
        if result.links and depth < 1 and kind in LINKED_FORMAT:
            self.follow(source, LINKED_FORMAT[kind], result.links, summary, depth + 1)
            self.retry_due(source, LINKED_FORMAT[kind], summary)
        return None

    # ------------------------------------------------------------------ remembering

    def _remember(self, source, link, fetched: FetchResult, problem, kind, known) -> None:
        now = datetime.now(UTC)
        failures = (known.failures if known else 0) + 1 if problem else 0
        transient = kind in TRANSIENT
        values = {
            "source": source,
            "url_key": url_key(link.url),
            "url": link.url,
            "fetched_at": now,
            "status": "error" if transient else ("failed" if problem else "ok"),
            "error": problem,
            "failures": failures,
            "next_try_at": now + _backoff(failures, fetched.retry_after) if transient else None,
            # A passing failure keeps the old listing date, so the change is still pending.
            "listed_updated": known.listed_updated if transient and known else link.updated,
        }
        if not problem and not fetched.not_modified:
            values |= {"etag": fetched.etag, "last_modified": fetched.last_modified}
        self._upsert(values)

    def _postpone(self, source, todo, summary: PollSummary, why: str) -> None:
        if not todo:
            return
        summary.pending += len(todo)
        summary.warnings.append(f"{len(todo)} linked documents {why}")
        for link, known in todo:
            if known is None:  # new ones are remembered so a 304 listing cannot hide them
                self._upsert(
                    {
                        "source": source,
                        "url_key": url_key(link.url),
                        "url": link.url,
                        "fetched_at": datetime.now(UTC),
                        "status": "pending",
                        "listed_updated": None,
                        "failures": 0,
                        "next_try_at": self.wait_until,
                    }
                )

    def _upsert(self, values: dict) -> None:
        try:
            with self.database.session() as session:
                dialect = session.bind.dialect.name
                insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
                    LinkedDocument
                )
                update = {k: v for k, v in values.items() if k not in ("source", "url_key")}
                session.execute(
                    insert.values(**values).on_conflict_do_update(
                        index_elements=["source", "url_key"], set_=update
                    )
                )
        except Exception:  # bookkeeping must never fail the feed; the document is re-tried
            log.exception("could not record linked document %s", values.get("url"))


def _usable(link: DocumentLink, summary: PollSummary) -> bool:
    if "\x00" in link.url or any(c.isspace() for c in link.url):
        summary.warnings.append(f"unusable link {link.url[:80]!r} skipped")
        return False
    return True


def _failure_kind(fetched: FetchResult) -> str:
    if fetched.error_kind == "http" and fetched.status and fetched.status >= 500:
        return "http-5xx"
    return fetched.error_kind or "http"


def _backoff(failures: int, retry_after: float | None) -> timedelta:
    delay = min(FIRST_RETRY * 2 ** max(failures - 1, 0), LAST_RETRY)
    if retry_after:
        delay = max(delay, min(timedelta(seconds=retry_after), LAST_RETRY))
    return delay


def _changed(link: DocumentLink, row: LinkedDocument) -> bool:
    """The listing dates the document later than the copy we stored."""
    if link.updated is None:
        return False  # index.txt gives no dates: a stored copy stays (changes.csv is preferred)
    return row.listed_updated is None or link.updated > row.listed_updated


def _newest_first(pairs: list) -> list:
    """Dated links newest first; undated ones (index.txt) by path, descending: CSAF paths
    start with the year, so this reaches this year's documents before old ones."""
    return sorted(pairs, key=lambda p: (p[0].updated or _EPOCH, p[0].url), reverse=True)
