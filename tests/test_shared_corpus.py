"""Every real publisher file in ../shared/data/feeds: detected, parsed, stored, re-stored.

Per-format golden facts live in the test_parse_* modules; this module proves the whole
corpus goes through the same path `alerts poll --file` takes, on both databases.
"""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.local import ingest_file
from alerts.ingest.records import ParseError, UnsupportedDocument
from alerts.models import Advisory
from tests.conftest import SHARED_FEEDS, require_shared

# Files that are not advisory data, and the typed error they must give.
NOT_DATA = {
    "MANIFEST.md": UnsupportedDocument,
    "kev/enisa-eukev-schema-v1.json": UnsupportedDocument,
    "kev/known_exploited_vulnerabilities_schema.json": UnsupportedDocument,
}


def corpus() -> list[str]:
    if not SHARED_FEEDS.is_dir():
        return ["<shared data missing>"]
    return sorted(str(p.relative_to(SHARED_FEEDS)) for p in SHARED_FEEDS.rglob("*") if p.is_file())


def parse_file(relative: str):
    path = require_shared() / relative
    data = path.read_bytes()
    return parsers.parse(data, detect_format(data, path.name))


@pytest.mark.parametrize("relative", corpus())
def test_every_file_parses_or_gives_its_typed_error(relative):
    if relative in NOT_DATA:
        with pytest.raises(NOT_DATA[relative]) as caught:
            parse_file(relative)
        assert str(caught.value)
        return
    result = parse_file(relative)
    assert result.advisories or result.links or result.epss, f"{relative}: nothing parsed"
    for record in result.advisories:
        assert record.item_id and record.title, relative
        for moment in (record.published, record.updated):
            assert moment is None or moment.utcoffset().total_seconds() == 0
        assert all(cve.startswith("CVE-") for cve in record.cve_ids)
        assert "<script" not in record.summary_html.lower()


def test_the_corpus_is_the_one_the_tests_were_written_for():
    require_shared()
    assert len(corpus()) >= 120


@pytest.mark.shared
def test_whole_corpus_ingests_then_reingests_unchanged(database):
    files = [f for f in corpus() if f not in NOT_DATA]
    first = [ingest_file(database, SHARED_FEEDS / f, source=_source(f)) for f in files]
    failed = [(s.source, s.errors) for s in first if s.status != "ok"]
    assert failed == [], failed
    new = sum(s.new for s in first)
    with database.session() as session:
        stored = session.scalar(select(func.count()).select_from(Advisory))
    assert stored == new > 3000  # the full CISA KEV alone is 1404 entries
    again = [ingest_file(database, SHARED_FEEDS / f, source=_source(f)) for f in files]
    assert sum(s.new for s in again) == 0
    assert sum(s.updated for s in again) == 0
    assert sum(s.unchanged for s in again) == new


def _source(relative: str) -> str:
    return "file:" + Path(relative).as_posix()


@pytest.mark.parametrize("relative", sorted(NOT_DATA))
def test_not_data_files_are_rejected_by_detection_or_parser(relative):
    path = require_shared() / relative
    with pytest.raises(ParseError):
        data = path.read_bytes()
        parsers.parse(data, detect_format(data, path.name))
