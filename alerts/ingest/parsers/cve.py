"""CVE JSON 5.x records (cvelistV5, CVE Services API, CISA vulnrichment) and delta.json.

One record becomes one AdvisoryRecord of kind "vulnerability" whose item_id is the CVE id.
Palo Alto Networks publishes its own advisories in the same layout with ids such as
PAN-SA-2025-0007: the id is kept, CVE ids come from the text, and the kind stays "advisory".

Enrichment from ADP containers is folded in: CISA-ADP adds CVSS (Log4Shell has CVSS only
there), SSVC decisions and the KEV marker (`metrics[].other.type == "kev"`), and the CVE
Program container repeats the references.

REJECTED records are still returned, with facts {"state": "REJECTED"} and the rejection
reason as summary: the store may hold the id from when it was published, and only a record
with the same item_id lets it mark that one withdrawn instead of keeping a stale entry.

The small JSON and naming helpers at the top are shared with the nvd, euvd and vendor_json
parsers (same owner, same conventions).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from alerts.ingest.normalize import (
    best_cvss,
    extract_cves,
    make_cvss,
    normalize_cve,
    parse_date,
    safe_html,
    shorten,
    text_to_html,
    tidy_text,
    unique,
)
from alerts.ingest.parsers.jsondoc import as_dict, as_list, load_json  # noqa: F401 (re-exported)
from alerts.ingest.records import (
    AdvisoryRecord,
    Cvss,
    DocumentLink,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

CVE_ORG_URL = "https://www.cve.org/CVERecord?id={id}"
MAX_PRODUCTS = 50  # beyond this a product list is a version dump (NVD CPEs, Cisco), not names
TITLE_LIMIT = 160

_CVE_ID_RE = re.compile(r"CVE-\d{4}-\d{4,7}", re.I)
_DOUBLE_SCHEME_RE = re.compile(r"^(https?://)+(https?://)", re.I)
_MARKER_LINE_RE = re.compile(r"^\*\*[^*]+\*\*$")  # "** UNSUPPORTED WHEN ASSIGNED **"
_PLACEHOLDERS = {"", "n/a", "na", "none", "unknown", "-", "*"}
_CVSS_KEYS = ("cvssV4_0", "cvssV3_1", "cvssV3_0", "cvssV2_0")

# CPE-style tokens whose plain title-casing would read wrong ("Ibm", "Pan-os").
_KNOWN_NAMES = {
    "apache": "Apache", "atlassian": "Atlassian", "cisco": "Cisco", "citrix": "Citrix",
    "connectwise": "ConnectWise", "f5": "F5", "fortimanager": "FortiManager",
    "fortinet": "Fortinet", "fortios": "FortiOS", "fortiproxy": "FortiProxy", "hp": "HP",
    "hpe": "HPE", "ibm": "IBM", "ivanti": "Ivanti", "jetbrains": "JetBrains",
    "litespeedtech": "LiteSpeed Technologies", "log4j": "Log4j",
    "microsoft": "Microsoft", "mitsubishielectric": "Mitsubishi Electric",
    "moveit transfer": "MOVEit Transfer", "netapp": "NetApp", "pan-os": "PAN-OS",
    "paloaltonetworks": "Palo Alto Networks", "progress": "Progress", "qnap": "QNAP",
    "qts": "QTS", "rockwellautomation": "Rockwell Automation",
    "schneider-electric": "Schneider Electric", "screenconnect": "ScreenConnect",
    "sonicos": "SonicOS", "sonicwall": "SonicWall", "teamcity": "TeamCity",
    "vmware": "VMware", "wordpress": "WordPress",
}  # fmt: skip


# ----------------------------------------------------------------------------- shared


def text_of(value: Any) -> str:
    """A publisher string, tidied; placeholders such as "n/a" and "NA" become ""."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return ""
    text = tidy_text(str(value))
    return "" if text.lower() in _PLACEHOLDERS else text


def web_links(urls: list[Any]) -> list[str]:
    """http(s) URLs with a host, de-duplicated ("https://" alone is a Vulnogram leftover)."""
    kept = []
    for url in urls:
        text = _DOUBLE_SCHEME_RE.sub(r"\2", text_of(url))  # "https://https://www.ibm.com/..."
        parts = urlsplit(text)
        if parts.scheme in ("http", "https") and "." in (parts.hostname or ""):
            kept.append(text)
    return unique(kept)


def cap_names(names: list[str], item_id: str, what: str, warnings: list[str]) -> list[str]:
    """At most MAX_PRODUCTS names; say so when more were given."""
    if len(names) <= MAX_PRODUCTS:
        return names
    warnings.append(f"{item_id}: {len(names)} {what} listed, kept the first {MAX_PRODUCTS}")
    return names[:MAX_PRODUCTS]


def readable_name(token: Any) -> str | None:
    """A CPE-style name ("palo_alto", "backup_\\&_replication") as people write it."""
    text = re.sub(r"\\(.)", r"\1", text_of(token)).replace("_", " ")
    text = re.sub(r"\s+", " ", text).strip()
    if not text or text.lower() in _PLACEHOLDERS:
        return None
    if text.lower() in _KNOWN_NAMES:
        return _KNOWN_NAMES[text.lower()]
    if text != text.lower():
        return text  # the publisher chose a case: keep it
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def headline(text: str, limit: int = TITLE_LIMIT) -> str:
    """A title from a description: its first line, cut to the first sentence when long."""
    # A hard line break inside a sentence ("…prior to 9.8P19,\n9.9…") is not a line.
    joined = re.sub(r"(?<![.!?:*])\n(?!\n)", " ", tidy_text(text))
    lines = [line for line in joined.split("\n") if line]
    fallback = lines[0] if lines else ""
    first = next((line for line in lines if not _MARKER_LINE_RE.match(line)), fallback)
    if len(first) > limit:
        sentence = re.match(r"(.+?[.!?])\s", first + " ")
        if sentence and len(sentence.group(1)) <= limit:
            return sentence.group(1)
        first = first[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"
    return first


def is_cve_id(value: str) -> bool:
    return bool(_CVE_ID_RE.fullmatch(value))


def ssvc_facts(options: list[Any]) -> dict[str, str]:
    """SSVC decision points ([{"Exploitation": "active"}, ...]) as ssvc_* facts."""
    facts = {}
    for option in options:
        for key, value in as_dict(option).items():
            name = re.sub(r"(?<=[a-z])(?=[A-Z])|\s+", "_", key).lower()
            facts[f"ssvc_{name}"] = str(value).lower()
    return facts


# ----------------------------------------------------------------------------- record


def parse_record(data: bytes, base_url: str | None = None) -> ParseResult:
    """A CVE JSON 5.x record -> one AdvisoryRecord."""
    doc = load_json(data, "CVE record")
    _check_record(doc)
    result = ParseResult(format="cve")
    result.advisories.append(_advisory(doc, result.warnings))
    return result


def _check_record(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise UnsupportedDocument(f"a CVE record must be a JSON object, not {type(doc).__name__}")
    if "CVE_data_meta" in doc or doc.get("data_type") == "CVE":
        raise UnsupportedDocument("a CVE JSON 4.0 record; only CVE JSON 5.x is read")
    if doc.get("dataType") != "CVE_RECORD" and "cveMetadata" not in doc:
        raise UnsupportedDocument("JSON without cveMetadata: not a CVE JSON 5.x record")
    if not isinstance(doc.get("cveMetadata"), dict):
        raise MalformedDocument("CVE record: cveMetadata is missing or not an object")
    if not text_of(doc["cveMetadata"].get("cveId")):
        raise MalformedDocument("CVE record: cveMetadata.cveId is missing")
    if not isinstance(doc.get("containers"), dict):
        raise MalformedDocument("CVE record: containers is missing or not an object")
    if not isinstance(doc["containers"].get("cna"), dict):
        raise MalformedDocument("CVE record: containers.cna is missing or not an object")


def _advisory(doc: dict, warnings: list[str]) -> AdvisoryRecord:
    meta, cna = doc["cveMetadata"], doc["containers"]["cna"]
    adps = [a for a in as_list(doc["containers"].get("adp")) if isinstance(a, dict)]
    item_id = text_of(meta["cveId"])
    if text_of(meta.get("state")).upper() == "REJECTED":
        return _rejected(doc, item_id)
    lang, text, html = _description(as_list(cna.get("descriptions")))
    title = text_of(cna.get("title")) or headline(text) or item_id
    vendors, products = _affected(cna, adps, item_id, warnings)
    references = _reference_urls([cna, *adps])
    url = _cve_org_url(item_id) or (references[0] if references else None)
    facts = _facts(doc, [cna, *adps])
    return AdvisoryRecord(
        item_id=item_id,
        title=title,
        summary_text=shorten(text),
        summary_html=safe_html(html) if html else text_to_html(shorten(text)),
        url=url,
        links=[link for link in references if link != url],
        published=parse_date(meta.get("datePublished")) or parse_date(cna.get("datePublic")),
        updated=parse_date(meta.get("dateUpdated")) or _latest_timeline(cna),
        language=lang,
        cve_ids=_cve_ids(item_id, title, text, cna),
        cvss=best_cvss(_metrics_cvss([cna, *adps])),
        vendors=vendors,
        products=products,
        known_exploited="kev_date_added" in facts,
        kind="vulnerability" if is_cve_id(item_id) else "advisory",
        facts=facts,
        raw=doc,
    )


def _rejected(doc: dict, item_id: str) -> AdvisoryRecord:
    meta, cna = doc["cveMetadata"], doc["containers"]["cna"]
    lang, text, _ = _description(as_list(cna.get("rejectedReasons")))
    return AdvisoryRecord(
        item_id=item_id,
        title=f"Rejected: {item_id}",
        summary_text=shorten(text),
        summary_html=text_to_html(shorten(text)),
        url=_cve_org_url(item_id),
        published=parse_date(meta.get("datePublished")),
        updated=parse_date(meta.get("dateRejected")) or parse_date(meta.get("dateUpdated")),
        language=lang,
        cve_ids=[normalize_cve(item_id)] if is_cve_id(item_id) else [],
        kind="vulnerability" if is_cve_id(item_id) else "advisory",
        facts={"state": "REJECTED", **_assigner(meta)},
        raw=doc,
    )


def _cve_org_url(item_id: str) -> str | None:
    return CVE_ORG_URL.format(id=item_id.upper()) if is_cve_id(item_id) else None


def _description(entries: list[Any]) -> tuple[str | None, str, str]:
    """(language, plain text, HTML or "") of the English entry, else the first one."""
    entries = [e for e in entries if isinstance(e, dict) and text_of(e.get("value"))]
    if not entries:
        return None, "", ""
    chosen = next((e for e in entries if _is_english(e.get("lang"))), entries[0])
    html = next(
        (
            m.get("value")
            for m in as_list(chosen.get("supportingMedia"))
            if isinstance(m, dict) and m.get("type") == "text/html" and not m.get("base64")
        ),
        "",
    )
    html = html if isinstance(html, str) else ""
    return _language(chosen.get("lang")), tidy_text(chosen["value"]), html


def _is_english(lang: Any) -> bool:
    return isinstance(lang, str) and lang.lower() in ("en", "eng", "en-us", "en-gb")


def _language(lang: Any) -> str | None:
    """'en-US' -> 'en'; 'eng' (ISO 639-2, Palo Alto's solutions) -> 'en'."""
    if not isinstance(lang, str) or len(lang) < 2:
        return None
    return "en" if lang.lower() == "eng" else lang[:2].lower()


def _affected(
    cna: dict, adps: list[dict], item_id: str, warnings: list[str]
) -> tuple[list[str], list[str]]:
    """Vendors/products from the CNA; when it only says "n/a", from ADP (CPE-style names)."""
    pairs = [_vendor_product(a) for a in _entries(cna)]
    if not any(vendor or product for vendor, product in pairs):
        pairs = [
            (readable_name(a.get("vendor")), readable_name(a.get("product")))
            for adp in adps
            for a in _entries(adp)
        ]
    vendors = unique(vendor for vendor, _ in pairs)
    products = unique(product for _, product in pairs)
    return vendors, cap_names(products, item_id, "products", warnings)


def _vendor_product(entry: dict) -> tuple[str, str]:
    """CVE 5 allows a package instead of vendor/product (e.g. "packageName": "OpenSSH")."""
    product = text_of(entry.get("product")) or text_of(entry.get("packageName"))
    return text_of(entry.get("vendor")), product


def _entries(container: dict) -> list[dict]:
    return [a for a in as_list(container.get("affected")) if isinstance(a, dict)]


def _reference_urls(containers: list[dict]) -> list[str]:
    return web_links(
        [ref.get("url") for c in containers for ref in as_list(c.get("references"))
         if isinstance(ref, dict)]
    )  # fmt: skip


def _latest_timeline(cna: dict) -> datetime | None:
    times = [parse_date(as_dict(t).get("time")) for t in as_list(cna.get("timeline"))]
    return max((t for t in times if t), default=None)


def _cve_ids(item_id: str, title: str, text: str, cna: dict) -> list[str]:
    if is_cve_id(item_id):
        # A CVE record is about its own CVE; ids its text mentions ("a regression of
        # CVE-2006-5051") would wrongly merge it into other vulnerabilities.
        return [normalize_cve(item_id)]
    # Palo Alto PAN-SA advisories list their CVEs in the solutions table and references.
    solutions = [as_dict(s).get("value") for s in as_list(cna.get("solutions"))]
    refs = [f"{as_dict(r).get('name', '')} {as_dict(r).get('url', '')}"
            for r in as_list(cna.get("references"))]  # fmt: skip
    return extract_cves(title, text, *[s for s in solutions if isinstance(s, str)], *refs)


def _metrics_cvss(containers: list[dict]) -> list[Cvss | None]:
    found = []
    for container in containers:
        for metric in as_list(container.get("metrics")):
            for key in _CVSS_KEYS:
                block = as_dict(as_dict(metric).get(key))
                if block:
                    found.append(_cvss_from(key, block))
    return found


def _cvss_from(key: str, block: dict) -> Cvss | None:
    version = text_of(block.get("version")) or key.removeprefix("cvssV").replace("_", ".")
    return make_cvss(
        version, block.get("baseScore"), text_of(block.get("vectorString")),
        text_of(block.get("baseSeverity")),
    )  # fmt: skip


def _facts(doc: dict, containers: list[dict]) -> dict[str, Any]:
    meta = doc["cveMetadata"]
    facts: dict[str, Any] = {"state": text_of(meta.get("state")).upper() or "PUBLISHED"}
    facts.update(_assigner(meta))
    for container in containers:
        for metric in as_list(container.get("metrics")):
            facts.update(_other_metric(as_dict(as_dict(metric).get("other"))))
    cwes, problems = _problem_types(containers)
    if cwes:
        facts["cwes"] = cwes
    if problems:
        facts["problem_types"] = problems
    return facts


def _assigner(meta: dict) -> dict[str, str]:
    name = text_of(meta.get("assignerShortName"))
    return {"assigner": name} if name else {}


def _other_metric(other: dict) -> dict[str, Any]:
    """CISA-ADP's "other" metrics: the KEV marker and the SSVC decision."""
    content = as_dict(other.get("content"))
    kind = text_of(other.get("type")).lower()
    if kind == "kev":
        facts = {"kev_date_added": text_of(content.get("dateAdded")) or None}
        if reference := text_of(content.get("reference")):
            facts["kev_reference"] = reference
        return facts
    if kind == "ssvc":
        return ssvc_facts(as_list(content.get("options")))
    return {}


def _problem_types(containers: list[dict]) -> tuple[list[str], list[str]]:
    cwes, texts = [], []
    for container in containers:
        for problem in as_list(container.get("problemTypes")):
            for entry in as_list(as_dict(problem).get("descriptions")):
                cwes.append(text_of(as_dict(entry).get("cweId")).upper())
                texts.append(text_of(as_dict(entry).get("description")))
    return unique(cwes), unique(texts)


# ----------------------------------------------------------------------------- delta


def parse_delta(data: bytes, base_url: str | None = None) -> ParseResult:
    """cvelistV5 delta.json (or a deltaLog.json list of them) -> links to changed records."""
    doc = load_json(data, "cvelistV5 delta")
    deltas = doc if isinstance(doc, list) else [doc]
    if not deltas or not all(_is_delta(d) for d in deltas):
        raise UnsupportedDocument("not a cvelistV5 delta: expected an object with new/updated")
    result = ParseResult(format="cvelist-delta")
    for delta in deltas:
        for section in ("new", "updated"):
            _delta_links(as_list(delta.get(section)), section, result)
        for entry in as_list(delta.get("error")):
            result.warnings.append(f"cvelistV5 delta reports an error: {_error_text(entry)}")
    return result


def _is_delta(doc: Any) -> bool:
    return isinstance(doc, dict) and ("new" in doc or "updated" in doc)


def _delta_links(entries: list[Any], section: str, result: ParseResult) -> None:
    """One link per record; a record both new and updated keeps its latest dateUpdated."""
    positions = {link.url: index for index, link in enumerate(result.links)}
    for index, entry in enumerate(entries):
        entry = as_dict(entry)
        url = next(iter(web_links([entry.get("githubLink")])), None)
        if url is None:
            result.warnings.append(f"delta {section}[{index}]: no githubLink, skipped")
            continue
        link = DocumentLink(
            url=url,
            updated=parse_date(entry.get("dateUpdated")),
            item_id=text_of(entry.get("cveId")) or None,
        )
        if url not in positions:
            positions[url] = len(result.links)
            result.links.append(link)
        elif _newer(link, result.links[positions[url]]):
            result.links[positions[url]] = link


def _newer(link: DocumentLink, known: DocumentLink) -> bool:
    return link.updated is not None and (known.updated is None or link.updated > known.updated)


def _error_text(entry: Any) -> str:
    if isinstance(entry, dict):
        cve_id = text_of(entry.get("cveId"))
        detail = {k: v for k, v in entry.items() if k != "cveId"}
        return f"{cve_id or 'unknown record'}: {json.dumps(detail, ensure_ascii=False)[:300]}"
    return json.dumps(entry, ensure_ascii=False)[:300]
