"""The staff feed-health page: every feed of the registry with its health, failing feeds
first and marked in words, times in Brussels time, feed text escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select, update

from alerts.feeds import load_registry, sync_feeds
from alerts.models import Feed, PollRun
from alerts.staff import accounts
from alerts.staff.feeds import feed_health
from alerts.staff.models import AuditEvent
from alerts.staff.web import local_time
from tests.subscriber_site import CSRF, Site

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 10:00 in Brussels (CET)
GOOD = "correct horse battery staple"
HOSTILE = "<script>alert('feed')</script>"
REGISTRY = f"""
feeds:
  - name: certfr-avis
    title: CERT-FR avis
    publisher: ANSSI
    url: https://www.cert.ssi.gouv.fr/avis/feed/
    format: rss
    language: fr
    category: cert
    interval: 1h
  - name: broken-feed
    title: "Broken {HOSTILE}"
    url: https://broken.example/feed.xml
    format: rss
    language: en
    category: news
    interval: 1h
  - name: gone-feed
    title: A feed the publisher removed
    url: https://gone.example/feed.xml
    format: cisa-kev
    language: en
    category: kev
    interval: 1d
  - name: quiet-feed
    title: Switched off
    url: https://quiet.example/feed.xml
    format: rss
    language: nl
    category: news
    interval: 6h
    enabled: false
  - name: fresh-feed
    title: Just added
    url: https://fresh.example/feed.xml
    format: rss
    language: de
    category: cert
    interval: 30m
"""


@pytest.fixture
def site(settings, database, tmp_path):
    registry_file = tmp_path / "feeds.yaml"
    registry_file.write_text(REGISTRY, encoding="utf-8")
    return Site(settings.model_copy(update={"feeds_file": registry_file}), database)


def _add(database, email: str, role: str, must_change: bool = False) -> int:
    with database.session() as session:
        user = accounts.add(session, email, email.split("@")[0].title(), role, GOOD, NOW)
        user.must_change_password = must_change
        return user.id


def _login(site: Site, email: str):
    client = site.client
    token = CSRF.search(client.get("/staff/login").text).group(1)
    data = {"csrf_token": token, "email": email, "password": GOOD, "next": ""}
    answer = client.post("/staff/login", data=data)
    assert answer.status_code == 303, answer.text


def _run(source: str, status: str, at: datetime, **values) -> PollRun:
    return PollRun(source=source, started_at=at, finished_at=at, status=status, **values)


def _health(site: Site) -> None:
    """certfr-avis works, broken-feed fails three times in a row, gone-feed answered 410,
    and a feed no longer in the registry is still stored."""
    with site.database.session() as session:
        sync_feeds(session, load_registry(site.settings.feeds_file))
        session.add(Feed(name="old-feed", url="https://old.example/", format="rss", enabled=True))
        _set(session, "certfr-avis", NOW - timedelta(minutes=5), last_success_at=NOW)
        _set(
            session,
            "broken-feed",
            NOW,
            last_success_at=NOW - timedelta(days=2),
            last_error=f"HTTP 500 {HOSTILE}",
            consecutive_failures=3,
        )
        _set(session, "gone-feed", NOW, last_error="HTTP 410", disabled_reason="410 Gone")
        session.add_all(
            [
                _run("certfr-avis", "error", NOW - timedelta(days=1), error="timed out"),
                _run("certfr-avis", "ok", NOW - timedelta(minutes=5), new=3, updated=1),
                _run("broken-feed", "ok", NOW - timedelta(days=2), new=7, updated=0),
                _run("broken-feed", "error", NOW - timedelta(hours=2), error="older error"),
                _run("broken-feed", "error", NOW, error=f"HTTP 500 {HOSTILE}"),
                _run("gone-feed", "gone", NOW, http_status=410, error="HTTP 410"),
            ]
        )


def _set(session, name: str, polled: datetime, **values) -> None:
    next_poll = polled + timedelta(hours=1)
    values = {"last_polled_at": polled, "next_poll_at": next_poll} | values
    session.execute(update(Feed).where(Feed.name == name).values(**values))


def _rows(html: str) -> list[str]:
    """The table rows of the page, in order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr")[1:]]


def _row(html: str, name: str) -> str:
    return next(row for row in _rows(html) if f"<code>{name}</code>" in row)


def _visible(html: str) -> str:
    """The text a reader sees, tags left out and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_without_a_session_the_page_sends_to_the_login(site):
    answer = site.client.get("/staff/feeds")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/staff/login?next=/staff/feeds"


@pytest.mark.parametrize("role", ["editor", "approver", "admin"])
def test_every_staff_role_sees_every_feed_of_the_registry(site, role):
    _add(site.database, f"{role}@gov.example", role)
    _login(site, f"{role}@gov.example")
    answer = site.client.get("/staff/feeds")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    for name in ("certfr-avis", "broken-feed", "gone-feed", "quiet-feed", "fresh-feed"):
        assert f"<code>{name}</code>" in answer.text
    assert "Not polled yet" in _row(answer.text, "fresh-feed")
    assert "No feed is failing (5 feeds)." in answer.text


def test_a_user_who_must_change_the_password_is_sent_there_first(site):
    _add(site.database, "new@gov.example", "editor", must_change=True)
    _login(site, "new@gov.example")
    answer = site.client.get("/staff/feeds")
    assert answer.status_code == 303 and answer.headers["location"] == "/staff/password"


def test_failing_feeds_come_first_with_their_error_marked_in_words(site):
    _add(site.database, "jan@gov.example", "editor")
    _login(site, "jan@gov.example")
    _health(site)
    page = site.client.get("/staff/feeds").text
    names = [row.split("<code>", 1)[1].split("</code>", 1)[0] for row in _rows(page)]
    # failing first, the longest failing streak first; then by name, the unregistered last
    assert names == [
        "broken-feed",
        "gone-feed",
        "certfr-avis",
        "fresh-feed",
        "quiet-feed",
        "old-feed",
    ]
    assert "2 of 6 feeds are failing; they are listed first." in page
    broken = _row(page, "broken-feed")
    assert 'class="failing"' in broken and "⚠" in broken and "Failing" in broken
    error = _visible(broken.split('class="error">', 1)[1].split("</td>", 1)[0])
    assert error == f"HTTP 500 {HOSTILE} 2026-11-27 10:00 CET"  # the message and its time
    assert "2026-11-25 10:00 CET" in _visible(broken)  # last success, two days ago
    assert '<td class="num">3</td>' in broken
    gone = _row(page, "gone-feed")
    assert 'class="failing"' in gone and "410 Gone" in gone and "not polled" in gone
    working = _row(page, "certfr-avis")
    assert 'class="failing"' not in working and "Working" in working
    assert "ANSSI" in working and "3 new, 1 updated" in working
    assert "2026-11-27 09:55 CET" in _visible(working)  # last poll, Brussels time
    assert "timed out" in working  # the last error, even after recovery, with its time
    assert "2026-11-26 10:00 CET" in _visible(working)
    assert "Disabled in feeds.yaml" in _row(page, "quiet-feed")
    assert "No longer in feeds.yaml" in _row(page, "old-feed")


def test_feed_text_is_escaped(site):
    _add(site.database, "jan@gov.example", "editor")
    _login(site, "jan@gov.example")
    _health(site)
    page = site.client.get("/staff/feeds").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;feed&#39;)&lt;/script&gt;" in _row(page, "broken-feed")
    assert "Broken &lt;script&gt;" in page  # the registry title too


def test_an_unreadable_registry_is_said_and_the_stored_feeds_are_listed(site):
    _add(site.database, "jan@gov.example", "editor")
    _login(site, "jan@gov.example")
    _health(site)
    site.settings.feeds_file.write_text("feeds: [", encoding="utf-8")
    page = site.client.get("/staff/feeds").text
    assert "The feed registry could not be read" in page
    assert "<code>broken-feed</code>" in page and "<code>old-feed</code>" in page
    assert "No longer in feeds.yaml" not in page  # without a registry nothing is "removed"


def test_times_carry_the_brussels_zone_in_summer_and_winter():
    assert local_time(datetime(2026, 7, 1, 10, 0, tzinfo=UTC)) == "2026-07-01 12:00 CEST"
    assert local_time(datetime(2026, 1, 1, 23, 30, tzinfo=UTC)) == "2026-01-02 00:30 CET"


def test_a_feed_failing_for_long_keeps_its_error_time(site):
    """Failed polls older than the 30-day window are not searched for; the time of the
    current error is then the last poll."""
    long_ago = NOW - timedelta(days=40)
    with site.database.session() as session:
        registry = load_registry(site.settings.feeds_file)
        sync_feeds(session, registry)
        _set(session, "gone-feed", long_ago, last_error="HTTP 410", disabled_reason="410 Gone")
        session.add(_run("gone-feed", "gone", long_ago, http_status=410, error="HTTP 410"))
        session.add(_run("certfr-avis", "error", long_ago, error="forgotten"))
        session.flush()
        health = {feed.name: feed for feed in feed_health(session, registry, NOW)}
    gone = health["gone-feed"]
    assert (gone.state, gone.last_error, gone.last_error_at) == ("gone", "HTTP 410", long_ago)
    assert gone.last_run.status == "gone"
    assert health["certfr-avis"].last_error is None  # recovered, and long ago


def test_an_admin_enables_a_gone_feed_again_and_it_is_audited(site):
    _health(site)
    with site.database.session() as session:
        session.execute(update(Feed).where(Feed.name == "gone-feed").values(enabled=False))
    _add(site.database, "editor@gov.example", "editor")
    _login(site, "editor@gov.example")
    page = site.client.get("/staff/feeds").text
    assert "Enable again" not in page
    token = CSRF.search(page).group(1)
    refused = site.client.post("/staff/feeds/gone-feed/enable", data={"csrf_token": token})
    assert refused.status_code == 403
    _add(site.database, "admin@gov.example", "admin")
    _login(site, "admin@gov.example")
    page = site.client.get("/staff/feeds").text
    assert "Enable again" in _row(page, "gone-feed")
    token = CSRF.search(page).group(1)
    done = site.client.post("/staff/feeds/gone-feed/enable", data={"csrf_token": token})
    assert done.status_code == 303
    with site.database.session() as session:
        feed = session.scalars(select(Feed).where(Feed.name == "gone-feed")).one()
        assert feed.enabled and not feed.disabled_reason
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "feed-enabled" in actions
    missing = site.client.post("/staff/feeds/no-such-feed/enable", data={"csrf_token": token})
    assert missing.status_code == 404
