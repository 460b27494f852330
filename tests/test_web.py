"""The web app: health, readiness, the advisory list, and escaping of feed text."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from alerts.ingest.normalize import html_to_text, safe_html
from alerts.ingest.persist import store_records
from alerts.ingest.records import AdvisoryRecord
from alerts.web.app import create_app

HOSTILE_TITLE = '<script>alert("x")</script>ExampleVPN <img src=x onerror=alert(1)>'


@pytest.fixture
def client(database, settings):
    with database.session() as session:
        store_records(
            session,
            "cert",
            [
                AdvisoryRecord(
                    item_id="1",
                    title="ExampleVPN exploited",
                    cve_ids=["CVE-2026-10001"],
                    published=datetime(2026, 7, 1, tzinfo=UTC),
                    known_exploited=True,
                    url="https://cert.example.be/1",
                ),
                AdvisoryRecord(
                    item_id="2",
                    title=HOSTILE_TITLE,
                    summary_text=HOSTILE_TITLE,
                    published=datetime(2026, 6, 1, tzinfo=UTC),
                ),
            ],
        )
    return TestClient(create_app(settings, database))


def test_health_and_readiness(client, database):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ok", "database": database.dialect}


def test_advisory_page_lists_and_escapes(client):
    page = client.get("/advisories")
    assert page.status_code == 200
    assert "ExampleVPN exploited" in page.text and "known exploited" in page.text
    assert "<script>alert" not in page.text and "onerror=alert" not in page.text.replace(
        "&lt;img src=x onerror=alert(1)&gt;", ""
    )
    assert "&lt;script&gt;" in page.text


def test_filters_and_json(client):
    data = client.get("/api/advisories", params={"cve": "CVE-2026-10001"}).json()
    assert data["total"] == 1 and data["items"][0]["known_exploited"] is True
    assert client.get("/advisories", params={"q": "nothing-like-this"}).text.count("<tr>") == 2


def test_bad_query_parameters_are_4xx(client):
    assert client.get("/api/advisories", params={"page": "0"}).status_code == 422
    assert client.get("/api/advisories", params={"q": "x" * 500}).status_code == 422


def test_sanitisers_drop_active_content():
    assert "<script" not in safe_html(HOSTILE_TITLE) and "onerror" not in safe_html(HOSTILE_TITLE)
    assert html_to_text(HOSTILE_TITLE) == "ExampleVPN"


def test_security_headers_on_every_page(client):
    for path in ("/advisories", "/subscribe", "/healthz", "/no-such-page"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # no script at all
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_only_web_addresses_become_links(database, settings):
    """Parsers drop javascript: addresses; the page does not rely on it (defence in depth)."""
    with database.session() as session:
        store_records(
            session,
            "cert",
            [
                AdvisoryRecord(item_id="j", title="Odd address", url="javascript:alert(1)"),
                AdvisoryRecord(item_id="h", title="Web address", url="https://cert.example.be/h"),
            ],
        )
    page = TestClient(create_app(settings, database)).get("/advisories").text
    assert "javascript:" not in page
    assert 'href="https://cert.example.be/h"' in page
