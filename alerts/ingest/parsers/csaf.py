"""CSAF 2.0 documents (OASIS Common Security Advisory Framework): one JSON file -> one record.

Real publishers bend the schema, so this reads what is there instead of validating:
Fortinet writes its own category, version "0" and timestamps without a zone; one Fortinet
file nests `vulnerabilities` as an array of arrays; CISA va-* and Palo Alto omit `lang`;
Microsoft has no vendor branch in its product tree. Only a missing tracking id or title
makes a document unusable.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from alerts.ingest.normalize import (
    best_cvss,
    extract_cves,
    html_to_text,
    make_cvss,
    normalize_cve,
    parse_date,
    shorten,
    strip_markdown,
    text_to_html,
    unique,
)
from alerts.ingest.parsers.jsondoc import as_dict as _dict
from alerts.ingest.parsers.jsondoc import as_list as _list
from alerts.ingest.parsers.jsondoc import as_text as _text
from alerts.ingest.parsers.jsondoc import load_json_object
from alerts.ingest.records import (
    AdvisoryRecord,
    Cvss,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

FORMAT = "csaf"
NESTED_VULNERABILITIES_WARNING = (
    "vulnerabilities is a nested array (not CSAF 2.0 conformant); flattened"
)

_SUMMARY_CATEGORIES = {"summary", "description"}
_THIN_SUMMARY = 200  # below this many characters the document notes are boilerplate only
_MAX_VULNERABILITY_NOTES = 20
_PRODUCT_LEVEL = {"product_name", "product_family", "product"}  # "product": Fortinet
_VERSION_LEVEL = {"product_version", "product_version_range", "service_pack", "patch_level"}
_NOT_A_VENDOR = {"unknown", "n/a", "none", "other"}
_VENDOR_SUFFIX_RE = re.compile(
    r"\s+(PSIRT|ProductCERT|Product Security(?: Team)?|Security Response Center|Security Team)$",
    re.I,
)
_CVSS_KEYS = (("cvss_v4", "4.0"), ("cvss_v3", "3.1"), ("cvss_v2", "2.0"))
_FILE_SUFFIXES = (".json", ".md", ".txt", ".asc", ".sha256", ".sha512", ".pdf", ".xml")
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")
# CISA files sector/country/headquarters lists, once even as a "description" note.
_METADATA_NOTE_RE = re.compile(r"sectors|countries|headquarters", re.I)
_CODE_FENCE_RE = re.compile(r"^\s*```.*$", re.M)
# Cisco's converted links: 'the Fixed Software ["#fs"] section'
_BRACKET_LINK_RE = re.compile(r'\s*\["[^"\]]*"\]')

# Exploitation in the wild, said explicitly (English, German, Dutch, French). Conditional
# phrasing ("if this flaw is exploited") must not match, so only strong forms are listed.
_EXPLOITED_RE = re.compile(
    r"actively exploited|being exploited|known[- ]exploited|active exploitation"
    r"|exploit\w*\b[^.]{0,60}?\bin the wild|aktiv ausgenutzt|actief (?:wordt )?misbruikt"
    r"|activement exploit",
    re.I,
)
_DENIED_AFTER_RE = re.compile(
    r"^\s*:\s*(?:no|none|false)\b|\b(?:not|never|none|no)\b|niet|nicht|pas\b|aucun", re.I
)
_EXPLOITED_FLAG_RE = re.compile(r"\bexploited\s*:\s*yes\b", re.I)  # Microsoft exploit_status
_NEGATION_RE = re.compile(r"\b(no|not|never|nicht|kein\w*|geen|niet|pas|aucune?|unaware)\b", re.I)


def parse_document(data: bytes, base_url: str | None = None) -> ParseResult:
    """One CSAF 2.0 document -> a ParseResult with exactly one AdvisoryRecord."""
    root = load_json_object(data, "CSAF")
    result = ParseResult(format=FORMAT)
    _require_shareable(root, result.warnings)
    record = advisory_from_csaf(root, base_url=base_url, warnings=result.warnings)
    result.advisories.append(record)
    result.title = record.title
    return result


# Traffic Light Protocol labels this service must never hold: limited to named recipients.
# TLP:GREEN (community-wide; some vendors label their public advisories so) is kept, with a
# warning and the label in facts, so staff know not to republish its text as-is.
RESTRICTED_TLP = {"AMBER", "AMBER+STRICT", "RED"}


def tlp_label(root: dict[str, Any]) -> str:
    document = _dict(root.get("document"))
    return _text(_dict(_dict(document.get("distribution")).get("tlp")).get("label")).upper()


def _require_shareable(root: dict[str, Any], warnings: list[str]) -> None:
    label = tlp_label(root)
    if label in RESTRICTED_TLP:
        raise UnsupportedDocument(f"TLP:{label} document: restricted distribution, not stored")
    if label == "GREEN":
        warnings.append("TLP:GREEN document: community use; do not republish its text as-is")


def advisory_from_csaf(
    root: dict[str, Any], *, base_url: str | None = None, warnings: list[str] | None = None
) -> AdvisoryRecord:
    doc = root.get("document")
    if not isinstance(doc, dict):
        raise UnsupportedDocument("JSON without a CSAF 'document' object")
    tracking = _dict(doc.get("tracking"))
    item_id = _required(tracking, "id", "document.tracking.id")
    title = _required(doc, "title", "document.title")
    vulnerabilities = _vulnerabilities(root.get("vulnerabilities"), warnings)
    summary = _summary(doc, vulnerabilities)
    url, links = _url_and_links(doc, vulnerabilities, base_url)
    vendors, products = _vendors_and_products(_dict(root.get("product_tree")))
    return AdvisoryRecord(
        item_id=item_id,
        title=title,
        summary_text=summary,
        summary_html=text_to_html(summary),
        url=url,
        links=links,
        published=parse_date(tracking.get("initial_release_date")),
        updated=parse_date(tracking.get("current_release_date")),
        language=_language(doc.get("lang")),
        cve_ids=_cve_ids(vulnerabilities, title, summary),
        cvss=_best_cvss(vulnerabilities),
        vendors=vendors or _publisher_as_vendor(_dict(doc.get("publisher"))),
        products=products,
        known_exploited=_known_exploited(doc, vulnerabilities),
        facts=_facts(doc, tracking, vulnerabilities),
        raw=root,
    )


# ----------------------------------------------------------------------------- shapes


def _required(container: dict[str, Any], key: str, where: str) -> str:
    value = _text(container.get(key))
    if not value:
        raise MalformedDocument(f"CSAF document without {where}")
    return value


def _vulnerabilities(value: Any, warnings: list[str] | None) -> list[dict[str, Any]]:
    """The vulnerability objects; Fortinet's array of arrays is flattened with a warning."""
    warnings = warnings if warnings is not None else []
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append("vulnerabilities is not an array; ignored")
        return []
    if any(isinstance(item, list) for item in value):
        warnings.append(NESTED_VULNERABILITIES_WARNING)
        value = [sub for item in value for sub in (item if isinstance(item, list) else [item])]
    objects = [item for item in value if isinstance(item, dict)]
    if len(objects) < len(value):
        skipped = len(value) - len(objects)
        warnings.append(f"{skipped} vulnerabilities entries are not objects; skipped")
    return objects


# ----------------------------------------------------------------------------- text


def _plain(text: Any) -> str:
    """Note text as plain text: CSAF notes are text or Markdown, a few carry HTML."""
    value = _text(text)
    if _HTML_TAG_RE.search(value):
        value = html_to_text(value)
    value = _CODE_FENCE_RE.sub("", value).replace("`", "")
    return strip_markdown(_BRACKET_LINK_RE.sub("", value))


def _note_texts(notes: Any, categories: set[str], *, titled: bool = False) -> list[str]:
    texts = []
    for note in map(_dict, _list(notes)):
        title = _text(note.get("title"))
        if note.get("category") in categories and not _METADATA_NOTE_RE.search(title):
            text = _plain(note.get("text"))
            texts.append(f"{title}: {text}" if titled and title and text else text)
    return texts


def _vulnerability_note_texts(vulnerabilities: list[dict[str, Any]]) -> list[str]:
    """Per-vulnerability summaries, prefixed with the CVE id when there are several."""
    several = len(vulnerabilities) > 1
    texts = []
    for vulnerability in vulnerabilities[:_MAX_VULNERABILITY_NOTES]:
        cve = normalize_cve(_text(vulnerability.get("cve")))
        for text in _note_texts(vulnerability.get("notes"), _SUMMARY_CATEGORIES):
            texts.append(f"{cve}: {text}" if several and cve and text else text)
    return texts


def _summary(doc: dict[str, Any], vulnerabilities: list[dict[str, Any]]) -> str:
    """Summary and description notes (NCSC-NL: Feiten, Interpretaties, Oplossingen; BSI:
    Produktbeschreibung, Angriff); per-vulnerability notes when those say next to nothing
    (Palo Alto's "autogenerated" line); general notes as the last resort (Microsoft)."""
    parts = _note_texts(doc.get("notes"), _SUMMARY_CATEGORIES)
    if len("".join(parts)) < _THIN_SUMMARY:
        parts += _vulnerability_note_texts(vulnerabilities)
    if not unique(parts):
        parts = _note_texts(doc.get("notes"), {"general"}, titled=True)
    return shorten("\n\n".join(unique(parts)))


def _language(value: Any) -> str | None:
    match = re.match(r"([A-Za-z]{2})(?:[-_]|$)", _text(value))
    return match.group(1).lower() if match else None


# ----------------------------------------------------------------------------- links


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


def _references(container: dict[str, Any]) -> list[tuple[str, str]]:
    """(category, url) pairs; a missing category means "external" (the schema default)."""
    pairs = []
    for reference in _list(container.get("references")):
        url = _text(_dict(reference).get("url"))
        if url and _is_http(url):
            pairs.append((_text(reference.get("category")) or "external", url))
    return pairs


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return ".".join(host.split(".")[-2:])


def _is_page(url: str) -> bool:
    return not urlsplit(url).path.lower().endswith(_FILE_SUFFIXES)


def _best_self(references: list[tuple[str, str]], home: str) -> str | None:
    """The "self" reference to show: a web page on the publisher's site beats its JSON
    (CISA lists the vendor's JSON, GitHub's JSON and its own page, all as "self")."""
    selves = [url for category, url in references if category == "self"]
    return max(selves, key=lambda u: (_site(u) == home, _is_page(u)), default=None)


def _url_and_links(
    doc: dict[str, Any], vulnerabilities: list[dict[str, Any]], base_url: str | None
) -> tuple[str | None, list[str]]:
    """The advisory's own page: a document "self" reference, else a vulnerability's "self"
    web page (Palo Alto, Nozomi), else the first external reference, else the fetched
    location."""
    references = _references(doc)
    nested = [pair for v in vulnerabilities for pair in _references(v)]
    home = _site(_text(_dict(doc.get("publisher")).get("namespace")))
    first_external = references[0][1] if references else None
    fetched = base_url if base_url and _is_http(base_url) else None
    nested_page = _best_self([(c, u) for c, u in nested if not u.lower().endswith(".json")], home)
    url = _best_self(references, home) or nested_page or first_external or fetched
    others = unique(u for _category, u in [*references, *nested])
    return url, [link for link in others if link != url]


# ----------------------------------------------------------------------------- products


def _vendor_name(name: str) -> str:
    """'Fortinet PSIRT' -> 'Fortinet', 'Microsoft Security Response Center' -> 'Microsoft'."""
    cleaned = _VENDOR_SUFFIX_RE.sub("", name.strip())
    return "" if cleaned.lower() in _NOT_A_VENDOR else cleaned


def _vendors_and_products(tree: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Vendor and product names from the branch tree, without descending into versions.
    Iterative, so a hostile nesting depth cannot exhaust the stack."""
    vendors, products = [], []
    stack = list(reversed(_list(tree.get("branches"))))
    while stack:
        branch = stack.pop()
        if not isinstance(branch, dict):
            continue
        category, name = branch.get("category"), _text(branch.get("name"))
        if category == "vendor":
            vendors.append(_vendor_name(name))
        elif category in _PRODUCT_LEVEL:
            products.append(name)
        if category not in _VERSION_LEVEL:
            stack.extend(reversed(_list(branch.get("branches"))))
    if not products:  # documents without branches name their products directly
        names = (_dict(p).get("name") for p in _list(tree.get("full_product_names")))
        products = [_text(name) for name in names]
    return unique(vendors), unique(products)


def _publisher_as_vendor(publisher: dict[str, Any]) -> list[str]:
    """A vendor publishing about its own products (Microsoft has no vendor branch)."""
    if publisher.get("category") != "vendor":
        return []
    return unique([_vendor_name(_text(publisher.get("name")))])


# ----------------------------------------------------------------------------- vulnerabilities


def _cve_ids(vulnerabilities: list[dict[str, Any]], title: str, summary: str) -> list[str]:
    structured = [normalize_cve(_text(v.get("cve"))) for v in vulnerabilities]
    return unique([*structured, *extract_cves(title, summary)])


def _best_cvss(vulnerabilities: list[dict[str, Any]]) -> Cvss | None:
    candidates = []
    for vulnerability in vulnerabilities:
        for score in _list(vulnerability.get("scores")):
            for key, default_version in _CVSS_KEYS:
                metrics = _dict(_dict(score).get(key))
                if metrics:
                    candidates.append(_cvss(metrics, default_version))
    return best_cvss(candidates)


def _cvss(metrics: dict[str, Any], default_version: str) -> Cvss | None:
    return make_cvss(
        _text(metrics.get("version")) or default_version,
        metrics.get("baseScore") if isinstance(metrics.get("baseScore"), (int, float)) else None,
        _text(metrics.get("vectorString")) or None,
        _text(metrics.get("baseSeverity")) or None,
    )


def _says_exploited(text: str) -> bool:
    if _EXPLOITED_FLAG_RE.search(text):
        return True
    for match in _EXPLOITED_RE.finditer(text):
        before = text[max(0, match.start() - 60) : match.start()].rsplit(".", 1)[-1]
        after = text[match.end() : match.end() + 80].split(".", 1)[0]
        if _NEGATION_RE.search(before + " " + match.group(0)) or _DENIED_AFTER_RE.search(after):
            continue  # "not observed", "Known exploited: No", "none known"
        return True
    return False


def _known_exploited(doc: dict[str, Any], vulnerabilities: list[dict[str, Any]]) -> bool:
    """Only an explicit statement counts: an exploit_status threat or a note saying the
    flaw is exploited in the wild (never the mere possibility of exploitation)."""
    notes = [_dict(n) for n in _list(doc.get("notes"))]
    texts = [_text(n.get("text")) for n in notes if n.get("category") != "legal_disclaimer"]
    for vulnerability in vulnerabilities:
        texts.extend(_text(_dict(n).get("text")) for n in _list(vulnerability.get("notes")))
        threats = [_dict(t) for t in _list(vulnerability.get("threats"))]
        statuses = [t for t in threats if t.get("category") == "exploit_status"]
        texts.extend(_text(t.get("details")) for t in statuses)
    return any(_says_exploited(text) for text in texts if text)


# ----------------------------------------------------------------------------- facts


def _remediations(vulnerabilities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_dict(r) for v in vulnerabilities for r in _list(v.get("remediations"))]


def _facts(
    doc: dict[str, Any], tracking: dict[str, Any], vulnerabilities: list[dict[str, Any]]
) -> dict[str, Any]:
    publisher = _dict(doc.get("publisher"))
    remediations = _remediations(vulnerabilities)
    fixes = [r for r in remediations if r.get("category") == "vendor_fix"]
    vendor_fix_urls = [u for u in unique(_text(r.get("url")) for r in fixes) if _is_http(u)]
    facts = {
        "category": _text(doc.get("category")),
        "csaf_version": _text(doc.get("csaf_version")),
        "tracking_version": _text(tracking.get("version")),
        "status": _text(tracking.get("status")),
        "aggregate_severity": _text(_dict(doc.get("aggregate_severity")).get("text")),
        "publisher": _text(publisher.get("name")),
        "publisher_namespace": _text(publisher.get("namespace")),
        "publisher_category": _text(publisher.get("category")),
        "tlp": _text(_dict(_dict(doc.get("distribution")).get("tlp")).get("label")),
        "remediation_categories": unique(_text(r.get("category")) for r in remediations),
        "vendor_fix_urls": vendor_fix_urls[:3],
        "vulnerability_count": len(vulnerabilities),
    }
    return {key: value for key, value in facts.items() if value not in ("", [], None)}
