"""Following the documents a directory-style feed lists (CSAF, CVE List, MSRC CVRF).

Each listed document is remembered per source with the date the listing gave it and its
HTTP validators, so a poll fetches only documents that are new, changed, or failed before;
newest first, within a per-poll budget. One bad document is a warning, never a failed feed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
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
MAX_FAILURES = 5  # a document that failed this often waits until its listing changes
_EPOCH = datetime.min.replace(tzinfo=UTC)


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class LinkFollower:
    def __init__(
        self,
        database: Database,
        fetcher: Fetcher,
        budget: int,
        keep_lease: Callable[[], None] = lambda: None,
    ):
        self.database = database
        self.fetcher = fetcher
        self.budget = budget
        self.keep_lease = keep_lease  # renews the feed's lease between documents

    def follow(
        self,
        source: str,
        format: str,
        links: list[DocumentLink],
        summary: PollSummary,
        depth: int = 0,
    ) -> None:
        todo = self._to_fetch(source, links)
        room = max(self.budget - summary.documents, 0)
        if len(todo) > room:
            summary.pending += len(todo) - room
            summary.warnings.append(f"{len(todo) - room} linked documents left for next poll")
            todo = todo[:room]
        for link, known in todo:
            self.keep_lease()
            self._fetch_one(source, format, link, known, summary, depth)

    # ------------------------------------------------------------------ choosing

    def _to_fetch(self, source: str, links: list[DocumentLink]):
        """New documents first, then changed ones, then earlier failures; newest first."""
        known = self._known(source, links)
        new, changed, retry = [], [], []
        for link in links:
            row = known.get(url_key(link.url))
            if row is None:
                new.append((link, None))
            elif _changed(link, row):
                changed.append((link, row))
            elif row.status != "ok" and row.failures < MAX_FAILURES:
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

    def _fetch_one(self, source, format, link, known, summary, depth) -> None:
        summary.documents += 1
        etag = known.etag if known else None
        modified = known.last_modified if known else None
        fetched = self.fetcher.fetch(link.url, etag=etag, last_modified=modified)
        problem = None
        if fetched.error or (fetched.body is None and not fetched.not_modified):
            problem = fetched.error or "empty response"
        elif not fetched.not_modified:
            problem = self._ingest(source, format, link, fetched, summary, depth)
        if problem:
            summary.pending += 1
            summary.warnings.append(f"{link.url}: {problem}")
        self._remember(source, link, fetched, problem)

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
        return None

    def _remember(self, source, link, fetched: FetchResult, problem: str | None) -> None:
        now = datetime.now(UTC)
        values = {
            "source": source,
            "url_key": url_key(link.url),
            "url": link.url,
            "listed_updated": link.updated,
            "fetched_at": now,
            "status": "error" if problem else "ok",
            "error": problem,
            "failures": 1 if problem else 0,
        }
        if not problem and not fetched.not_modified:
            values |= {"etag": fetched.etag, "last_modified": fetched.last_modified}
        with self.database.session() as session:
            insert = (
                postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
            )(LinkedDocument)
            update = {k: v for k, v in values.items() if k not in ("source", "url_key")}
            if problem:
                update["failures"] = LinkedDocument.failures + 1
                update.pop("listed_updated")  # keep the old date: the change is not stored
            session.execute(
                insert.values(**values).on_conflict_do_update(
                    index_elements=["source", "url_key"], set_=update
                )
            )


def _changed(link: DocumentLink, row: LinkedDocument) -> bool:
    """The listing dates the document later than the copy we stored."""
    if link.updated is None:
        return False  # index.txt gives no dates: a stored copy stays (changes.csv is preferred)
    return row.listed_updated is None or link.updated > row.listed_updated


def _newest_first(pairs: list) -> list:
    """Dated links newest first; undated ones (index.txt) by path, descending: CSAF paths
    start with the year, so this reaches this year's documents before old ones."""
    return sorted(pairs, key=lambda p: (p[0].updated or _EPOCH, p[0].url), reverse=True)
