"""Polling end to end: feed server on 127.0.0.1 -> httpx -> parser -> database."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from alerts.feeds import parse_registry
from alerts.ingest.local import ingest_file
from alerts.ingest.poller import Poller
from alerts.models import Advisory, Feed, LinkedDocument, PollRun

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Voorbeeld-CERT</title><link>https://cert.example.be/</link>
<language>nl-BE</language>
{items}
</channel></rss>"""
ITEM = """<item><title>{title}</title><link>https://cert.example.be/advisories/{id}</link>
<guid>https://cert.example.be/advisories/{id}</guid>
<pubDate>Wed, 01 Jul 2026 09:00:00 +0200</pubDate>
<description>Kritieke kwetsbaarheid {cve} in ExampleVPN wordt actief misbruikt.</description>
</item>"""


def rss(*ids: int, title="Waarschuwing ExampleVPN") -> bytes:
    items = "".join(
        ITEM.format(id=i, title=f"{title} #{i}", cve=f"CVE-2026-{10000 + i}") for i in ids
    )
    return RSS.format(items=items).encode()


def csaf_doc(tracking_id: str, updated: str) -> bytes:
    return json.dumps(
        {
            "document": {
                "category": "csaf_security_advisory",
                "csaf_version": "2.0",
                "lang": "en",
                "title": f"ExampleNAS remote code execution ({tracking_id})",
                "publisher": {
                    "category": "vendor",
                    "name": "ExampleNAS Inc.",
                    "namespace": "https://nas.example.com",
                },
                "notes": [{"category": "summary", "text": "Update ExampleNAS OS to 5.2.1."}],
                "tracking": {
                    "id": tracking_id,
                    "status": "final",
                    "version": "2",
                    "initial_release_date": "2026-06-01T10:00:00Z",
                    "current_release_date": updated,
                    "revision_history": [{"date": updated, "number": "2", "summary": "x"}],
                },
            },
            "vulnerabilities": [{"cve": "CVE-2026-20001"}],
        }
    ).encode()


def rolie(server, entries: list[tuple[str, str]]) -> bytes:
    return json.dumps(
        {
            "feed": {
                "id": "example-csaf-feed",
                "title": "ExampleNAS CSAF feed",
                "updated": "2026-07-01T00:00:00Z",
                "entry": [
                    {
                        "id": tid,
                        "title": f"Advisory {tid}",
                        "published": "2026-06-01T10:00:00Z",
                        "updated": updated,
                        "link": [{"rel": "self", "href": server.url(f"/csaf/{tid.lower()}.json")}],
                        "format": {
                            "schema": "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json",
                            "version": "2.0",
                        },
                        "content": {
                            "type": "application/json",
                            "src": server.url(f"/csaf/{tid.lower()}.json"),
                        },
                    }
                    for tid, updated in entries
                ],
            }
        }
    ).encode()


def registry_for(server, *feeds: tuple[str, str, str]):
    lines = ["feeds:"]
    for name, path, format in feeds:
        lines += [
            f"  - name: {name}",
            f"    title: {name}",
            f"    url: {server.url(path)}",
            f"    format: {format}",
            "    language: nl",
            "    category: cert",
            "    interval: 1h",
        ]
    return parse_registry("\n".join(lines) + "\n")


@pytest.fixture
def make_poller(database, settings):
    pollers = []

    def make(registry):
        poller = Poller(database, settings, registry)
        pollers.append(poller)
        return poller

    yield make
    for poller in pollers:
        poller.close()


def feed_row(database, name) -> Feed:
    with database.session() as session:
        return session.execute(select(Feed).where(Feed.name == name)).scalar_one()


def advisory_count(database, source=None) -> int:
    query = select(func.count()).select_from(Advisory)
    if source:
        query = query.where(Advisory.source == source)
    with database.session() as session:
        return session.scalar(query)


def test_poll_stores_new_items_then_conditional_repoll_is_free(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1, 2, 3), etag='"a"')
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    [first] = poller.poll_feeds(["cert"])
    assert (first.status, first.new) == ("ok", 3)
    [second] = poller.poll_feeds(["cert"])
    assert second.status == "not-modified" and second.new == 0
    assert advisory_count(database) == 3
    feed = feed_row(database, "cert")
    assert feed.etag == '"a"' and feed.consecutive_failures == 0 and feed.last_success_at
    assert feed.next_poll_at > datetime.now(UTC) + timedelta(minutes=55)
    assert feed.polling_until is None


def test_updated_items_are_revisions(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1, 2))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    poller.poll_feeds(["cert"])
    feed_server.add("/rss", body=rss(1, 2, 3, title="[Update] Waarschuwing ExampleVPN"))
    [summary] = poller.poll_feeds(["cert"])
    assert (summary.new, summary.updated, summary.unchanged) == (1, 2, 0)
    assert advisory_count(database) == 3


def test_one_broken_feed_never_stops_the_others(feed_server, make_poller, database):
    feed_server.add("/good", body=rss(1))
    feed_server.add("/broken", body=b"<rss><channel><item><title>cut off")
    feed_server.add("/error", status=500)
    registry = registry_for(
        feed_server,
        ("good", "/good", "rss"),
        ("broken", "/broken", "rss"),
        ("error", "/error", "rss"),
        ("missing", "/nope", "rss"),
    )
    poller = make_poller(registry)
    results = {s.source: s for s in poller.poll_due()}
    assert results["good"].status == "ok" and results["good"].new == 1
    for name in ("broken", "error", "missing"):
        assert results[name].status == "error" and results[name].errors
        assert feed_row(database, name).consecutive_failures == 1
        assert feed_row(database, name).last_error
    assert "404" in feed_row(database, "missing").last_error


def test_a_failing_feed_backs_off_and_its_counter_resets_on_success(
    feed_server, make_poller, database
):
    feed_server.add("/flaky", status=500)
    poller = make_poller(registry_for(feed_server, ("flaky", "/flaky", "rss")))
    poller.poll_feeds(["flaky"])
    poller.poll_feeds(["flaky"])
    feed = feed_row(database, "flaky")
    assert feed.consecutive_failures == 2
    assert feed.next_poll_at > datetime.now(UTC) + timedelta(minutes=115)  # 2 x interval
    feed_server.add("/flaky", body=rss(1))
    poller.poll_feeds(["flaky"])
    feed = feed_row(database, "flaky")
    assert feed.consecutive_failures == 0 and feed.last_error is None


def test_a_malformed_document_loses_nothing_already_stored(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1, 2))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    poller.poll_feeds(["cert"])
    feed_server.add("/rss", body=b"<html><body>maintenance</body></html>", content_type="text/html")
    [summary] = poller.poll_feeds(["cert"])
    assert summary.status == "error"
    assert advisory_count(database) == 2


def test_gone_feeds_are_disabled(feed_server, make_poller, database):
    feed_server.add("/old", status=410)
    poller = make_poller(registry_for(feed_server, ("old", "/old", "rss")))
    [summary] = poller.poll_feeds(["old"])
    assert summary.status == "gone"
    assert feed_row(database, "old").disabled_reason == "410 Gone"
    [again] = poller.poll_feeds(["old"])
    assert again.status == "skipped"
    assert len(feed_server.hits("/old")) == 1


def test_permanent_redirect_updates_the_stored_url(feed_server, make_poller, database):
    new = feed_server.add("/new", body=rss(1))
    feed_server.add("/old", status=308, location=new)
    poller = make_poller(registry_for(feed_server, ("moved", "/old", "rss")))
    poller.poll_feeds(["moved"])
    assert feed_row(database, "moved").current_url == new
    poller.poll_feeds(["moved"])
    assert len(feed_server.hits("/old")) == 1  # the second poll went straight to /new


def test_retry_after_sets_the_next_poll(feed_server, make_poller, database):
    feed_server.add("/busy", status=429, headers={"Retry-After": "86400"})
    poller = make_poller(registry_for(feed_server, ("busy", "/busy", "rss")))
    poller.poll_feeds(["busy"])
    assert feed_row(database, "busy").next_poll_at > datetime.now(UTC) + timedelta(hours=23)


def test_cache_control_stretches_the_interval(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1), headers={"Cache-Control": "max-age=14400"})
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    poller.poll_feeds(["cert"])
    assert feed_row(database, "cert").next_poll_at > datetime.now(UTC) + timedelta(hours=3.9)


def test_only_due_feeds_are_polled(feed_server, make_poller):
    feed_server.add("/rss", body=rss(1))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    assert [s.source for s in poller.poll_due()] == ["cert"]
    assert poller.poll_due() == []  # next poll is an hour away
    later = datetime.now(UTC) + timedelta(hours=2)
    assert [s.source for s in poller.poll_due(now=later)] == ["cert"]


def test_a_claimed_feed_is_not_polled_twice(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    now = datetime.now(UTC)
    assert poller._claim("cert", now, force=True)
    assert not poller._claim("cert", now, force=True)  # another poller holds the lease
    [summary] = poller.poll_feeds(["cert"])
    assert summary.status == "skipped"
    with database.session() as session:  # the holder died: its lease runs out
        session.query(Feed).filter_by(name="cert").update(
            {"polling_until": datetime.now(UTC) - timedelta(seconds=1)}
        )
    assert poller._claim("cert", now, force=True)


def test_csaf_rolie_feed_fetches_its_documents(feed_server, make_poller, database):
    entries = [("EXA-2026-001", "2026-06-02T10:00:00Z"), ("EXA-2026-002", "2026-06-03T10:00:00Z")]
    feed_server.add(
        "/rolie.json", body=rolie(feed_server, entries), content_type="application/json"
    )
    for tid, updated in entries:
        feed_server.add(f"/csaf/{tid.lower()}.json", body=csaf_doc(tid, updated))
    poller = make_poller(registry_for(feed_server, ("vendor", "/rolie.json", "csaf-rolie")))
    [summary] = poller.poll_feeds(["vendor"])
    assert summary.status == "ok" and summary.documents == 2, summary
    with database.session() as session:
        rows = session.scalars(select(Advisory).order_by(Advisory.item_id)).all()
        assert [r.item_id for r in rows] == ["EXA-2026-001", "EXA-2026-002"]
        assert all(not r.is_stub and r.cve_ids == ["CVE-2026-20001"] for r in rows)
    feed_server.requests.clear()
    [again] = poller.poll_feeds(["vendor"])
    assert again.documents == 0  # stored documents are as new as the feed says: not fetched
    assert not feed_server.hits("/csaf/exa-2026-001.json")


def test_broken_linked_document_is_a_warning_not_a_failure(feed_server, make_poller, database):
    entries = [("EXA-2026-001", "2026-06-02T10:00:00Z"), ("EXA-2026-002", "2026-06-03T10:00:00Z")]
    feed_server.add("/rolie.json", body=rolie(feed_server, entries))
    feed_server.add("/csaf/exa-2026-001.json", body=csaf_doc("EXA-2026-001", entries[0][1]))
    feed_server.add("/csaf/exa-2026-002.json", body=b"{not json")
    poller = make_poller(registry_for(feed_server, ("vendor", "/rolie.json", "csaf-rolie")))
    [summary] = poller.poll_feeds(["vendor"])
    assert summary.status == "ok"
    assert any("exa-2026-002" in w for w in summary.warnings)
    with database.session() as session:
        stub = session.scalars(select(Advisory).where(Advisory.item_id == "EXA-2026-002")).one()
        assert stub.is_stub  # the feed entry is kept until the document can be read


def test_poll_runs_are_recorded(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    poller.poll_feeds(["cert"])
    with database.session() as session:
        run = session.scalars(select(PollRun)).one()
        assert (run.source, run.status, run.new, run.http_status) == ("cert", "ok", 1, 200)


def test_ingest_file_reports_errors_and_stores_nothing(tmp_path, database):
    path = tmp_path / "broken.json"
    path.write_text("{broken")
    summary = ingest_file(database, path, format="cisa-kev")
    assert summary.status == "error" and "JSON" in summary.errors[0]
    assert advisory_count(database) == 0


def test_ingest_file_detects_the_format(tmp_path, database):
    path = tmp_path / "feed.xml"
    path.write_bytes(rss(1, 2))
    summary = ingest_file(database, path)
    assert summary.status == "ok" and summary.new == 2
    assert advisory_count(database, "file:feed.xml") == 2


def test_provider_metadata_discovery_reaches_the_documents(feed_server, make_poller, database):
    """provider-metadata.json -> its directory's changes.csv -> the CSAF documents."""
    feed_server.add(
        "/.well-known/csaf/provider-metadata.json",
        body=json.dumps(
            {
                "canonical_url": feed_server.url("/.well-known/csaf/provider-metadata.json"),
                "metadata_version": "2.0",
                "role": "csaf_trusted_provider",
                "publisher": {
                    "category": "vendor",
                    "name": "ExampleNAS Inc.",
                    "namespace": "https://nas.example.com",
                },
                "distributions": [{"directory_url": feed_server.url("/csaf/white/")}],
            }
        ).encode(),
    )
    feed_server.add(
        "/csaf/white/changes.csv",
        content_type="text/csv",
        body=(
            b'"2026/exa-2026-001.json","2026-06-02T10:00:00Z"\n'
            b'"2026/exa-2026-002.json","2026-06-03T10:00:00Z"\n'
        ),
    )
    feed_server.add(
        "/csaf/white/2026/exa-2026-001.json", body=csaf_doc("EXA-2026-001", "2026-06-02T10:00:00Z")
    )
    feed_server.add(
        "/csaf/white/2026/exa-2026-002.json", body=csaf_doc("EXA-2026-002", "2026-06-03T10:00:00Z")
    )
    registry = registry_for(
        feed_server, ("nas", "/.well-known/csaf/provider-metadata.json", "csaf-provider")
    )
    [summary] = make_poller(registry).poll_feeds(["nas"])
    assert summary.status == "ok" and summary.documents == 3, summary
    assert summary.new == 2
    with database.session() as session:
        titles = session.scalars(select(Advisory.title).order_by(Advisory.item_id)).all()
    assert titles[0].startswith("ExampleNAS remote code execution")


def test_document_budget_leaves_the_rest_for_the_next_poll(feed_server, make_poller, settings):
    settings.max_documents_per_poll = 1
    entries = [("EXA-2026-001", "2026-06-02T10:00:00Z"), ("EXA-2026-002", "2026-06-03T10:00:00Z")]
    feed_server.add("/rolie.json", body=rolie(feed_server, entries))
    for tid, updated in entries:
        feed_server.add(f"/csaf/{tid.lower()}.json", body=csaf_doc(tid, updated))
    poller = make_poller(registry_for(feed_server, ("vendor", "/rolie.json", "csaf-rolie")))
    [first] = poller.poll_feeds(["vendor"])
    assert first.documents == 1 and "1 linked documents left for the next poll" in first.warnings
    assert feed_server.hits("/csaf/exa-2026-002.json")  # newest first
    [second] = poller.poll_feeds(["vendor"])
    assert second.documents == 1 and feed_server.hits("/csaf/exa-2026-001.json")


def changes_csv(*rows: tuple[str, str]) -> bytes:
    return "".join(f'"{path}","{when}"\n' for path, when in rows).encode()


def serve_directory(server, rows, **route):
    server.add("/csaf/changes.csv", body=changes_csv(*rows), content_type="text/csv", **route)
    for path, when in rows:
        tid = path.rsplit("/", 1)[1].removesuffix(".json").upper()
        server.add(f"/csaf/{path}", body=csaf_doc(tid, when))


def test_listed_documents_are_fetched_once_until_the_listing_changes(
    feed_server, make_poller, database
):
    rows = [
        ("2026/exa-2026-001.json", "2026-06-02T10:00:00Z"),
        ("2026/exa-2026-002.json", "2026-06-03T10:00:00Z"),
    ]
    serve_directory(feed_server, rows)  # no ETag: the listing is downloaded every time
    poller = make_poller(registry_for(feed_server, ("dir", "/csaf/changes.csv", "csaf-changes")))
    [first] = poller.poll_feeds(["dir"])
    assert (first.documents, first.new) == (2, 2)
    [second] = poller.poll_feeds(["dir"])
    assert second.documents == 0  # file names differ from tracking ids: tracked by URL
    changed = [rows[0], ("2026/exa-2026-002.json", "2026-07-01T10:00:00Z")]
    serve_directory(feed_server, changed)
    [third] = poller.poll_feeds(["dir"])
    assert (third.documents, third.updated) == (1, 1)


def test_documents_left_by_the_budget_are_reached_despite_a_304(feed_server, make_poller, settings):
    settings.max_documents_per_poll = 1
    rows = [(f"2026/exa-2026-00{i}.json", f"2026-06-0{i}T10:00:00Z") for i in (1, 2, 3)]
    serve_directory(feed_server, rows, etag='"listing-v1"')
    poller = make_poller(registry_for(feed_server, ("dir", "/csaf/changes.csv", "csaf-changes")))
    fetched = []
    for _ in range(4):
        [summary] = poller.poll_feeds(["dir"])
        fetched.append(summary.documents)
    assert fetched == [1, 1, 1, 0]
    for path, _when in rows:
        assert len(feed_server.hits(f"/csaf/{path}")) == 1


def test_a_failed_document_is_retried_and_never_fails_the_feed(feed_server, make_poller, database):
    rows = [
        ("2026/exa-2026-001.json", "2026-06-02T10:00:00Z"),
        ("2026/exa-2026-002.json", "2026-06-03T10:00:00Z"),
    ]
    serve_directory(feed_server, rows)
    feed_server.add(
        "/csaf/2026/exa-2026-002.json", body=b"not gzip", headers={"Content-Encoding": "gzip"}
    )
    poller = make_poller(registry_for(feed_server, ("dir", "/csaf/changes.csv", "csaf-changes")))
    [first] = poller.poll_feeds(["dir"])
    assert first.status == "ok" and first.new == 1 and first.pending == 1
    assert any("undecodable" in warning for warning in first.warnings)
    feed_server.add("/csaf/2026/exa-2026-002.json", body=csaf_doc("EXA-2026-002", rows[1][1]))
    [waiting] = poller.poll_feeds(["dir"])
    assert waiting.documents == 0  # backing off after a passing failure
    with database.session() as session:  # ... until its retry time has come
        session.query(LinkedDocument).update({"next_try_at": datetime.now(UTC)})
    [second] = poller.poll_feeds(["dir"])
    assert (second.documents, second.new) == (1, 1)


def test_a_provider_cannot_make_the_poller_ingest_other_formats(feed_server, make_poller):
    feed_server.add(
        "/provider-metadata.json",
        body=json.dumps(
            {
                "canonical_url": feed_server.url("/provider-metadata.json"),
                "publisher": {
                    "category": "vendor",
                    "name": "Evil",
                    "namespace": "https://x.example",
                },
                "distributions": [
                    {"rolie": {"feeds": [{"tlp_label": "WHITE", "url": feed_server.url("/rss")}]}}
                ],
            }
        ).encode(),
    )
    feed_server.add("/rss", body=rss(1))
    poller = make_poller(
        registry_for(feed_server, ("evil-provider", "/provider-metadata.json", "csaf-provider"))
    )
    [summary] = poller.poll_feeds(["evil-provider"])
    assert summary.new == 0
    assert any("may only link CSAF" in warning for warning in summary.warnings)


def test_background_polls_never_run_one_feed_twice(feed_server, make_poller, database):
    feed_server.add("/slow", body=rss(1), delay=0.8)
    poller = make_poller(registry_for(feed_server, ("slow", "/slow", "rss")))
    assert poller.poll_due(wait=False) == []  # returns at once
    later = datetime.now(UTC) + timedelta(hours=2)
    poller.poll_due(now=later, wait=False)  # still in flight: not submitted again
    poller.close()  # waits for the running poll
    assert len(feed_server.hits("/slow")) == 1
    assert advisory_count(database) == 1


def test_a_lost_lease_does_not_overwrite_the_new_holders_health(feed_server, make_poller, database):
    feed_server.add("/rss", body=rss(1))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))
    config = poller.registry.by_name("cert")
    token = poller._claim("cert", datetime.now(UTC), force=True)
    with database.session() as session:  # another poller took over after our lease ran out
        session.query(Feed).filter_by(name="cert").update({"lease_owner": "someone-else"})
    poller._poll_safely(config, token)
    feed = feed_row(database, "cert")
    assert feed.lease_owner == "someone-else" and feed.last_success_at is None


def provider_metadata(server) -> bytes:
    return json.dumps(
        {
            "canonical_url": server.url("/provider-metadata.json"),
            "metadata_version": "2.0",
            "publisher": {
                "category": "vendor",
                "name": "ExampleNAS Inc.",
                "namespace": "https://nas.example.com",
            },
            "distributions": [{"directory_url": server.url("/csaf/")}],
        }
    ).encode()


def test_a_providers_listing_is_read_on_every_poll(feed_server, make_poller, database):
    feed_server.add("/provider-metadata.json", body=provider_metadata(feed_server))
    serve_directory(feed_server, [("2026/exa-2026-001.json", "2026-06-02T10:00:00Z")])
    poller = make_poller(
        registry_for(feed_server, ("nas", "/provider-metadata.json", "csaf-provider"))
    )
    poller.poll_feeds(["nas"])
    serve_directory(
        feed_server,
        [
            ("2026/exa-2026-001.json", "2026-06-02T10:00:00Z"),
            ("2026/exa-2026-002.json", "2026-06-03T10:00:00Z"),
        ],
    )
    [second] = poller.poll_feeds(["nas"])
    assert second.new == 1 and advisory_count(database) == 2
    assert len(feed_server.hits("/csaf/2026/exa-2026-001.json")) == 1  # unchanged: not again


def test_a_rate_limited_host_stops_this_poll_and_the_rest_waits(feed_server, make_poller, database):
    rows = [(f"2026/exa-2026-00{i}.json", f"2026-06-0{i}T10:00:00Z") for i in (1, 2, 3)]
    serve_directory(feed_server, rows, etag='"v1"')
    feed_server.add("/csaf/2026/exa-2026-003.json", status=429, headers={"Retry-After": "60"})
    poller = make_poller(registry_for(feed_server, ("dir", "/csaf/changes.csv", "csaf-changes")))
    [first] = poller.poll_feeds(["dir"])
    assert first.documents == 1 and first.pending == 3  # the newest answered 429: stop
    assert not feed_server.hits("/csaf/2026/exa-2026-001.json")
    feed_server.add("/csaf/2026/exa-2026-003.json", body=csaf_doc("EXA-2026-003", rows[2][1]))
    with database.session() as session:
        session.query(LinkedDocument).update({"next_try_at": datetime.now(UTC)})
    [second] = poller.poll_feeds(["dir"])
    assert second.status == "not-modified"  # the listing did not change ...
    assert second.new == 3 and advisory_count(database) == 3  # ... the waiting ones came anyway


def test_an_internal_error_is_reported_not_raised(feed_server, make_poller, monkeypatch):
    feed_server.add("/rss", body=rss(1))
    poller = make_poller(registry_for(feed_server, ("cert", "/rss", "rss")))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(poller, "_claim", broken)
    [summary] = poller.poll_feeds(["cert"])
    assert summary.status == "error" and "database went away" in summary.errors[0]


def test_closing_cancels_queued_polls(feed_server, database, settings):
    settings.poll_workers = 1
    for i in range(4):
        feed_server.add(f"/slow{i}", body=rss(i), delay=0.5)
    registry = registry_for(feed_server, *[(f"slow{i}", f"/slow{i}", "rss") for i in range(4)])
    poller = Poller(database, settings, registry)
    poller.poll_due(wait=False)
    poller.close()
    requested = sum(len(feed_server.hits(f"/slow{i}")) for i in range(4))
    assert requested == 1  # the running poll finished; the queued ones never started


def test_poll_jitter_is_a_tenth_of_the_interval_at_most_five_minutes():
    from alerts.ingest.poller import poll_jitter

    widest = lambda low, high: high  # noqa: E731 - the largest draw
    assert poll_jitter(1800, widest) == 180
    assert poll_jitter(6 * 3600, widest) == 300
    assert poll_jitter(1800, lambda low, high: low) == 0
    assert all(0 <= poll_jitter(3600) <= 300 for _ in range(100))
