from pathlib import Path

import pytest

from alerts.feeds import (
    RegistryError,
    enable_feed,
    load_registry,
    parse_duration,
    parse_registry,
    sync_feeds,
)
from alerts.ingest.parsers import FORMATS
from alerts.models import Feed

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
feeds:
  - name: certfr-avis
    title: CERT-FR avis
    url: https://www.cert.ssi.gouv.fr/avis/feed/
    format: rss
    language: fr
    category: cert
    interval: 1h
"""


def test_the_shipped_registry_is_valid_and_covers_the_core_sources():
    registry = load_registry(ROOT / "feeds.yaml")
    names = {feed.name for feed in registry.feeds}
    for required in (
        "ccb-advisories",
        "certfr-avis",
        "certfr-alertes",
        "cisa-advisories",
        "cisa-kev",
        "eu-kev",
        "ncsc-nl-csaf",
        "bsi-wid-csaf",
        "msrc-cvrf",
        "cisco-psirt",
        "fortinet-psirt",
        "paloalto-psirt",
    ):
        assert required in names
    assert {feed.category for feed in registry.feeds} >= {"cert", "kev", "vendor", "news"}
    assert all(feed.format in FORMATS for feed in registry.feeds)
    assert all(feed.url.startswith("https://") for feed in registry.feeds)


def test_durations():
    assert parse_duration("15m") == 900
    assert parse_duration("2h") == 7200
    assert parse_duration("1d") == 86400
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("interval: 1h", "interval: often"), 8, "duration"),
        (("format: rss", "format: html"), 5, "unknown format"),
        (("language: fr", "language: french"), 6, "language"),
        (("url: https://www.cert.ssi.gouv.fr/avis/feed/", "url: ftp://x"), 4, "url"),
        (("category: cert", "category: cert\n    colour: blue"), 8, "colour"),
    ],
)
def test_errors_name_the_line_and_field(change, line, words):
    with pytest.raises(RegistryError) as caught:
        parse_registry(GOOD.replace(*change), "feeds.yaml")
    message = str(caught.value)
    assert f"feeds.yaml: line {line}:" in message
    assert words in message


def test_missing_field_points_at_the_entry():
    text = GOOD.replace("    title: CERT-FR avis\n", "")
    with pytest.raises(RegistryError, match=r"line 2: feed #1 title: Field required"):
        parse_registry(text)


def test_repeated_names_are_rejected():
    text = GOOD + GOOD.removeprefix("feeds:\n")
    with pytest.raises(RegistryError, match="line 9: feed name 'certfr-avis' is repeated"):
        parse_registry(text)


def test_broken_yaml_is_reported():
    with pytest.raises(RegistryError, match="line"):
        parse_registry("feeds:\n  - name: [unclosed\n")


def test_sync_creates_updates_and_keeps_gone_feeds_disabled(database):
    registry = parse_registry(GOOD)
    with database.session() as session:
        sync_feeds(session, registry)
    with database.session() as session:
        feed = session.query(Feed).one()
        feed.etag, feed.disabled_reason = '"v1"', "410 Gone"
    moved = parse_registry(GOOD.replace("/avis/feed/", "/avis/rss/"))
    with database.session() as session:
        sync_feeds(session, moved)
    with database.session() as session:
        feed = session.query(Feed).one()
        assert feed.url.endswith("/avis/rss/")
        assert feed.etag is None  # validators belong to the old URL
        assert feed.disabled_reason is None  # a new address deserves a new try
        feed.disabled_reason = "410 Gone"
    with database.session() as session:
        sync_feeds(session, moved)  # same URL again: the 410 mark stays
        assert session.query(Feed).one().disabled_reason == "410 Gone"
    with database.session() as session:
        assert enable_feed(session, "certfr-avis")
        assert not enable_feed(session, "nope")
    with database.session() as session:
        feed = session.query(Feed).one()
        assert feed.disabled_reason is None and feed.next_poll_at is None
