"""Known-exploited catalogues (CISA KEV, EU KEV) and EPSS scores.

Golden facts over every real snapshot in ../shared/data/feeds/{kev,epss} (read in place),
plus our own invented samples in tests/fixtures/feeds/{kev,epss} and hostile inputs.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from alerts.ingest.detect import detect_format
from alerts.ingest.parsers import parse
from alerts.ingest.parsers.epss import MAX_DECOMPRESSED_BYTES, gunzip_capped
from alerts.ingest.parsers.kev import normalize_origin, parse_cisa, parse_eu
from alerts.ingest.records import (
    HostileDocument,
    MalformedDocument,
    ParseError,
    UnsupportedDocument,
)

CISA_FULL = "kev/cisa-kev-cisagov-kev-data-2025-08-25.json"
CISA_SUBSET = "kev/kev-catalog-subset-dashboard-fixture.json"
EU_FULL = "kev/enisa-eukev-2026-08-21.json"
EU_OLD = "kev/enisa-eukev-subset.json"
SCHEMAS = ["kev/enisa-eukev-schema-v1.json", "kev/known_exploited_vulnerabilities_schema.json"]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def by_id(result):
    return {record.item_id: record for record in result.advisories}


# ============================================================================ CISA KEV (real)


@pytest.mark.shared
def test_cisa_full_catalogue_counts_and_identity(read_shared):
    result = parse(read_shared(CISA_FULL), "cisa-kev")
    assert result.format == "cisa-kev"
    assert len(result.advisories) == 1404
    assert result.warnings == []
    assert "2025.08.25" in result.title
    ids = [record.item_id for record in result.advisories]
    assert len(set(ids)) == 1404
    assert ids[0] == "CVE-2025-48384" and ids[-1] == "CVE-2020-29583"
    assert all(record.cve_ids == [record.item_id] for record in result.advisories)
    assert all(r.known_exploited and r.kind == "known-exploited" for r in result.advisories)
    assert all(record.language == "en" for record in result.advisories)


@pytest.mark.shared
def test_cisa_full_catalogue_ransomware_flags_and_date_range(read_shared):
    result = parse(read_shared(CISA_FULL), "cisa-kev")
    flags = Counter(r.facts["known_ransomware_campaign_use"] for r in result.advisories)
    assert flags == {"Unknown": 1111, "Known": 293}
    published = [record.published for record in result.advisories]
    assert min(published) == utc(2021, 11, 3) and max(published) == utc(2025, 8, 25)
    assert all(p.tzinfo == UTC and (p.hour, p.minute) == (0, 0) for p in published)


@pytest.mark.shared
def test_cisa_full_catalogue_entry_details(read_shared):
    records = by_id(parse(read_shared(CISA_FULL), "cisa-kev"))
    git = records["CVE-2025-48384"]
    assert git.vendors == ["Git"] and git.products == ["Git"]
    assert git.published == utc(2025, 8, 25)
    assert git.facts["due_date"] == "2025-09-15"
    assert git.facts["date_added"] == "2025-08-25"
    assert git.facts["cwes"] == ["CWE-59", "CWE-436"]
    assert (
        git.url
        == "https://www.cisa.gov/known-exploited-vulnerabilities-catalog?search_api_fulltext=CVE-2025-48384"
    )
    assert len(git.links) == 6
    assert "https://nvd.nist.gov/vuln/detail/CVE-2025-48384" in git.links
    assert "\n\n" in git.summary_text  # shortDescription, then requiredAction
    assert git.raw["cveID"] == "CVE-2025-48384"
    citrix = records["CVE-2024-8068"]
    assert (citrix.vendors, citrix.products) == (["Citrix"], ["Session Recording"])
    zyxel = records["CVE-2020-29583"]
    assert zyxel.vendors == ["Zyxel"] and zyxel.facts["due_date"] == "2022-05-03"


@pytest.mark.shared
def test_cisa_notes_with_semicolon_glued_to_url(read_shared):
    """ "...cve-2025-53770; https://..." — the ';' must not stay on the URL."""
    record = by_id(parse(read_shared(CISA_FULL), "cisa-kev"))["CVE-2025-53770"]
    assert record.links
    assert not any(link.endswith(";") for link in record.links)
    assert any(link.endswith("sharepoint-vulnerability-cve-2025-53770") for link in record.links)


@pytest.mark.shared
def test_cisa_dashboard_subset(read_shared):
    result = parse(read_shared(CISA_SUBSET), "cisa-kev")
    assert len(result.advisories) == 20 and result.warnings == []
    assert result.title.endswith("2026.05.01")
    records = by_id(result)
    assert [r.item_id for r in result.advisories][:2] == ["CVE-2026-31431", "CVE-2026-41940"]
    known = sorted(
        k for k, r in records.items() if r.facts["known_ransomware_campaign_use"] == "Known"
    )
    assert known == ["CVE-2023-27351", "CVE-2024-27199"]
    assert records["CVE-2024-57728"].vendors == ["SimpleHelp"]  # "SimpleHelp " trimmed
    assert records["CVE-2026-20122"].products == ["Catalyst SD-WAN Manger"]  # publisher's typo
    assert records["CVE-2009-0238"].published == utc(2026, 4, 14)
    assert records["CVE-2026-31431"].facts["due_date"] == "2026-05-15"


# ============================================================================ EU KEV (real)


@pytest.mark.shared
def test_eu_kev_current_shape(read_shared):
    result = parse(read_shared(EU_FULL), "eu-kev")
    assert len(result.advisories) == 43 and result.warnings == []
    records = by_id(result)
    assert len(records) == 43
    first = result.advisories[0]
    assert first.item_id == "CVE-2026-41679"
    assert first.published == utc(2026, 8, 17)  # "2026/08/17", year first
    assert first.facts["euvd_id"] == "EUVD-2026-25166"
    assert first.facts["patched_since"] == "2026-04-22"
    assert first.facts["cwes"] == ["CWE-287", "CWE-862", "CWE-1188"]
    assert first.url == "https://euvd.enisa.europa.eu/vulnerability/EUVD-2026-25166"
    assert all(r.known_exploited and r.kind == "known-exploited" for r in result.advisories)
    published = [r.published for r in result.advisories]
    assert min(published) == utc(2025, 1, 17) and max(published) == utc(2026, 8, 18)


@pytest.mark.shared
def test_eu_kev_origin_source_is_normalised(read_shared):
    records = by_id(parse(read_shared(EU_FULL), "eu-kev"))
    assert records["CVE-2026-73570"].raw["originSource"] == "CERT.PL"
    assert records["CVE-2026-73570"].facts["origin_source"] == "CERT-PL"
    assert records["CVE-2026-48907"].facts["origin_source"] == "CERT-PL"
    assert records["CVE-2026-1340"].raw["originSource"] == "cnw"
    assert records["CVE-2026-1340"].facts["origin_source"] == "CNW"
    origins = {r.facts["origin_source"] for r in records.values()}
    assert "cnw" not in origins and "CERT.PL" not in origins


@pytest.mark.shared
def test_eu_kev_optional_keys_and_titles(read_shared):
    records = by_id(parse(read_shared(EU_FULL), "eu-kev"))
    eternal = records["CVE-2017-0144"]
    assert eternal.title == "EternalBlue"  # the only entry with a vulnerabilityName
    assert eternal.facts["exploitation_type"] == ["ransomware"]
    assert (
        records["CVE-2023-3519"].title
        == "Citrix NetScaler ADC and NetScaler Gateway (CVE-2023-3519)"
    )
    assert records["CVE-2022-26134"].facts["threat_actors"] == ["UNC6586"]
    assert records["CVE-2022-26134"].facts["exploitation_type"] == ["APT"]
    assert records["CVE-2025-22457"].facts["cwes"] == [] and records["CVE-2025-22457"].links == []
    fortinet = records["CVE-2025-59718"]
    assert fortinet.vendors == ["Fortinet"]
    assert fortinet.products == ["FortiOS", "FortiProxy", "FortiSwitchManager"]
    assert len(fortinet.links) == 2  # notes: "url, url"
    assert records["CVE-2015-7501"].facts["euvd_id"] == "EUVD-2022-3799"


@pytest.mark.shared
def test_eu_kev_older_shape_day_first_and_placeholders(read_shared):
    result = parse(read_shared(EU_OLD), "eu-kev")
    assert len(result.advisories) == 1 and result.warnings == []
    record = result.advisories[0]
    assert record.item_id == "CVE-2024-9380"
    assert record.published == utc(2025, 1, 17)  # "17/01/25", day first
    assert record.facts["patched_since"] is None  # "tbc"
    assert record.title == "Ivanti CSA (Cloud Services Appliance) (CVE-2024-9380)"  # name "-"
    assert record.summary_text == ""  # shortDescription "-"
    assert record.facts["exploitation_type"] == [] and record.facts["threat_actors"] == []
    assert record.facts["cwes"] == [] and record.facts["notes"] is None
    assert record.facts["origin_source"] == "CNW"


@pytest.mark.shared
@pytest.mark.parametrize("relative", SCHEMAS)
def test_schema_files_are_not_data(read_shared, relative):
    data = read_shared(relative)
    with pytest.raises(UnsupportedDocument):
        detect_format(data, relative)
    for parser in (parse_cisa, parse_eu):
        with pytest.raises(UnsupportedDocument):
            parser(data)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (CISA_FULL, "cisa-kev"),
        (CISA_SUBSET, "cisa-kev"),
        (EU_FULL, "eu-kev"),
        (EU_OLD, "eu-kev"),
        ("epss/epss-api-CVE-2021-44228.json", "epss-api"),
        ("epss/epss-api-batch.json", "epss-api"),
        ("epss/epss_scores-2023-03-07-subset.csv.gz", "epss-csv"),
        ("epss/epss_scores-head-sample-2026-09-29.csv", "epss-csv"),
    ],
)
def test_real_files_are_detected(read_shared, relative, expected):
    assert detect_format(read_shared(relative), relative) == expected


# ============================================================================ KEV (own samples)


def test_cisa_sample_skips_entry_without_cve(read_fixture):
    result = parse(read_fixture("feeds/kev/cisa-kev-sample.json"), "cisa-kev")
    assert [r.item_id for r in result.advisories] == [
        "CVE-2098-41001",
        "CVE-2098-41002",
        "CVE-2097-0815",  # written "cve-2097-0815", normalised
    ]
    assert result.warnings == ["vulnerabilities[2] has no valid cveID; skipped"]
    assert result.title == "CISA Catalog of Known Exploited Vulnerabilities 2099.01.15"


def test_cisa_sample_record_fields(read_fixture):
    records = by_id(parse(read_fixture("feeds/kev/cisa-kev-sample.json"), "cisa-kev"))
    first = records["CVE-2098-41001"]
    assert first.cve_ids == ["CVE-2098-41001"]  # the chained CVE in the text is not claimed
    assert first.facts["known_ransomware_campaign_use"] == "Known"
    assert first.facts["required_action"].startswith("Apply mitigations")
    assert first.links == [
        "https://support.examplesoft.example/advisories/ESA-2099-001",
        "https://nvd.nist.gov/vuln/detail/CVE-2098-41001",
    ]
    assert first.summary_html.startswith("<p>") and "<script" not in first.summary_html
    second = records["CVE-2098-41002"]
    assert second.vendors == ["Examplesoft"]
    assert (
        second.links[0] == "https://www.cisa.gov/news-events/alerts/2099/01/14/examplesoft-guidance"
    )
    assert second.facts["cwes"] == [] and second.published == utc(2099, 1, 14)


def test_cisa_count_mismatch_is_a_warning(read_fixture):
    doc = json.loads(read_fixture("feeds/kev/cisa-kev-sample.json"))
    doc["count"] = 10
    result = parse_cisa(json.dumps(doc).encode())
    assert any("count says 10 but lists 4" in w for w in result.warnings)
    assert len(result.advisories) == 3


def test_cisa_non_object_entry_is_a_warning():
    doc = {
        "catalogVersion": "1",
        "count": 2,
        "vulnerabilities": ["oops", {"cveID": "CVE-2099-0001"}],
    }
    result = parse_cisa(json.dumps(doc).encode())
    assert [r.item_id for r in result.advisories] == ["CVE-2099-0001"]
    assert result.warnings == ["vulnerabilities[0] is not an object; skipped"]
    assert result.advisories[0].title == "CVE-2099-0001"  # no name, vendor or product


def test_eu_sample_both_shapes(read_fixture):
    result = parse(read_fixture("feeds/kev/eu-kev-sample.json"), "eu-kev")
    assert [r.item_id for r in result.advisories] == [
        "CVE-2098-52001",
        "CVE-2098-52002",
        "CVE-2098-52003",
    ]
    assert result.warnings == ["entry [3] has no valid cveID; skipped"]
    first, second, third = result.advisories
    assert first.published == utc(2099, 3, 2)
    assert first.products == ["Gateway Manager", "Gateway Appliance"]
    assert first.facts["origin_source"] == "CERT-PL"
    assert first.facts["exploitation_type"] == ["ransomware", "APT"]
    assert first.facts["threat_actors"] == ["UNC9999"]
    assert len(first.links) == 2
    assert second.title == "RelayBleed" and second.facts["patched_since"] is None
    assert second.facts["origin_source"] == "NCSC-HU"
    assert third.published == utc(2099, 1, 9)  # "09/01/99" is day-first
    assert third.title == "Contoso File Portal (CVE-2098-52003)"
    assert third.facts["patched_since"] is None and third.facts["notes"] is None


def test_eu_unreadable_date_is_a_warning():
    doc = [{"cveID": "CVE-2099-1000", "dateReported": "sometime in March", "patchedSince": "tbc"}]
    result = parse_eu(json.dumps(doc).encode())
    assert result.advisories[0].published is None
    assert result.warnings == ["entry [0].dateReported: unreadable date 'sometime in March'"]


def test_eu_impossible_date_is_a_warning():
    doc = [{"cveID": "CVE-2099-1000", "dateReported": "2099/02/30"}]
    result = parse_eu(json.dumps(doc).encode())
    assert result.advisories[0].published is None
    assert len(result.warnings) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cnw", "CNW"),
        ("CERT.PL", "CERT-PL"),
        ("CERT-PL", "CERT-PL"),
        ("NCSC HU", "NCSC-HU"),
        ("-", None),
        (None, None),
    ],
)
def test_normalize_origin(raw, expected):
    assert normalize_origin(raw) == expected


@pytest.mark.parametrize("parser", [parse_cisa, parse_eu])
def test_kev_invalid_json_is_malformed(parser):
    with pytest.raises(MalformedDocument, match="invalid JSON"):
        parser(b'{"catalogVersion": "2099.01.01", "vulnerabilities": [{"cveID": ')


def test_kev_wrong_shapes_are_unsupported(read_fixture):
    with pytest.raises(UnsupportedDocument):
        parse_cisa(read_fixture("feeds/kev/eu-kev-sample.json"))
    with pytest.raises(UnsupportedDocument):
        parse_eu(read_fixture("feeds/kev/cisa-kev-sample.json"))
    with pytest.raises(UnsupportedDocument):
        parse_cisa(b'"just a string"')


def test_kev_errors_carry_the_format_name():
    with pytest.raises(ParseError) as caught:
        parse(b"[1, 2", "eu-kev")
    assert str(caught.value).startswith("[eu-kev] ")


# ============================================================================ EPSS (real)


@pytest.mark.shared
def test_epss_gzip_subset(read_shared):
    result = parse(read_shared("epss/epss_scores-2023-03-07-subset.csv.gz"), "epss-csv")
    assert result.title == "EPSS v2023.03.01 2023-03-07"
    assert result.warnings == [] and result.advisories == []
    scores = {s.cve_id: s for s in result.epss}
    assert list(scores) == ["CVE-2020-5902", "CVE-2018-19571"]
    assert scores["CVE-2020-5902"].epss == pytest.approx(0.97567)
    assert scores["CVE-2020-5902"].percentile == pytest.approx(0.99995)
    assert scores["CVE-2018-19571"].epss == pytest.approx(0.00113)
    assert {s.scored_on for s in result.epss} == {date(2023, 3, 7)}


@pytest.mark.shared
def test_epss_daily_file_head(read_shared):
    result = parse(read_shared("epss/epss_scores-head-sample-2026-09-29.csv"), "epss-csv")
    assert result.title == "EPSS v2026.06.15 2026-09-29"  # from "...T12:00:22Z"
    assert len(result.epss) == 49 and result.warnings == []
    scores = {s.cve_id: s for s in result.epss}
    assert result.epss[0].cve_id == "CVE-1999-0001" and result.epss[-1].cve_id == "CVE-1999-0050"
    assert scores["CVE-1999-0001"].epss == pytest.approx(0.03351)
    assert scores["CVE-1999-0002"].percentile == pytest.approx(0.98037)
    assert scores["CVE-1999-0050"].epss == pytest.approx(0.01237)
    assert {s.scored_on for s in result.epss} == {date(2026, 9, 29)}


@pytest.mark.shared
def test_epss_api_single(read_shared):
    result = parse(read_shared("epss/epss-api-CVE-2021-44228.json"), "epss-api")
    assert len(result.epss) == 1 and result.warnings == []
    score = result.epss[0]
    assert score.cve_id == "CVE-2021-44228"
    assert score.epss == pytest.approx(0.99999) and score.percentile == pytest.approx(1.0)
    assert score.scored_on == date(2026, 7, 5)


@pytest.mark.shared
def test_epss_api_batch_quoted_numbers(read_shared):
    result = parse(read_shared("epss/epss-api-batch.json"), "epss-api")
    scores = {s.cve_id: s for s in result.epss}
    assert list(scores) == ["CVE-2024-3094", "CVE-2024-21413"]
    assert isinstance(scores["CVE-2024-3094"].epss, float)
    assert scores["CVE-2024-3094"].epss == pytest.approx(0.84588)
    assert scores["CVE-2024-21413"].percentile == pytest.approx(0.99783)
    assert {s.scored_on for s in result.epss} == {date(2026, 5, 1)}


# ============================================================================ EPSS (own samples)


def test_epss_sample_bad_rows_are_warnings(read_fixture):
    result = parse(read_fixture("feeds/epss/epss-sample.csv"), "epss-csv")
    assert [s.cve_id for s in result.epss] == [
        "CVE-2098-41001",
        "CVE-2098-41002",
        "CVE-2097-0815",
        "CVE-2097-0819",
    ]
    assert len(result.warnings) == 4
    assert result.warnings[0].startswith("line 6: ")  # "not-a-cve"
    assert all(w.startswith("line ") for w in result.warnings)
    assert result.title == "EPSS v2099.01.01 2099-01-20"


def test_epss_gzip_and_plain_agree(read_fixture):
    plain = read_fixture("feeds/epss/epss-sample.csv")
    assert parse(gzip.compress(plain), "epss-csv").epss == parse(plain, "epss-csv").epss


def test_epss_without_comment_line_or_percentile():
    result = parse(b"cve,epss\r\nCVE-2099-0001,0.5\r\n", "epss-csv")
    assert result.title == "EPSS"
    assert result.epss[0].percentile is None and result.epss[0].scored_on is None


def test_epss_without_header_is_malformed():
    with pytest.raises(MalformedDocument, match="header"):
        parse(b"#model_version:v1,score_date:2099-01-01\nCVE-2099-0001,0.5,0.5\n", "epss-csv")
    with pytest.raises(MalformedDocument, match="header"):
        parse(b"#model_version:v1\n", "epss-csv")


def test_epss_truncated_gzip_is_malformed(read_fixture):
    packed = gzip.compress(read_fixture("feeds/epss/epss-sample.csv"))
    with pytest.raises(MalformedDocument, match="gzip"):
        parse(packed[: len(packed) // 2], "epss-csv")


def _gzip_bomb(size: int) -> bytes:
    """`size` bytes of zeros, gzip-compressed in chunks (about 1000:1)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as handle:
        chunk = b"0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            handle.write(chunk)
    return out.getvalue()


def test_epss_gzip_bomb_is_hostile():
    bomb = _gzip_bomb(MAX_DECOMPRESSED_BYTES + 2 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024  # small on the wire
    with pytest.raises(HostileDocument, match="bomb"):
        parse(bomb, "epss-csv")


def test_gunzip_cap_is_exact():
    data = b"x" * 1000
    assert gunzip_capped(gzip.compress(data), limit=1000) == data
    with pytest.raises(HostileDocument):
        gunzip_capped(gzip.compress(data), limit=999)
    with pytest.raises(MalformedDocument):
        gunzip_capped(b"\x1f\x8b" + zlib.compress(b"not gzip"))


def test_epss_full_size_daily_file():
    rows = "\n".join(
        f"CVE-{2000 + i % 26}-{i:05d},0.{i % 99991:05d},0.{i % 9973:05d}" for i in range(300_000)
    )
    data = gzip.compress(
        f"#model_version:v2099.01.01,score_date:2099-01-01\ncve,epss,percentile\n{rows}\n".encode()
    )
    result = parse(data, "epss-csv")
    assert len(result.epss) == 300_000 and result.warnings == []


def test_epss_many_bad_rows_are_summarised():
    data = "cve,epss,percentile\n" + "bad,row,here\n" * 50
    result = parse(data.encode(), "epss-csv")
    assert result.epss == []
    assert len(result.warnings) == 21 and result.warnings[-1].startswith("30 more")


def test_epss_api_sample_with_bad_entry(read_fixture):
    result = parse(read_fixture("feeds/epss/epss-api-sample.json"), "epss-api")
    assert [s.cve_id for s in result.epss] == ["CVE-2098-41001", "CVE-2098-41002"]
    assert result.epss[0].epss == pytest.approx(0.94411)
    assert result.epss[0].scored_on == date(2099, 1, 20)
    assert len(result.warnings) == 1 and result.warnings[0].startswith("data[2]")


def test_epss_api_error_status_is_malformed():
    body = {"status": "error", "status-code": 400, "message": "invalid cve parameter"}
    with pytest.raises(MalformedDocument, match="invalid cve parameter"):
        parse(json.dumps(body).encode(), "epss-api")


def test_epss_api_invalid_json_and_wrong_kind():
    with pytest.raises(MalformedDocument, match="invalid JSON"):
        parse(b'{"status":"OK","data":[{"cve":"CVE-2021-44228",', "epss-api")
    with pytest.raises(UnsupportedDocument):
        parse(b'{"vulnerabilities": []}', "epss-api")
    with pytest.raises(UnsupportedDocument):
        parse(b"[]", "epss-api")
