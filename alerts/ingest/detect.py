"""Guess a document's format from its bytes (for `alerts poll --file` and back-fills)."""

from __future__ import annotations

import gzip
import json
import re

from alerts.ingest.records import MalformedDocument, ParseError, UnsupportedDocument

GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 4096
_INDEX_LINE = r"[\w./:-]+\.json"
_CHANGES_LINE = r'"?[\w./:-]+\.json"?\s*,\s*"?[\dT:.Z+-]+"?'


def detect_format(data: bytes, filename: str | None = None) -> str:
    """The FORMATS name for a document, or UnsupportedDocument saying what it looks like.

    Only ParseError subclasses leave this function, whatever the bytes are."""
    try:
        return _detect(data, filename)
    except ParseError:
        raise
    except RecursionError:
        raise MalformedDocument("document nests too deeply") from None
    except Exception as error:  # a shape the sniffing rules did not foresee
        raise UnsupportedDocument(f"unrecognised document ({type(error).__name__})") from None


def _detect(data: bytes, filename: str | None) -> str:
    if data.startswith(GZIP_MAGIC):
        head = _gunzip_head(data)
        if _looks_like_epss_csv(head):
            return "epss-csv"
        raise UnsupportedDocument("gzip file that is not an EPSS CSV")
    text = data[:_SNIFF_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        raise MalformedDocument("empty document")
    if text[0] in "{[":
        return _detect_json(data)
    if text.startswith("<"):
        return _detect_xml(text)
    return _detect_text(text, filename or "")


def _gunzip_head(data: bytes) -> str:
    try:
        with gzip.GzipFile(fileobj=__import__("io").BytesIO(data)) as handle:
            return handle.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    except (OSError, EOFError) as error:
        raise MalformedDocument(f"broken gzip data: {error}") from None


def _looks_like_epss_csv(text: str) -> bool:
    lines = [line.strip().lower() for line in text.splitlines()[:3]]
    return any(line.startswith("cve,epss") for line in lines) or (
        bool(lines) and lines[0].startswith("#model_version")
    )


def _detect_text(text: str, filename: str) -> str:
    if _looks_like_epss_csv(text):
        return "epss-csv"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    content = [line for line in lines if not line.startswith("#")][:5]
    if _mostly(content, _CHANGES_LINE):
        return "csaf-changes"
    if _mostly(content, _INDEX_LINE):
        return "csaf-index"  # index.txt may start with comment lines
    if filename.lower().endswith(".md") or lines[0].startswith("#"):
        return "cnw-markdown"
    raise UnsupportedDocument("plain text that is not a known advisory format")


def _mostly(lines: list[str], pattern: str) -> bool:
    """The first line and most of the others match: a listing with a stray line or two."""
    matches = [bool(re.fullmatch(pattern, line)) for line in lines]
    return bool(matches) and matches[0] and sum(matches) * 2 > len(matches)


def _detect_xml(text: str) -> str:
    lowered = text.lower()
    if re.search(r"<(\w+:)?cvrfdoc\b", lowered):
        return "cvrf"
    if re.search(r"<(rss|feed|rdf:rdf|channel)\b", lowered):
        return "rss"
    if re.search(r"<(!doctype html|html)\b", lowered):
        raise UnsupportedDocument("an HTML page, not a feed")
    raise UnsupportedDocument("XML that is neither RSS/Atom/RDF nor CVRF")


def _detect_json(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedDocument(f"invalid JSON: {error}") from None
    if isinstance(doc, list):
        if doc and isinstance(doc[0], dict) and "cveID" in doc[0]:
            return "eu-kev"
        if doc and isinstance(doc[0], dict) and "ID" in doc[0] and "affected" in doc[0]:
            return "paloalto-list"
        if not doc:
            raise UnsupportedDocument("an empty JSON list")
        raise UnsupportedDocument("a JSON list of unknown records")
    if not isinstance(doc, dict):
        raise UnsupportedDocument("a JSON scalar, not a document")
    return _detect_json_object(doc)


def _detect_json_object(doc: dict) -> str:
    keys = set(doc)
    if "$schema" in keys and "properties" in keys:
        raise UnsupportedDocument("a JSON Schema, not advisory data")
    if "document" in keys and isinstance(doc["document"], dict):
        return "csaf"
    rules: list[tuple[bool, str]] = [
        ("catalogVersion" in keys, "cisa-kev"),
        ("feed" in keys and isinstance(doc.get("feed"), dict), "csaf-rolie"),
        ("service" in keys or "aggregator" in keys or "canonical_url" in keys, "csaf-provider"),
        ("cveMetadata" in keys or doc.get("dataType") == "CVE_RECORD", "cve"),
        ("fetchTime" in keys and ("new" in keys or "updated" in keys), "cvelist-delta"),
        (str(doc.get("format", "")).startswith("NVD_CVE"), "nvd"),
        (str(doc.get("id", "")).startswith("EUVD-") or _is_euvd_page(doc), "euvd"),
        ("value" in keys and "@odata.context" in keys, "msrc-updates"),
        (isinstance(doc.get("advisories"), list), "cisco-openvuln"),
        (isinstance(doc.get("data"), list) and "status-code" in keys, "epss-api"),
    ]
    for matched, name in rules:
        if matched:
            return name
    if "$schema" in keys or ("properties" in keys and "type" in keys):
        raise UnsupportedDocument("a JSON Schema, not advisory data")
    raise UnsupportedDocument("JSON with no known advisory structure")


def _is_euvd_page(doc: dict) -> bool:
    items = doc.get("items")
    first = items[0] if isinstance(items, list) and items else None
    return isinstance(first, dict) and str(first.get("id", "")).startswith("EUVD-")
