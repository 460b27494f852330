"""CVRF XML (Cisco, Fortinet, Microsoft) and EU CSIRTs Network Markdown advisories.

Golden facts over every real snapshot in ../shared/data/feeds/{vendor,cnw} (read in place),
plus our own invented samples in tests/fixtures/feeds/{cvrf,cnw} and hostile inputs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.ingest.detect import detect_format
from alerts.ingest.parsers import parse
from alerts.ingest.records import HostileDocument, MalformedDocument, UnsupportedDocument

CISCO = "vendor/cisco/cisco-sa-ios-xr-verii-bypass-HhPwQRvx_cvrf.xml"
FORTI_OLD = "vendor/fortinet/FG-IR-13-008.cvrf.xml"
FORTI_SIEM = "vendor/fortinet/FG-IR-23-392.cvrf.xml"
MSRC = "vendor/microsoft/msrc-cvrf-2024-Mar.xml"
OWN_ADVISORY = "feeds/cvrf/example-networks-sa-cvrf12.xml"
OWN_RELEASE = "feeds/cvrf/msrc-style-release-2099-Jan-cvrf11.xml"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def only(result):
    assert len(result.advisories) == 1
    return result.advisories[0]


# ============================================================================ CVRF (real)


@pytest.mark.shared
def test_cisco_cvrf12(read_shared):
    result = parse(read_shared(CISCO), "cvrf")
    record = only(result)
    assert result.warnings == []
    assert record.item_id == "cisco-sa-ios-xr-verii-bypass-HhPwQRvx"
    assert "IOS XR" in record.title and result.title == record.title
    assert record.published == utc(2025, 3, 12, 16) and record.updated == utc(2025, 3, 12, 16)
    assert record.cve_ids == ["CVE-2025-20177"]
    assert (record.cvss.version, record.cvss.score) == ("3.1", 6.7)
    assert record.cvss.vector == "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"
    assert record.vendors == ["Cisco"] and record.products == ["Cisco IOS XR Software"]
    assert record.url == (
        "https://sec.cloudapps.cisco.com/security/center/content/CiscoSecurityAdvisory/"
        "cisco-sa-ios-xr-verii-bypass-HhPwQRvx"
    )
    assert record.links == [
        "https://sec.cloudapps.cisco.com/security/center/viewErp.x?alertId=ERP-75548"
    ]
    assert record.known_exploited is False and record.kind == "advisory"
    assert record.language == "en"
    assert record.facts["vulnerability_ids"] == ["CSCwk67262"]
    assert record.facts["document_type"] == "Cisco Security Advisory"
    assert isinstance(record.raw, str) and "CVE-2025-20177" in record.raw


@pytest.mark.shared
def test_cisco_summary_drops_link_remnants_and_legal_notes(read_shared):
    record = only(parse(read_shared(CISCO), "cvrf"))
    assert '["' not in record.summary_text  # Cisco writes 'text ["https://..."]'
    assert "boot process" in record.summary_text
    assert "AS IS" not in record.summary_text  # only the Summary note, not the disclaimer
    assert record.summary_html.startswith("<p>")


@pytest.mark.shared
def test_fortinet_fortisiem(read_shared):
    record = only(parse(read_shared(FORTI_SIEM), "cvrf"))
    assert record.item_id == "FG-IR-23-392"
    assert "FortiSIEM" in record.title
    assert record.published == utc(2023, 11, 14) and record.updated == utc(2023, 11, 14)
    assert record.cve_ids == ["CVE-2023-45585"]
    assert record.cvss.score == 2.1 and record.cvss.severity == "LOW"
    assert record.vendors == ["Fortinet"]
    assert record.products == ["FortiSIEM"]  # the Product Name branch, not 31 versions
    assert record.url == "https://fortiguard.fortinet.com/psirt/FG-IR-23-392"  # vuln Self refs
    assert record.links == []
    assert record.facts["impact"] == "Information disclosure"
    assert "CWE-532" in record.summary_text


@pytest.mark.shared
def test_fortinet_old_advisory_without_product_tree(read_shared):
    record = only(parse(read_shared(FORTI_OLD), "cvrf"))
    assert record.item_id == "FG-IR-13-008"
    assert record.published == utc(2013, 5, 13)
    assert record.cve_ids == [] and record.cvss is None
    assert record.vendors == [] and record.products == []
    assert record.url == "https://fortiguard.fortinet.com/psirt/FG-IR-13-008"
    # the second reference is an escaped <a href="..."> anchor; its target is kept
    assert record.links == [
        "http://archives.neohapsis.com/archives/fulldisclosure/2013-05/0001.html"
    ]
    assert record.facts["impact"] == "Critical"
    assert "FortiClient" in record.summary_text


@pytest.mark.shared
def test_msrc_monthly_release_is_split_per_cve(read_shared):
    result = parse(read_shared(MSRC), "cvrf")
    assert result.title == "March 2024 Security Updates" and result.warnings == []
    record = only(result)  # the trimmed release holds one Vulnerability
    assert record.item_id == "CVE-2024-21392"
    assert record.cve_ids == ["CVE-2024-21392"]
    assert record.title.endswith("Denial of Service Vulnerability")
    assert record.url == "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2024-21392"
    assert record.published == utc(2024, 3, 12, 7)
    assert record.vendors == ["Microsoft"]
    assert set(record.products) == {
        ".NET 7.0",
        ".NET 8.0",
        "Microsoft Visual Studio 2022 version 17.4",
        "Microsoft Visual Studio 2022 version 17.6",
        "Microsoft Visual Studio 2022 version 17.8",
        "Microsoft Visual Studio 2022 version 17.9",
    }
    assert "Visual Studio Code" not in record.products  # in the tree, not affected
    assert record.known_exploited is False  # "Exploited:No"
    assert (record.cvss.version, record.cvss.score) == ("3.1", 7.5)
    assert record.facts["release_id"] == "2024-Mar"
    assert record.facts["max_severity"] == "Important"
    assert record.facts["impact"] == "Denial of Service"
    assert record.facts["cwes"] == ["CWE-400"]
    assert "Exploited:No" in record.facts["exploit_status"]


@pytest.mark.shared
@pytest.mark.parametrize("relative", [CISCO, FORTI_OLD, FORTI_SIEM, MSRC])
def test_real_cvrf_is_detected(read_shared, relative):
    assert detect_format(read_shared(relative), relative) == "cvrf"


@pytest.mark.shared
def test_truncated_real_cvrf_is_malformed_with_position(read_shared):
    data = read_shared(CISCO)
    with pytest.raises(MalformedDocument, match=r"line \d+, column \d+"):
        parse(data[: len(data) // 2], "cvrf")


# ============================================================================ CVRF (own samples)


def test_vendor_advisory_with_two_vulnerabilities_stays_one_record(read_fixture):
    record = only(parse(read_fixture(OWN_ADVISORY), "cvrf"))
    assert record.item_id == "EXN-SA-2099-0007"
    assert record.cve_ids == ["CVE-2098-61001", "CVE-2098-61002"]
    assert record.published == utc(2099, 4, 2, 17)
    assert record.updated == utc(2099, 4, 5, 7, 30)  # +02:00 converted to UTC
    assert record.known_exploited is True  # Threat "Exploit Status": "Exploited"
    assert record.cvss.score == 9.8  # best of the two score sets
    assert record.vendors == ["Example Networks"]
    assert record.products == ["ExampleOS"]  # Cloud Manager is "Known Not Affected"
    assert record.url == "https://www.example.net/psirt/EXN-SA-2099-0007"
    assert record.links == [
        "https://www.example.net/psirt/policy",
        "https://www.example.net/psirt/EXB-10001",
    ]
    assert record.summary_text.count("\n\n") == 1 and "#fs" not in record.summary_text
    assert record.facts["cwes"] == ["CWE-78"]
    assert record.facts["vulnerability_count"] == 2
    assert record.language == "en"  # xml:lang="en-US"


def test_vector_without_score_is_scored(read_fixture):
    text = read_fixture(OWN_ADVISORY).decode()
    start, end = text.index('<Vulnerability Ordinal="1"'), text.index('<Vulnerability Ordinal="2"')
    record = only(parse((text[:start] + text[end:]).encode(), "cvrf"))
    assert record.cve_ids == ["CVE-2098-61002"]
    assert record.cvss.score == 7.2  # computed from the vector
    assert record.known_exploited is False


def test_release_rollup_split(read_fixture):
    result = parse(read_fixture(OWN_RELEASE), "cvrf")
    assert [r.item_id for r in result.advisories] == ["CVE-2098-70001", "CVE-2098-70002"]
    assert result.warnings == ["Vulnerability #3 has no CVE id; skipped"]
    kernel, exchange = result.advisories
    assert kernel.known_exploited is True and exchange.known_exploited is False
    assert kernel.facts["max_severity"] == "Critical"  # Critical beats Important
    assert kernel.facts["tags"] == ["Windows Kernel"] and kernel.facts["cna"] == "Microsoft"
    assert kernel.published == utc(2099, 1, 13, 8) and kernel.updated == utc(2099, 1, 20, 8)
    assert kernel.products == [
        "Windows Server 2025",
        "Windows 11 Version 25H2 for x64-based Systems",
    ]
    assert kernel.vendors == ["Microsoft"]
    assert kernel.links == ["https://support.microsoft.com/help/5099001"]
    assert "<script" not in kernel.summary_html and "<strong>SYSTEM</strong>" in kernel.summary_html
    assert kernel.summary_text == (
        "An attacker who successfully exploited this vulnerability could gain SYSTEM privileges."
    )
    assert exchange.products == ["Microsoft Exchange Server 2019 Cumulative Update 16"]
    assert exchange.summary_text == "Impact: Spoofing. Maximum severity: Important."
    assert exchange.cvss is None
    # no history of its own: the release's dates, not its last revision (2099-01-20)
    assert exchange.published == utc(2099, 1, 13, 8) and exchange.updated == utc(2099, 1, 20, 8)


@pytest.mark.parametrize(
    "name", ["feeds/cvrf/HOSTILE_billion-laughs.xml", "feeds/cvrf/HOSTILE_external-entity.xml"]
)
def test_entity_tricks_are_hostile(read_fixture, name):
    with pytest.raises(HostileDocument, match="DTD or entities"):
        parse(read_fixture(name), "cvrf")


def test_internal_dtd_without_entities_is_refused():
    data = b'<?xml version="1.0"?><!DOCTYPE cvrfdoc SYSTEM "http://example.invalid/cvrf.dtd"><cvrfdoc/>'
    with pytest.raises(HostileDocument):
        parse(data, "cvrf")


def test_truncated_own_cvrf_reports_line_and_column(read_fixture):
    data = read_fixture(OWN_RELEASE)
    with pytest.raises(MalformedDocument) as caught:
        parse(data[:900], "cvrf")
    assert "line " in str(caught.value) and "column " in str(caught.value)
    assert str(caught.value).startswith("[cvrf] ")


def test_other_xml_and_non_xml():
    with pytest.raises(UnsupportedDocument, match="rss"):
        parse(b"<rss version='2.0'><channel/></rss>", "cvrf")
    with pytest.raises(MalformedDocument):
        parse(b'{"document": {}}', "cvrf")
    with pytest.raises(MalformedDocument):
        parse(b"", "cvrf")


def test_cvrf_without_tracking_id_falls_back_to_cve():
    data = (
        b'<cvrfdoc xmlns="http://docs.oasis-open.org/csaf/ns/csaf-cvrf/v1.2/cvrf">'
        b"<DocumentTitle>Example</DocumentTitle><Vulnerability><CVE>CVE-2099-1234</CVE>"
        b"</Vulnerability></cvrfdoc>"
    )
    result = parse(data, "cvrf")
    assert only(result).item_id == "CVE-2099-1234" and len(result.warnings) == 1
    with pytest.raises(MalformedDocument, match="DocumentTracking"):
        parse(data.replace(b"<CVE>CVE-2099-1234</CVE>", b""), "cvrf")


# ============================================================================ CNW (real)

CNW_GOLDEN = {
    # file: (id, published, updated, CVEs first, BE links, known_exploited)
    "cnw/CNW-2024-01_Ivanti-Gateways.md": (
        "CNW-2024-01",
        utc(2024, 1, 10),
        utc(2024, 2, 28),
        ["CVE-2023-46805", "CVE-2024-21887", "CVE-2024-21888", "CVE-2024-21893", "CVE-2024-22024"],
        [
            "https://www.cert.be/en/advisory/warning-2-actively-exploited-zero-day-vulnerabilities-affecting-ivanti-connect-secure-and-0"
        ],
        True,
    ),
    "cnw/CNW-2024-02_FortiOS.md": (
        "CNW-2024-02",
        utc(2024, 2, 9),
        None,
        ["CVE-2024-21726", "CVE-2024-23113"],
        [],
        False,
    ),
    "cnw/CNW-2024-07_PAN-OS.md": (
        "CNW-2024-07",
        utc(2024, 4, 12),
        None,
        ["CVE-2024-3400"],
        [],
        True,
    ),
    "cnw/CNW-2024-14_moveit.md": (
        "CNW-2024-14",
        utc(2024, 7, 1),
        None,
        ["CVE-2024-5805", "CVE-2024-5806"],
        [
            "https://cert.be/en/advisory/warning-critical-authentication-bypass-progress-moveit-software-patch-immediately"
        ],
        False,
    ),
    "cnw/CNW-2025-05_Citrix.md": (
        "CNW-2025-05",
        utc(2025, 7, 18),
        None,
        ["CVE-2025-6543", "CVE-2025-5777"],
        ["https://cert.be/en/advisories-0"],
        True,
    ),
    "cnw/CNW-2026-06_Fortibleed.md": ("CNW-2026-06", utc(2025, 2, 19), None, [], [], False),
    "cnw/CVE-2023-34362_MOVEit.md": (
        "CNW-2023-04",
        utc(2023, 6, 1),
        None,
        ["CVE-2023-34362"],
        [
            "https://www.cert.be/en/warning-critical-actively-exploited-unauthenticated-remote-code-execution-0-day-vulnerability"
        ],
        True,
    ),
}


@pytest.mark.shared
@pytest.mark.parametrize("relative", sorted(CNW_GOLDEN))
def test_cnw_golden(read_shared, relative):
    item_id, published, updated, cves, be_links, exploited = CNW_GOLDEN[relative]
    result = parse(read_shared(relative), "cnw-markdown")
    record = only(result)
    assert record.item_id == item_id
    assert record.title.startswith("CSIRTs Network - ") and result.title == record.title
    assert (record.published, record.updated) == (published, updated)
    assert record.cve_ids[: len(cves)] == cves
    assert record.facts["national_advisories"]["BE"] == be_links
    assert record.known_exploited is exploited
    assert record.language == "en" and record.kind == "advisory"
    assert record.vendors == [] and record.products == []  # CNW tables have no such rows
    national = [link for links in record.facts["national_advisories"].values() for link in links]
    assert set(national) <= set(record.links)
    assert all(link.startswith(("http://", "https://")) for link in record.links)
    assert "**" not in record.summary_text and "](" not in record.summary_text
    assert "<script" not in record.summary_html


@pytest.mark.shared
def test_cnw_fortibleed_date_quirk_and_bare_urls(read_shared):
    result = parse(read_shared("cnw/CNW-2026-06_Fortibleed.md"), "cnw-markdown")
    record = only(result)
    assert result.warnings == [
        "CNW-2026-06: Date 2025-02-19 is earlier than the year of its number;"
        " kept as the publisher wrote it"
    ]
    national = record.facts["national_advisories"]
    assert national["NL"] == [
        "https://www.ncsc.nl/alerts/fortibleed-duizenden-fortinetsystemen-mogelijk-geraakt"
    ]
    assert national["PL"][0].startswith("https://moje.cert.pl/komunikaty/2026/102/")  # "|https"
    assert record.facts["countries_with_advisories"] == ["AT", "BG", "IE", "NL", "PL", "PT"]
    assert record.summary_text.startswith("Fortinet")  # Keywords stand in for empty Details


@pytest.mark.shared
def test_cnw_tables_with_several_organisations_per_country(read_shared):
    record = only(parse(read_shared("cnw/CNW-2025-05_Citrix.md"), "cnw-markdown"))
    national = record.facts["national_advisories"]
    assert len(national["ES"]) == 2 and len(national["CZ"]) == 2 and len(national["HR"]) == 2
    assert national["EUI"] == ["https://cert.europa.eu/publications/security-advisories/2025-022/"]
    assert national["MT"] == []
    ivanti = only(parse(read_shared("cnw/CNW-2024-01_Ivanti-Gateways.md"), "cnw-markdown"))
    assert ivanti.facts["national_advisories"]["NL"] == [
        "https://www.ncsc.nl/actueel/nieuws/2024/februari/2/vier-kritieke-kwetsbaarheden-in-ivanti-connect-secure-en-policy-secure"
    ]
    assert ivanti.facts["date_text"] == "10-01-2024 (last updated 28-02-2024)"


@pytest.mark.shared
def test_cnw_cves_from_text_follow_structured_ones(read_shared):
    """The FortiOS table says CVE-2024-21726 while the details name CVE-2024-21762."""
    record = only(parse(read_shared("cnw/CNW-2024-02_FortiOS.md"), "cnw-markdown"))
    assert record.cve_ids == ["CVE-2024-21726", "CVE-2024-23113", "CVE-2024-21762"]
    assert record.facts["keywords"] == "Fortinet FortiOS"


@pytest.mark.shared
def test_cnw_summary_html_is_rendered_markdown(read_shared):
    record = only(parse(read_shared("cnw/CNW-2024-14_moveit.md"), "cnw-markdown"))
    assert '<a href="https://labs.watchtowr.com/' in record.summary_html
    assert "<strong>Mitigation:</strong>" in record.summary_html
    assert "watchTowr" in record.summary_text and "https://labs" not in record.summary_text


@pytest.mark.shared
@pytest.mark.parametrize("relative", sorted(CNW_GOLDEN))
def test_real_cnw_is_detected(read_shared, relative):
    assert detect_format(read_shared(relative), relative) == "cnw-markdown"


# ============================================================================ CNW (own samples)


def test_cnw_sample_with_vendor_rows(read_fixture):
    base = "https://github.com/enisaeu/CNW/blob/main/advisories/2099/CNW-2099-03_ExampleOS.md"
    record = only(parse(read_fixture("feeds/cnw/CNW-2099-03_ExampleOS.md"), "cnw-markdown", base))
    assert record.item_id == "CNW-2099-03"
    assert record.url == base
    assert (record.published, record.updated) == (utc(2099, 4, 3), utc(2099, 4, 6))
    assert record.cve_ids == ["CVE-2098-61001", "CVE-2098-61002"]
    assert record.vendors == ["Example Networks"]
    assert record.products == ["ExampleOS", "ExampleOS Cloud Manager"]
    assert record.known_exploited is True  # "Active exploitation of ..."
    national = record.facts["national_advisories"]
    assert national["BE"] == [  # two Belgian rows: a Markdown link and a bare URL
        "https://ccb.example.be/advisories/warning-exampleos",
        "https://cert.example.be/nl/waarschuwing-exampleos",
    ]
    assert national["FR"] == ["https://cert.example.fr/alerte/CERTFR-2099-ALE-003/"]  # **[..](..)**
    assert national["NL"] == [] and national["DE"] == []  # javascript: link dropped
    assert not any("javascript" in link for link in record.links)


def test_cnw_sample_inline_html_is_neutralised(read_fixture):
    record = only(parse(read_fixture("feeds/cnw/CNW-2099-03_ExampleOS.md"), "cnw-markdown"))
    assert "<script" not in record.summary_html and "&lt;script&gt;" in record.summary_html
    assert "<script" not in record.summary_text and "alert" not in record.summary_text
    assert "<strong>web management interface</strong>" in record.summary_html
    assert record.summary_text.startswith("An authentication bypass in the web management")
    assert "\n\nMitigation: Upgrade" in record.summary_text


def test_cnw_without_number_gets_a_stable_id(read_fixture):
    data = read_fixture("feeds/cnw/CNW-no-number_sample.md")
    first, second = parse(data, "cnw-markdown"), parse(data, "cnw-markdown")
    assert only(first).item_id == only(second).item_id == "CNW-CVE-2098-52002"
    assert first.warnings and "no CNW number" in first.warnings[0]
    record = only(first)
    assert record.published == utc(2099, 2, 12)  # ISO date also read
    assert record.facts["national_advisories"] == {
        "BE": [],
        "LU": ["https://circl.example.lu/pub/tr-999/"],
    }
    assert record.url is None  # no base_url given


def test_cnw_readme_is_unsupported(read_fixture):
    with pytest.raises(UnsupportedDocument):
        parse(read_fixture("feeds/cnw/README-not-an-advisory.md"), "cnw-markdown")


def test_cnw_bad_bytes():
    with pytest.raises(MalformedDocument, match="UTF-8"):
        parse("# CSIRTs Network - caf\u00e9".encode("latin-1"), "cnw-markdown")
    with pytest.raises(MalformedDocument, match="empty"):
        parse(b"  \n", "cnw-markdown")
    with pytest.raises(UnsupportedDocument):
        parse(b"just a line of text", "cnw-markdown")


def test_cnw_crlf_line_endings(read_fixture):
    data = read_fixture("feeds/cnw/CNW-2099-03_ExampleOS.md").replace(b"\n", b"\r\n")
    record = only(parse(data, "cnw-markdown"))
    assert record.item_id == "CNW-2099-03" and len(record.facts["national_advisories"]) == 5


def test_cnw_key_value_table_without_empty_header_row():
    data = (
        b"# CSIRTs Network - Example without the empty header row\n"
        b"| **Date** | 01-06-2099 |\n|---|---|\n| **Number** | CNW-2099-09 |\n"
    )
    record = only(parse(data, "cnw-markdown"))
    assert record.item_id == "CNW-2099-09" and record.published == utc(2099, 6, 1)
    assert record.facts["national_advisories"] == {} and record.links == []
