"""CVRF 1.1 (ICASI namespace: Microsoft) and 1.2 (OASIS namespace: Cisco, Fortinet) XML.

Elements are matched on local names only, so both namespace families (and documents that
mix prefixed and default namespaces, as Cisco's and Microsoft's do) read the same way.

One advisory or many records? A vendor advisory (Cisco, Fortinet) is one item, even when it
lists several vulnerabilities: its tracking id is the publisher's identity for it. Microsoft's
monthly release document is a roll-up of unrelated CVEs that MSRC publishes one page per CVE,
so it is split into one record per Vulnerability, keyed by CVE. The roll-up is recognised by
structure, not by count (a trimmed release may hold a single Vulnerability): DocumentType
"Security Update" or a tracking id shaped like a monthly release ("2024-Mar").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from alerts.ingest.normalize import (
    best_cvss,
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
from alerts.ingest.records import (
    AdvisoryRecord,
    Cvss,
    HostileDocument,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

MSRC_URL = "https://msrc.microsoft.com/update-guide/vulnerability/{cve}"
_RELEASE_ID_RE = re.compile(r"^\d{4}-[A-Za-z]{3}$")
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][\w-]*(\s[^<>]*)?/?>")
_HREF_RE = re.compile(r"""href\s*=\s*["']?(https?://[^"'\s>]+)""", re.I)
_LINK_REMNANT_RE = re.compile(r"\s*\[\"(?:https?://[^\"]*|#[^\"]*)\"\]")  # Cisco: text ["url"]
_EXPLOITED_RE = re.compile(r"exploited\s*:\s*yes|^\s*(actively\s+)?exploited\b(?!\s*:)", re.I)
_AFFECTED = {"known affected", "first affected", "last affected"}
_SEVERITY_RANK = {"low": 1, "moderate": 2, "medium": 2, "important": 3, "high": 3, "critical": 4}
_PLACEHOLDER_NOTES = {"", "none", "n/a", "-"}


def parse(data: bytes, base_url: str | None = None) -> ParseResult:
    root = _load_xml(data)
    if _local(root.tag) != "cvrfdoc":
        raise UnsupportedDocument(f"XML root is <{_local(root.tag)}>, not a CVRF <cvrfdoc>")
    result = ParseResult(format="cvrf", title=_text(_kid(root, "DocumentTitle")) or None)
    products = _product_index(_kid(root, "ProductTree"))
    vulns = _kids(root, "Vulnerability")
    if _is_release_rollup(root):
        for index, vuln in enumerate(vulns):
            record = _release_record(root, vuln, products, index, result.warnings)
            if record is not None:
                result.advisories.append(record)
    else:
        result.advisories.append(_advisory_record(root, vulns, products, base_url, result))
    return result


# ----------------------------------------------------------------------------- XML access


def _load_xml(data: bytes) -> Element:
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as error:
        raise HostileDocument(
            f"XML declares a DTD or entities ({type(error).__name__}); refused to guard against"
            " entity expansion and external entities"
        ) from None
    except ParseError as error:
        line, column = getattr(error, "position", (0, 0))
        raise MalformedDocument(f"broken XML at line {line}, column {column}: {error}") from None


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _kids(element: Element | None, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name] if element is not None else []


def _kid(element: Element | None, *path: str) -> Element | None:
    """The first element down a path of local names, or None."""
    for name in path:
        found = _kids(element, name)
        element = found[0] if found else None
    return element


def _descendants(element: Element | None, name: str) -> list[Element]:
    if element is None:
        return []
    return [node for node in element.iter() if _local(node.tag) == name]


def _text(element: Element | None) -> str:
    """An element's text on one line (values such as MSRC's exploit status wrap)."""
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


# ----------------------------------------------------------------------------- structure


def _is_release_rollup(root: Element) -> bool:
    doc_type = _text(_kid(root, "DocumentType")).lower()
    tracking_id = _text(_kid(root, "DocumentTracking", "Identification", "ID"))
    return doc_type == "security update" or bool(_RELEASE_ID_RE.match(tracking_id))


def _product_index(tree: Element | None) -> dict[str, tuple[str | None, str]]:
    """ProductID -> (vendor, readable product name) from the branch ancestry.

    The product name is the nearest "Product Name" branch (Fortinet: "FortiSIEM" above its
    version branches); without one it is the FullProductName itself (Microsoft: ".NET 8.0").
    """
    index: dict[str, tuple[str | None, str]] = {}

    def visit(node: Element, vendor: str | None, product: str | None) -> None:
        for child in node:
            name = _local(child.tag)
            if name == "FullProductName" and (pid := (child.get("ProductID") or "").strip()):
                entry = (vendor, product or _text(child))
                if pid not in index or (index[pid][0] is None and vendor):
                    index[pid] = entry
            elif name == "Branch":
                kind, label = (child.get("Type") or "").lower(), (child.get("Name") or "").strip()
                visit(
                    child,
                    label if kind == "vendor" else vendor,
                    label if kind == "product name" else product,
                )
            else:
                visit(child, vendor, product)

    if tree is not None:
        visit(tree, None, None)
    return index


def _affected_ids(vuln: Element) -> list[str]:
    ids: list[str] = []
    for status in _descendants(_kid(vuln, "ProductStatuses"), "Status"):
        if (status.get("Type") or "").lower() in _AFFECTED:
            ids.extend(_text(pid) for pid in _kids(status, "ProductID"))
    return unique(ids)


def _vendors_products(
    ids: Iterable[str], products: dict[str, tuple[str | None, str]]
) -> tuple[list[str], list[str]]:
    known = [products[pid] for pid in ids if pid in products]
    return unique(v for v, _ in known), unique(p for _, p in known)


# ----------------------------------------------------------------------------- pieces


def _notes_summary(notes: list[Element]) -> tuple[str, str]:
    """Plain text and safe HTML of the best summary note (Summary, Description, General)."""
    for wanted in ("summary", "description", "general", "details"):
        for note in notes:
            kind = (note.get("Type") or "").lower()
            title = (note.get("Title") or "").lower()
            body = "".join(note.itertext()).strip()
            if wanted in (kind, title) and body.lower() not in _PLACEHOLDER_NOTES:
                return _render(body)
    return "", ""


def _render(body: str) -> tuple[str, str]:
    if _HTML_TAG_RE.search(body):
        return shorten(html_to_text(body)), safe_html(body)
    text = shorten(tidy_text(_LINK_REMNANT_RE.sub("", body)))
    return text, text_to_html(text)


def _note_by_title(notes: list[Element], title: str) -> str | None:
    for note in notes:
        if (note.get("Title") or "").lower() == title:
            text = _text(note)
            return text if text.lower() not in _PLACEHOLDER_NOTES else None
    return None


def _cvss(vulns: Iterable[Element]) -> Cvss | None:
    found: list[Cvss | None] = []
    for vuln in vulns:
        for score_set in (n for n in vuln.iter() if _local(n.tag).startswith("ScoreSet")):
            version = _local(score_set.tag).removeprefix("ScoreSet") or None  # "V3", "V2"
            score = _first_text(score_set, "BaseScore")
            vector = _first_text(score_set, "Vector")
            found.append(make_cvss(version, score, vector))
    return best_cvss(found)


def _first_text(element: Element, prefix: str) -> str | None:
    for child in element:
        if _local(child.tag).startswith(prefix):
            return _text(child) or None
    return None


def _threats(vuln: Element, kind: str) -> list[str]:
    return unique(
        _text(_kid(threat, "Description"))
        for threat in _descendants(_kid(vuln, "Threats"), "Threat")
        if (threat.get("Type") or "").lower() == kind
    )


def _is_exploited(vuln: Element) -> bool:
    return any(_EXPLOITED_RE.search(status) for status in _threats(vuln, "exploit status"))


def _max_severity(vulns: Iterable[Element]) -> str | None:
    ratings = [s for vuln in vulns for s in _threats(vuln, "severity")]
    return max(ratings, key=lambda s: _SEVERITY_RANK.get(s.lower(), 0), default=None)


def _reference_urls(element: Element | None) -> tuple[list[str], list[str]]:
    """(self URLs, all URLs) of References under an element; HTML anchors are unwrapped."""
    own, every = [], []
    for refs in _kids(element, "References") + _kids(element, "DocumentReferences"):
        for ref in _kids(refs, "Reference"):
            url = _clean_url(_text(_kid(ref, "URL")))
            is_self = "self" in ((ref.get("Type") or "") + (refs.get("Type") or "")).lower()
            if url:
                every.append(url)
                if is_self:
                    own.append(url)
    return unique(own), unique(every)


def _clean_url(value: str) -> str | None:
    """A reference URL; Fortinet writes some as an escaped <a href="..."> anchor."""
    if match := _HREF_RE.search(value):
        return match.group(1)
    return value if value.startswith(("http://", "https://")) and " " not in value else None


def _cwes(vulns: Iterable[Element]) -> list[str]:
    return unique(
        (cwe.get("ID") or _text(cwe)).strip() for vuln in vulns for cwe in _kids(vuln, "CWE")
    )


def _revision_dates(element: Element | None) -> list[datetime]:
    history = _kid(element, "RevisionHistory")
    dates = (parse_date(_text(date)) for date in _descendants(history, "Date"))
    return sorted(d for d in dates if d is not None)


def _language(root: Element) -> str:
    lang = root.get("{http://www.w3.org/XML/1998/namespace}lang") or "en"
    return lang.split("-")[0].lower()


# ----------------------------------------------------------------------------- records


def _advisory_record(
    root: Element,
    vulns: list[Element],
    products: dict[str, tuple[str | None, str]],
    base_url: str | None,
    result: ParseResult,
) -> AdvisoryRecord:
    """One vendor advisory (Cisco, Fortinet): the whole document is one item."""
    tracking = _kid(root, "DocumentTracking")
    title = _text(_kid(root, "DocumentTitle"))
    notes = _kids(_kid(root, "DocumentNotes"), "Note")
    summary_text, summary_html = _notes_summary(notes)
    structured_cves = [normalize_cve(_text(cve)) for vuln in vulns for cve in _kids(vuln, "CVE")]
    cve_ids = unique([*structured_cves, *extract_cves(title, summary_text)])
    item_id = _text(_kid(tracking, "Identification", "ID")) or _fallback_id(cve_ids, result)
    url, links = _advisory_urls(root, vulns, base_url)
    affected = unique(pid for vuln in vulns for pid in _affected_ids(vuln)) or list(products)
    vendors, product_names = _vendors_products(affected, products)
    revisions = _revision_dates(tracking)
    return AdvisoryRecord(
        item_id=item_id,
        title=title or item_id,
        summary_text=summary_text,
        summary_html=summary_html,
        url=url,
        links=links,
        published=parse_date(_text(_kid(tracking, "InitialReleaseDate")))
        or (revisions[0] if revisions else None),
        updated=parse_date(_text(_kid(tracking, "CurrentReleaseDate")))
        or (revisions[-1] if revisions else None),
        language=_language(root),
        cve_ids=cve_ids,
        cvss=_cvss(vulns),
        vendors=vendors,
        products=product_names,
        known_exploited=any(_is_exploited(vuln) for vuln in vulns),
        facts=_advisory_facts(root, tracking, vulns, notes),
        raw=tostring(root, encoding="unicode"),
    )


def _fallback_id(cve_ids: list[str], result: ParseResult) -> str:
    if not cve_ids:
        raise MalformedDocument("CVRF document has no DocumentTracking/Identification/ID")
    result.warnings.append(f"no tracking id; the advisory is keyed by {cve_ids[0]}")
    return cve_ids[0]


def _advisory_urls(
    root: Element, vulns: list[Element], base_url: str | None
) -> tuple[str | None, list[str]]:
    doc_self, doc_all = _reference_urls(root)
    vuln_refs = [_reference_urls(vuln) for vuln in vulns]
    vuln_self = [u for own, _ in vuln_refs for u in own]
    vuln_all = [u for _, every in vuln_refs for u in every]
    candidates = [*doc_self, *doc_all, *vuln_self, *vuln_all]
    url = candidates[0] if candidates else base_url
    return url, [link for link in unique(candidates) if link != url]


def _advisory_facts(
    root: Element, tracking: Element | None, vulns: list[Element], notes: list[Element]
) -> dict[str, Any]:
    bug_ids = [_text(i) for vuln in vulns for i in _kids(vuln, "ID")]
    return {
        "document_type": _text(_kid(root, "DocumentType")) or None,
        "tracking_status": _text(_kid(tracking, "Status")) or None,
        "tracking_version": _text(_kid(tracking, "Version")) or None,
        "vulnerability_count": len(vulns),
        "max_severity": _max_severity(vulns),
        "impact": _note_by_title(notes, "impact"),
        "cwes": _cwes(vulns),
        "vulnerability_ids": unique(bug_ids),
    }


def _release_record(
    root: Element,
    vuln: Element,
    products: dict[str, tuple[str | None, str]],
    index: int,
    warnings: list[str],
) -> AdvisoryRecord | None:
    """One CVE of a Microsoft monthly release: MSRC's per-CVE page is the item."""
    cve = normalize_cve(_text(_kid(vuln, "CVE")))
    if cve is None:
        warnings.append(f"Vulnerability #{index + 1} has no CVE id; skipped")
        return None
    title = _text(_kid(vuln, "Title")) or cve
    notes = _kids(_kid(vuln, "Notes"), "Note")
    impacts, severity = _threats(vuln, "impact"), _max_severity([vuln])
    summary_text, summary_html = _notes_summary(notes)
    if not summary_text:
        summary_text, summary_html = _render(_fact_sentence(impacts, severity))
    vendors, product_names = _vendors_products(_affected_ids(vuln), products)
    url = MSRC_URL.format(cve=cve)
    revisions = _revision_dates(vuln)  # the release's own history lists only its last edit
    _, references = _reference_urls(vuln)
    return AdvisoryRecord(
        item_id=cve,
        title=title,
        summary_text=summary_text,
        summary_html=summary_html,
        url=url,
        links=[link for link in references if link != url],
        published=revisions[0] if revisions else _release_date(root, "InitialReleaseDate"),
        updated=revisions[-1] if revisions else _release_date(root, "CurrentReleaseDate"),
        language=_language(root),
        cve_ids=unique([cve, *extract_cves(title)]),
        cvss=_cvss([vuln]),
        vendors=vendors,
        products=product_names,
        known_exploited=_is_exploited(vuln),
        facts=_release_facts(root, vuln, notes, impacts, severity),
        raw=tostring(vuln, encoding="unicode"),
    )


def _release_date(root: Element, name: str) -> datetime | None:
    return parse_date(_text(_kid(root, "DocumentTracking", name)))


def _fact_sentence(impacts: list[str], severity: str | None) -> str:
    """A factual one-liner for CVEs that MSRC publishes without a description."""
    impact = f"Impact: {', '.join(impacts)}." if impacts else ""
    rating = f"Maximum severity: {severity}." if severity else ""
    return f"{impact} {rating}".strip()


def _release_facts(
    root: Element, vuln: Element, notes: list[Element], impacts: list[str], severity: str | None
) -> dict[str, Any]:
    tags = [_text(n) for n in notes if (n.get("Type") or "").lower() == "tag"]
    cnas = [_text(n) for n in notes if (n.get("Type") or "").lower() == "cna"]
    return {
        "release_id": _text(_kid(root, "DocumentTracking", "Identification", "ID")) or None,
        "release_title": _text(_kid(root, "DocumentTitle")) or None,
        "max_severity": severity,
        "impact": ", ".join(impacts) or None,
        "exploit_status": next(iter(_threats(vuln, "exploit status")), None),
        "cwes": _cwes([vuln]),
        "tags": unique(tags),
        "cna": next(iter(unique(cnas)), None),
    }
