"""NVD CVE API 2.0 responses: one AdvisoryRecord (kind "vulnerability") per CVE.

NVD timestamps carry no zone ("2021-12-10T10:15:09.143"); they are UTC. Vendors and
products come first from the CNA's own affected data (newer responses repeat it under
`affected[].affectedData`), then from the vulnerable CPE matches, turned into readable
names ("cpe:2.3:a:apache:log4j:..." -> "Apache" / "Log4j"). Log4Shell names 143 products in
its CPEs: lists are capped at MAX_PRODUCTS with a warning. NVD gives no title: CISA's
vulnerability name is used when the CVE is in KEV, else the description's first sentence.
"""

from __future__ import annotations

import re
from typing import Any

from alerts.ingest.normalize import (
    best_cvss,
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
    readable_name,
    ssvc_facts,
    text_of,
    web_links,
)
from alerts.ingest.records import AdvisoryRecord, Cvss, ParseResult, UnsupportedDocument

NVD_URL = "https://nvd.nist.gov/vuln/detail/{id}"
_METRIC_KEYS = ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")
_CPE_SPLIT_RE = re.compile(r"(?<!\\):")  # CPE 2.3 escapes literal colons as "\:"
_CISA_FACTS = {
    "cisaExploitAdd": "cisa_exploit_add",
    "cisaActionDue": "cisa_action_due",
    "cisaRequiredAction": "cisa_required_action",
    "cisaVulnerabilityName": "cisa_vulnerability_name",
}


def parse(data: bytes, base_url: str | None = None) -> ParseResult:
    doc = load_json(data, "NVD API")
    result = ParseResult(format="nvd")
    for index, item in enumerate(_vulnerabilities(doc)):
        cve = as_dict(as_dict(item).get("cve"))
        if not text_of(cve.get("id")):
            result.warnings.append(f"vulnerabilities[{index}]: no cve.id, skipped")
            continue
        result.advisories.append(_advisory(cve, item, result.warnings))
    return result


def _vulnerabilities(doc: Any) -> list[Any]:
    if not isinstance(doc, dict):
        raise UnsupportedDocument(f"an NVD response is a JSON object, not {type(doc).__name__}")
    if "CVE_Items" in doc:
        raise UnsupportedDocument("an NVD 1.1 JSON feed; only the CVE API 2.0 format is read")
    kind = text_of(doc.get("format"))
    listed = isinstance(doc.get("vulnerabilities"), list)
    if (kind and not kind.startswith("NVD_CVE")) or not listed:
        raise UnsupportedDocument(
            f"not an NVD CVE API 2.0 response (format {kind or 'missing'}, "
            "expected a 'vulnerabilities' list)"
        )
    return doc["vulnerabilities"]


def _advisory(cve: dict, item: Any, warnings: list[str]) -> AdvisoryRecord:
    cve_id = text_of(cve["id"])
    text = _english(as_list(cve.get("descriptions")))
    vendors, products = _names(cve)
    facts = _facts(cve)
    return AdvisoryRecord(
        item_id=cve_id,
        title=facts.get("cisa_vulnerability_name") or headline(text) or cve_id,
        summary_text=shorten(text),
        summary_html=text_to_html(shorten(text)),
        url=NVD_URL.format(id=cve_id),
        links=web_links([as_dict(r).get("url") for r in as_list(cve.get("references"))]),
        published=parse_date(cve.get("published")),
        updated=parse_date(cve.get("lastModified")),
        language="en",
        cve_ids=_cve_ids(cve_id, text, facts),
        cvss=best_cvss(_cvss(as_dict(cve.get("metrics")))),
        vendors=cap_names(vendors, cve_id, "vendors", warnings),
        products=cap_names(products, cve_id, "products", warnings),
        known_exploited="cisa_exploit_add" in facts,
        kind="vulnerability",
        facts=facts,
        raw=item,
    )


def _cve_ids(cve_id: str, text: str, facts: dict[str, Any]) -> list[str]:
    own = normalize_cve(cve_id) or cve_id
    if facts.get("vuln_status", "").lower() == "rejected":
        return [own]  # "duplicate of CVE-..." names a CVE this record is not about
    return [own]  # ids the description mentions are other vulnerabilities


def _english(descriptions: list[Any]) -> str:
    entries = [as_dict(d) for d in descriptions if text_of(as_dict(d).get("value"))]
    chosen = next((d for d in entries if str(d.get("lang", "")).lower().startswith("en")), None)
    chosen = chosen or (entries[0] if entries else {})
    return tidy_text(chosen.get("value", ""))


def _cvss(metrics: dict) -> list[Cvss | None]:
    """Per CVSS version the Primary (NVD's own) score, else the first one listed."""
    found = []
    for key in _METRIC_KEYS:
        entries = [as_dict(m) for m in as_list(metrics.get(key))]
        if entries:
            chosen = next((m for m in entries if m.get("type") == "Primary"), entries[0])
            found.append(_cvss_from(chosen))
    return found


def _cvss_from(metric: dict) -> Cvss | None:
    data = as_dict(metric.get("cvssData"))
    # CVSS v2 entries keep baseSeverity beside cvssData, not inside it.
    severity = text_of(data.get("baseSeverity")) or text_of(metric.get("baseSeverity"))
    return make_cvss(
        text_of(data.get("version")), data.get("baseScore"), text_of(data.get("vectorString")),
        severity,
    )  # fmt: skip


def _names(cve: dict) -> tuple[list[str], list[str]]:
    pairs = [
        (text_of(a.get("vendor")), text_of(a.get("product")))
        for block in as_list(cve.get("affected"))
        for a in map(as_dict, as_list(as_dict(block).get("affectedData")))
    ]
    pairs += [cpe_names(criteria) for criteria in vulnerable_cpes(cve)]
    return unique(v for v, _ in pairs), unique(p for _, p in pairs)


def vulnerable_cpes(cve: dict) -> list[str]:
    """The criteria of every cpeMatch marked vulnerable, in order, without repeats."""
    found = []
    for config in as_list(cve.get("configurations")):
        nodes = list(as_list(as_dict(config).get("nodes")))
        while nodes:
            node = as_dict(nodes.pop(0))
            nodes.extend(as_list(node.get("children")))  # 1.1-style nesting, if ever present
            for match in map(as_dict, as_list(node.get("cpeMatch"))):
                if match.get("vulnerable") is True and isinstance(match.get("criteria"), str):
                    found.append(match["criteria"])
    return unique(found)


def cpe_names(criteria: str) -> tuple[str | None, str | None]:
    """("Apache", "Log4j") for "cpe:2.3:a:apache:log4j:2.0:*:..."; (None, None) if not CPE."""
    parts = _CPE_SPLIT_RE.split(criteria)
    if len(parts) < 5 or parts[0].lower() != "cpe":
        return None, None
    return readable_name(parts[3]), readable_name(parts[4])


def _facts(cve: dict) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if status := text_of(cve.get("vulnStatus")):
        facts["vuln_status"] = status
    for key, name in _CISA_FACTS.items():
        if value := text_of(cve.get(key)):
            facts[name] = value
    if cwes := _cwes(as_list(cve.get("weaknesses"))):
        facts["cwes"] = cwes
    if tags := unique(t for block in as_list(cve.get("cveTags"))
                      for t in as_list(as_dict(block).get("tags"))):  # fmt: skip
        facts["cve_tags"] = tags
    for block in as_list(as_dict(cve.get("metrics")).get("ssvcV203")):
        facts.update(ssvc_facts(as_list(as_dict(as_dict(block).get("ssvcData")).get("options"))))
    if source := text_of(cve.get("sourceIdentifier")):
        facts["source_identifier"] = source
    return facts


def _cwes(weaknesses: list[Any]) -> list[str]:
    """CWE ids; NVD's "NVD-CWE-Other" / "NVD-CWE-noinfo" placeholders are left out."""
    values = [
        text_of(as_dict(d).get("value"))
        for w in weaknesses
        for d in as_list(as_dict(w).get("description"))
    ]
    return unique(v.upper() for v in values if v.upper().startswith("CWE-"))
