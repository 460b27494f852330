"""Ingest a local file (tests, back-fills): the same parse and store path as a feed poll."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.outcome import PollSummary, record_run, store_result
from alerts.ingest.records import ParseError
from alerts.store import Database

MAX_SOURCE = 100


def ingest_file(
    database: Database, path: Path, *, format: str | None = None, source: str | None = None
) -> PollSummary:
    """Parse a local file and store it under `source` (default "file:<name>").

    Listed documents (index.txt, ROLIE) are counted, not fetched: a file has no URL."""
    summary = PollSummary((source or f"file:{path.name}")[:MAX_SOURCE])
    started = datetime.now(UTC)
    try:
        data = path.read_bytes()
    except OSError as error:
        summary.status, summary.errors = "error", [f"cannot read {path}: {error.strerror}"]
        return summary
    try:
        result = parsers.parse(data, format or detect_format(data, path.name), None)
    except ParseError as error:
        summary.status, summary.errors = "error", [str(error)]
    else:
        if result.links:
            summary.warnings.append(
                f"{len(result.links)} linked documents listed (not fetched from a file; "
                "poll the feed URL to follow them)"
            )
        store_result(database, summary.source, result, summary)
    record_run(database, summary, started)
    return summary
