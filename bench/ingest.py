"""Ingestion: parse + normalize + store every shared advisory file; RSS/Atom against bare
feedparser in the same run.

    python -m bench.ingest            (BENCH_RUNS=5, BENCH_DATABASE_URL=sqlite temp file)
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import feedparser

from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.local import ingest_file
from alerts.ingest.records import ParseError
from alerts.store import Database
from bench.common import ROOT, SHARED_FEEDS, emit, progress, time_runs


def corpus() -> tuple[Path, list[Path]]:
    """The real snapshots when present, else our own sample feeds."""
    root = SHARED_FEEDS if SHARED_FEEDS.is_dir() else ROOT / "tests" / "fixtures" / "feeds"
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            parsers.parse(data, detect_format(data, path.name))
        except ParseError:
            continue  # schemas, the manifest, deliberately broken files
        files.append(path)
    return root, files


def rss_files(files: list[Path]) -> list[Path]:
    return [p for p in files if detect_format(p.read_bytes(), p.name) == "rss"]


def ingest_all(files: list[Path]) -> int:
    """One fresh database, every file stored; returns the number of advisories stored."""
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{folder}/bench.sqlite3"
        database = Database(url)
        try:
            return sum(ingest_file(database, path, source=f"b:{path.name}").new for path in files)
        finally:
            _reset(database, url)


def _reset(database: Database, url: str) -> None:
    if not url.startswith("sqlite"):
        from alerts.models import Base

        Base.metadata.drop_all(database.engine)
        with database.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    database.dispose()


def main() -> None:
    root, files = corpus()
    progress(f"bench.ingest: {len(files)} files from {root}")
    blobs = {path: path.read_bytes() for path in files}
    items = ingest_all(files)
    timings = time_runs(lambda: ingest_all(files))
    emit(
        "ingest",
        len(files),
        timings,
        items=items,
        items_per_second=round(items / statistics.median(timings), 1),
        corpus=str(root),
    )

    feeds = rss_files(files)
    rss_blobs = [blobs[p] for p in feeds]
    ours_parse = time_runs(lambda: [parsers.parse(b, "rss") for b in rss_blobs])
    baseline = time_runs(lambda: [feedparser.parse(b) for b in rss_blobs])
    rss_items = ingest_all(feeds)
    ours_full = time_runs(lambda: ingest_all(feeds))
    emit(
        "ingest-rss",
        len(feeds),
        ours_full,
        items=rss_items,
        parse_seconds=round(statistics.median(ours_parse), 4),
        baseline_seconds=round(statistics.median(baseline), 4),
        ratio=round(statistics.median(ours_full) / statistics.median(baseline), 2),
        parse_ratio=round(statistics.median(ours_parse) / statistics.median(baseline), 2),
    )


if __name__ == "__main__":
    main()
