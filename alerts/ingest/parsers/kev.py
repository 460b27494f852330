"""Known-exploited catalogues: CISA KEV (JSON object) and ENISA EU KEV (JSON array).

Each catalogue entry becomes one AdvisoryRecord of kind "known-exploited" whose item_id is
the CVE id. The entry is about that one CVE, so cve_ids holds only it: CVEs that a
description mentions (chained bugs) are not themselves asserted as exploited here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from alerts.ingest.normalize import (
    normalize_cve,
    parse_date,
    shorten,
    text_to_html,
    tidy_text,
    unique,
)
from alerts.ingest.parsers.jsondoc import load_json
from alerts.ingest.records import (
    AdvisoryRecord,
    ParseResult,
    UnsupportedDocument,
)

# The filter CISA itself uses in its links (CVE records, NVD): the plain "search" is ignored.
CISA_SEARCH_URL = (
    "https://www.cisa.gov/known-exploited-vulnerabilities-catalog?search_api_fulltext={cve}"
)
EUVD_URL = "https://euvd.enisa.europa.eu/vulnerability/{id}"

_URL_RE = re.compile(r"https?://[^\s<>\"']+")
# EU KEV dates: "2026/08/17" (current file) or "17/01/25" (older file); told apart by shape.
_YEAR_FIRST_RE = re.compile(r"^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})$")
_DAY_FIRST_RE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")
_PLACEHOLDERS = {"", "-", "--", "n/a"}
_NO_DATE = {"tbc", "tbd", "none", "unknown", "not patched"}  # "patchedSince": "tbc"


# ----------------------------------------------------------------------------- shared


def _reject_schema(doc: Any) -> None:
    if isinstance(doc, dict) and ("$schema" in doc or {"properties", "type"} <= doc.keys()):
        raise UnsupportedDocument("a JSON Schema, not a known-exploited catalogue")


def _links_in(text: str | None) -> list[str]:
    """URLs in a notes field ("a ; b", "a, b" or prose with URLs), trailing punctuation cut."""
    return unique(m.group(0).rstrip(";,.)]") for m in _URL_RE.finditer(text or ""))


def _clean(value: Any) -> str:
    """A publisher string with EU KEV's "-" style placeholders turned into ""."""
    if not isinstance(value, str):
        return ""
    text = tidy_text(value)
    return "" if text.lower() in _PLACEHOLDERS else text


def _clean_list(value: Any) -> list[str]:
    """A list field that may also arrive as a single string or a "-" placeholder."""
    items = value if isinstance(value, list) else [value]
    return unique(_clean(item) for item in items)


def _fallback_title(vendor: str, product: str, cve: str) -> str:
    """ "Ivanti CSA (CVE-2024-9380)" for entries without a vulnerabilityName."""
    name = " ".join(part for part in (vendor, product) if part)
    return f"{name} ({cve})" if name else cve


def _summary(*paragraphs: str) -> tuple[str, str]:
    text = shorten("\n\n".join(p for p in paragraphs if p))
    return text, text_to_html(text)


# ----------------------------------------------------------------------------- CISA KEV


def parse_cisa(data: bytes, base_url: str | None = None) -> ParseResult:
    """CISA's catalogue: {"title", "catalogVersion", "count", "vulnerabilities": [...]}."""
    doc = load_json(data, "known-exploited catalogue")
    _reject_schema(doc)
    if not isinstance(doc, dict) or not isinstance(doc.get("vulnerabilities"), list):
        raise UnsupportedDocument("not a CISA KEV catalogue (no 'vulnerabilities' list)")
    entries = doc["vulnerabilities"]
    result = ParseResult(format="cisa-kev", title=_catalogue_title(doc))
    for index, entry in enumerate(entries):
        record = _cisa_record(entry, index, result.warnings)
        if record is not None:
            result.advisories.append(record)
    count = doc.get("count")
    if isinstance(count, int) and count != len(entries):
        result.warnings.append(f"catalogue count says {count} but lists {len(entries)} entries")
    return result


def _catalogue_title(doc: dict) -> str:
    title = _clean(doc.get("title")) or "CISA Known Exploited Vulnerabilities"
    version = _clean(doc.get("catalogVersion"))
    return f"{title} {version}".strip()


def _entry_cve(entry: Any, where: str, warnings: list[str]) -> str | None:
    """The entry's CVE id, or None with a warning naming the entry that was skipped."""
    if not isinstance(entry, dict):
        warnings.append(f"{where} is not an object; skipped")
        return None
    cve = normalize_cve(entry.get("cveID"))
    if cve is None:
        warnings.append(f"{where} has no valid cveID; skipped")
    return cve


def _cisa_record(entry: Any, index: int, warnings: list[str]) -> AdvisoryRecord | None:
    cve = _entry_cve(entry, f"vulnerabilities[{index}]", warnings)
    if cve is None:
        return None
    vendor, product = _clean(entry.get("vendorProject")), _clean(entry.get("product"))
    required_action = _clean(entry.get("requiredAction"))
    summary_text, summary_html = _summary(_clean(entry.get("shortDescription")), required_action)
    notes = _clean(entry.get("notes"))
    url = CISA_SEARCH_URL.format(cve=cve)
    return AdvisoryRecord(
        item_id=cve,
        title=_clean(entry.get("vulnerabilityName")) or _fallback_title(vendor, product, cve),
        summary_text=summary_text,
        summary_html=summary_html,
        url=url,
        links=[link for link in _links_in(notes) if link != url],
        published=parse_date(entry.get("dateAdded")),
        language="en",
        cve_ids=[cve],
        vendors=unique([vendor]),
        products=unique([product]),
        known_exploited=True,
        kind="known-exploited",
        facts=_cisa_facts(entry, required_action, notes),
        raw=entry,
    )


def _cisa_facts(entry: dict, required_action: str, notes: str) -> dict[str, Any]:
    return {
        "date_added": _iso_date(parse_date(entry.get("dateAdded"))),
        "due_date": _iso_date(parse_date(entry.get("dueDate"))),
        "required_action": required_action or None,
        "known_ransomware_campaign_use": _clean(entry.get("knownRansomwareCampaignUse")) or None,
        "cwes": _clean_list(entry.get("cwes")),
        "notes": notes or None,
    }


def _iso_date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


# ----------------------------------------------------------------------------- EU KEV


def parse_eu(data: bytes, base_url: str | None = None) -> ParseResult:
    """ENISA's EU KEV: a JSON array of entries, in the current or the older shape."""
    doc = load_json(data, "known-exploited catalogue")
    _reject_schema(doc)
    if not isinstance(doc, list):
        raise UnsupportedDocument("not an EU KEV catalogue (expected a JSON array)")
    result = ParseResult(format="eu-kev", title="EU Known Exploited Vulnerabilities")
    for index, entry in enumerate(doc):
        record = _eu_record(entry, index, result.warnings)
        if record is not None:
            result.advisories.append(record)
    return result


def _eu_record(entry: Any, index: int, warnings: list[str]) -> AdvisoryRecord | None:
    cve = _entry_cve(entry, f"entry [{index}]", warnings)
    if cve is None:
        return None
    vendor, product = _clean(entry.get("vendorProject")), _clean(entry.get("product"))
    euvd_id = _clean(entry.get("euvdID")) or None
    summary_text, summary_html = _summary(_clean(entry.get("shortDescription")))
    notes = _clean(entry.get("notes"))
    url = EUVD_URL.format(id=euvd_id or cve)
    published = _eu_date(entry.get("dateReported"), f"[{index}].dateReported", warnings)
    return AdvisoryRecord(
        item_id=cve,
        title=_clean(entry.get("vulnerabilityName")) or _fallback_title(vendor, product, cve),
        summary_text=summary_text,
        summary_html=summary_html,
        url=url,
        links=[link for link in _links_in(notes) if link != url],
        published=published,
        language="en",
        cve_ids=[cve],
        vendors=unique([vendor]),
        products=_split_products(product),
        known_exploited=True,
        kind="known-exploited",
        facts={
            "euvd_id": euvd_id,
            "date_reported": _iso_date(published),
            **_eu_facts(entry, index, notes, warnings),
        },
        raw=entry,
    )


def _eu_facts(entry: dict, index: int, notes: str, warnings: list[str]) -> dict[str, Any]:
    patched = _eu_date(entry.get("patchedSince"), f"[{index}].patchedSince", warnings)
    return {
        "patched_since": _iso_date(patched),
        "origin_source": normalize_origin(entry.get("originSource")),
        "exploitation_type": _clean_list(entry.get("exploitationType")),
        "threat_actors": _clean_list(entry.get("threatActorsExploiting")),
        "cwes": _clean_list(entry.get("cwes")),
        "notes": notes or None,
    }


def _split_products(product: str) -> list[str]:
    """EU KEV packs several products in one string ("FortiOS,FortiProxy"); split on commas."""
    return unique(part for part in product.split(","))


def normalize_origin(value: Any) -> str | None:
    """Upper-case reporter names with '-' for '.' and blanks: "cnw"->"CNW",
    "CERT.PL"->"CERT-PL", "NCSC HU"->"NCSC-HU"."""
    text = _clean(value)
    return re.sub(r"[.\s_]+", "-", text).upper() if text else None


def _eu_date(value: Any, where: str, warnings: list[str]) -> datetime | None:
    """A date in either EU KEV notation, decided by its shape; placeholders are None."""
    text = _clean(value)
    if not text or text.lower() in _NO_DATE:
        return None
    if match := _YEAR_FIRST_RE.match(text):
        year, month, day = match.groups()
    elif match := _DAY_FIRST_RE.match(text):
        day, month, year = match.groups()
        year = f"20{year}" if len(year) == 2 else year  # the catalogue started in 2025
    else:
        return _warn_date(parse_date(text), text, where, warnings)
    try:
        return datetime(int(year), int(month), int(day), tzinfo=UTC)
    except ValueError:
        return _warn_date(None, text, where, warnings)


def _warn_date(
    value: datetime | None, text: str, where: str, warnings: list[str]
) -> datetime | None:
    if value is None:
        warnings.append(f"entry {where}: unreadable date {text!r}")
    return value
