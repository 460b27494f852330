"""Vendor JSON APIs: Palo Alto advisory list, Cisco openVuln, MSRC /updates.

- Palo Alto (security.paloaltonetworks.com/json/?page=...): a JSON list of advisory
  summaries; one AdvisoryRecord each. Scores are CVSS 4.0 (UI "ACTIVE"/"PASSIVE", a
  threatScore) but come without a vector.
- Cisco openVuln API v2 ({"advisories": [...]}): one AdvisoryRecord each. "NA" stands for a
  missing value everywhere. productNames lists every affected release ("Cisco IOS
  12.2(4)B", thousands of them): the version is cut off to get product names. The API gives
  a CVSS base score without version or vector; Cisco scores with CVSS 3.1, so that is used.
- MSRC /updates (OData {"value": [...]}): links to the monthly CVRF documents, which the
  cvrf parser reads; no advisories here.
"""

from __future__ import annotations

import re
from typing import Any

from alerts.ingest.normalize import (
    extract_cves,
    html_to_text,
    make_cvss,
    normalize_cve,
    parse_date,
    safe_html,
    shorten,
    text_to_html,
    tidy_text,
    unique,
)
from alerts.ingest.parsers.cve import (
    as_dict,
    as_list,
    cap_names,
    is_cve_id,
    load_json,
    text_of,
    web_links,
)
from alerts.ingest.records import (
    AdvisoryRecord,
    Cvss,
    DocumentLink,
    ParseResult,
    UnsupportedDocument,
)

PALO_ALTO_URL = "https://security.paloaltonetworks.com/{id}"
PALO_ALTO = "Palo Alto Networks"
CISCO = "Cisco"
CISCO_CVSS_VERSION = "3.1"
# A release number at the end of a product name: "Cisco IOS 12.2(4)B" -> "Cisco IOS".
_TRAILING_VERSION_RE = re.compile(r"\s+\(?v?\d[\w.()\-]*\)?$")


# ----------------------------------------------------------------------------- Palo Alto


def parse_paloalto_list(data: bytes, base_url: str | None = None) -> ParseResult:
    doc = load_json(data, "Palo Alto advisory list")
    if not isinstance(doc, list):
        raise UnsupportedDocument("a Palo Alto advisory list is a JSON array of advisories")
    result = ParseResult(format="paloalto-list")
    for index, entry in enumerate(doc):
        if not text_of(as_dict(entry).get("ID")):
            result.warnings.append(f"entry [{index}]: no ID, skipped")
            continue
        result.advisories.append(_paloalto_advisory(entry))
    return result


def _paloalto_advisory(entry: dict) -> AdvisoryRecord:
    advisory_id = text_of(entry["ID"])
    title = text_of(entry.get("title")) or advisory_id
    text = shorten(_lang_values(entry.get("problem")))
    own_cve = [advisory_id.upper()] if is_cve_id(advisory_id) else []
    return AdvisoryRecord(
        item_id=advisory_id,
        title=title,
        summary_text=text,
        summary_html=text_to_html(text),
        url=PALO_ALTO_URL.format(id=advisory_id),
        published=parse_date(entry.get("date")),
        updated=parse_date(entry.get("updated")),
        language="en",
        cve_ids=unique([*own_cve, *extract_cves(title, text)]),
        cvss=_paloalto_cvss(entry),
        vendors=[PALO_ALTO],
        products=unique(text_of(p) for p in _strings(entry.get("product"))),
        facts=_paloalto_facts(entry),
        raw=entry,
    )


def _strings(value: Any) -> list[str]:
    """A list-of-strings field; a lone string counts as a list of one."""
    values = [value] if isinstance(value, str) else as_list(value)
    return [v for v in values if isinstance(v, str)]


def _lang_values(value: Any) -> str:
    """[{"lang": "en", "value": "..."}] (or a plain string) as one text."""
    if isinstance(value, str):
        return tidy_text(value)
    return tidy_text("\n\n".join(text_of(as_dict(v).get("value")) for v in as_list(value)))


def _paloalto_cvss(entry: dict) -> Cvss | None:
    # User interaction "ACTIVE"/"PASSIVE" and a threat score exist only in CVSS 4.0.
    v4 = "threatScore" in entry or text_of(entry.get("UI")).upper() in ("ACTIVE", "PASSIVE")
    return make_cvss(
        "4.0" if v4 else "3.1", entry.get("baseScore"), None, text_of(entry.get("baseSeverity"))
    )


def _paloalto_facts(entry: dict) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for key, name in (("severity", "severity"), ("threatSeverity", "threat_severity")):
        if value := text_of(entry.get(key)):
            facts[name] = value.upper()
    if isinstance(entry.get("threatScore"), int | float):
        facts["threat_score"] = entry["threatScore"]
    for key in ("product", "affected", "fixed"):  # parallel lists: "None"/"All" stay in place
        if values := [tidy_text(v) for v in _strings(entry.get(key))]:
            facts["products_listed" if key == "product" else key] = values
    return facts


# ----------------------------------------------------------------------------- Cisco


def parse_cisco_openvuln(data: bytes, base_url: str | None = None) -> ParseResult:
    doc = load_json(data, "Cisco openVuln")
    result = ParseResult(format="cisco-openvuln")
    if isinstance(doc, dict) and "errorCode" in doc and "advisories" not in doc:
        return _cisco_error(doc, result)
    if not isinstance(doc, dict) or not isinstance(doc.get("advisories"), list):
        raise UnsupportedDocument("not a Cisco openVuln answer: no 'advisories' list")
    for index, advisory in enumerate(doc["advisories"]):
        if not text_of(as_dict(advisory).get("advisoryId")):
            result.warnings.append(f"advisories[{index}]: no advisoryId, skipped")
            continue
        result.advisories.append(_cisco_advisory(advisory, result.warnings))
    return result


def _cisco_error(doc: dict, result: ParseResult) -> ParseResult:
    """openVuln answers {"errorCode": "NO_DATA_FOUND", ...} when a query matches nothing."""
    code, message = text_of(doc.get("errorCode")), text_of(doc.get("errorMessage"))
    if code.upper() != "NO_DATA_FOUND":
        raise UnsupportedDocument(f"Cisco openVuln API error {code}: {message}")
    result.warnings.append(f"Cisco openVuln: {message or 'no data found'}")
    return result


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _cisco_advisory(advisory: dict, warnings: list[str]) -> AdvisoryRecord:
    advisory_id = text_of(advisory["advisoryId"])
    title = text_of(advisory.get("advisoryTitle")) or advisory_id
    html = advisory.get("summary") if isinstance(advisory.get("summary"), str) else ""
    text = shorten(html_to_text(html))
    listed = [normalize_cve(c) for c in as_list(advisory.get("cves")) if isinstance(c, str)]
    links = web_links([advisory.get("csafUrl"), advisory.get("cvrfUrl")])
    return AdvisoryRecord(
        item_id=advisory_id,
        title=title,
        summary_text=text,
        summary_html=safe_html(html, base_url=_first(web_links([advisory.get("publicationUrl")])))
        or text_to_html(text),
        url=next(iter(web_links([advisory.get("publicationUrl")])), None),
        links=links,
        published=parse_date(advisory.get("firstPublished")),
        updated=parse_date(advisory.get("lastUpdated")),
        language="en",
        cve_ids=unique([*listed, *extract_cves(title, text)]),
        cvss=make_cvss(CISCO_CVSS_VERSION, text_of(advisory.get("cvssBaseScore")) or None),
        vendors=[CISCO],
        products=cap_names(_cisco_products(advisory), advisory_id, "products", warnings),
        facts=_cisco_facts(advisory),
        raw=advisory,
    )


def _cisco_products(advisory: dict) -> list[str]:
    names = [text_of(name) for name in as_list(advisory.get("productNames"))]
    return unique(_TRAILING_VERSION_RE.sub("", name) or name for name in names)


def _cisco_facts(advisory: dict) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for key, name in (("sir", "sir"), ("status", "status"), ("version", "version")):
        if value := text_of(advisory.get(key)):
            facts[name] = value
    for key, name in (("bugIDs", "bug_ids"), ("cwe", "cwes"), ("ipsSignatures", "ips_signatures")):
        if values := unique(text_of(v) for v in as_list(advisory.get(key))):
            facts[name] = values
    return facts


# ----------------------------------------------------------------------------- MSRC


def parse_msrc_updates(data: bytes, base_url: str | None = None) -> ParseResult:
    doc = load_json(data, "MSRC updates")
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise UnsupportedDocument("not an MSRC /updates answer: no OData 'value' list")
    result = ParseResult(format="msrc-updates")
    for index, update in enumerate(doc["value"]):
        update = as_dict(update)
        url = next(iter(web_links([update.get("CvrfUrl")])), None)
        if url is None:
            result.warnings.append(f"value[{index}]: no CvrfUrl, skipped")
            continue
        result.links.append(
            DocumentLink(
                url=url,
                updated=parse_date(update.get("CurrentReleaseDate")),
                item_id=text_of(update.get("ID")) or None,
                title=text_of(update.get("DocumentTitle")) or None,
            )
        )
    return result
