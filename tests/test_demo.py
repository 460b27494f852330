"""`make demo`: prepare seeds staff, subscribers, firms and a local feed registry, once; one
poll against the local feed server stores advisories. (The uvicorn server is not started.)"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from alerts import demo
from alerts.feeds import load_registry
from alerts.ingest.poller import Poller
from alerts.models import Advisory
from alerts.referrals.models import VETTED, Firm
from alerts.relevance.service import default_catalogue
from alerts.staff.models import StaffUser
from subscribers import options
from subscribers.models import Subscriber
from tests.subscriber_site import CSRF, Site


@pytest.fixture
def feed_server():
    server = demo.start_feed_server(demo.default_feeds_dir())
    yield demo.server_url(server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def prepared(settings, database, feed_server):
    return demo.prepare(settings, database, demo.default_feeds_dir(), feed_server)


def _count(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _login(site: Site, email: str, password: str):
    browser = site.browser()
    token = CSRF.search(browser.get("/staff/login").text).group(1)
    data = {"csrf_token": token, "email": email, "password": password, "next": ""}
    return browser, browser.post("/staff/login", data=data)


def test_the_editor_and_the_approver_can_log_in(settings, database, prepared):
    site = Site(settings, database)
    for email, password in (prepared.editor, prepared.approver):
        browser, answer = _login(site, email, password)
        assert answer.status_code == 303, answer.text
        assert "/staff" in answer.headers["location"]
        assert "password" not in answer.headers["location"]  # no forced change in the demo
        assert browser.get("/staff/queue").status_code == 200
    with database.session() as session:
        roles = {user.email: user.role for user in session.scalars(select(StaffUser))}
    assert roles == {demo.EDITOR: "editor", demo.APPROVER: "approver"}


def test_subscribers_are_confirmed_and_varied(database, prepared):
    with database.session() as session:
        rows = list(session.scalars(select(Subscriber)))
    assert len(rows) == len(demo.SUBSCRIBERS) >= 12
    assert {row.status for row in rows} == {"active"}
    assert {row.language for row in rows} == {"nl", "fr", "en", "de"}
    assert {row.region for row in rows} <= options.codes("regions")
    assert {row.sector for row in rows} <= options.codes("sectors")
    families = {family for row in rows for family in row.families}
    assert families <= {family.id for family in default_catalogue().families}
    phones = {row.phone for row in rows if row.urgent_sms}
    assert phones == {"+447700900001", "+447700900002", "+447700900003"}
    assert all(row.phone_confirmed_at for row in rows if row.phone)


def test_four_vetted_firms_for_a_year(database, prepared):
    with database.session() as session:
        firms = list(session.scalars(select(Firm)))
    assert len(firms) == 4
    assert {firm.status for firm in firms} == {VETTED}
    assert all(firm.website.startswith("https://") for firm in firms)
    assert all((firm.expires_on - firm.vetted_on).days >= 364 for firm in firms)


def test_sample_scan_results_fill_the_staff_statistics(settings, database, prepared):
    from alerts.maturity.scan import load_scan
    from alerts.maturity.service import Scans

    assert prepared.scans_added == demo.DEMO_SCANS
    statistics = Scans(database, load_scan()).statistics(load_scan().version)
    assert statistics.total is not None and statistics.total.count == demo.DEMO_SCANS
    assert {group.dimension for group in statistics.groups} >= {"sector", "region"}


def test_running_it_twice_adds_nothing_twice(settings, database, prepared, feed_server):
    again = demo.prepare(settings, database, demo.default_feeds_dir(), feed_server)
    assert (again.subscribers_added, again.firms_added, again.scans_added) == (0, 0, 0)
    assert _count(database, StaffUser) == 2
    assert _count(database, Subscriber) == len(demo.SUBSCRIBERS)
    assert _count(database, Firm) == len(demo.FIRMS)
    _, answer = _login(Site(settings, database), *again.approver)  # the new password works
    assert answer.status_code == 303


def test_the_registry_points_every_feed_at_the_local_server(prepared, feed_server):
    registry = load_registry(prepared.feeds_file)
    assert len(registry.feeds) >= 4
    assert {urlsplit(feed.url).hostname for feed in registry.feeds} == {"127.0.0.1"}
    assert all(feed.url.startswith(feed_server) for feed in registry.feeds)
    formats = {feed.format for feed in registry.feeds}
    assert {"rss", "cisa-kev", "csaf"} <= formats


FEED_DIRS = [demo.FIXTURE_FEEDS]
if demo.default_feeds_dir() != demo.FIXTURE_FEEDS:
    FEED_DIRS.insert(0, demo.default_feeds_dir())


@pytest.mark.parametrize("feeds_dir", FEED_DIRS, ids=lambda path: path.parent.name)
def test_one_poll_stores_advisories_without_feed_errors(settings, database, feeds_dir):
    """With the real snapshots, and with our own samples on a clone without them."""
    server = demo.start_feed_server(feeds_dir)
    try:
        prepared = demo.prepare(settings, database, feeds_dir, demo.server_url(server))
        summaries = _poll_once(settings, database, prepared)
    finally:
        server.shutdown()
        server.server_close()
    assert [s.errors for s in summaries if s.status == "error" or s.errors] == []
    assert {s.status for s in summaries} == {"ok"}
    assert all(s.new > 0 for s in summaries), [(s.source, s.new) for s in summaries]
    assert _count(database, Advisory) >= sum(s.new for s in summaries) > 0


def _poll_once(settings, database, prepared):
    registry = load_registry(prepared.feeds_file)
    poller = Poller(database, settings, registry)
    try:
        return poller.poll_feeds([feed.name for feed in registry.feeds])
    finally:
        poller.close()


def test_the_walkthrough_names_the_accounts_and_what_to_try(settings, prepared):
    text = demo.walkthrough(settings, prepared, [])
    for needed in (*prepared.editor, *prepared.approver, "/staff/login", "/staff/queue"):
        assert needed in text
    assert "/alerts" in text and "/firms" in text and "outbox preview" in text


def test_the_demo_environment_keeps_to_its_own_folder(tmp_path):
    environment = demo.demo_environment(tmp_path, tmp_path / "feeds.yaml")
    assert environment["ALERTS_DATABASE_URL"] == f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    assert environment["ALERTS_ALLOW_PRIVATE_ADDRESSES"] == "true"
    assert environment["ALERTS_EMAIL_CHANNEL"] == environment["ALERTS_SMS_CHANNEL"] == "file"
