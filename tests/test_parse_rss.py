"""RSS / Atom / RDF parser: golden facts over the real feeds in ../shared, plus our own
samples in tests/fixtures/feeds/rss (which run in a fresh clone)."""

from __future__ import annotations

import builtins
import json
import re
import tracemalloc
from datetime import UTC, datetime

import pytest

from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.parsers import rss
from alerts.ingest.records import (
    HostileDocument,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

shared = pytest.mark.shared
CERTFR = "https://www.cert.ssi.gouv.fr"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def by_id(result: ParseResult) -> dict:
    return {record.item_id: record for record in result.advisories}


@pytest.fixture
def shared_feed(read_shared):
    def parse(name: str, base_url: str | None = None) -> ParseResult:
        return rss.parse(read_shared(f"rss/{name}"), base_url)

    return parse


@pytest.fixture
def sample(read_fixture):
    def parse(name: str, base_url: str | None = None) -> ParseResult:
        return rss.parse(read_fixture(f"feeds/rss/{name}"), base_url)

    return parse


# ----------------------------------------------------------------------------- golden facts

GOLDEN = [
    # file, items, first id, last id, earliest published, latest published, languages
    (
        "certfr-avis-feed-2026-08-20.xml",
        40,
        f"{CERTFR}/avis/CERTFR-2026-AVI-0777/",
        f"{CERTFR}/avis/CERTFR-2026-AVI-1056/",
        utc(2026, 6, 18),
        utc(2026, 8, 20),
        {"fr"},
    ),
    (
        "certfr-alertes-feed-2026-08-20.xml",
        40,
        f"{CERTFR}/alerte/CERTFR-2023-ALE-010/",
        f"{CERTFR}/alerte/CERTFR-2026-ALE-008/",
        utc(2023, 10, 2),
        utc(2026, 7, 22),
        {"fr"},
    ),
    (
        "cisa-all-advisories-2026-07.xml",
        3,
        "/node/25107",
        "/node/25106",
        utc(2026, 7, 2, 12),
        utc(2026, 7, 2, 12),
        {"en"},
    ),
    (
        "bleepingcomputer-2026-07-05.xml",
        3,
        "https://www.bleepingcomputer.com/news/security/"
        "flipper-zero-firmware-development-continues-with-community-help/",
        "https://www.bleepingcomputer.com/news/security/"
        "netnut-proxy-network-disrupted-2-million-infected-devices-cut-off/",
        utc(2026, 7, 3, 17, 50, 4),
        utc(2026, 7, 5, 14, 14, 52),
        {"en"},
    ),
    (
        "darkreading-2026-07.xml",
        3,
        "https://www.darkreading.com/cyber-risk/"
        "chinese-llms-broaden-gap-between-attackers-and-defenders",
        "https://www.darkreading.com/cybersecurity-operations/apple-patch-policy-ai",
        utc(2026, 7, 2, 19, 31, 58),
        utc(2026, 7, 3, 13, 1),
        {"en"},
    ),
    (
        "jvn-jvndb-2007.rdf",
        1,
        "https://jvndb.jvn.jp/ja/contents/2007/JVNDB-2007-000127.html",
        "https://jvndb.jvn.jp/ja/contents/2007/JVNDB-2007-000127.html",
        utc(2007, 3, 31, 15),
        utc(2007, 3, 31, 15),
        {"ja"},
    ),
    (
        "jvn-jvndb-rss-2023-11-02.rdf",
        1,
        "https://jvndb.jvn.jp/ja/contents/2023/JVNDB-2023-000001.html",
        "https://jvndb.jvn.jp/ja/contents/2023/JVNDB-2023-000001.html",
        utc(2023, 1, 5, 3, 2),
        utc(2023, 1, 5, 3, 2),
        {"ja"},
    ),
    (
        "krebsonsecurity-2026-07.xml",
        3,
        "https://krebsonsecurity.com/?p=73923",
        "https://krebsonsecurity.com/?p=73832",
        utc(2026, 6, 18, 17, 37, 58),
        utc(2026, 7, 2, 19, 27, 33),
        {"en"},
    ),
    (
        "securityweek-2026-07.xml",
        3,
        "https://www.securityweek.com/?p=47625",
        "https://www.securityweek.com/?p=47616",
        utc(2026, 7, 3, 10),
        utc(2026, 7, 3, 15, 10, 42),
        {"en"},
    ),
    (
        "thehackernews-2026-07-05.xml",
        3,
        "https://thehackernews.com/2026/07/us-government-entity-paid-kairos-group.html",
        "https://thehackernews.com/2026/07/unpatched-flaws-disclosed-in-filesystem.html",
        utc(2026, 7, 3, 20, 19, 31),
        utc(2026, 7, 4, 12, 47, 53),
        {"en"},
    ),
    (
        "theregister-security-2026-07.xml",
        3,
        "https://www.theregister.com/a/5266161",
        "https://www.theregister.com/a/5266512",
        utc(2026, 7, 3, 14, 29),
        utc(2026, 7, 5, 15, 1),
        {None},
    ),  # the channel declares no language
    (
        "MALFORMED_zataz-truncated-2026-08-20.xml",
        1,
        "https://www.zataz.com/?p=47434",
        "https://www.zataz.com/?p=47434",
        utc(2026, 8, 20, 13, 15, 42),
        utc(2026, 8, 20, 13, 15, 42),
        {"fr"},
    ),
]


@shared
@pytest.mark.parametrize(
    ("name", "count", "first_id", "last_id", "earliest", "latest", "languages"), GOLDEN
)
def test_golden_facts(shared_feed, name, count, first_id, last_id, earliest, latest, languages):
    result = shared_feed(name)
    records = result.advisories
    assert result.format == "rss"
    assert len(records) == count
    assert (records[0].item_id, records[-1].item_id) == (first_id, last_id)
    published = [r.published for r in records]
    assert all(p is not None and p.tzinfo == UTC for p in published)
    assert (min(published), max(published)) == (earliest, latest)
    assert {r.language for r in records} == languages
    assert len({r.item_id for r in records}) == count


@shared
@pytest.mark.parametrize("name", [row[0] for row in GOLDEN])
def test_every_record_is_clean_and_jsonable(shared_feed, name):
    for record in shared_feed(name).advisories:
        assert record.title and "<" not in record.title and "&amp;" not in record.title
        assert "\r" not in record.title + record.summary_text
        assert "<script" not in record.summary_html and "onerror" not in record.summary_html
        assert not record.summary_text.startswith("<")
        assert record.url and record.url.startswith("https://")
        assert record.kind == "advisory"  # the feed registry decides "news"
        json.dumps(record.raw)
        json.dumps(record.facts)


@shared
@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("certfr-avis-feed-2026-08-20.xml", "CERT-FR"),
        ("cisa-all-advisories-2026-07.xml", "All CISA Advisories"),
        ("jvn-jvndb-rss-2023-11-02.rdf", "JVNDB RSS Feed - Update Entry"),
        ("MALFORMED_zataz-truncated-2026-08-20.xml", "ZATAZ.COM"),
    ],
)
def test_result_title_is_the_channel_title(shared_feed, name, title):
    assert shared_feed(name).title == title


# ----------------------------------------------------------------------------- CERT-FR


@shared
def test_certfr_avis_date_only_guid_is_link_and_not_in_date_order(shared_feed):
    records = shared_feed("certfr-avis-feed-2026-08-20.xml").advisories
    assert all(r.item_id == r.url for r in records)
    assert all(r.published.time() == datetime.min.time() for r in records)
    assert records[0].published == utc(2026, 6, 18)  # the first item is the oldest
    assert records[1].published == utc(2026, 8, 10)
    bulletins = [r for r in records if "/actualite/" in r.item_id]
    assert [r.item_id.rsplit("/", 2)[-2] for r in bulletins] == [
        "CERTFR-2026-ACT-034",
        "CERTFR-2026-ACT-035",
    ]
    assert all(r.updated is None and r.cve_ids == [] for r in records)


@shared
def test_certfr_alertes_cve_ids(shared_feed):
    records = by_id(shared_feed("certfr-alertes-feed-2026-08-20.xml"))

    def cves(number: str) -> list[str]:
        return records[f"{CERTFR}/alerte/CERTFR-{number}/"].cve_ids

    assert cves("2023-ALE-013") == ["CVE-2023-50164"]
    assert cves("2024-ALE-007") == ["CVE-2024-20353", "CVE-2024-20359"]
    assert cves("2024-ALE-009") == ["CVE-2024-6387"]
    assert cves("2025-ALE-007") == ["CVE-2025-4427", "CVE-2025-4428"]
    assert cves("2026-ALE-007") == ["CVE-2026-60137", "CVE-2026-63030"]
    assert cves("2023-ALE-010") == []
    assert sum(1 for r in records.values() if r.cve_ids) == 24


@shared
def test_certfr_update_markers_and_update_dates(shared_feed):
    records = by_id(shared_feed("certfr-alertes-feed-2026-08-20.xml"))
    marked = [r for r in records.values() if r.facts.get("update_marker")]
    assert len(marked) == 21
    exchange = records[f"{CERTFR}/alerte/CERTFR-2026-ALE-005/"]
    assert exchange.title.startswith("[Màj]") and exchange.facts["update_marker"]  # lower-case j
    assert exchange.published == utc(2026, 5, 15)
    assert exchange.updated == utc(2026, 6, 11)  # "[Mise à jour du 11 juin 2026]"
    # two update notes: the latest wins
    assert records[f"{CERTFR}/alerte/CERTFR-2024-ALE-005/"].updated == utc(2024, 3, 15)
    # an update note without a [MàJ] title marker still dates the update
    citrix = records[f"{CERTFR}/alerte/CERTFR-2025-ALE-009/"]
    assert "update_marker" not in citrix.facts and citrix.updated == utc(2025, 7, 17)
    assert records[f"{CERTFR}/alerte/CERTFR-2023-ALE-010/"].updated is None


@shared
def test_certfr_markdown_remnants_are_gone_from_text_and_html(shared_feed):
    records = by_id(shared_feed("certfr-alertes-feed-2026-08-20.xml"))
    for record in records.values():
        for field in (record.summary_text, record.summary_html):
            assert "\\[" not in field and "**" not in field
    gitlab = records[f"{CERTFR}/alerte/CERTFR-2024-ALE-002/"]
    assert gitlab.summary_text.startswith("[Mise à jour du 29 janvier 2024]")
    assert gitlab.summary_html.startswith("<p>[Mise à jour du 29 janvier 2024]")


@shared
def test_certfr_typography_is_kept(shared_feed):
    records = by_id(shared_feed("certfr-alertes-feed-2026-08-20.xml"))
    title = records[f"{CERTFR}/alerte/CERTFR-2026-ALE-003/"].title
    assert "\u2019" in title and "\u2013" in title  # curly apostrophe and en dash


# ----------------------------------------------------------------------------- CISA


@shared
def test_cisa_two_digit_year_relative_guid_and_escaped_html(shared_feed):
    result = shared_feed("cisa-all-advisories-2026-07.xml")
    first = result.advisories[0]
    assert first.item_id == "/node/25107"  # relative guid kept as given
    assert first.url == "https://www.cisa.gov/news-events/ics-advisories/icsa-26-183-02"
    assert first.published == utc(2026, 7, 2, 12)  # "Thu, 02 Jul 26" is 2026
    assert "<table>" in first.summary_html and "View CSAF" in first.summary_html
    assert not re.search(r"&lt;|</?(p|td|tr|table|a|strong)\b", first.summary_text)
    assert "<firmware_5.0.20" in first.summary_text  # a literal "<" of a version range stays
    assert "class=" not in first.summary_html
    assert [r.cve_ids for r in result.advisories] == [
        ["CVE-2026-13743"],
        ["CVE-2026-13768", "CVE-2026-55726", "CVE-2026-54477"],
        ["CVE-2026-38059", "CVE-2026-38057"],
    ]
    assert all(len(r.summary_text) <= 4000 for r in result.advisories)


@shared
def test_cisa_ids_do_not_depend_on_the_base_url(shared_feed):
    plain = shared_feed("cisa-all-advisories-2026-07.xml")
    based = shared_feed("cisa-all-advisories-2026-07.xml", "https://www.cisa.gov/x/all.xml")
    assert [r.item_id for r in plain.advisories] == [r.item_id for r in based.advisories]


# ----------------------------------------------------------------------------- news feeds


@shared
def test_darkreading_double_escaped_ampersand_comes_out_single(shared_feed):
    first = shared_feed("darkreading-2026-07.xml").advisories[0]
    assert " & " in first.title and "&amp;" not in first.title


@shared
def test_bleepingcomputer_crlf_and_minus_four_hours(shared_feed):
    records = shared_feed("bleepingcomputer-2026-07-05.xml").advisories
    assert records[0].published == utc(2026, 7, 5, 14, 14, 52)  # 10:14:52 -0400
    assert all("\r" not in r.summary_text and "\r" not in r.summary_html for r in records)


@shared
def test_thehackernews_single_line_and_plus_0530(shared_feed):
    records = shared_feed("thehackernews-2026-07-05.xml").advisories
    assert records[0].published == utc(2026, 7, 4, 12, 47, 53)  # 18:17:53 +0530
    assert all("&nbsp;" not in r.summary_text for r in records)


@shared
@pytest.mark.parametrize(
    "name", ["krebsonsecurity-2026-07.xml", "theregister-security-2026-07.xml"]
)
def test_full_bodies_from_content_encoded(shared_feed, name):
    records = shared_feed(name).advisories
    for record in records:
        description = record.raw["summary"]
        assert len(record.summary_html) > len(description)  # the body, not the teaser
        assert len(record.summary_text) <= 4000
    assert any(r.summary_text.endswith("\u2026") for r in records)  # capped


@shared
def test_krebs_html_body_keeps_safe_markup_only(shared_feed):
    first = shared_feed("krebsonsecurity-2026-07.xml").advisories[0]
    assert "<strong>" in first.summary_html
    assert "<img" not in first.summary_html and "<script" not in first.summary_html
    assert first.facts["categories"][0] == "A Little Sunshine"


@shared
def test_theregister_plain_text_body_becomes_paragraphs(shared_feed):
    records = shared_feed("theregister-security-2026-07.xml").advisories
    assert all(r.summary_html.startswith("<p>") for r in records)
    assert records[1].cve_ids == ["CVE-2026-33697"]


@shared
def test_securityweek_html_description(shared_feed):
    records = shared_feed("securityweek-2026-07.xml").advisories
    assert all(r.summary_html.startswith("<p>") for r in records)
    assert all("<" not in r.summary_text for r in records)
    assert "Cybercrime" in records[0].facts["categories"]


# ----------------------------------------------------------------------------- JVN (RDF)


@shared
def test_jvn_structured_sec_elements(shared_feed):
    record = shared_feed("jvn-jvndb-rss-2023-11-02.rdf").advisories[0]
    assert "脆弱性" in record.title  # Japanese intact
    assert record.published == utc(2023, 1, 5, 3, 2)  # "2023-01-05T12:02+09:00", no seconds
    assert record.updated == utc(2023, 11, 3, 3, 2)
    assert record.cve_ids == ["CVE-2022-46648", "CVE-2022-47318"]  # from sec:references only
    assert record.cvss.version == "3.0" and record.cvss.score == 5.5  # v3 beats v2 (6.0)
    assert record.cvss.severity == "MEDIUM"
    assert (record.vendors, record.products) == (["ruby-git"], ["ruby-git"])
    assert record.facts["identifier"] == "JVNDB-2023-000001"
    assert record.facts["cwe_ids"] == ["CWE-94"]
    assert "https://jvn.jp/jp/JVN16765254/index.html" in record.links
    assert "\r" not in record.summary_text and "&#13;" not in record.summary_html
    assert record.summary_html.count("<p>") == 2  # the &#13; blank line splits paragraphs


@shared
def test_jvn_2007_cvss_v2_and_japanese_vendor_name(shared_feed):
    record = shared_feed("jvn-jvndb-2007.rdf").advisories[0]
    assert record.cve_ids == ["CVE-2007-0851"]
    assert record.cvss.version == "2.0" and record.cvss.score == 5.4
    assert record.vendors == ["トレンドマイクロ"]
    assert record.products == ["Trend Micro Scan Engine"]
    assert record.facts["cpe"] == ["cpe:/a:trendmicro:scan_engine"]
    assert record.published == utc(2007, 3, 31, 15)  # 2007-04-01T00:00+09:00


# ----------------------------------------------------------------------------- malformed


@shared
def test_truncated_zataz_keeps_the_complete_item_only(shared_feed):
    """Decision: a feed cut off mid-download still yields the items that were complete.

    feedparser flags the file as not well-formed (bozo) and re-reads it leniently, which
    gives two entries: the complete first item and an empty one for the item that was cut
    off inside its <title>. Rejecting the whole feed would lose a good item for no gain
    (the next poll fetches it again anyway), so we keep the complete item and record a
    warning that names the XML error and its line. An entry is complete only when its
    closing </item> was read and it has a title and a link or guid.
    """
    result = shared_feed("MALFORMED_zataz-truncated-2026-08-20.xml")
    assert [r.item_id for r in result.advisories] == ["https://www.zataz.com/?p=47434"]
    assert result.advisories[0].language == "fr"
    assert result.warnings == [
        "feed is not well-formed XML (line 63: no element found); 1 of 2 items kept"
    ]


def test_item_cut_inside_its_description_is_dropped(sample):
    """A cut-off item can already have its title and link; without its closing tag its
    summary would be half a sentence, so it is dropped too."""
    result = sample("truncated-mid-item.xml")
    assert [r.item_id for r in result.advisories] == [
        "https://cert.example.org/advisories/EXA-2025-0150"
    ]
    assert result.advisories[0].cve_ids == ["CVE-2025-80008"]
    assert "1 of 2 items kept" in result.warnings[0]


def test_truncated_before_any_item_is_malformed(sample):
    with pytest.raises(
        MalformedDocument, match=r"not well-formed XML \(line 1: no element found\); no items"
    ):
        sample("truncated-before-items.xml")


def test_bare_ampersands_keep_all_items_with_a_warning(sample):
    result = sample("bare-ampersand.xml")
    assert [r.item_id for r in result.advisories] == ["EPSA-2025-031", "EPSA-2025-032"]
    assert result.advisories[0].title.startswith("Example Router R&D")
    assert result.advisories[0].cve_ids == ["CVE-2025-90009"]
    assert result.advisories[0].language == "en"
    assert result.warnings == [
        "feed is not well-formed XML (line 4: not well-formed (invalid token)); 2 of 2 items kept"
    ]


@pytest.mark.parametrize("body", [b"", b"  \r\n\t ", b"\xef\xbb\xbf\n"])
def test_empty_body_is_malformed(body):
    with pytest.raises(MalformedDocument, match="empty document"):
        rss.parse(body)


def test_empty_fixture_file_is_malformed(sample):
    with pytest.raises(MalformedDocument, match="empty document"):
        sample("empty.xml")


def test_html_page_is_unsupported(sample):
    with pytest.raises(UnsupportedDocument, match="HTML page"):
        sample("html-page.html")


def test_other_xml_is_unsupported(sample):
    with pytest.raises(UnsupportedDocument, match="not an RSS/Atom/RDF feed"):
        sample("not-a-feed.xml")


def test_plain_text_is_malformed():
    with pytest.raises(MalformedDocument, match="not a readable feed"):
        rss.parse(b"this is not a feed at all")


def test_well_formed_feed_without_items_is_empty_not_an_error():
    result = rss.parse(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert (result.advisories, result.warnings, result.title) == ([], [], "Quiet")


# ----------------------------------------------------------------------------- hostile


def test_billion_laughs_is_refused_without_expansion(sample, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("feedparser must not see a document that declares entities")

    monkeypatch.setattr(rss.feedparser, "parse", never)
    tracemalloc.start()
    try:
        with pytest.raises(HostileDocument, match="declares XML entities"):
            sample("billion-laughs.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


@pytest.mark.parametrize("name", ["external-entity.xml", "parameter-entity.xml"])
def test_external_entities_are_refused(sample, name):
    with pytest.raises(HostileDocument) as caught:
        sample(name)
    assert "root:" not in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_entity_declarations_are_found_in_other_encodings(read_fixture, encoding):
    text = read_fixture("feeds/rss/external-entity.xml").decode("utf-8")
    data = text.replace('encoding="UTF-8"', f'encoding="{encoding}"').encode(encoding)
    with pytest.raises(HostileDocument):
        rss.parse(data)


def test_entity_declaration_hidden_in_utf7_is_found():
    data = (
        b'<?xml version="1.0" encoding="utf-7"?>'
        b'+ADw-!DOCTYPE rss +AFs-+ADw-!ENTITY x SYSTEM "file:///etc/passwd"+AD4-+AF0-+AD4-'
        b'<rss version="2.0"><channel><title>&x;</title></channel></rss>'
    )
    with pytest.raises(HostileDocument):
        rss.parse(data)


def test_external_dtd_without_entities_is_read_without_loading_it(sample):
    result = sample("external-dtd.xml")
    assert [r.item_id for r in result.advisories] == ["https://cert.example.org/advisories/1"]
    assert "root:" not in json.dumps([r.raw for r in result.advisories])


def test_entity_text_quoted_in_cdata_or_comments_is_not_refused(sample):
    record = sample("entity-quoted-in-cdata.xml").advisories[0]
    assert record.cve_ids == ["CVE-2025-70007"]
    assert "<pre>" in record.summary_html


def test_script_and_event_handlers_are_stripped(sample):
    result = sample("hostile-markup.xml")
    assert result.title == "Evil Feed"
    first, second = result.advisories
    assert first.title == "Patch now"
    assert second.title == "Second item"
    everything = json.dumps([first.summary_html, second.summary_html, first.summary_text])
    for bad in (
        "<script",
        "onerror",
        "onclick",
        "onload",
        "javascript:",
        "<style",
        "<iframe",
        "<form",
        "<input",
        "<object",
        "document.cookie",
        "display:none",
    ):
        assert bad not in everything
    assert '<a href="https://cms.example.com/security"' in first.summary_html
    assert first.cve_ids == ["CVE-2025-60006"]
    assert (first.url, second.url) == (None, None)  # javascript: and data: links dropped
    assert "Visible text" in second.summary_text


def test_data_is_never_used_as_a_file_name(monkeypatch):
    """feedparser treats a bytes argument as a path first; we hand it a stream instead."""
    rss.parse(b'<rss version="2.0"><channel><title>warm-up</title></channel></rss>')

    def forbidden(*args, **kwargs):
        raise AssertionError(f"file access during parse: {args!r}")

    monkeypatch.setattr(builtins, "open", forbidden)
    with pytest.raises(MalformedDocument):
        rss.parse(b"/etc/passwd")


# ----------------------------------------------------------------------------- our samples


def test_sample_rss20(sample):
    result = sample("sample-rss20.xml")
    assert result.title == "Voorbeeld-CERT \u2013 Adviezen"
    gateway, nas, router, mail = result.advisories
    assert {r.language for r in result.advisories} == {"nl"}  # nl-BE, channel-wide

    assert gateway.item_id == "EXA-2025-0142"
    assert gateway.url == "https://cert.example.org/advisories/EXA-2025-0142"  # was relative
    assert gateway.title == "[UPDATE] Kritieke kwetsbaarheid in Example Gateway VPN & SSL-portaal"
    assert gateway.published == utc(2025, 10, 14, 7, 30)  # 2-digit year, +0200
    assert gateway.cve_ids == ["CVE-2025-10001", "CVE-2025-10002"]  # lower-case normalised
    assert gateway.links == ["https://cert.example.org/advisories/EXA-2025-0142.pdf"]  # no png
    assert gateway.facts["categories"] == ["Kwetsbaarheid", "VPN"]
    assert "<ul>" in gateway.summary_html and "<" not in gateway.summary_text

    assert nas.item_id == nas.url == "https://cert.example.org/avis/EXA-2025-0143"  # no guid
    assert (nas.published, nas.updated) == (utc(2025, 10, 15), utc(2025, 10, 16))
    assert nas.facts["update_marker"] is True
    assert nas.summary_text.startswith("[Mise à jour du 16 octobre 2025] L'éditeur")
    assert "[1]" in nas.summary_text and "*" not in nas.summary_text

    assert router.item_id.startswith("sha256:") and len(router.item_id) == 7 + 64
    assert router.url is None

    assert mail.facts["author"] == "Voorbeeld-CERT"
    assert mail.published == utc(2025, 10, 16, 11, 45)
    assert "<table>" in mail.summary_html and "<img" not in mail.summary_html
    assert 'class="ext"' not in mail.summary_html and "target=" not in mail.summary_html
    assert mail.cve_ids == ["CVE-2025-30003"]


def test_hash_ids_are_stable_and_follow_the_content(read_fixture):
    data = read_fixture("feeds/rss/sample-rss20.xml")
    first = rss.parse(data).advisories[2].item_id
    assert rss.parse(data).advisories[2].item_id == first
    changed = data.replace(b"Beispiel-Router mit", b"Beispiel-Router ohne")
    assert rss.parse(changed).advisories[2].item_id != first


def test_sample_atom(sample):
    result = sample("sample-atom.xml")
    assert result.title == "Voorbeeld-CERT beveiligingsadviezen"
    french, dutch, german = result.advisories

    assert french.item_id == "tag:cert.example.org,2025:advisory-0201"
    assert french.title == "Vulnérabilité critique dans Exemple Pare-feu"  # type="html" title
    assert french.url == "https://cert.example.org/avis/EXA-2025-0201"  # xml:base + ../
    assert french.links == ["https://vendor.example.com/psirt/VSA-2025-11"]
    assert (french.published, french.updated) == (utc(2025, 10, 17, 8), utc(2025, 10, 18, 14, 30))
    assert french.language == "fr"
    assert "<strong>CVE-2025-40004</strong>" in french.summary_html  # from <content>
    assert "Pare-feu < 9.1.3" in french.summary_text
    assert french.cve_ids == ["CVE-2025-40004"]

    assert dutch.item_id == "urn:uuid:6d1f8a2c-4b7e-4c1a-9f0e-2a5b8c3d7e11"
    assert dutch.language == "nl"  # inherited xml:lang of the feed
    assert dutch.published == dutch.updated == utc(2025, 10, 19, 9)  # only <updated>

    assert german.language == "de"
    assert german.published == utc(2025, 10, 20, 6, 15)  # no seconds, +02:00
    assert german.updated is None
    assert german.summary_html.startswith("<p>Der Beispiel-VPN-Client")  # xhtml content
    assert german.cve_ids == ["CVE-2025-50005"]


def test_sample_rdf_with_mod_sec(sample):
    result = sample("sample-rdf.rdf")
    assert result.title == "Beispiel-CERT Warnmeldungen"
    exampleos, office = result.advisories

    assert exampleos.item_id == "https://cert.example.org/warnungen/BSP-2025-0007.html"
    assert exampleos.language == "de"
    assert exampleos.published == utc(2025, 10, 20, 12, 30)
    assert exampleos.updated == utc(2025, 10, 21, 7)
    assert exampleos.cve_ids == ["CVE-2025-30001"]
    assert exampleos.cvss.version == "4.0" and exampleos.cvss.score == 9.3
    assert exampleos.cvss.severity == "CRITICAL"
    assert exampleos.vendors == ["Example Networks"]
    assert exampleos.products == ["ExampleOS", "ExampleOS Cloud Manager"]
    assert exampleos.facts["identifier"] == "BSP-2025-0007"
    assert exampleos.facts["cwe_ids"] == ["CWE-78"]
    assert "https://networks.example.com/psirt/ENSA-2025-04" in exampleos.links
    assert exampleos.summary_html.count("<p>") == 2

    assert office.language == "en"  # item xml:lang overrides the channel's
    assert office.cve_ids == ["CVE-2025-30010", "CVE-2025-30011"]  # from the text
    assert office.cvss.version == "3.1" and office.cvss.score == 7.8  # computed from vector
    assert office.vendors == [] and "cpe" not in office.facts


def test_relative_links_use_the_base_url_when_the_channel_has_none():
    data = (
        b'<rss version="2.0"><channel><title>No link</title>'
        b"<item><title>Relative</title><link>/advisories/42</link>"
        b'<guid isPermaLink="false">/node/42</guid></item></channel></rss>'
    )
    without = rss.parse(data).advisories[0]
    assert (without.item_id, without.url) == ("/node/42", None)
    record = rss.parse(data, "https://cert.example.org/feed.xml").advisories[0]
    assert (record.item_id, record.url) == ("/node/42", "https://cert.example.org/advisories/42")


def test_repeated_guid_is_reported_once():
    item = b"<item><title>Same</title><guid>dup-1</guid></item>"
    data = b'<rss version="2.0"><channel><title>t</title>' + item * 2 + b"</channel></rss>"
    result = rss.parse(data)
    assert [r.item_id for r in result.advisories] == ["dup-1"]
    assert result.warnings == ["item 2 repeats item id 'dup-1'; skipped"]


def test_registry_and_detection_route_our_samples_here(read_fixture):
    assert parsers.parser_for("rss") is rss.parse
    for name in ("sample-rss20.xml", "sample-atom.xml", "sample-rdf.rdf"):
        data = read_fixture(f"feeds/rss/{name}")
        assert detect_format(data) == "rss"
        result = parsers.parse(data, "rss")
        assert result.format == "rss" and result.advisories
        json.dumps([r.raw for r in result.advisories])


def test_entity_declaration_in_ebcdic_is_found(read_fixture):
    text = read_fixture("feeds/rss/external-entity.xml").decode("utf-8")
    data = text.replace('encoding="UTF-8"', 'encoding="cp037"').encode("cp037")
    with pytest.raises(HostileDocument):
        rss.parse(data)


def test_entity_declaration_after_an_unclosed_comment_is_refused():
    data = b'<!-- never closed <!DOCTYPE rss [<!ENTITY x "y">]><rss version="2.0"></rss>'
    with pytest.raises(HostileDocument):
        rss.parse(data)


def test_item_without_title_is_named_after_its_summary():
    data = (
        b'<rss version="2.0"><channel><title>t</title><item>'
        b"<description>&lt;p&gt;Example Camera firmware 2.1\n fixes CVE-2025-11111.&lt;/p&gt;"
        b"</description><link>https://cert.example.org/a/7</link></item></channel></rss>"
    )
    record = rss.parse(data).advisories[0]
    assert record.title == "Example Camera firmware 2.1 fixes CVE-2025-11111."
    assert record.item_id == record.url == "https://cert.example.org/a/7"


def test_item_with_nothing_usable_is_skipped_with_a_warning():
    data = b'<rss version="2.0"><channel><title>t</title><item></item></channel></rss>'
    result = rss.parse(data)
    assert result.advisories == []
    assert result.warnings == ["item 1 has no title, summary or link; skipped"]


def test_broken_jvn_feed_falls_back_to_what_feedparser_kept(read_fixture):
    """When the RDF is cut off, defusedxml cannot re-read the sec: elements; feedparser's
    copy (the last element of each kind, attributes only) is used instead."""
    data = read_fixture("feeds/rss/sample-rdf.rdf")
    cut = data[: data.index(b"</item>") + len(b"</item>")]
    result = rss.parse(cut)
    record = result.advisories[0]
    assert record.facts["identifier"] == "BSP-2025-0007"
    assert record.cvss.version == "4.0" and record.cvss.score == 9.3  # the last sec:cvss
    assert record.products == ["ExampleOS Cloud Manager"]  # the last sec:cpe
    assert record.cve_ids == []  # references lost their text: nothing to read a CVE from
    assert "1 of 1 items kept" in result.warnings[0]


def test_broken_feed_whose_only_item_is_cut_off_is_malformed():
    with pytest.raises(MalformedDocument, match="no complete items"):
        rss.parse(b"<rss><channel><item><title>cut off")


def test_relative_links_in_summaries_point_at_the_publisher():
    data = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <link>https://cert.example.be/</link><item><title>Advisory</title>
    <link>https://cert.example.be/advisories/7</link><guid>7</guid>
    <description>&lt;p&gt;See &lt;a href="/fixes/7"&gt;the fix&lt;/a&gt;&lt;/p&gt;</description>
    </item></channel></rss>"""
    [record] = parsers.parse(data, "rss").advisories
    assert 'href="https://cert.example.be/fixes/7"' in record.summary_html
