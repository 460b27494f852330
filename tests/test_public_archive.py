"""The public archive and its feeds: published alerts only, newest first, search, filters and
pages done in SQL, the reader's language with English marked as such, and staff text escaped
in HTML and kept as text in Atom, RSS and JSON Feed."""

import html
import re
from datetime import timedelta

import feedparser
import pytest
from fastapi.testclient import TestClient

from alerts.curation.models import SENDING, SENT, STATUSES, Alert
from alerts.web.app import create_app
from alerts.web.public import PAGE_SIZE
from tests.delivery_setup import NOW, TEXTS, add_alert

BASE = "https://alerts.example"
HOSTILE = "<script>alert(1)</script> & co"
FEEDS = ("atom", "rss", "json")
ARTICLE = re.compile(r'<article aria-labelledby="alert-(\d+)">')


@pytest.fixture
def client(settings, database):
    settings = settings.model_copy(update={"public_base_url": BASE + "/"})
    return TestClient(create_app(settings, database), headers={"accept-language": "en"})


def publish(database, minutes: int = 0, status: str = SENT, title: str = "", **changes) -> int:
    """An alert that went out `minutes` after NOW; `title` replaces the English title."""
    texts = {"en": TEXTS["en"] | {"title": title}, "nl": TEXTS["nl"]} if title else TEXTS
    texts = changes.pop("texts", texts)
    alert_id = add_alert(database, tier=changes.pop("tier", "urgent"), status=status, texts=texts)
    with database.session() as session:
        alert = session.get(Alert, alert_id)
        alert.fanned_out_at = NOW + timedelta(minutes=minutes)
        for name, value in changes.items():
            setattr(alert, name, value)
    return alert_id


def listed(page) -> list[int]:
    assert page.status_code == 200, page.text
    return [int(found) for found in ARTICLE.findall(page.text)]


def feed_ids(client, kind: str, lang: str = "en") -> list[int]:
    answer = client.get(f"/alerts/feed.{kind}?lang={lang}")
    assert answer.status_code == 200
    if kind == "json":
        urls = [item["id"] for item in answer.json()["items"]]
    else:
        urls = [entry.id for entry in feedparser.parse(answer.content).entries]
    return [int(url.rsplit("/", 1)[1]) for url in urls]


def test_only_published_alerts_appear_anywhere(client, database):
    ids = {status: publish(database, title=f"Alert {status}", status=status) for status in STATUSES}
    public = sorted(ids[status] for status in (SENDING, SENT))
    page = client.get("/alerts")
    assert sorted(listed(page)) == public
    assert "Alert draft" not in page.text and "Alert approved" not in page.text
    for kind in FEEDS:
        assert sorted(feed_ids(client, kind)) == public
    assert "Alert scheduled" not in client.get("/alerts?q=scheduled").text


def test_newest_first_by_publication_falling_back_to_approval(client, database):
    oldest = publish(database, minutes=-60)
    newest = publish(database, minutes=30)
    middle = publish(database, fanned_out_at=None, sent_at=None)  # only approved_at (NOW)
    assert listed(client.get("/alerts")) == [newest, middle, oldest]
    for kind in FEEDS:
        assert feed_ids(client, kind) == [newest, middle, oldest]


def test_search_by_text_in_any_language_and_by_cve(client, database):
    fortinet = publish(database)
    exchange_text = {
        "title": "Exchange servers attacked",
        "what": "A flaw in Outlook Web Access is used to break in.",
        "affected": "Businesses with their own Microsoft Exchange server.",
        "actions": ["Install the security update."],
    }
    exchange = publish(database, texts={"en": exchange_text}, cves=["CVE-2026-20002"])
    assert listed(client.get("/alerts?q=fortigate")) == [fortinet]  # case-insensitive title
    assert listed(client.get("/alerts?q=SSL-VPN")) == [fortinet]  # the "what" text
    assert listed(client.get("/alerts?q=Bedrijven met")) == [fortinet]  # Dutch "affected"
    assert listed(client.get("/alerts?q=exchange")) == [exchange]
    assert listed(client.get("/alerts?q=cve-2026-20002")) == [exchange]
    assert sorted(listed(client.get("/alerts?q=CVE-2026"))) == sorted([fortinet, exchange])
    page = client.get("/alerts?q=%25")  # LIKE wildcards are searched for, not obeyed
    assert listed(page) == [] and "No published alert matches your search." in page.text


def test_tier_and_known_exploited_filters(client, database):
    urgent = publish(database, tier="urgent", known_exploited=True)
    newsletter = publish(database, minutes=1, tier="newsletter", known_exploited=False)
    assert listed(client.get("/alerts?tier=urgent")) == [urgent]
    assert listed(client.get("/alerts?tier=newsletter")) == [newsletter]
    assert listed(client.get("/alerts?exploited=1")) == [urgent]
    assert listed(client.get("/alerts?tier=newsletter&exploited=1")) == []
    page = client.get("/alerts?tier=newsletter")
    assert '<option value="newsletter" selected>' in page.text


def test_pages_of_twenty_newest_first_with_links_that_keep_the_search(client, database):
    ids = [publish(database, minutes=n) for n in range(2 * PAGE_SIZE + 5)]
    newest_first = ids[::-1]
    first = client.get("/alerts?q=fortigate")
    assert listed(first) == newest_first[:PAGE_SIZE] and "Page 1 of 3" in first.text
    assert 'href="/alerts?q=fortigate&amp;lang=en&amp;page=2"' in first.text
    assert listed(client.get("/alerts?page=2")) == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]
    last = client.get("/alerts?page=3")
    assert listed(last) == newest_first[2 * PAGE_SIZE :] and 'rel="next"' not in last.text
    assert listed(client.get("/alerts?page=999999")) == listed(last)  # clamped to the last
    assert listed(client.get("/alerts?page=0")) == listed(first)
    assert len(feed_ids(client, "json")) == 45 and len(feed_ids(client, "atom")) == 45


def test_feeds_hold_the_fifty_newest(client, database):
    ids = [publish(database, minutes=n) for n in range(52)]
    for kind in FEEDS:
        assert feed_ids(client, kind) == ids[::-1][:50]


def test_the_readers_language_with_english_marked_as_such(client, database):
    publish(database)
    dutch = client.get("/alerts?lang=nl")
    assert TEXTS["nl"]["title"] in dutch.text and '<html lang="nl">' in dutch.text
    assert "(in English)" not in dutch.text
    french = client.get("/alerts?lang=fr")
    assert '<html lang="fr">' in french.text
    assert f'lang="en">{TEXTS["en"]["title"]}</a>' in french.text
    assert 'class="note">' in french.text  # "(in English)", translated
    english = client.get("/alerts", headers={"accept-language": "nl-BE,nl;q=0.9"})
    assert TEXTS["nl"]["title"] in english.text  # negotiated from the header
    only_dutch = publish(database, minutes=1, texts={"nl": TEXTS["nl"]})
    page = client.get("/alerts?lang=de")
    assert f'id="alert-{only_dutch}"' in page.text and "(Nederlands)" in page.text


def test_language_links_and_feed_links_keep_the_search(client, database):
    publish(database)
    page = client.get("/alerts?q=fortigate&tier=urgent&lang=en")
    assert 'href="/alerts?q=fortigate&amp;tier=urgent&amp;lang=nl"' in page.text
    for kind, media in (("atom", "atom+xml"), ("rss", "rss+xml"), ("json", "feed+json")):
        link = (
            f'<link rel="alternate" type="application/{media}" href="/alerts/feed.{kind}?lang=en"'
        )
        assert link in page.text
    assert '<form class="search" method="get" action="/alerts" role="search"' in page.text
    assert '<label for="q">' in page.text and '<label for="tier">' in page.text


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_xml_feeds_parse_with_items_links_dates_and_categories(client, database, kind):
    alert_id = publish(database)
    answer = client.get(f"/alerts/feed.{kind}?lang=nl")
    assert answer.headers["content-type"].startswith(f"application/{kind}+xml")
    feed = feedparser.parse(answer.content)
    assert not feed.bozo and feed.version == ("atom10" if kind == "atom" else "rss20")
    assert feed.feed.title and feed.feed.link == f"{BASE}/alerts?lang=nl"
    (entry,) = feed.entries
    assert entry.id == f"{BASE}/alerts/{alert_id}"
    assert entry.link == f"{BASE}/alerts/{alert_id}?lang=nl"
    assert entry.title == TEXTS["nl"]["title"]
    assert html.unescape(entry.summary) == TEXTS["nl"]["what"]
    assert entry.published_parsed[:5] == NOW.timetuple()[:5]
    assert {tag.term for tag in entry.tags} == {"urgent", "CVE-2026-10001", "known-exploited"}


def test_feeds_default_to_english_and_fall_back_to_it(client, database):
    publish(database)
    for lang in ("", "fr", "xx"):
        entry = feedparser.parse(client.get(f"/alerts/feed.atom?lang={lang}").content).entries[0]
        assert entry.title == TEXTS["en"]["title"]
    item = client.get("/alerts/feed.json?lang=fr").json()["items"][0]
    assert item["title"] == TEXTS["en"]["title"] and item["language"] == "en"


def test_json_feed_has_the_required_keys(client, database):
    alert_id = publish(database)
    answer = client.get("/alerts/feed.json")
    assert answer.headers["content-type"].startswith("application/feed+json")
    feed = answer.json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] and feed["feed_url"] == f"{BASE}/alerts/feed.json?lang=en"
    (item,) = feed["items"]
    assert item["id"] == f"{BASE}/alerts/{alert_id}"
    assert item["url"] == f"{BASE}/alerts/{alert_id}?lang=en"
    assert item["title"] == TEXTS["en"]["title"] and item["content_text"] == TEXTS["en"]["what"]
    assert item["date_published"].startswith("2026-11-27T09:00:00")
    assert item["tags"] == ["urgent", "CVE-2026-10001", "known-exploited"]


def test_empty_feeds_are_valid(client):
    assert feedparser.parse(client.get("/alerts/feed.atom").content).bozo == 0
    assert feedparser.parse(client.get("/alerts/feed.rss").content).bozo == 0
    assert client.get("/alerts/feed.json").json()["items"] == []
    assert "No alerts have been published yet." in client.get("/alerts").text


def test_staff_text_is_escaped_in_html_and_kept_as_text_in_feeds(client, database):
    what = "Run <b>this</b> & that.\x0b Then <script>x</script>."
    texts = {"en": TEXTS["en"] | {"title": HOSTILE, "what": what}}
    publish(database, texts=texts, cves=["CVE-2026-1 <i>"])
    page = client.get("/alerts?lang=en")
    assert "<script>" not in page.text and "<b>this" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page.text
    for kind in ("atom", "rss"):
        body = client.get(f"/alerts/feed.{kind}").content
        assert b"<script>" not in body
        feed = feedparser.parse(body)
        assert not feed.bozo and feed.entries[0].title == HOSTILE
        summary = feed.entries[0].summary
        assert (html.unescape(summary) if kind == "rss" else summary) == what.replace("\x0b", "")
        assert "CVE-2026-1 <i>" in {tag.term for tag in feed.entries[0].tags}
    item = client.get("/alerts/feed.json").json()["items"][0]
    assert item["title"] == HOSTILE and item["content_text"] == what


BAD_QUERIES = [
    "page=abc",
    "page=-1",
    "page=99999999999999999999999999",
    "page=%EF%BC%91",  # a full-width digit
    "page=1&page=2",
    "tier=%3Cx%3E",
    "tier=",
    "exploited=maybe",
    "lang=xx",
    "lang=",
    "q=" + "a" * 5000,
    "q=%ff%fe",
    "q=_",
    "q=%5C",
    "q=%27%3B%20DROP%20TABLE%20alerts%3B--",
    "q=%22%3A",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_parameters_never_fail(client, database, query):
    publish(database)
    page = client.get(f"/alerts?{query}")
    assert page.status_code == 200 and "Published alerts" in page.text
    for kind in FEEDS:
        assert client.get(f"/alerts/feed.{kind}?{query}").status_code == 200


def test_odd_query_text_is_searched_literally(client, database):
    fortinet = publish(database)
    refused = client.get("/alerts?q=%00fortigate")  # NUL: refused at the door, clearly
    assert refused.status_code == 400 and "NUL" in refused.text
    assert listed(client.get("/alerts?q=fortigate")) == [fortinet]
    assert listed(client.get("/alerts?q=_")) == []  # not a LIKE wildcard
    assert listed(client.get("/alerts?q=%22title%22")) == []  # JSON keys are not text
