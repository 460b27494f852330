"""CSAF 2.0 documents and their distribution files (ROLIE feeds, index.txt, changes.csv,
provider metadata): golden facts over every real snapshot, the publishers' quirks, our own
samples (run without ../shared) and malformed or hostile input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from alerts.ingest.parsers import parse
from alerts.ingest.records import MalformedDocument, UnsupportedDocument

shared = pytest.mark.shared
CISA_RAW = "https://raw.githubusercontent.com/cisagov/CSAF/develop/csaf_files"
CISA_ICS = "https://www.cisa.gov/news-events/ics-advisories"
OX_DOCS = "https://documentation.open-xchange.com"
BRUSSELSOFT = "https://www.brusselsoft.example/.well-known/csaf"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class Doc(NamedTuple):
    item_id: str
    published: str
    updated: str
    language: str | None
    cves: list[str]  # the first ones, in order
    cve_count: int
    vendors: list[str]
    products: list[str]  # the first ones, in order
    cvss: tuple[str, float] | None
    url: str | None
    links: int
    category: str
    version: str


# Golden facts for every real CSAF document in ../shared/data/feeds/csaf.
DOCS: dict[str, Doc] = {
    "bsi-certbund/wid-sec-w-2025-0001.json": Doc(
        "WID-SEC-W-2025-0001",
        "2025-01-01T23:00:00+00:00",
        "2025-06-23T22:00:00+00:00",
        "de",
        ["CVE-2021-32740", "CVE-2021-41186"],
        35,
        ["IBM", "Red Hat"],
        ["Cognos Analytics", "DB2", "Spectrum Protect Plus", "Red Hat Enterprise Linux"],
        None,
        "https://wid.cert-bund.de/portal/wid/securityadvisory?name=WID-SEC-2025-0001",
        7,
        "csaf_base",
        "6",
    ),
    "cisa/icsa-24-284-13.json": Doc(
        "ICSA-24-284-13",
        "2024-10-08T00:00:00+00:00",
        "2024-10-08T00:00:00+00:00",
        "en",
        ["CVE-2024-45463", "CVE-2024-45464"],
        14,
        ["Siemens"],
        ["Tecnomatix Plant Simulation V2302", "Tecnomatix Plant Simulation V2404"],
        ("3.1", 7.8),
        f"{CISA_ICS}/icsa-24-284-13",
        9,
        "csaf_security_advisory",
        "1",
    ),
    "cisa/icsa-24-289-02.json": Doc(
        "ICSA-24-289-02",
        "2024-10-08T00:00:00+00:00",
        "2024-10-08T00:00:00+00:00",
        "en",
        ["CVE-2024-8531", "CVE-2024-8530"],
        2,
        ["Schneider Electric"],
        ["Data Center Expert"],
        ("3.1", 7.2),
        f"{CISA_ICS}/icsa-24-289-02",
        10,
        "csaf_security_advisory",
        "1.0.0",
    ),
    "cisa/icsa-24-291-03.json": Doc(
        "ICSA-24-291-03",
        "2024-10-17T06:00:00+00:00",
        "2024-10-17T06:00:00+00:00",
        "en",
        ["CVE-2024-7316"],
        1,
        ["Mitsubishi Electric"],
        ["M800VW (BND-2051W000-**)", "M800VS (BND-2052W000-**)"],
        ("3.1", 5.9),
        f"{CISA_ICS}/icsa-24-291-03",
        12,
        "csaf_security_advisory",
        "1",
    ),
    "cisa/icsa-24-296-01.json": Doc(
        "ICSA-24-296-01",
        "2024-10-22T06:00:00+00:00",
        "2024-10-22T06:00:00+00:00",
        "en",
        ["CVE-2024-7587"],
        1,
        ["ICONICS", "Mitsubishi Electric"],
        [
            "ICONICS Suite including GENESIS64, Hyper Historian, AnalytiX, and MobileHMI",
            "Mitsubishi Electric MC Works64",
        ],
        ("3.1", 7.8),
        f"{CISA_ICS}/icsa-24-296-01",
        11,
        "csaf_security_advisory",
        "1",
    ),
    "cisa/icsa-24-298-01.json": Doc(
        "ICSA-24-298-01",
        "2024-10-24T06:00:00+00:00",
        "2024-10-24T06:00:00+00:00",
        "en",
        ["CVE-2024-9692"],
        1,
        ["VIMESA"],
        ["VHF/FM Transmitter Blue Plus"],
        ("3.1", 5.3),
        f"{CISA_ICS}/icsa-24-298-01",
        12,
        "csaf_security_advisory",
        "1",
    ),
    "cisa/icsma-24-200-01.json": Doc(
        "ICSMA-24-200-01",
        "2024-07-18T06:00:00+00:00",
        "2024-07-18T06:00:00+00:00",
        "en",
        ["CVE-2020-36518", "CVE-2020-11113"],
        13,
        ["Philips"],
        ["Vue PACS"],
        ("3.1", 9.8),
        "https://www.cisa.gov/news-events/ics-medical-advisories/icsma-24-200-01",
        40,
        "csaf_security_advisory",
        "1",
    ),
    "cisa/va-24-201-01.json": Doc(
        "VA-24-201-01",
        "2024-07-19T16:00:00+00:00",
        "2024-09-18T16:00:00+00:00",
        "en",
        ["CVE-2023-45195", "CVE-2023-45196", "CVE-2023-45197"],
        3,
        ["Adminer", "AdminerEvo"],
        ["Adminer", "AdminerEvo"],
        ("3.1", 9.0),
        f"{CISA_RAW}/IT/white/2024/va-24-201-01.json",
        3,
        "csaf_vex",
        "1.0.1",
    ),
    "cisa/va-24-254-01.json": Doc(
        "VA-24-254-01",
        "2024-09-10T20:08:00+00:00",
        "2024-09-10T20:08:00+00:00",
        None,
        ["CVE-2024-45075", "CVE-2024-45076", "CVE-2024-45074"],
        3,
        ["IBM"],
        ["webMethods Integration"],
        ("3.1", 9.9),
        f"{CISA_RAW}/IT/white/2024/va-24-254-01.json",
        1,
        "csaf_vex",
        "1.0.0",
    ),
    "cisa/va-24-254-02.json": Doc(
        "VA-24-254-02",
        "2024-09-10T16:03:00+00:00",
        "2024-10-03T16:03:00+00:00",
        None,
        ["CVE-2024-45744", "CVE-2024-45745"],
        2,
        ["TopQuadrant"],
        ["TopBraid EDG"],
        ("3.1", 5.0),
        f"{CISA_RAW}/IT/white/2024/va-24-254-02.json",
        4,
        "csaf_vex",
        "1.0.1",
    ),
    "cisa/va-24-262-01.json": Doc(
        "VA-24-262-01",
        "2024-09-18T15:26:00+00:00",
        "2024-09-18T16:56:00+00:00",
        None,
        ["CVE-2024-43201"],
        1,
        ["Planet Fitness"],
        ["Planet Fitness Workouts"],
        ("3.1", 8.8),
        f"{CISA_RAW}/IT/white/2024/va-24-262-01.json",
        2,
        "csaf_vex",
        "1.0.0",
    ),
    "cisa/va-25-148-01.json": Doc(
        "VA-25-148-01",
        "2025-05-28T15:28:55+00:00",
        "2025-05-28T15:28:55+00:00",
        "en",
        ["CVE-2024-13966"],
        1,
        ["ZKTeco"],
        ["BioTime"],
        ("3.1", 7.3),
        f"{CISA_RAW}/IT/white/2025/va-25-148-01.json",
        3,
        "csaf_vex",
        "1.0.0",
    ),
    "cisco/cisco-sa-ios-xr-verii-bypass-HhPwQRvx.json": Doc(
        "cisco-sa-ios-xr-verii-bypass-HhPwQRvx",
        "2025-03-12T16:00:00+00:00",
        "2025-03-12T16:00:00+00:00",
        None,
        ["CVE-2025-20177"],
        1,
        ["Cisco"],
        ["Cisco IOS XR Software"],
        ("3.1", 6.7),
        "https://sec.cloudapps.cisco.com/security/center/content/CiscoSecurityAdvisory/"
        "cisco-sa-ios-xr-verii-bypass-HhPwQRvx",
        9,
        "csaf_security_advisory",
        "1.0.0",
    ),
    "fortinet/INVALID_csaf_apache-tika-cve-2025-54988.json": Doc(
        "FG-IR-25-771",
        "2025-10-14T00:00:00+00:00",
        "2025-10-14T00:00:00+00:00",
        None,
        ["CVE-2025-54988"],
        1,
        ["Fortinet"],
        ["FortiDLP"],
        ("3.1", 8.0),
        None,
        1,
        "Fortinet PSIRT Advisories",
        "0",
    ),
    "fortinet/csaf_authenticated-heap-overflow-in-ssl-vpn-bookmarks.json": Doc(
        "FG-IR-25-756",
        "2025-09-30T08:52:10+00:00",
        "2025-09-30T08:52:10+00:00",
        None,
        [],
        0,
        ["Fortinet"],
        ["FortiOS", "FortiPAM", "FortiProxy"],
        ("3.1", 6.7),
        None,
        0,
        "Fortinet PSIRT Advisories",
        "0",
    ),
    "microsoft/msrc_cve-2025-29795.json": Doc(
        "msrc_CVE-2025-29795",
        "2025-03-11T07:00:00+00:00",
        "2025-03-21T07:00:00+00:00",
        "en",
        ["CVE-2025-29795"],
        1,
        ["Microsoft"],
        ["Microsoft Edge Update Setup"],
        ("3.1", 7.8),
        "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2025-29795",
        4,
        "csaf_security_advisory",
        "1",
    ),
    "microsoft/msrc_cve-2025-29806.json": Doc(
        "msrc_CVE-2025-29806",
        "2025-03-11T07:00:00+00:00",
        "2025-03-21T07:00:00+00:00",
        "en",
        ["CVE-2025-29806"],
        1,
        ["Microsoft"],
        ["Microsoft Edge (Chromium-based)"],
        ("3.1", 6.5),
        "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2025-29806",
        4,
        "csaf_security_advisory",
        "1",
    ),
    "ncsc-nl/ncsc-2025-0210.json": Doc(
        "NCSC-2025-0210",
        "2025-07-03T07:43:27.075341+00:00",
        "2025-07-03T07:43:27.075341+00:00",
        "nl",
        ["CVE-2025-20309"],
        1,
        ["Cisco"],
        ["Cisco Unified Communications Manager"],
        ("3.1", 10.0),
        "https://sec.cloudapps.cisco.com/security/center/content/CiscoSecurityAdvisory/"
        "cisco-sa-cucm-ssh-m4UBdpE7",
        1,
        "csaf_security_advisory",
        "1.0.0",
    ),
    "nozominetworks/nn-2025_1-01.json": Doc(
        "NN-2025:1-01",
        "2025-06-10T11:00:00+00:00",
        "2025-06-10T11:00:00+00:00",
        "en",
        ["CVE-2024-13089"],
        1,
        ["Nozomi Networks"],
        ["Guardian", "CMC"],
        ("3.1", 7.2),
        "https://security.nozominetworks.com/NN-2025:1-01",
        2,
        "csaf_vex",
        "1",
    ),
    "oasis-examples/2022-evd-uc-01-a-001.json": Doc(
        "2022-EVD-UC-01-A-001",
        "2022-03-03T11:00:00+00:00",
        "2022-03-03T11:00:00+00:00",
        None,
        ["CVE-2021-44228"],
        1,
        ["Example Company"],
        ["DEF"],
        None,
        None,
        0,
        "csaf_vex",
        "1",
    ),
    "oasis-examples/bsi-2022-0001.json": Doc(
        "BSI-2022-0001",
        "2022-03-17T13:03:42.105+00:00",
        "2022-03-17T13:03:42.105+00:00",
        "en",
        ["CVE-2022-27193"],
        1,
        ["CSAF Tools"],
        ["CVRF-CSAF-Converter"],
        ("3.1", 6.1),
        None,
        0,
        "csaf_security_advisory",
        "1",
    ),
    "oasis-examples/cisco-sa-20180328-smi2.json": Doc(
        "cisco-sa-20180328-smi2",
        "2018-03-28T16:00:00+00:00",
        "2018-04-17T15:08:41+00:00",
        None,
        ["CVE-2018-0171"],
        1,
        ["Cisco"],
        ["IOS", "Cisco IOS XE Software"],
        ("3.0", 9.8),
        "https://tools.cisco.com/security/center/content/CiscoSecurityAdvisory/"
        "cisco-sa-20180328-smi2",
        2,
        "Cisco Security Advisory",
        "3.0.0",
    ),
    "oasis-examples/rhsa-2019_1862.json": Doc(
        "RHSA-2019:1862",
        "2019-07-26T06:38:00+00:00",
        "2019-07-26T06:38:00+00:00",
        "en",
        [],
        0,
        ["Red Hat"],
        ["Red Hat OpenShift Enterprise"],
        None,
        "https://access.redhat.com/errata/RHSA-2019:1862",
        3,
        "csaf_informational_advisory",
        "1",
    ),
    "oasis-examples/rhsa-2021_5186.json": Doc(
        "RHSA-2021:5186",
        "2021-12-16T22:34:00+00:00",
        "2021-12-16T22:34:00+00:00",
        "en",
        ["CVE-2021-4104", "CVE-2021-4125"],
        2,
        ["Red Hat"],
        ["Red Hat OpenShift Enterprise", "Red Hat OpenShift Container Platform 4.6"],
        None,
        "https://access.redhat.com/errata/RHSA-2021:5186",
        13,
        "csaf_security_advisory",
        "1",
    ),
    "oasis-examples/rhsa-2022_0011.json": Doc(
        "RHSA-2022:0011",
        "2022-01-04T08:38:00+00:00",
        "2022-01-04T08:38:00+00:00",
        "en",
        ["CVE-2020-10188"],
        1,
        ["Red Hat"],
        ["Red Hat Enterprise Linux", "Red Hat Enterprise Linux Server AUS (v. 7.6)"],
        None,
        "https://access.redhat.com/errata/RHSA-2022:0011",
        4,
        "csaf_security_advisory",
        "1",
    ),
    "open-xchange/oxas-adv-2025-0001.json": Doc(
        "OXAS-ADV-2025-0001",
        "2025-01-26T23:00:00+00:00",
        "2025-04-07T00:00:00+00:00",
        "en",
        ["CVE-2024-47875", "CVE-2022-0839", "CVE-2021-23358"],
        3,
        ["Open-Xchange GmbH"],
        ["OX App Suite frontend", "OX App Suite office"],
        ("3.1", 10.0),
        f"{OX_DOCS}/appsuite/security/advisories/html/2025/oxas-adv-2025-0001.html",
        4,
        "csaf_security_advisory",
        "2",
    ),
    "open-xchange/oxdc-adv-2024-0003.json": Doc(
        "OXDC-ADV-2024-0003",
        "2024-09-09T22:00:00+00:00",
        "2024-09-10T00:00:00+00:00",
        "en",
        ["CVE-2024-23185"],
        1,
        ["Open-Xchange GmbH"],
        ["OX Dovecot Pro core"],
        ("3.1", 7.5),
        f"{OX_DOCS}/dovecot/security/advisories/html/2024/oxdc-adv-2024-0003.html",
        3,
        "csaf_security_advisory",
        "2",
    ),
    "paloalto/CVE-2025-0114.csaf.json": Doc(
        "CVE-2025-0114",
        "2025-03-12T16:00:00+00:00",
        "2025-03-14T23:40:50.397+00:00",
        None,
        ["CVE-2025-0114"],
        1,
        ["Palo Alto Networks"],
        ["PAN-OS", "Cloud NGFW", "Prisma Access"],
        ("4.0", 8.2),
        "https://security.paloaltonetworks.com/CVE-2025-0114",
        1,
        "csaf_vex",
        "1",
    ),
    "paloalto/PAN-SA-2025-0007.csaf.json": Doc(
        "PAN-SA-2025-0007",
        "2025-03-12T16:00:00+00:00",
        "2025-03-14T23:40:50.135+00:00",
        None,
        ["CVE-2025-0995", "CVE-2025-0996"],
        16,
        ["Palo Alto Networks"],
        ["Prisma Access Browser"],
        None,
        "https://security.paloaltonetworks.com/PAN-SA-2025-0007",
        16,
        "csaf_vex",
        "1",
    ),
    "redhat/rhsa-2024_6163.json": Doc(
        "RHSA-2024:6163",
        "2024-09-03T17:57:24+00:00",
        "2026-03-26T18:50:03+00:00",
        "en",
        ["CVE-2024-8088"],
        1,
        ["Red Hat"],
        ["Red Hat Enterprise Linux", "Red Hat Enterprise Linux AppStream (v. 9)"],
        ("3.1", 5.3),
        "https://access.redhat.com/errata/RHSA-2024:6163",
        13,
        "csaf_security_advisory",
        "3",
    ),
    "redhat/rhsa-2024_9371.json": Doc(
        "RHSA-2024:9371",
        "2024-11-12T09:38:54+00:00",
        "2026-03-18T02:40:17+00:00",
        "en",
        ["CVE-2024-8088"],
        1,
        ["Red Hat"],
        ["Red Hat Enterprise Linux", "Red Hat Enterprise Linux AppStream (v. 9)"],
        ("3.1", 5.3),
        "https://access.redhat.com/errata/RHSA-2024:9371",
        14,
        "csaf_security_advisory",
        "3",
    ),
    "redhat/rhsa-2025_23414.json": Doc(
        "RHSA-2025:23414",
        "2025-12-17T00:17:06+00:00",
        "2025-12-18T11:16:21+00:00",
        "en",
        ["CVE-2021-25220", "CVE-2025-40778"],
        2,
        ["Red Hat"],
        ["Red Hat Enterprise Linux"],
        ("3.1", 8.6),
        "https://access.redhat.com/errata/RHSA-2025:23414",
        11,
        "csaf_security_advisory",
        "3",
    ),
    "sick/sca-2025-0007.json": Doc(
        "SCA-2025-0007",
        "2025-06-12T13:00:00+00:00",
        "2025-06-12T13:00:00+00:00",
        "en",
        ["CVE-2025-49181", "CVE-2025-49182"],
        20,
        ["SICK AG"],
        ["Field Analytics", "Media Server"],
        ("3.1", 8.8),
        "https://www.sick.com/.well-known/csaf/white/2025/sca-2025-0007.json",
        4,
        "csaf_security_advisory",
        "1",
    ),
    "siemens/ssa-426509.json": Doc(
        "SSA-426509",
        "2024-10-08T00:00:00+00:00",
        "2025-06-17T00:00:00+00:00",
        "en",
        ["CVE-2024-47194", "CVE-2024-47195", "CVE-2024-47196"],
        3,
        ["Siemens"],
        ["ModelSim", "Questa"],
        ("3.1", 6.7),
        "https://cert-portal.siemens.com/productcert/html/ssa-426509.html",
        1,
        "csaf_security_advisory",
        "2",
    ),
    "stackable/cve-2026-42203.json": Doc(
        "CVE-2026-42203",
        "2026-07-13T09:47:31.063809+00:00",
        "2026-07-13T09:48:05.877263+00:00",
        "en",
        ["CVE-2026-42203"],
        1,
        ["Stackable"],
        ["airflow", "litellm"],
        None,
        None,
        1,
        "csaf_vex",
        "2",
    ),
    "stackable/stacksa_2024_0101_0001.json": Doc(
        "STACKSA_2024_0101_0001",
        "2024-11-11T20:20:37.462654+00:00",
        "2024-11-11T20:20:37.462654+00:00",
        "en",
        ["CVE-2023-51767"],
        1,
        ["Stackable", "rhel"],
        ["airflow", "openssh", "openssh-clients"],
        None,
        None,
        1,
        "csaf_vex",
        "1",
    ),
}


def parse_shared(read_shared, relative: str, format: str = "csaf", base_url=None):
    return parse(read_shared(f"csaf/{relative}"), format, base_url=base_url)


def only_advisory(result):
    assert len(result.advisories) == 1
    return result.advisories[0]


# ----------------------------------------------------------------------------- real documents


@shared
def test_the_golden_table_covers_every_real_csaf_document(shared_feeds):
    documents = set()
    for path in (shared_feeds / "csaf").glob("*/*.json"):
        if "document" in json.loads(path.read_bytes()):
            documents.add(path.relative_to(shared_feeds / "csaf").as_posix())
    assert documents == set(DOCS)


@shared
@pytest.mark.parametrize("relative", sorted(DOCS))
def test_real_csaf_document_golden_facts(read_shared, relative):
    expected = DOCS[relative]
    result = parse_shared(read_shared, relative)
    record = only_advisory(result)
    assert result.format == "csaf"
    assert result.title == record.title
    assert record.item_id == expected.item_id
    assert record.published == utc(expected.published)
    assert record.updated == utc(expected.updated)
    assert record.language == expected.language
    assert record.cve_ids[: len(expected.cves)] == expected.cves
    assert len(record.cve_ids) == expected.cve_count
    assert record.vendors == expected.vendors
    assert record.products[: len(expected.products)] == expected.products
    cvss = (record.cvss.version, record.cvss.score) if record.cvss else None
    assert cvss == expected.cvss
    assert record.url == expected.url
    assert len(record.links) == expected.links
    assert record.facts["category"] == expected.category
    assert record.facts["tracking_version"] == expected.version
    assert record.known_exploited is False  # none of these says "exploited in the wild"
    assert record.kind == "advisory"
    assert record.raw["document"]["tracking"]["id"] == expected.item_id


@shared
@pytest.mark.parametrize("relative", sorted(DOCS))
def test_real_csaf_document_text_is_plain_and_links_are_web_links(read_shared, relative):
    record = only_advisory(parse_shared(read_shared, relative))
    assert record.summary_text
    assert len(record.summary_text) <= 4000
    for remnant in ("**", "```", "`", "<p>", "\r", '["#'):
        assert remnant not in record.summary_text
    assert record.summary_html.startswith("<p>")
    assert all(link.startswith(("http://", "https://")) for link in record.links)
    assert record.url not in record.links
    assert len(set(record.links)) == len(record.links)
    json.dumps(record.facts)  # JSON-able
    json.dumps(record.raw)


@shared
def test_fortinet_timestamps_without_zone_are_taken_as_utc(read_shared):
    relative = "fortinet/csaf_authenticated-heap-overflow-in-ssl-vpn-bookmarks.json"
    result = parse_shared(read_shared, relative)
    record = only_advisory(result)
    assert record.published == datetime(2025, 9, 30, 8, 52, 10, tzinfo=UTC)
    assert record.facts["tracking_version"] == "0"
    assert record.facts["category"] == "Fortinet PSIRT Advisories"
    assert record.facts["remediation_categories"] == ["vendor_fix"]
    assert result.warnings == []
    assert "SSL-VPN" in record.summary_text  # from the per-vulnerability summaries


@shared
def test_fortinet_nested_vulnerabilities_are_flattened_with_a_warning(read_shared):
    relative = "fortinet/INVALID_csaf_apache-tika-cve-2025-54988.json"
    result = parse_shared(read_shared, relative)
    record = only_advisory(result)
    assert result.warnings == [
        "vulnerabilities is a nested array (not CSAF 2.0 conformant); flattened"
    ]
    assert record.cve_ids == ["CVE-2025-54988"]
    assert record.cvss.vector.startswith("CVSS:3.1/AV:L/AC:L/PR:N")
    assert record.links == ["https://www.cve.org/CVERecord?id=CVE-2025-54988"]
    assert record.facts["vulnerability_count"] == 1


@shared
@pytest.mark.parametrize(
    "relative", ["cisa/va-24-254-01.json", "cisa/va-24-254-02.json", "cisa/va-24-262-01.json"]
)
def test_cisa_vulnerability_advisories_without_lang_have_no_language(read_shared, relative):
    assert only_advisory(parse_shared(read_shared, relative)).language is None


@shared
def test_cisa_sector_lists_are_not_part_of_the_summary(read_shared):
    record = only_advisory(parse_shared(read_shared, "cisa/va-24-262-01.json"))
    assert not record.summary_text.endswith("Information Technology")


@shared
def test_cisa_prefers_its_own_page_over_the_vendors_json(read_shared):
    record = only_advisory(parse_shared(read_shared, "cisa/icsa-24-284-13.json"))
    assert record.url == f"{CISA_ICS}/icsa-24-284-13"
    assert "https://cert-portal.siemens.com/productcert/csaf/ssa-583523.json" in record.links


@shared
@pytest.mark.parametrize("relative", ["redhat/rhsa-2024_6163.json", "redhat/rhsa-2024_9371.json"])
def test_red_hat_revisions_years_later_show_in_updated(read_shared, relative):
    record = only_advisory(parse_shared(read_shared, relative))
    assert record.published.year == 2024
    assert record.updated.year == 2026
    assert record.facts["aggregate_severity"] == "Moderate"
    assert record.facts["remediation_categories"] == ["vendor_fix", "workaround"]


@shared
def test_ncsc_dutch_notes_make_the_summary(read_shared):
    record = only_advisory(parse_shared(read_shared, "ncsc-nl/ncsc-2025-0210.json"))
    assert record.language == "nl"
    assert record.summary_text.startswith("Cisco heeft een kwetsbaarheid verholpen")
    assert "Oplossingen" not in record.summary_text  # texts, not titles
    assert "NCSC-NL" not in record.summary_text  # the legal disclaimer is left out
    assert record.facts["publisher"] == "Nationaal Cyber Security Centrum"


@shared
def test_bsi_german_product_description_and_attack_notes(read_shared):
    record = only_advisory(parse_shared(read_shared, "bsi-certbund/wid-sec-w-2025-0001.json"))
    first, second = record.summary_text.split("\n\n")[:2]
    assert "Datenbanksystem" in first
    assert "Angreifer" in second
    assert record.facts["aggregate_severity"] == "hoch"
    assert record.facts["tlp"] == "WHITE"


@shared
def test_microsoft_exploit_status_no_is_not_known_exploited(read_shared):
    record = only_advisory(parse_shared(read_shared, "microsoft/msrc_cve-2025-29806.json"))
    assert record.known_exploited is False
    assert record.vendors == ["Microsoft"]  # no vendor branch: the publisher is the vendor
    assert record.facts["vendor_fix_urls"] == [
        "https://docs.microsoft.com/en-us/DeployEdge/microsoft-edge-relnotes-security"
    ]


@shared
def test_palo_alto_cvss_v4_and_per_vulnerability_summaries(read_shared):
    record = only_advisory(parse_shared(read_shared, "paloalto/CVE-2025-0114.csaf.json"))
    assert record.cvss.version == "4.0"
    assert record.cvss.severity == "HIGH"
    assert "GlobalProtect" in record.summary_text
    record = only_advisory(parse_shared(read_shared, "paloalto/PAN-SA-2025-0007.csaf.json"))
    assert "CVE-2025-0995: " in record.summary_text


@shared
def test_cisco_converted_link_remnants_are_removed(read_shared):
    record = only_advisory(
        parse_shared(read_shared, "cisco/cisco-sa-ios-xr-verii-bypass-HhPwQRvx.json")
    )
    assert '["' not in record.summary_text
    assert record.facts["publisher_namespace"] == "https://wwww.cisco.com"


@shared
def test_a_fetched_location_is_the_url_of_a_document_without_references(read_shared):
    location = "https://fortiguard.fortinet.com/psirt/csaf/FG-IR-25-756.json"
    relative = "fortinet/csaf_authenticated-heap-overflow-in-ssl-vpn-bookmarks.json"
    record = only_advisory(parse_shared(read_shared, relative, base_url=location))
    assert record.url == location


# ----------------------------------------------------------------------------- real ROLIE feeds


@shared
@pytest.mark.parametrize(
    ("relative", "count", "first_id", "first_updated", "title"),
    [
        (
            "cisa/cisa-csaf-it-feed-tlp-white.json",
            4,
            "VA-24-254-02",
            "2024-10-03T16:03:00+00:00",
            "CISA CSAF IT feed (TLP:WHITE)",
        ),
        (
            "cisa/cisa-csaf-it-feed-tlp-white-2025-06.json",
            18,
            "VA-25-136-01",
            "2025-06-16T00:00:00+00:00",
            "CISA CSAF IT feed (TLP:WHITE)",
        ),
        (
            "cisa/cisa-csaf-ot-feed-tlp-white.json",
            2379,
            "ICSA-24-298-03",
            "2024-10-24T06:00:00+00:00",
            "CISA CSAF OT feed (TLP:WHITE)",
        ),
        (
            "sick/csaf-feed-tlp-white.json",
            1,
            "SCA-2025-0007",
            "2025-06-12T13:00:00+00:00",
            "CSAF feed (TLP:WHITE)",
        ),
        (
            "siemens/ssa-feed-tlp-white.json",
            1,
            "SSA-426509",
            "2025-06-17T00:00:00+00:00",
            "Siemens Security Advisories CSAF feed (TLP:WHITE)",
        ),
        (
            "oasis-examples/oasis-example-01-feed-tlp-white.json",
            1,
            "2020-ESA-001",
            "2021-01-01T12:00:00+00:00",
            "Example CSAF feed (TLP:WHITE)",
        ),
    ],
)
def test_real_rolie_feeds(read_shared, relative, count, first_id, first_updated, title):
    result = parse_shared(read_shared, relative, format="csaf-rolie")
    assert result.title == title
    assert result.warnings == []
    assert len(result.advisories) == len(result.links) == count
    stub, link = result.advisories[0], result.links[0]
    assert stub.item_id == link.item_id == first_id
    assert stub.updated == link.updated == utc(first_updated)
    assert stub.url == link.url == stub.facts["csaf_url"]
    assert link.url.endswith(".json") and link.url.startswith("https://")
    assert stub.facts["stub"] is True
    assert stub.title == link.title
    assert stub.raw["id"] == first_id
    assert len({a.item_id for a in result.advisories}) == count


@shared
def test_cisa_ot_feed_microsecond_timestamps(read_shared):
    data = read_shared("csaf/cisa/cisa-csaf-ot-feed-tlp-white.json")
    result = parse(data, "csaf-rolie")
    assert len(result.advisories) == 2379
    first = result.advisories[0]
    assert first.published == datetime(2024, 10, 24, 6, 0, tzinfo=UTC)
    assert first.url == f"{CISA_RAW}/OT/white/2024/icsa-24-298-03.json"
    assert all(a.published is not None and a.updated is not None for a in result.advisories)
    oldest = min(a.published for a in result.advisories)
    assert oldest.year == 2017


@shared
def test_rolie_stub_and_full_document_share_the_item_id(read_shared):
    feed = parse_shared(read_shared, "siemens/ssa-feed-tlp-white.json", format="csaf-rolie")
    full = only_advisory(parse_shared(read_shared, "siemens/ssa-426509.json"))
    stub = only_advisory(feed)
    assert stub.item_id == full.item_id == "SSA-426509"
    assert stub.updated == full.updated
    assert stub.summary_text.startswith("Questa and ModelSim")
    assert feed.links[0].url == "https://cert-portal.siemens.com/productcert/csaf/ssa-426509.json"


@shared
def test_sick_feed_keeps_the_pdf_but_not_hashes_or_signatures(read_shared):
    stub = only_advisory(
        parse_shared(read_shared, "sick/csaf-feed-tlp-white.json", format="csaf-rolie")
    )
    assert stub.links == ["https://www.sick.com/.well-known/csaf/white/2025/sca-2025-0007.pdf"]


# ----------------------------------------------------------------------------- real directories


@shared
@pytest.mark.parametrize(
    ("relative", "base_url", "count", "first_url", "first_id"),
    [
        (
            "bsi-certbund/index.txt",
            "https://wid.cert-bund.de/.well-known/csaf/white/index.txt",
            1,
            "https://wid.cert-bund.de/.well-known/csaf/white/2025/wid-sec-w-2025-0001.json",
            "wid-sec-w-2025-0001",
        ),
        (
            "ncsc-nl/index.txt",
            "https://advisories.ncsc.nl/csaf/v2/index.txt",
            1,
            "https://advisories.ncsc.nl/csaf/v2/2025/ncsc-2025-0210.json",
            "ncsc-2025-0210",
        ),
        (
            "cisa/IT-index.txt",
            "https://raw.githubusercontent.com/cisagov/CSAF/develop/",
            4,
            f"{CISA_RAW}/IT/white/2024/va-24-262-01.json",
            "va-24-262-01",
        ),
        (
            "stackable/index.txt",
            "https://advisories.stackable.tech/csaf/v2/advisories/index.txt",
            23,
            "https://advisories.stackable.tech/csaf/v2/advisories/2026/cve-2015-1832.json",
            "cve-2015-1832",
        ),
    ],
)
def test_real_index_txt(read_shared, relative, base_url, count, first_url, first_id):
    result = parse_shared(read_shared, relative, format="csaf-index", base_url=base_url)
    assert result.warnings == []
    assert result.advisories == []
    assert len(result.links) == count
    assert result.links[0].url == first_url
    assert result.links[0].item_id == first_id
    assert result.links[0].updated is None


@shared
def test_real_index_txt_without_base_url_keeps_relative_paths_and_says_so(read_shared):
    result = parse_shared(read_shared, "stackable/index.txt", format="csaf-index")
    assert result.links[-1].url == "2024/stacksa_2024_0089_0001.json"
    assert result.warnings == ["23 links are relative and no base_url was given"]


@shared
def test_real_cisa_changes_csv_unquoted(read_shared):
    base = "https://raw.githubusercontent.com/cisagov/CSAF/develop/"
    result = parse_shared(read_shared, "cisa/IT-changes.csv", "csaf-changes", base_url=base)
    assert result.warnings == []
    assert [link.item_id for link in result.links] == [
        "va-24-254-02",
        "va-24-262-01",
        "va-24-201-01",
        "va-24-254-01",
    ]
    assert result.links[0].updated == datetime(2024, 10, 3, 16, 3, tzinfo=UTC)
    assert result.links[0].url == f"{CISA_RAW}/IT/white/2024/va-24-254-02.json"


@shared
def test_real_stackable_changes_csv_quoted_with_a_republished_path(read_shared):
    base = "https://advisories.stackable.tech/csaf/v2/advisories/changes.csv"
    result = parse_shared(read_shared, "stackable/changes.csv", "csaf-changes", base_url=base)
    assert result.warnings == []
    assert len(result.links) == 23  # 24 rows, one path listed twice
    by_id = {link.item_id: link for link in result.links}
    assert by_id["stacksa_2024_0089_0001"].updated == datetime(2024, 11, 25, 22, 34, 25, tzinfo=UTC)
    assert by_id["cve-2026-42203"].updated == datetime(2026, 7, 13, 9, 48, 5, tzinfo=UTC)
    assert by_id["cve-2026-42203"].url == (
        "https://advisories.stackable.tech/csaf/v2/advisories/2026/cve-2026-42203.json"
    )


# ----------------------------------------------------------------------------- real metadata


@shared
def test_real_stackable_provider_metadata_points_at_its_directory(read_shared):
    result = parse_shared(read_shared, "stackable/provider-metadata.json", "csaf-provider")
    assert result.title == "Stackable Product Security Team"
    assert result.advisories == []
    assert [link.url for link in result.links] == [
        "https://advisories.stackable.tech/csaf/v2/advisories/changes.csv"
    ]


@shared
def test_real_oasis_provider_metadata_points_at_its_rolie_feed(read_shared):
    relative = "oasis-examples/oasis-example-01-provider-metadata.json"
    result = parse_shared(read_shared, relative, "csaf-provider")
    assert result.title == "Example Company ProductCERT"
    assert [link.url for link in result.links] == [
        "https://www.example.com/.well-known/csaf/feed-tlp-white.json"
    ]


@shared
def test_real_oasis_aggregator_lists_provider_metadata(read_shared):
    relative = "oasis-examples/oasis-example-01-aggregator.json"
    result = parse_shared(read_shared, relative, "csaf-provider")
    assert result.title == "Example CSAF Lister"
    assert [(link.url, link.title) for link in result.links] == [
        (
            "https://www.example.com/.well-known/csaf/provider-metadata.json",
            "Example Company ProductCERT",
        ),
        ("https://cert.example/advisories/csaf/provider-metadata.json", "Example Coordinator CERT"),
    ]
    assert result.links[1].updated == datetime(2021, 7, 12, 21, 35, 38, tzinfo=UTC)


@shared
def test_real_oasis_rolie_service_document_lists_feeds(read_shared):
    result = parse_shared(
        read_shared, "oasis-examples/oasis-example-01-service.json", "csaf-provider"
    )
    assert result.title == "Public CSAF feed"
    assert [link.url for link in result.links] == [
        "https://psirt.domain.tld/advisories/csaf/feed-tlp-white.json"
    ]


# ----------------------------------------------------------------------------- our samples


def test_sample_document_for_an_sme_product(read_fixture):
    result = parse(read_fixture("feeds/csaf/brusselsoft-bsa-2025-0042.json"), "csaf")
    record = only_advisory(result)
    assert result.warnings == []
    assert record.item_id == "BSA-2025-0042"
    assert record.published == datetime(2025, 4, 14, 7, 30, tzinfo=UTC)  # +02:00 in the file
    assert record.updated == datetime(2025, 4, 16, 15, 0, tzinfo=UTC)
    assert record.language == "nl"
    assert record.cve_ids == ["CVE-2025-41872", "CVE-2025-41873"]
    assert (record.cvss.version, record.cvss.score, record.cvss.severity) == (
        "3.1",
        9.8,
        "CRITICAL",
    )
    assert record.vendors == ["Brusselsoft"]
    assert record.products == ["FactuurPro Server", "FactuurPro Cloud"]
    assert record.known_exploited is True
    assert record.url == "https://www.brusselsoft.example/security/bsa-2025-0042"
    assert record.links == [
        f"{BRUSSELSOFT}/white/2025/bsa-2025-0042.json",
        "https://support.brusselsoft.example/factuurpro/releasenotes/7.4.2",
        "https://www.cve.org/CVERecord?id=CVE-2025-41872",
    ]  # the ftp:// reference is dropped
    assert record.summary_text.split("\n\n") == [
        "FactuurPro is een facturatie- en boekhoudpakket voor kleine ondernemingen.",
        "Een niet-geauthenticeerde aanvaller kan via het klantenportaal SQL-opdrachten "
        "uitvoeren (zie het advies).",
        "De kwetsbaarheid wordt actief misbruikt.",
    ]
    assert record.summary_html.count("<p>") == 3
    assert record.facts == {
        "category": "csaf_security_advisory",
        "csaf_version": "2.0",
        "tracking_version": "2",
        "status": "final",
        "aggregate_severity": "Kritiek",
        "publisher": "Brusselsoft PSIRT",
        "publisher_namespace": "https://www.brusselsoft.example",
        "publisher_category": "vendor",
        "tlp": "CLEAR",
        "remediation_categories": ["vendor_fix", "workaround"],
        "vendor_fix_urls": ["https://support.brusselsoft.example/downloads/factuurpro-7.4.2"],
        "vulnerability_count": 2,
    }


def load_sample(read_fixture) -> dict:
    return json.loads(read_fixture("feeds/csaf/brusselsoft-bsa-2025-0042.json"))


def parse_object(value) -> object:
    return parse(json.dumps(value).encode(), "csaf")


@pytest.mark.parametrize(
    ("details", "exploited"),
    [
        ("Publicly Disclosed:No;Exploited:Yes;Latest Software Release:Exploitation Detected", True),
        (
            "Publicly Disclosed:No;Exploited:No;Latest Software Release:Exploitation Less Likely",
            False,
        ),
        ("No publicly available exploits are known.", False),
        ("There is no evidence of active exploitation.", False),
        ("This vulnerability has not been exploited in the wild.", False),
        ("Exploitation of this vulnerability in the wild has been observed.", True),
        ("Brusselsoft is not aware of a fix. Exploitation in the wild was reported.", True),
    ],
)
def test_known_exploited_needs_an_explicit_statement(read_fixture, details, exploited):
    sample = load_sample(read_fixture)
    sample["document"]["notes"] = []
    sample["vulnerabilities"][0]["threats"] = [{"category": "exploit_status", "details": details}]
    assert only_advisory(parse_object(sample)).known_exploited is exploited


def test_possible_exploitation_wording_is_not_known_exploited(read_fixture):
    sample = load_sample(read_fixture)
    sample["document"]["notes"][2]["text"] = "If this flaw is exploited, an attacker could ..."
    sample["vulnerabilities"][0]["threats"] = []
    assert only_advisory(parse_object(sample)).known_exploited is False


def test_sample_without_references_product_tree_or_vulnerabilities(read_fixture):
    sample = load_sample(read_fixture)
    for key in ("product_tree", "vulnerabilities"):
        del sample[key]
    del sample["document"]["references"]
    record = only_advisory(parse_object(sample))
    assert record.url is None and record.links == []
    assert record.vendors == ["Brusselsoft"]  # the vendor publisher
    assert record.products == [] and record.cve_ids == [] and record.cvss is None
    assert record.facts["vulnerability_count"] == 0


def test_full_product_names_are_used_without_branches(read_fixture):
    sample = load_sample(read_fixture)
    sample["product_tree"] = {
        "full_product_names": [{"name": "KassaLink 3.1", "product_id": "KL-31"}]
    }
    assert only_advisory(parse_object(sample)).products == ["KassaLink 3.1"]


def test_cvss_v4_is_preferred_and_v2_is_read(read_fixture):
    sample = load_sample(read_fixture)
    sample["vulnerabilities"][1]["scores"] = [
        {
            "products": ["FPS-VULN"],
            "cvss_v2": {
                "version": "2.0",
                "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P",
                "baseScore": 7.5,
            },
        },
        {
            "products": ["FPS-VULN"],
            "cvss_v4": {
                "version": "4.0",
                "baseScore": 8.7,
                "vectorString": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N",
            },
        },
    ]
    cvss = only_advisory(parse_object(sample)).cvss
    assert (cvss.version, cvss.score) == ("4.0", 8.7)


def test_sample_rolie_feed_resolves_relative_links(read_fixture):
    data = read_fixture("feeds/csaf/brusselsoft-feed-tlp-clear.json")
    result = parse(data, "csaf-rolie", base_url=f"{BRUSSELSOFT}/clear/brusselsoft-feed.json")
    assert result.title == "Brusselsoft CSAF feed (TLP:CLEAR)"
    assert result.warnings == ["feed.entry[2] skipped: no id"]
    assert [(link.item_id, link.url) for link in result.links] == [
        ("BSA-2025-0042", f"{BRUSSELSOFT}/clear/2025/bsa-2025-0042.json"),
        ("BSA-2025-0017", f"{BRUSSELSOFT}/clear/2025/bsa-2025-0017.json"),  # content.src
    ]
    stub = result.advisories[0]
    assert stub.published == datetime(2025, 4, 14, 7, 30, tzinfo=UTC)
    assert stub.updated == datetime(2025, 4, 16, 15, 0, tzinfo=UTC)
    assert stub.cve_ids == ["CVE-2025-41872"]
    assert stub.summary_text.startswith("SQL injection")
    assert stub.links == ["https://www.brusselsoft.example/security/bsa-2025-0042"]
    assert stub.facts == {"stub": True, "csaf_url": f"{BRUSSELSOFT}/clear/2025/bsa-2025-0042.json"}
    assert result.advisories[1].summary_text == ""


def test_sample_rolie_feed_without_base_url_warns_about_relative_links(read_fixture):
    result = parse(read_fixture("feeds/csaf/brusselsoft-feed-tlp-clear.json"), "csaf-rolie")
    assert result.links[0].url == "2025/bsa-2025-0042.json"
    assert "2 links are relative and no base_url was given" in result.warnings


def test_sample_index_txt(read_fixture):
    result = parse(
        read_fixture("feeds/csaf/index.txt"),
        "csaf-index",
        base_url=f"{BRUSSELSOFT}/clear/index.txt",
    )
    assert [(link.item_id, link.url) for link in result.links] == [
        ("bsa-2025-0042", f"{BRUSSELSOFT}/clear/2025/bsa-2025-0042.json"),
        ("BSA-2025-0017", f"{BRUSSELSOFT}/clear/2025/BSA-2025-0017.json"),  # case kept
        ("bsa-2024-0311", f"{BRUSSELSOFT}/clear/2024/bsa-2024-0311.json"),
    ]
    assert result.warnings == ["line 6: '2024/README.md' is not a .json path; skipped"]


def test_sample_changes_csv(read_fixture):
    result = parse(
        read_fixture("feeds/csaf/changes.csv"),
        "csaf-changes",
        base_url=f"{BRUSSELSOFT}/clear/changes.csv",
    )
    assert [(link.item_id, link.updated) for link in result.links] == [
        ("bsa-2025-0042", datetime(2025, 4, 16, 15, 0, tzinfo=UTC)),  # newest of two rows
        ("bsa-2025-0017", datetime(2025, 2, 3, 10, 0, tzinfo=UTC)),
        ("bsa-2024-0299", datetime(2024, 11, 28, 7, 15, tzinfo=UTC)),
    ]
    assert result.warnings == [
        "row 4: unreadable timestamp 'not a date'; skipped",
        "row 5: expected 2 columns (path, timestamp), got 1",
    ]


def test_sample_provider_metadata(read_fixture):
    location = f"{BRUSSELSOFT}/provider-metadata.json"
    result = parse(
        read_fixture("feeds/csaf/provider-metadata.json"), "csaf-provider", base_url=location
    )
    assert result.title == "Brusselsoft PSIRT"
    assert result.advisories == []
    assert [link.url for link in result.links] == [
        f"{BRUSSELSOFT}/clear/changes.csv",
        f"{BRUSSELSOFT}/clear/brusselsoft-feed-tlp-clear.json",
    ]
    # A public service must not hold restricted advisories: the AMBER feed is skipped.
    assert result.warnings == ["ROLIE feed marked TLP:AMBER skipped (restricted)"]


# ----------------------------------------------------------------------------- malformed


def test_truncated_csaf_document_is_malformed(read_fixture):
    data = read_fixture("feeds/csaf/brusselsoft-bsa-2025-0042.json")[:700]
    with pytest.raises(MalformedDocument, match=r"^\[csaf\] invalid JSON"):
        parse(data, "csaf")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["document"]["tracking"].pop("id"), "document.tracking.id"),
        (lambda s: s["document"].update(title="  "), "document.title"),
        (lambda s: s["document"].pop("tracking"), "document.tracking.id"),
    ],
)
def test_missing_identity_is_malformed_and_named(read_fixture, mutate, field):
    sample = load_sample(read_fixture)
    mutate(sample)
    with pytest.raises(MalformedDocument, match=field.replace(".", r"\.")):
        parse_object(sample)


@pytest.mark.parametrize(
    "value", [[{"document": {}}], {"feed": {"entry": []}}, "just a string", 42]
)
def test_json_that_is_not_a_csaf_document_is_unsupported(value):
    with pytest.raises(UnsupportedDocument):
        parse(json.dumps(value).encode(), "csaf")


@pytest.mark.parametrize("format", ["csaf", "csaf-rolie", "csaf-provider"])
def test_hostile_nesting_and_bad_bytes_are_typed_errors(format):
    for data in (b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe\x00garbage", b""):
        with pytest.raises(MalformedDocument):
            parse(data, format)


def test_a_deep_product_tree_is_walked_to_the_bottom(read_fixture):
    sample = load_sample(read_fixture)
    branch: dict = {"category": "product_name", "name": "Deepest"}
    for level in range(300):
        branch = {"category": "product_family", "name": f"Level {level}", "branches": [branch]}
    sample["product_tree"] = {"branches": [branch]}
    record = only_advisory(parse_object(sample))
    assert record.products[0] == "Level 299" and record.products[-1] == "Deepest"


def test_wrong_types_inside_a_document_are_tolerated(read_fixture):
    sample = load_sample(read_fixture)
    sample["document"]["notes"] = "not a list"
    sample["document"]["references"] = [None, 7, {"url": ["x"]}]
    sample["product_tree"] = ["not", "an", "object"]
    sample["vulnerabilities"] = [None, {"cve": 12, "scores": "x", "notes": [None]}]
    result = parse_object(sample)
    record = only_advisory(result)
    assert record.item_id == "BSA-2025-0042"
    assert result.warnings == ["1 vulnerabilities entries are not objects; skipped"]


def test_rolie_feed_structure_errors():
    with pytest.raises(UnsupportedDocument, match="ROLIE"):
        parse(b'{"service": {}}', "csaf-rolie")
    with pytest.raises(MalformedDocument, match="feed.entry"):
        parse(b'{"feed": {"entry": {"id": "x"}}}', "csaf-rolie")
    empty = parse(b'{"feed": {"title": "Empty", "entry": []}}', "csaf-rolie")
    assert (empty.title, empty.advisories, empty.links) == ("Empty", [], [])


def test_rolie_entry_with_a_javascript_link_is_skipped():
    feed = {
        "feed": {
            "entry": [
                {"id": "X-1", "link": [{"rel": "self", "href": "javascript:alert(1)//.json"}]}
            ]
        }
    }
    result = parse(json.dumps(feed).encode(), "csaf-rolie", base_url="https://a.example/f.json")
    assert result.links == [] and result.advisories == []
    assert result.warnings == ["feed.entry[0] skipped: no usable CSAF document link"]


def test_index_txt_errors():
    with pytest.raises(UnsupportedDocument, match="HTML"):
        parse(b"<!doctype html><html><body>Not found</body></html>", "csaf-index")
    with pytest.raises(MalformedDocument, match="UTF-8"):
        parse(b"\xff\xfe2025/a.json", "csaf-index")
    with pytest.raises(MalformedDocument, match="no .json paths"):
        parse(b"hello\nworld\n", "csaf-index")
    assert parse(b"\n\n", "csaf-index").links == []  # an empty directory is fine


def test_index_txt_refuses_other_schemes():
    result = parse(
        b"file:///etc/passwd.json\n2025/a.json\n",
        "csaf-index",
        base_url="https://a.example/csaf/index.txt",
    )
    assert [link.url for link in result.links] == ["https://a.example/csaf/2025/a.json"]
    assert result.warnings == [
        "line 1: 'file:///etc/passwd.json' is not an http(s) location; skipped"
    ]


def test_changes_csv_errors():
    with pytest.raises(MalformedDocument, match="no valid path,timestamp rows"):
        parse(b'"path","when"\n"other","x"\n', "csaf-changes")
    assert parse(b"", "csaf-changes").links == []


def test_provider_metadata_errors():
    with pytest.raises(UnsupportedDocument, match="provider metadata"):
        parse(b'{"feed": {}}', "csaf-provider")
    result = parse(b'{"publisher": {"name": "Nobody"}, "distributions": []}', "csaf-provider")
    assert result.title == "Nobody"
    assert result.warnings == ["provider metadata names no ROLIE feed and no directory"]


@pytest.mark.parametrize("label", ["AMBER", "RED", "AMBER+STRICT"])
def test_restricted_tlp_documents_are_refused(read_fixture, label):
    doc = json.loads(read_fixture("feeds/csaf/brusselsoft-bsa-2025-0042.json"))
    doc["document"]["distribution"] = {"tlp": {"label": label}}
    with pytest.raises(UnsupportedDocument, match=re.escape(f"TLP:{label}")):
        parse(json.dumps(doc).encode(), "csaf")


def test_clear_and_white_documents_are_read(read_fixture):
    doc = json.loads(read_fixture("feeds/csaf/brusselsoft-bsa-2025-0042.json"))
    for label in ("CLEAR", "WHITE"):
        doc["document"]["distribution"] = {"tlp": {"label": label}}
        result = parse(json.dumps(doc).encode(), "csaf")
        assert result.advisories and not any("TLP" in w for w in result.warnings)


def test_green_documents_are_kept_with_a_warning(read_fixture):
    doc = json.loads(read_fixture("feeds/csaf/brusselsoft-bsa-2025-0042.json"))
    doc["document"]["distribution"] = {"tlp": {"label": "GREEN"}}
    result = parse(json.dumps(doc).encode(), "csaf")
    assert result.advisories[0].facts["tlp"] == "GREEN"
    assert any("TLP:GREEN" in warning for warning in result.warnings)
