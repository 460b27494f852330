"""Vendor JSON APIs: Palo Alto (list and CVE-5-layout records), Cisco openVuln, MSRC /updates.

Golden facts for every real snapshot in ../shared/data/feeds/vendor/{paloalto,cisco,
microsoft} (JSON files; the XML ones belong to the cvrf parser), then our own invented
samples in tests/fixtures/feeds/vendor and malformed input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from alerts.ingest.detect import detect_format
from alerts.ingest.parsers import cve, parse, vendor_json
from alerts.ingest.records import MalformedDocument, UnsupportedDocument


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ============================================================================ Palo Alto (real)


@pytest.mark.shared
def test_paloalto_list(read_shared):
    data = read_shared("vendor/paloalto/advisories-list-page1.json")
    assert detect_format(data) == "paloalto-list"
    result = parse(data, "paloalto-list")
    assert result.warnings == []
    assert [r.item_id for r in result.advisories] == [
        "CVE-2025-0118",
        "CVE-2025-0117",
        "CVE-2025-0116",
    ]
    app = ["GlobalProtect App", "GlobalProtect UWP App"]
    expected = {
        "CVE-2025-0118": ("2025-03-12T16:00:00", 6.0, app),
        "CVE-2025-0117": ("2025-03-28T22:05:00", 7.1, app),
        "CVE-2025-0116": ("2025-03-31T16:55:00", 6.8, ["PAN-OS", "Cloud NGFW", "Prisma Access"]),
    }
    for record in result.advisories:
        updated, score, products = expected[record.item_id]
        assert record.published == utc("2025-03-12T16:00:00")
        assert record.updated == utc(updated)
        assert (record.cvss.version, record.cvss.score, record.cvss.vector) == ("4.0", score, None)
        assert record.products == products  # product[] repeats names: de-duplicated
        assert record.vendors == ["Palo Alto Networks"]
        assert record.cve_ids == [record.item_id]
        assert record.url == f"https://security.paloaltonetworks.com/{record.item_id}"
        assert record.language == "en" and record.summary_text and record.title
        assert record.known_exploited is False
        json.dumps(record.facts)
    lldp = result.advisories[2]
    assert "LLDP" in lldp.title
    assert lldp.cvss.severity == "MEDIUM"
    assert lldp.facts["threat_score"] == 4.3
    assert lldp.facts["products_listed"] == ["PAN-OS", "Cloud NGFW", "Prisma Access"]
    assert lldp.facts["affected"][-1] == "None" and lldp.facts["fixed"][-1] == "All"


@pytest.mark.shared
def test_paloalto_cve_record_in_cve_layout(read_shared):
    data = read_shared("vendor/paloalto/CVE-2025-0114.json")
    assert detect_format(data) == "cve"
    [record] = cve.parse_record(data).advisories
    assert record.item_id == "CVE-2025-0114"
    assert record.kind == "vulnerability"
    # No datePublished/dateUpdated in these files: cna.datePublic and the timeline stand in.
    assert record.published == utc("2025-03-12T16:00:00")
    assert record.updated == utc("2025-03-12T16:00:00")
    assert (record.cvss.version, record.cvss.score) == ("4.0", 8.2)
    assert record.vendors == ["Palo Alto Networks"]
    assert record.products == ["PAN-OS", "Cloud NGFW", "Prisma Access"]
    assert record.cve_ids == ["CVE-2025-0114"]
    assert record.links == []  # its only reference is a bare "https://"
    assert record.facts["cwes"] == ["CWE-400"]
    assert "GlobalProtect" in record.title


@pytest.mark.shared
def test_paloalto_pan_sa_id_kept(read_shared):
    """Quirk: PAN-SA advisories use the CVE 5.0 layout with a non-CVE id."""
    [record] = cve.parse_record(read_shared("vendor/paloalto/PAN-SA-2025-0007.json")).advisories
    assert record.item_id == "PAN-SA-2025-0007"
    assert record.kind == "advisory"
    assert record.url == "https://security.paloaltonetworks.com/PAN-SA-2025-0007"
    assert len(record.cve_ids) == 16  # from the solutions table
    assert record.cve_ids[0] == "CVE-2025-0995" and record.cve_ids[-1] == "CVE-2025-1923"
    assert (record.cvss.version, record.cvss.score) == ("4.0", 9.4)
    assert record.products == ["Prisma Access Browser"]
    assert record.published == utc("2025-03-12T16:00:00")
    assert record.updated == utc("2025-03-12T17:00:00")
    assert "<ul>" in record.summary_html and 'target="_blank"' not in record.summary_html
    assert record.known_exploited is False


# ============================================================================ Cisco (real)


@pytest.mark.shared
def test_cisco_openvuln(read_shared):
    data = read_shared("vendor/cisco/openvuln-api-all.json")
    assert detect_format(data) == "cisco-openvuln"
    result = parse(data, "cisco-openvuln")
    assert result.warnings == []
    xr, anyconnect, snmp = result.advisories
    assert [xr.item_id, anyconnect.item_id, snmp.item_id] == [
        "cisco-sa-ios-xr-verii-bypass-HhPwQRvx",
        "cisco-sa-anyconnect-mac-priv-esc-VqST2nrT",
        "cisco-sa-snmp-dos-sdxnSUcW",
    ]
    # Quirk: firstPublished / lastUpdated carry no zone; they are UTC.
    assert xr.published == utc("2025-03-12T23:00:00") == xr.updated
    assert anyconnect.published == utc("2021-05-05T16:00:00")
    assert anyconnect.updated == utc("2021-05-11T13:40:11")
    assert snmp.published == utc("2025-02-06T00:00:00")
    assert snmp.updated == utc("2025-03-12T22:22:33")
    assert xr.cve_ids == ["CVE-2025-20177"]
    assert snmp.cve_ids == [f"CVE-2025-{n}" for n in range(20169, 20177)]
    assert anyconnect.cve_ids == ["CVE-2020-9817"]  # "NA" in cves; found in the summary
    assert (xr.cvss.version, xr.cvss.score) == ("3.1", 6.7)
    assert snmp.cvss.score == 7.7
    assert anyconnect.cvss is None  # cvssBaseScore "NA"
    assert xr.products == ["Cisco IOS XR Software"]
    # 3841 versioned names reduce to the product lines.
    assert snmp.products == ["Cisco IOS XR Software", "Cisco IOS", "Cisco IOS XE Software"]
    assert anyconnect.products == []
    for record in result.advisories:
        assert record.vendors == ["Cisco"]
        assert record.url.startswith("https://sec.cloudapps.cisco.com/security/center/content/")
        assert record.url.endswith(record.item_id)
        assert "<" not in record.summary_text and record.summary_html.startswith("<p>")
        json.dumps(record.facts)
    assert xr.facts["sir"] == "High" and anyconnect.facts["sir"] == "Informational"
    assert xr.facts["bug_ids"] == ["CSCwk67262"] and xr.facts["cwes"] == ["CWE-274"]
    assert "bug_ids" not in anyconnect.facts  # ["NA"]
    assert [link.rsplit(".", 1)[-1] for link in xr.links] == ["json", "xml"]  # CSAF, CVRF
    assert anyconnect.links == []  # "NA"


# ============================================================================ MSRC (real)


@pytest.mark.shared
def test_msrc_updates(read_shared):
    data = read_shared("vendor/microsoft/msrc-api-updates.json")
    assert detect_format(data) == "msrc-updates"
    result = parse(data, "msrc-updates")
    assert result.advisories == [] and result.warnings == []
    assert [link.item_id for link in result.links] == ["2016-Apr", "2024-Mar"]
    march = result.links[1]
    assert march.url == "https://api.msrc.microsoft.com/cvrf/v3.0/cvrf/2024-Mar"
    assert march.updated == datetime(2024, 4, 9, 7, 0, tzinfo=UTC)  # CurrentReleaseDate
    assert march.title == "March 2024 Security Updates"
    assert result.links[0].updated == datetime(2018, 4, 10, 7, 0, tzinfo=UTC)


# ============================================================================ our samples


def test_sample_paloalto_list(read_fixture):
    data = read_fixture("feeds/vendor/paloalto-list-sample.json")
    assert detect_format(data) == "paloalto-list"
    result = parse(data, "paloalto-list")
    assert [r.item_id for r in result.advisories] == ["CVE-2025-4231", "PAN-SA-2025-0099"]
    assert result.warnings == ["entry [2]: no ID, skipped", "entry [3]: no ID, skipped"]
    pan_os, chromium = result.advisories
    assert pan_os.products == ["PAN-OS", "Cloud NGFW", "Prisma Access"]
    assert pan_os.updated == datetime(2025, 6, 18, 9, 30, tzinfo=UTC)
    assert (pan_os.cvss.version, pan_os.cvss.score, pan_os.cvss.severity) == ("4.0", 7.2, "HIGH")
    assert pan_os.summary_html.count("<p>") == 2
    assert pan_os.facts["affected"] == ["None", "< 11.1.6", "< 10.2.12", "None", "None"]
    # A non-CVE id: CVE ids come from the text (a plain-string "problem" here).
    assert chromium.cve_ids == ["CVE-2025-6554", "CVE-2025-6555"]
    assert chromium.cvss.version == "4.0" and chromium.cvss.score == 9.4


def test_sample_cisco_openvuln(read_fixture):
    data = read_fixture("feeds/vendor/cisco-openvuln-sample.json")
    assert detect_format(data) == "cisco-openvuln"
    result = parse(data, "cisco-openvuln")
    assert result.warnings == ["advisories[2]: no advisoryId, skipped"]
    asa, webex = result.advisories
    assert asa.cve_ids == ["CVE-2025-20401"]  # the "NA" entry is dropped
    assert asa.published == datetime(2025, 5, 14, 16, 0, tzinfo=UTC)
    assert asa.updated == datetime(2025, 5, 21, 18, 45, 12, tzinfo=UTC)
    assert asa.products == [
        "Cisco Adaptive Security Appliance (ASA) Software",
        "Cisco Firepower Threat Defense Software",
        "Cisco IOS",
    ]
    assert asa.cvss.score == 8.6 and asa.cvss.severity == "HIGH"
    for bad in ("<script", "evil.example", "onmouseover", 'target="_blank"'):
        assert bad not in asa.summary_html
    assert "evil.example" not in asa.summary_text
    assert "<" not in asa.summary_text
    assert asa.facts["bug_ids"] == ["CSCwq11234", "CSCwq11235"]
    assert "ips_signatures" not in asa.facts
    assert webex.cve_ids == ["CVE-2024-99720"]
    assert webex.cvss is None and webex.links == [] and webex.products == []


def test_cisco_no_data_answer_is_empty_with_warning(read_fixture):
    result = vendor_json.parse_cisco_openvuln(
        read_fixture("feeds/vendor/cisco-openvuln-no-data.json")
    )
    assert result.advisories == []
    assert result.warnings == ["Cisco openVuln: No data found"]


def test_cisco_other_error_answer_is_unsupported():
    doc = {"errorCode": "UNAUTHORIZED", "errorMessage": "Invalid token"}
    with pytest.raises(UnsupportedDocument, match="UNAUTHORIZED"):
        vendor_json.parse_cisco_openvuln(json.dumps(doc).encode())


def test_cisco_huge_product_list_is_capped():
    names = [f"Cisco Example Product {n} 1.0" for n in range(80)]
    doc = {"advisories": [{"advisoryId": "cisco-sa-example-AbCdEfGh", "productNames": names}]}
    result = vendor_json.parse_cisco_openvuln(json.dumps(doc).encode())
    [record] = result.advisories
    assert len(record.products) == 50
    assert record.products[0] == "Cisco Example Product 0"
    assert result.warnings == ["cisco-sa-example-AbCdEfGh: 80 products listed, kept the first 50"]


def test_sample_msrc_updates(read_fixture):
    data = read_fixture("feeds/vendor/msrc-updates-sample.json")
    assert detect_format(data) == "msrc-updates"
    result = parse(data, "msrc-updates")
    assert [link.item_id for link in result.links] == ["2025-May", "2025-Jun"]
    assert result.links[1].updated == datetime(2025, 6, 10, 7, 0, tzinfo=UTC)  # no zone -> UTC
    assert result.links[0].title == "May 2025 Security Updates"
    assert result.warnings == ["value[2]: no CvrfUrl, skipped"]


# ============================================================================ malformed input


@pytest.mark.parametrize("fmt", ["paloalto-list", "cisco-openvuln", "msrc-updates"])
@pytest.mark.parametrize(
    "data",
    [b"", b'[{"ID": "CVE-2025-0118", "title": "x"', b"\xff\xfe\x00", b"{advisories: []}"],
    ids=["empty", "truncated", "not-utf8", "unquoted-keys"],
)
def test_broken_json_is_malformed(fmt, data):
    with pytest.raises(MalformedDocument):
        parse(data, fmt)


@pytest.mark.parametrize(
    ("fmt", "doc"),
    [
        ("paloalto-list", {"ID": "CVE-2025-0118"}),
        ("paloalto-list", "a string"),
        ("cisco-openvuln", {"advisories": {"advisoryId": "x"}}),
        ("cisco-openvuln", []),
        ("msrc-updates", {"@odata.context": "x", "value": "2024-Mar"}),
        ("msrc-updates", [{"ID": "2024-Mar"}]),
    ],
)
def test_wrong_shapes_are_unsupported(fmt, doc):
    with pytest.raises(UnsupportedDocument):
        parse(json.dumps(doc).encode(), fmt)


def test_paloalto_odd_field_types_do_not_break_the_list():
    doc = [
        {
            "ID": "CVE-2025-9001",
            "product": "PAN-OS",
            "problem": None,
            "baseScore": "high",
            "date": "not a date",
            "affected": "None",
        },
    ]
    [record] = vendor_json.parse_paloalto_list(json.dumps(doc).encode()).advisories
    assert record.title == "CVE-2025-9001"
    assert record.products == ["PAN-OS"] and record.facts["affected"] == ["None"]
    assert record.cvss is None and record.published is None
    assert record.summary_text == ""
