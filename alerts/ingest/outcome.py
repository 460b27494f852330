"""What one poll (of a feed or a file) did, and storing a parse result against a source."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alerts.ingest.persist import StoreCounts, store_epss, store_records
from alerts.ingest.records import ParseResult
from alerts.models import PollRun
from alerts.relevance.service import after_store, epss_watch
from alerts.store import Database

log = logging.getLogger(__name__)


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
    pending: int = 0  # linked documents left for a later poll (budget) or failed
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def absorb(self, counts: StoreCounts) -> None:
        self.new += counts.new
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.warnings.extend(counts.warnings)

    @property
    def failed(self) -> bool:
        return self.status in ("error", "gone")


def store_result(
    database: Database,
    source: str,
    result: ParseResult,
    summary: PollSummary,
    *,
    category: str | None = None,
) -> None:
    """Store a document's advisories (and EPSS scores) in one transaction."""
    if category == "news":
        for record in result.advisories:
            if record.kind == "advisory":
                record.kind = "news"
    summary.warnings.extend(result.warnings)
    crossed: list[str] = []
    with database.session() as session:
        counts = store_records(session, source, result.advisories)
        summary.absorb(counts)
        if result.epss:
            stored, crossed = store_epss(session, result.epss, watch=epss_watch())
            summary.epss += stored
    # Scored after the commit, in short transactions of their own: a scoring problem never
    # loses what was stored, and a concurrent KEV update is always seen by one of the two.
    after_store(database, counts.changed_ids, crossed)


def record_run(database: Database, summary: PollSummary, started: datetime) -> None:
    """One poll_runs row per poll: the history behind feed health and metrics."""
    with database.session() as session:
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
    if summary.failed:
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
