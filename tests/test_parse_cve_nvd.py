"""CVE JSON 5.x records, cvelistV5 delta, NVD API 2.0 and EUVD API parsers.

Golden facts for every real snapshot in ../shared/data/feeds/{cve,nvd,euvd} (read in place),
then our own invented samples in tests/fixtures/feeds/{cve,nvd,euvd} and malformed input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from alerts.ingest.detect import detect_format
from alerts.ingest.parsers import cve, euvd, nvd, parse
from alerts.ingest.records import (
    HostileDocument,
    MalformedDocument,
    ParseError,
    UnsupportedDocument,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def assert_json_able(record) -> None:
    json.dumps(record.facts)
    json.dumps(record.raw)


# ============================================================================ CVE records (real)

# id, published, updated, vendor, first product, product count, KEV marker, CVSS version, score
CVE_GOLDEN = [
    (
        "CVE-2021-44228",
        "2021-12-10T00:00:00",
        "2025-10-21T23:25:23.121",
        "Apache Software Foundation",
        "Apache Log4j2",
        1,
        True,
        "3.1",
        10.0,
    ),
    (
        "CVE-2023-22515",
        "2023-10-04T14:00:00.820",
        "2024-09-13T18:13:18.030",
        "Atlassian",
        "Confluence Data Center",
        2,
        True,
        "3.1",
        9.8,
    ),
    (
        "CVE-2023-27997",
        "2023-06-13T08:41:47.415",
        "2024-10-23T13:18:14.745",
        "Fortinet",
        "FortiOS-6K7K",
        3,
        True,
        "3.1",
        9.2,
    ),
    (
        "CVE-2023-34362",
        "2023-06-02T00:00:00",
        "2024-08-02T16:10:06.378",
        "Progress",
        "MOVEit Transfer",
        2,
        True,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-0802",
        "2024-03-14T23:57:07.390",
        "2024-08-01T18:18:18.584",
        "Mitsubishi Electric Corporation",
        "MELSEC-Q Series Q03UDECPU",
        26,
        False,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-1709",
        "2024-02-21T15:36:03.960",
        "2024-08-01T18:48:21.899",
        "ConnectWise",
        "ScreenConnect",
        1,
        True,
        "3.1",
        10.0,
    ),
    (
        "CVE-2024-21413",
        "2024-02-13T18:02:24.799",
        "2024-10-09T01:49:48.188",
        "Microsoft",
        "Microsoft Office 2019",
        4,
        False,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-21762",
        "2024-02-09T08:14:25.954",
        "2024-08-01T22:27:36.250",
        "Fortinet",
        "FortiProxy",
        2,
        True,
        "3.1",
        9.6,
    ),
    (
        "CVE-2024-21899",
        "2024-03-08T16:17:25.243",
        "2024-08-01T22:35:34.557",
        "QNAP Systems Inc.",
        "QTS",
        3,
        False,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-21914",
        "2024-03-25T21:27:18.975",
        "2024-08-05T16:36:55.604",
        "Rockwell Automation",
        "FactoryTalk® View ME",
        1,
        False,
        "3.1",
        5.3,
    ),
    (
        "CVE-2024-2229",
        "2024-03-18T16:08:33.773",
        "2024-08-01T19:03:39.361",
        "Schneider Electric",
        "EcoStruxure Power Design - Ecodial",
        1,
        False,
        "3.1",
        7.8,
    ),
    (
        "CVE-2024-22332",
        "2024-02-09T00:54:41.345",
        "2024-08-01T22:43:34.513",
        "IBM",
        "Integration Bus for z/OS",
        1,
        False,
        "3.1",
        6.5,
    ),
    (
        "CVE-2024-27198",
        "2024-03-04T17:21:39.422",
        "2024-08-02T00:27:59.636",
        "JetBrains",
        "TeamCity",
        1,
        True,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-27939",
        "2024-05-14T10:02:07.190",
        "2024-06-04T17:47:23.121",
        "Siemens",
        "RUGGEDCOM CROSSBOW",
        1,
        False,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-28000",
        "2024-08-21T13:53:57.747",
        "2024-08-21T16:49:04.870",
        "LiteSpeed Technologies",
        "LiteSpeed Cache",
        1,
        False,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-29227",
        "2024-03-28T06:08:34.641",
        "2024-08-27T20:29:00.498",
        "Synology",
        "Surveillance Station",
        1,
        False,
        "3.1",
        5.4,
    ),
    (
        "CVE-2024-29972",
        "2024-06-04T01:24:58.172",
        "2024-08-02T01:17:58.671",
        "Zyxel",
        "NAS326 firmware",
        2,
        False,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-3400",
        "2024-04-12T07:20:00.707",
        "2024-08-01T20:12:06.667",
        "Palo Alto Networks",
        "PAN-OS",
        3,
        True,
        "3.1",
        10.0,
    ),
    (
        "CVE-2024-40711",
        "2024-09-07T16:11:22.213",
        "2024-10-18T13:05:20.986",
        "Veeam",
        "Backup and Recovery",
        1,
        True,
        "3.0",
        9.8,
    ),
    (
        "CVE-2024-40766",
        "2024-08-23T06:19:07.229",
        "2024-09-09T16:20:22.681",
        "SonicWall",
        "SonicOS",
        1,
        True,
        "3.1",
        9.3,
    ),
    (
        "CVE-2024-47575",
        "2024-10-23T15:03:48.798",
        "2024-10-23T22:20:22.666",
        "Fortinet",
        "FortiManager",
        1,
        True,
        "3.1",
        9.8,
    ),
    (
        "CVE-2024-6387",
        "2024-07-01T12:37:25.431",
        "2024-09-14T02:09:26.419",
        "Red Hat",
        "OpenSSH",  # the upstream package entry (packageName) comes first
        14,
        False,
        "3.1",
        8.1,
    ),
    (
        "CVE-2024-8190",
        "2024-09-10T20:33:44.793",
        "2024-09-16T13:24:41.628",
        "Ivanti",
        "CSA (Cloud Services Appliance)",
        1,
        True,
        "3.1",
        7.2,
    ),
]


@pytest.mark.shared
@pytest.mark.parametrize("golden", CVE_GOLDEN, ids=[row[0] for row in CVE_GOLDEN])
def test_cve_record_golden(read_shared, golden):
    cve_id, published, updated, vendor, product, count, kev, version, score = golden
    result = cve.parse_record(read_shared(f"cve/{cve_id}.json"))
    assert result.warnings == []
    [record] = result.advisories
    assert record.item_id == cve_id
    assert record.kind == "vulnerability"
    assert record.cve_ids[0] == cve_id
    assert record.published == utc(published)
    assert record.updated == utc(updated)
    assert record.published.tzinfo is UTC
    assert record.vendors == [vendor]
    assert record.products[0] == product
    assert len(record.products) == count
    assert record.known_exploited is kev
    assert ("kev_date_added" in record.facts) is kev
    assert (record.cvss.version, record.cvss.score) == (version, score)
    assert record.language == "en"
    assert record.url == f"https://www.cve.org/CVERecord?id={cve_id}"
    assert record.title and record.summary_text
    assert record.facts["state"] == "PUBLISHED"
    assert record.facts["ssvc_exploitation"] in {"active", "poc", "none"}
    assert record.raw["cveMetadata"]["cveId"] == cve_id
    assert_json_able(record)


@pytest.mark.shared
def test_cve_manifest_kev_records_without_marker_stay_false(read_shared):
    # MANIFEST marks these "KEV", but these vulnrichment snapshots carry no KEV marker yet
    # (SSVC still says "poc"/"none"): the parser reports what the document says.
    for cve_id, exploitation in (("CVE-2024-21413", "poc"), ("CVE-2024-29972", "none")):
        [record] = cve.parse_record(read_shared(f"cve/{cve_id}.json")).advisories
        assert record.known_exploited is False
        assert record.facts["ssvc_exploitation"] == exploitation


@pytest.mark.shared
def test_cve_kev_marker_facts(read_shared):
    [log4shell] = cve.parse_record(read_shared("cve/CVE-2021-44228.json")).advisories
    assert log4shell.facts["kev_date_added"] == "2021-12-10"
    assert log4shell.facts["ssvc_exploitation"] == "active"
    assert log4shell.facts["ssvc_automatable"] == "yes"
    assert log4shell.facts["ssvc_technical_impact"] == "total"
    assert set(log4shell.facts["cwes"]) == {"CWE-502", "CWE-400", "CWE-20"}
    [confluence] = cve.parse_record(read_shared("cve/CVE-2023-22515.json")).advisories
    assert confluence.facts["kev_date_added"] == "2023-10-05"
    assert "CWE-20" in confluence.facts["cwes"]  # from the CISA-ADP problemTypes


@pytest.mark.shared
def test_cve_log4shell_cvss_only_in_adp(read_shared):
    """Quirk: the Apache CNA container has no CVSS; CISA-ADP gives 10.0."""
    data = read_shared("cve/CVE-2021-44228.json")
    assert "cvssV3_1" not in json.dumps(json.loads(data)["containers"]["cna"]["metrics"])
    [record] = cve.parse_record(data).advisories
    assert record.cvss.score == 10.0
    assert record.cvss.vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert record.cvss.severity == "CRITICAL"
    assert "Log4j2" in record.title
    assert record.links and all(link.startswith("http") for link in record.links)
    assert len(record.links) == len(set(record.links))  # CVE Program container repeats them


@pytest.mark.shared
def test_cve_date_published_without_zone_is_utc(read_shared):
    """Quirk: the MOVEit record's datePublished has no zone ("2023-06-02T00:00:00")."""
    [record] = cve.parse_record(read_shared("cve/CVE-2023-34362.json")).advisories
    assert record.published == datetime(2023, 6, 2, tzinfo=UTC)


@pytest.mark.shared
def test_cve_na_affected_falls_back_to_adp_names(read_shared):
    """The MOVEit CNA says vendor/product "n/a"; CISA-ADP's CPE-style names stand in."""
    [record] = cve.parse_record(read_shared("cve/CVE-2023-34362.json")).advisories
    assert record.vendors == ["Progress"]
    assert "MOVEit Transfer" in record.products
    assert "n/a" not in record.products


@pytest.mark.shared
def test_cve_supporting_media_html_is_sanitised(read_shared):
    [record] = cve.parse_record(read_shared("cve/CVE-2024-1709.json")).advisories
    assert "ScreenConnect" in record.summary_text
    assert "<span" not in record.summary_html and "style=" not in record.summary_html
    assert "<" not in record.summary_text


@pytest.mark.shared
def test_cve_language_from_en_us_description(read_shared):
    [record] = cve.parse_record(read_shared("cve/CVE-2024-21413.json")).advisories
    assert record.language == "en"  # the description is tagged "en-US"
    assert "Outlook" in record.title


@pytest.mark.shared
def test_cve_broken_reference_url_is_repaired(read_shared):
    """IBM's record has "https://https://www.ibm.com/...": one scheme is kept."""
    [record] = cve.parse_record(read_shared("cve/CVE-2024-22332.json")).advisories
    assert "https://www.ibm.com/support/pages/node/7116046" in record.links
    assert not any(link.startswith("https://https://") for link in record.links)


@pytest.mark.shared
def test_cve_unsupported_marker_line_is_not_the_title(read_shared):
    [record] = cve.parse_record(read_shared("cve/CVE-2024-29972.json")).advisories
    assert "UNSUPPORTED WHEN ASSIGNED" not in record.title
    assert "UNSUPPORTED WHEN ASSIGNED" in record.summary_text


@pytest.mark.shared
def test_cve_record_is_about_its_own_cve_only(read_shared):
    """regreSSHion's text names CVE-2006-5051 (the flaw it re-introduced): mentioning is not
    being about, so the record must not join that vulnerability."""
    [record] = cve.parse_record(read_shared("cve/CVE-2024-6387.json")).advisories
    assert record.cve_ids == ["CVE-2024-6387"]


@pytest.mark.shared
def test_cve_all_real_files_through_registry_and_detection(read_shared, shared_feeds):
    files = sorted((shared_feeds / "cve").glob("CVE-*.json"))
    assert len(files) == 23
    for path in files:
        data = path.read_bytes()
        assert detect_format(data) == "cve"
        assert parse(data, "cve").advisories[0].item_id == path.stem


# ============================================================================ delta (real)


@pytest.mark.shared
def test_cvelist_delta_real(read_shared):
    result = cve.parse_delta(read_shared("cve/cvelistV5-delta-2023-11-02.json"))
    assert result.advisories == [] and result.warnings == []
    assert [link.item_id for link in result.links] == ["CVE-2023-46695", "CVE-2023-47204"]
    first = result.links[0]
    assert first.url == (
        "https://raw.githubusercontent.com/CVEProject/cvelistV5/main/cves/2023/46xxx/"
        "CVE-2023-46695.json"
    )
    # Quirk: dateUpdated has no zone; it is UTC.
    assert first.updated == datetime(2023, 11, 2, 5, 36, 44, 174711, tzinfo=UTC)
    assert result.links[1].updated == datetime(2023, 11, 2, 5, 33, 33, 116402, tzinfo=UTC)


# ============================================================================ NVD (real)


@pytest.mark.shared
def test_nvd_log4shell(read_shared):
    data = read_shared("nvd/nvd-api2-cveId-CVE-2021-44228.json")
    result = nvd.parse(data)
    [record] = result.advisories
    assert record.item_id == "CVE-2021-44228"
    assert record.kind == "vulnerability"
    assert record.published == utc("2021-12-10T10:15:09.143")
    assert record.updated == utc("2026-06-17T04:12:05.460")
    assert record.known_exploited is True
    assert record.facts["cisa_exploit_add"] == "2021-12-10"
    assert record.facts["cisa_action_due"] == "2021-12-24"
    assert record.facts["cisa_vulnerability_name"].startswith("Apache Log4j2")
    assert record.facts["cisa_required_action"]
    assert record.facts["vuln_status"] == "Analyzed"
    assert record.facts["ssvc_exploitation"] == "active"
    assert {"CWE-502", "CWE-917"} <= set(record.facts["cwes"])
    assert (record.cvss.version, record.cvss.score) == ("3.1", 10.0)
    assert record.title == record.facts["cisa_vulnerability_name"]
    assert record.language == "en" and "Log4j2" in record.summary_text
    assert record.url == "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"
    assert len(record.links) > 50
    # CNA names first, then CPE names; 144 products capped at 50 with a warning.
    assert record.vendors[:2] == ["Apache Software Foundation", "Siemens"]
    assert "Apache" in record.vendors
    assert record.products[0] == "Apache Log4j2"
    assert len(record.products) == 50
    assert any("kept the first 50" in warning for warning in result.warnings)
    assert_json_able(record)


@pytest.mark.shared
def test_nvd_full_page(read_shared):
    result = nvd.parse(read_shared("nvd/nvd-api2-full-page-2023-10-18.json"))
    records = {r.item_id: r for r in result.advisories}
    assert len(result.advisories) == 38 and len(records) == 38
    assert result.warnings == []
    assert result.advisories[0].item_id == "CVE-2023-27314"
    assert result.advisories[-1].item_id == "CVE-2023-20261"
    for record in result.advisories:
        assert utc("2023-10-12T00:00:00") <= record.published <= utc("2023-10-19T00:00:00")
        assert record.updated.tzinfo is UTC
        assert record.known_exploited is False
        assert record.cve_ids[0] == record.item_id
    netapp = records["CVE-2023-27314"]
    assert (netapp.vendors, netapp.products) == (["NetApp"], ["Clustered Data Ontap"])
    assert (netapp.cvss.version, netapp.cvss.score) == ("3.1", 7.5)
    assert records["CVE-2022-22377"].vendors == ["IBM"]
    assert records["CVE-2023-22068"].products == ["Mysql"]
    awaiting = records["CVE-2023-30781"]
    assert awaiting.facts["vuln_status"] == "Awaiting Analysis"
    assert awaiting.vendors == [] and awaiting.products == []  # no configurations yet
    assert records["CVE-2023-43250"].cvss is None  # no metrics at all


@pytest.mark.shared
def test_nvd_last_modified_window(read_shared):
    result = nvd.parse(read_shared("nvd/nvd-api2-lastModified-2h-window.json"))
    assert len(result.advisories) == 9 and result.warnings == []
    records = {r.item_id: r for r in result.advisories}
    adobe = records["CVE-2025-54236"]
    assert adobe.known_exploited is True
    assert adobe.facts["cisa_exploit_add"] == "2025-10-24"
    assert adobe.vendors == ["Adobe"]
    assert adobe.products == ["Commerce", "Commerce B2b", "Magento"]
    assert adobe.published == utc("2025-09-09T14:15:46.563")
    bandit = records["CVE-2026-39804"]
    assert (bandit.cvss.version, bandit.cvss.score) == ("4.0", 8.2)
    assert bandit.facts["vuln_status"] == "Received"
    assert [r.known_exploited for r in result.advisories].count(True) == 1
    assert records["CVE-2026-43824"].updated == utc("2026-05-02T02:16:00.747")


@pytest.mark.shared
def test_nvd_single_entry(read_shared):
    [record] = nvd.parse(read_shared("nvd/nvd-api2-single-entry.json")).advisories
    assert record.item_id == "CVE-2022-1576"
    assert record.published == utc("2022-07-11T13:15:08.503")
    assert record.updated == utc("2024-11-21T06:41:00.133")
    assert (record.cvss.version, record.cvss.score) == ("3.1", 6.5)  # v3.1 preferred over v2
    assert record.facts["vuln_status"] == "Modified"
    assert record.vendors == ["Themeisle"]
    # CPE escapes are undone: "wp_maintenance_mode_\&_coming_soon".
    assert record.products == ["Wp Maintenance Mode & Coming Soon"]


# ============================================================================ EUVD (real)


@pytest.mark.shared
def test_euvd_single_record(read_shared):
    result = euvd.parse(read_shared("euvd/euvd-api-enisaid-EUVD-2025-0001.json"))
    [record] = result.advisories
    assert result.warnings == []
    assert record.item_id == "EUVD-2025-0001"
    assert record.kind == "vulnerability"
    # Quirk: "Jan 14, 2025, 9:31:47 PM" without zone -> UTC.
    assert record.published == datetime(2025, 1, 14, 21, 31, 47, tzinfo=UTC)
    assert record.updated == datetime(2025, 5, 20, 18, 6, 45, tzinfo=UTC)
    assert record.cve_ids == ["CVE-2024-56374"]
    assert record.facts["aliases"] == ["CVE-2024-56374", "PYSEC-2025-1"]
    assert (record.cvss.version, record.cvss.score) == ("3.1", 5.8)
    assert record.vendors == ["djangoproject"]
    assert record.products == ["Django"]
    assert record.facts["epss"] == 0.6
    assert "WID-SEC-W-2025-0063" in record.facts["advisories"]
    assert record.known_exploited is False
    assert len(record.links) == 11
    assert record.url == "https://euvd.enisa.europa.eu/vulnerability/EUVD-2025-0001"
    assert "Django" in record.title
    assert_json_able(record)


@pytest.mark.shared
def test_euvd_search_page(read_shared):
    result = euvd.parse(read_shared("euvd/euvd-api-search-page0.json"))
    assert result.warnings == []  # total 450486 > 2 items is pagination, not a problem
    assert [r.item_id for r in result.advisories] == ["EUVD-2025-23951", "EUVD-2024-16355"]
    operator, kernel = result.advisories
    assert operator.cve_ids == ["CVE-2025-7195"]
    assert operator.vendors == ["Red Hat"]
    assert operator.published == datetime(2025, 8, 7, 19, 5, 8, tzinfo=UTC)
    assert (operator.cvss.version, operator.cvss.score) == ("3.1", 5.2)
    assert kernel.cve_ids == ["CVE-2024-0562"]
    assert kernel.published == datetime(2024, 1, 15, 19, 1, 36, tzinfo=UTC)
    assert kernel.updated == datetime(2025, 11, 15, 8, 17, 20, tzinfo=UTC)
    assert "Red Hat Enterprise Linux 9" in kernel.products
    assert kernel.cvss.score == 7.8
    assert kernel.title.endswith("Linux Kernel.")  # first sentence of the description


@pytest.mark.shared
@pytest.mark.parametrize(
    ("relative", "fmt"),
    [
        ("cve/cvelistV5-delta-2023-11-02.json", "cvelist-delta"),
        ("nvd/nvd-api2-full-page-2023-10-18.json", "nvd"),
        ("nvd/nvd-api2-single-entry.json", "nvd"),
        ("euvd/euvd-api-enisaid-EUVD-2025-0001.json", "euvd"),
        ("euvd/euvd-api-search-page0.json", "euvd"),
    ],
)
def test_real_files_are_detected_as_their_format(read_shared, relative, fmt):
    data = read_shared(relative)
    assert detect_format(data) == fmt
    assert parse(data, fmt).format == fmt


# ============================================================================ our samples: CVE


def test_sample_cve_record(read_fixture):
    data = read_fixture("feeds/cve/CVE-2025-10001-sample.json")
    assert detect_format(data) == "cve"
    result = parse(data, "cve")
    [record] = result.advisories
    assert result.format == "cve" and result.warnings == []
    assert record.item_id == "CVE-2025-10001"
    assert record.title.startswith("ExampleGate VPN:")
    assert record.language == "en"  # the en-US entry is chosen over the German one
    assert record.published == datetime(2025, 3, 4, 10, 0, tzinfo=UTC)  # no zone -> UTC
    assert record.updated == datetime(2025, 3, 20, 14, 31, 2, 118000, tzinfo=UTC)
    assert record.vendors == ["Examplesoft"]  # the "n/a" entry is skipped
    assert record.products == ["ExampleGate VPN", "ExampleGate Cloud Connector"]
    assert record.cve_ids == ["CVE-2025-10001"]  # its own CVE; mentioned ones are others
    assert (record.cvss.version, record.cvss.score) == ("4.0", 8.7)  # v4 over v3.1
    assert record.known_exploited is True
    assert record.facts["kev_date_added"] == "2025-03-19"
    assert record.facts["ssvc_exploitation"] == "active"
    assert record.facts["ssvc_technical_impact"] == "partial"
    assert record.facts["cwes"] == ["CWE-22", "CWE-23"]
    assert record.url == "https://www.cve.org/CVERecord?id=CVE-2025-10001"
    # Empty "https://", ftp and doubled schemes are cleaned; ADP duplicates collapse.
    assert record.links == [
        "https://support.examplesoft.example/advisories/ESA-2025-004",
        "https://blog.examplesoft.example/2025/03/exemplegate-fix",
    ]


def test_sample_cve_hostile_html_is_neutralised(read_fixture):
    [record] = cve.parse_record(read_fixture("feeds/cve/CVE-2025-10001-sample.json")).advisories
    html = record.summary_html
    assert "<b>web portal</b>" in html
    for bad in ("<script", "alert(", "onclick", "javascript:"):
        assert bad not in html
    assert "<" not in record.summary_text
    assert "alert" not in record.summary_text  # the plain-text description is used for text


def test_sample_cve_adp_only_names_and_score(read_fixture):
    [record] = cve.parse_record(read_fixture("feeds/cve/CVE-2025-10002-adp-only.json")).advisories
    assert record.vendors == ["Acme"]
    assert record.products == ["Ledger Server", "Backup & Restore Agent"]
    assert (record.cvss.version, record.cvss.score) == ("3.1", 8.8)
    assert record.known_exploited is False
    assert record.facts["ssvc_exploitation"] == "none"
    assert record.title.startswith("SQL injection")  # the ** marker ** line is skipped
    assert record.facts["problem_types"][0].startswith("CWE-89")


def test_sample_cve_rejected_record_is_kept_with_state(read_fixture):
    [record] = cve.parse_record(read_fixture("feeds/cve/CVE-2025-10003-rejected.json")).advisories
    assert record.item_id == "CVE-2025-10003"
    assert record.facts["state"] == "REJECTED"
    assert record.title == "Rejected: CVE-2025-10003"
    assert record.cve_ids == ["CVE-2025-10003"]  # the duplicate it names is not its subject
    assert record.updated == datetime(2025, 5, 2, 8, 15, tzinfo=UTC)
    assert record.cvss is None and record.known_exploited is False
    assert "duplicate" in record.summary_text


def test_sample_vendor_id_in_cve_layout(read_fixture):
    [record] = cve.parse_record(read_fixture("feeds/cve/PAN-SA-2025-0099-sample.json")).advisories
    assert record.item_id == "PAN-SA-2025-0099"
    assert record.kind == "advisory"
    assert record.cve_ids == ["CVE-2025-6554", "CVE-2025-6555", "CVE-2025-6191"]
    assert record.url == "https://security.paloaltonetworks.com/PAN-SA-2025-0099"
    assert record.links == []
    assert record.published == datetime(2025, 7, 9, 16, 0, tzinfo=UTC)  # cna.datePublic
    assert record.updated == datetime(2025, 7, 16, 17, 30, tzinfo=UTC)  # last timeline entry
    assert 'target="_blank"' not in record.summary_html


def test_sample_cvelist_delta(read_fixture):
    data = read_fixture("feeds/cve/cvelistV5-delta-sample.json")
    assert detect_format(data) == "cvelist-delta"
    result = parse(data, "cvelist-delta")
    assert [link.item_id for link in result.links] == ["CVE-2025-10101", "CVE-2024-21999"]
    # Listed as new and as updated: one link, with the later time (no zone -> UTC).
    assert result.links[0].updated == datetime(2025, 6, 11, 9, 33, tzinfo=UTC)
    assert result.links[1].updated == datetime(2025, 6, 11, 9, 28, 5, 771000, tzinfo=UTC)
    assert any("no githubLink" in w for w in result.warnings)
    assert any("CVE-2025-10103" in w and "schema" in w for w in result.warnings)


def test_cvelist_delta_log_list_is_read():
    deltas = [
        {
            "fetchTime": "2025-06-11T09:00:00Z",
            "new": [],
            "updated": [
                {
                    "cveId": "CVE-2025-1",
                    "githubLink": "https://raw.githubusercontent.com/x/1.json",
                    "dateUpdated": "2025-06-11T08:59:00",
                }
            ],
        },
        {
            "fetchTime": "2025-06-11T09:05:00Z",
            "new": [
                {"cveId": "CVE-2025-2", "githubLink": "https://raw.githubusercontent.com/x/2.json"}
            ],
            "updated": [],
        },
    ]
    result = cve.parse_delta(json.dumps(deltas).encode())
    assert [link.item_id for link in result.links] == ["CVE-2025-1", "CVE-2025-2"]
    assert result.links[1].updated is None


# ============================================================================ our samples: NVD


def test_sample_nvd_page(read_fixture):
    data = read_fixture("feeds/nvd/nvd-sample-page.json")
    assert detect_format(data) == "nvd"
    result = parse(data, "nvd")
    assert [r.item_id for r in result.advisories] == [
        "CVE-2025-10001",
        "CVE-2025-10005",
        "CVE-2025-10003",
    ]
    assert result.warnings == ["vulnerabilities[2]: no cve.id, skipped"]
    kev, disputed, rejected = result.advisories
    assert kev.known_exploited is True
    assert kev.facts["cisa_action_due"] == "2025-04-09"
    assert kev.title == "Examplesoft ExampleGate VPN Path Traversal Vulnerability"
    assert kev.summary_text.startswith("A path traversal")  # English, not Spanish
    assert kev.published == datetime(2025, 3, 4, 10, 15, 9, 143000, tzinfo=UTC)
    assert (kev.cvss.version, kev.cvss.score) == ("4.0", 8.7)
    # Only vulnerable CPEs; "\:" stays part of the product name.
    assert kev.vendors == ["Examplesoft"]
    assert kev.products == ["Examplegate Vpn Firmware", "Cloud Connector: Edge"]
    assert kev.facts["cwes"] == ["CWE-22"]  # NVD-CWE-noinfo is dropped
    assert kev.links == [
        "https://support.examplesoft.example/advisories/ESA-2025-004",
        "https://www.cisa.gov/known-exploited-vulnerabilities-catalog?search_api_fulltext=CVE-2025-10001",
    ]
    assert (disputed.cvss.version, disputed.cvss.score, disputed.cvss.severity) == (
        "2.0",
        4.9,
        "MEDIUM",
    )
    assert disputed.facts["cve_tags"] == ["disputed"]
    assert rejected.facts["vuln_status"] == "Rejected"
    assert rejected.cve_ids == ["CVE-2025-10003"]
    assert rejected.cvss is None


def test_nvd_primary_metric_preferred_within_a_version():
    secondary = _metric("Secondary", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    primary = _metric("Primary", 7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N")
    doc = _nvd_doc({"id": "CVE-2025-20001", "metrics": {"cvssMetricV31": [secondary, primary]}})
    [record] = nvd.parse(doc).advisories
    assert record.cvss.score == 7.5


def _metric(kind: str, score: float, vector: str) -> dict:
    return {
        "type": kind,
        "cvssData": {"version": "3.1", "baseScore": score, "vectorString": vector},
    }


def test_nvd_huge_cpe_list_is_capped_quickly():
    matches = [
        {"vulnerable": True, "criteria": f"cpe:2.3:a:vendor{i % 7}:product_{i}:1.0:*:*:*:*:*:*:*"}
        for i in range(5000)
    ] + [{"vulnerable": False, "criteria": "cpe:2.3:h:board:mainboard:-:*:*:*:*:*:*:*"}]
    doc = _nvd_doc(
        {
            "id": "CVE-2025-20002",
            "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": matches}]}],
        }
    )
    result = nvd.parse(doc)
    [record] = result.advisories
    assert len(record.products) == 50 and record.products[0] == "Product 0"
    assert record.vendors == [f"Vendor{i}" for i in range(7)]
    assert "Board" not in record.vendors
    assert result.warnings == ["CVE-2025-20002: 5000 products listed, kept the first 50"]


def test_nvd_bad_entries_become_warnings():
    doc = json.dumps(
        {
            "format": "NVD_CVE",
            "version": "2.0",
            "vulnerabilities": [
                "a string",
                {"cve": None},
                {"cve": {"id": "CVE-2025-20003", "metrics": []}},
            ],
        }
    ).encode()
    result = nvd.parse(doc)
    assert [r.item_id for r in result.advisories] == ["CVE-2025-20003"]
    assert len(result.warnings) == 2
    assert result.advisories[0].title == "CVE-2025-20003"  # no description at all


def _nvd_doc(cve_object: dict) -> bytes:
    return json.dumps(
        {"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": cve_object}]}
    ).encode()


# ============================================================================ our samples: EUVD


def test_sample_euvd_record_exploited(read_fixture):
    data = read_fixture("feeds/euvd/euvd-sample-record.json")
    assert detect_format(data) == "euvd"
    [record] = parse(data, "euvd").advisories
    assert record.item_id == "EUVD-2025-90001"
    assert record.known_exploited is True
    assert record.facts["exploited_since"] == "2025-03-18T00:00:00+00:00"
    assert record.published == datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    assert record.updated == datetime(2025, 3, 20, 14, 31, 2, tzinfo=UTC)
    assert record.cve_ids == ["CVE-2025-10001"]
    assert record.facts["aliases"] == ["CVE-2025-10001", "GHSA-x7q4-2p9m-hh3v"]
    assert (record.cvss.version, record.cvss.score) == ("4.0", 8.7)
    assert record.products == ["ExampleGate VPN", "ExampleGate Cloud Connector"]
    assert record.vendors == ["Examplesoft"]
    assert record.links == [  # "not a link" and the repeat are dropped
        "https://support.examplesoft.example/advisories/ESA-2025-004",
        "https://nvd.nist.gov/vuln/detail/CVE-2025-10001",
    ]
    assert record.facts["advisories"] == ["WID-SEC-W-2025-0777"]


def test_sample_euvd_page(read_fixture):
    result = euvd.parse(read_fixture("feeds/euvd/euvd-sample-page.json"))
    assert [r.item_id for r in result.advisories] == ["EUVD-2025-90002", "EUVD-2024-90003"]
    assert result.warnings == ["items[1]: no EUVD id, skipped"]
    unscored, contoso = result.advisories
    assert unscored.cvss is None  # baseScore 0 with no vector means "not scored"
    assert unscored.title.startswith("Acme Ledger Server 8.1 allows CSV formula injection")
    assert unscored.title.endswith("reports.")  # the first line only
    assert unscored.known_exploited is False
    assert contoso.published == datetime(2024, 12, 2, 15, 4, 5, tzinfo=UTC)
    assert (contoso.vendors, contoso.products) == (["Contoso"], ["Contoso Print Agent"])


# ============================================================================ malformed input


@pytest.mark.parametrize("fmt", ["cve", "cvelist-delta", "nvd", "euvd"])
@pytest.mark.parametrize(
    "data",
    [b"", b"   \n", b'{"dataType": "CVE_RECORD", "cveMetadata": {', b"\xff\xfe{\x00}", b"{'a': 1}"],
    ids=["empty", "blank", "truncated", "not-utf8", "python-dict"],
)
def test_broken_json_is_malformed(fmt, data):
    with pytest.raises(MalformedDocument):
        parse(data, fmt)


def test_truncated_sample_names_the_place(read_fixture):
    with pytest.raises(MalformedDocument, match="line 7"):
        cve.parse_record(read_fixture("feeds/cve/truncated-record.json"))


@pytest.mark.parametrize("fmt", ["cve", "nvd", "euvd"])
def test_deep_nesting_is_malformed(fmt):
    with pytest.raises(MalformedDocument):
        parse(b"[" * 100_000 + b"]" * 100_000, fmt)


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        ([], UnsupportedDocument, "JSON object"),
        ({"foo": 1}, UnsupportedDocument, "cveMetadata"),
        ({"dataType": "CVE_RECORD", "cveMetadata": "x"}, MalformedDocument, "cveMetadata"),
        (
            {"dataType": "CVE_RECORD", "cveMetadata": {"state": "PUBLISHED"}, "containers": {}},
            MalformedDocument,
            "cveId",
        ),
        (
            {"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2025-1"}},
            MalformedDocument,
            "containers",
        ),
        (
            {
                "dataType": "CVE_RECORD",
                "cveMetadata": {"cveId": "CVE-2025-1"},
                "containers": {"cna": []},
            },
            MalformedDocument,
            "containers.cna",
        ),
    ],
)
def test_cve_record_wrong_shapes(doc, error, message):
    with pytest.raises(error, match=message):
        cve.parse_record(json.dumps(doc).encode())


def test_cve_json4_is_unsupported(read_fixture):
    with pytest.raises(UnsupportedDocument, match="4.0"):
        parse(read_fixture("feeds/cve/cve-json4-legacy.json"), "cve")


def test_cve_record_with_odd_field_types_still_parses():
    doc = {
        "dataType": "CVE_RECORD",
        "cveMetadata": {"cveId": "cve-2025-30001", "datePublished": 17, "dateUpdated": None},
        "containers": {
            "cna": {
                "descriptions": "not a list",
                "affected": [None, {"vendor": 3}],
                "metrics": {},
                "references": [{"url": None}, "x"],
                "problemTypes": [{"descriptions": None}],
            },
            "adp": {"not": "a list"},
        },
    }
    [record] = cve.parse_record(json.dumps(doc).encode()).advisories
    assert record.item_id == "cve-2025-30001"
    assert record.cve_ids == ["CVE-2025-30001"]
    assert record.title == "cve-2025-30001"
    assert record.published is None and record.vendors == ["3"] and record.links == []


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"fetchTime": "2025-01-01T00:00:00Z"}, UnsupportedDocument),
        ("a string", UnsupportedDocument),
        ([], UnsupportedDocument),
        ([{"new": []}, 5], UnsupportedDocument),
    ],
)
def test_delta_wrong_shapes(doc, error):
    with pytest.raises(error):
        cve.parse_delta(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"format": "NVD_CPE", "products": []}, "NVD_CPE"),
        ({"format": "NVD_CVE", "vulnerabilities": {"cve": {}}}, "vulnerabilities"),
        ({"resultsPerPage": 0}, "missing"),
    ],
)
def test_nvd_wrong_shapes(doc, message):
    with pytest.raises(UnsupportedDocument, match=message):
        nvd.parse(json.dumps(doc).encode())


def test_nvd_legacy_feed_is_unsupported(read_fixture):
    with pytest.raises(UnsupportedDocument, match="1.1"):
        nvd.parse(read_fixture("feeds/nvd/nvd-1.1-feed.json"))


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"id": "CVE-2025-1"}, UnsupportedDocument),
        ([{"id": "EUVD-2025-1"}], UnsupportedDocument),
        (
            {"enisaUuid": "1476bba1-5e2b-312f-b5fc-18d18c42c467", "description": "x"},
            MalformedDocument,
        ),
    ],
)
def test_euvd_wrong_shapes(doc, error):
    with pytest.raises(error):
        euvd.parse(json.dumps(doc).encode())


def test_errors_are_parse_errors_with_format():
    with pytest.raises(ParseError) as caught:
        parse(b"[1, 2", "nvd")
    assert str(caught.value).startswith("[nvd] invalid JSON")
    assert not isinstance(caught.value, HostileDocument)
