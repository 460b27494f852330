"""Odd and hostile input for every format: only typed ParseErrors may leave a parser."""

import json

import pytest

from alerts.ingest import parsers
from alerts.ingest.normalize import normalize_cve, parse_date
from alerts.ingest.records import ParseError

KEV = {
    "title": "CISA Catalog",
    "catalogVersion": "2026.01.01",
    "count": 2,
    "vulnerabilities": [
        {
            "cveID": 12345,
            "vendorProject": "X",
            "product": "Y",
            "vulnerabilityName": "bad",
            "dateAdded": "2026-01-01",
        },
        {
            "cveID": "CVE-2026-0001",
            "vendorProject": "QNAP",
            "product": "QTS",
            "vulnerabilityName": "QNAP QTS flaw",
            "dateAdded": "2026-01-02",
        },
    ],
}


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+05:00",
        "Fri, 31 Dec 9999 23:59:59 -1400",
        "2025",
        "March 2025",
        "Monday",
        "5",
        "10:00",
    ],
)
def test_unusable_or_partial_dates_are_none_never_today_or_an_exception(value):
    assert parse_date(value) is None


def test_non_string_cve_values():
    assert normalize_cve(12345) is None and normalize_cve(["CVE-2026-1"]) is None


def test_one_bad_kev_entry_is_skipped_not_the_catalogue():
    result = parsers.parse(json.dumps(KEV).encode(), "cisa-kev")
    assert [a.item_id for a in result.advisories] == ["CVE-2026-0001"]
    assert result.warnings


def test_a_character_reference_beyond_unicode_does_not_kill_the_feed():
    data = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        b"<item><title>a &#99999999999; b</title><guid>1</guid></item></channel></rss>"
    )
    [record] = parsers.parse(data, "rss").advisories
    assert record.title.startswith("a ")


@pytest.mark.parametrize(
    ("format", "data"),
    [
        ("epss-csv", b"cve,epss,percentile\n" + b"x" * 200_000 + b"\n"),
        ("csaf", b"[" * 100_000),
        ("cve", b'{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "\\u0000"}}'),
        ("nvd", b'{"format": "NVD_CVE", "vulnerabilities": [{"cve": {"id": 5}}]}'),
        ("cisa-kev", b'{"catalogVersion": 1, "vulnerabilities": {"a": 1}}'),
        ("eu-kev", b'[{"cveID": "CVE-2026-1", "dateReported": "99/99/99"}]'),
        ("csaf-rolie", b'{"feed": {"entry": [{"id": 1, "updated": "9999-99-99"}]}}'),
        ("csaf-changes", b'"a.json","not a date"\n' * 3),
        ("cvrf", b"<cvrfdoc><DocumentTitle>" + b"<x>" * 50_000),
        ("rss", b"<rss><channel><item><title>\x00\x00</title></item></channel></rss>"),
        ("cnw-markdown", b"# CNW-2026-01\n| Date | 99-99-9999 |\n"),
        ("msrc-updates", b'{"@odata.context": "x", "value": [{"ID": null}]}'),
        ("epss-api", b'{"status": "OK", "status-code": 200, "data": [{"cve": 1, "epss": "x"}]}'),
    ],
)
def test_only_typed_errors_escape(format, data):
    try:
        parsers.parse(data, format)
    except ParseError as error:
        assert str(error)
