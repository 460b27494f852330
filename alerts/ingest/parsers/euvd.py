"""ENISA EU Vulnerability Database (EUVD) API: one record or a search page.

A record (`/api/enisaid?id=EUVD-...`) or each item of a page (`/api/search`, {"items": [...],
"total": N}) becomes one AdvisoryRecord of kind "vulnerability" with the EUVD id as item_id.
EUVD has no title field: the description's first line stands in. Dates read like
"Jan 14, 2025, 9:31:47 PM" with no zone and are taken as UTC. `aliases` and `references`
are newline-separated strings. `epss` is kept as EUVD gives it (it reads as a percentage).
A page's `total` larger than its items is pagination, not a problem: no warning.
"""

from __future__ import annotations

from typing import Any

from alerts.ingest.normalize import (
    extract_cves,
    make_cvss,
    normalize_cve,
    parse_date,
    shorten,
    text_to_html,
    tidy_text,
    unique,
)
from alerts.ingest.parsers.cve import (
    as_dict,
    as_list,
    cap_names,
    headline,
    load_json,
    text_of,
    web_links,
)
from alerts.ingest.records import (
    AdvisoryRecord,
    Cvss,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

EUVD_URL = "https://euvd.enisa.europa.eu/vulnerability/{id}"


def parse(data: bytes, base_url: str | None = None) -> ParseResult:
    doc = load_json(data, "EUVD")
    result = ParseResult(format="euvd")
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        _parse_page(doc["items"], result)
    elif isinstance(doc, dict) and text_of(doc.get("id")).startswith("EUVD-"):
        result.advisories.append(_advisory(doc, result.warnings))
    elif isinstance(doc, dict) and "enisaUuid" in doc:
        raise MalformedDocument("EUVD record without an EUVD id")
    else:
        raise UnsupportedDocument("not an EUVD record or search page (no EUVD id, no items)")
    return result


def _parse_page(items: list[Any], result: ParseResult) -> None:
    for index, item in enumerate(items):
        if not text_of(as_dict(item).get("id")).startswith("EUVD-"):
            result.warnings.append(f"items[{index}]: no EUVD id, skipped")
            continue
        result.advisories.append(_advisory(item, result.warnings))


def _advisory(item: dict, warnings: list[str]) -> AdvisoryRecord:
    euvd_id = text_of(item["id"])
    text = tidy_text(text_of(item.get("description")))
    aliases = _lines(item.get("aliases"))
    facts = _facts(item, aliases)
    return AdvisoryRecord(
        item_id=euvd_id,
        title=headline(text) or euvd_id,
        summary_text=shorten(text),
        summary_html=text_to_html(shorten(text)),
        url=EUVD_URL.format(id=euvd_id),
        links=web_links(_lines(item.get("references"))),
        published=parse_date(item.get("datePublished")),
        updated=parse_date(item.get("dateUpdated")),
        language="en",
        cve_ids=_cve_ids(item, aliases, text),
        cvss=_cvss(item),
        vendors=cap_names(_names(item, "enisaIdVendor", "vendor"), euvd_id, "vendors", warnings),
        products=cap_names(
            _names(item, "enisaIdProduct", "product"), euvd_id, "products", warnings
        ),
        known_exploited=bool(facts.get("exploited")),
        kind="vulnerability",
        facts=facts,
        raw=item,
    )


def _lines(value: Any) -> list[str]:
    """A newline-separated field ("CVE-2024-56374\\nPYSEC-2025-1\\n") as a list."""
    if isinstance(value, list):
        return unique(text_of(v) for v in value)
    return unique(text_of(line) for line in str(value or "").splitlines())


def _cve_ids(item: dict, aliases: list[str], text: str) -> list[str]:
    linked = [
        text_of(as_dict(as_dict(v).get("vulnerability")).get("id"))
        for v in as_list(item.get("enisaIdVulnerability"))
    ]
    structured = [normalize_cve(a) for a in [*aliases, *linked] if a.upper().startswith("CVE-")]
    return unique([*structured, *extract_cves(text)])


def _cvss(item: dict) -> Cvss | None:
    vector = text_of(item.get("baseScoreVector"))
    score = item.get("baseScore")
    if not vector and not score:
        return None  # EUVD writes 0 (or -1) when no score is known
    return make_cvss(text_of(item.get("baseScoreVersion")), score, vector)


def _names(item: dict, field: str, key: str) -> list[str]:
    """enisaIdVendor[].vendor.name / enisaIdProduct[].product.name."""
    return unique(
        text_of(as_dict(as_dict(entry).get(key)).get("name")) for entry in as_list(item.get(field))
    )


def _facts(item: dict, aliases: list[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if aliases:
        facts["aliases"] = aliases
    if isinstance(item.get("epss"), int | float) and not isinstance(item["epss"], bool):
        facts["epss"] = item["epss"]
    if assigner := text_of(item.get("assigner")):
        facts["assigner"] = assigner
    advisories = unique(
        text_of(as_dict(as_dict(a).get("advisory")).get("id"))
        for a in as_list(item.get("enisaIdAdvisory"))
    )
    if advisories:
        facts["advisories"] = advisories
    facts.update(_exploitation(item))
    return facts


def _exploitation(item: dict) -> dict[str, Any]:
    """The exploited-vulnerabilities endpoint adds `exploitedSince` (and some views a flag)."""
    since = parse_date(item.get("exploitedSince"))
    flagged = item.get("exploited") is True or text_of(item.get("exploited")).lower() == "true"
    if not since and not flagged:
        return {}
    facts: dict[str, Any] = {"exploited": True}
    if since:
        facts["exploited_since"] = since.isoformat()
    return facts
