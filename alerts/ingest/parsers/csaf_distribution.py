"""How CSAF documents are distributed (CSAF 2.0 section 7): ROLIE feeds, directory
index.txt / changes.csv, provider metadata, aggregators and ROLIE service documents.

These parsers never fetch anything. They return DocumentLinks for a poller to fetch and
parse with the "csaf" format; a ROLIE feed also yields one lightweight stub record per
entry (same item_id as the full document, so the full document later replaces it).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from alerts.ingest.normalize import extract_cves, parse_date, shorten, text_to_html, tidy_text
from alerts.ingest.parsers.csaf import RESTRICTED_TLP
from alerts.ingest.parsers.jsondoc import as_dict as _dict
from alerts.ingest.parsers.jsondoc import as_list as _list
from alerts.ingest.parsers.jsondoc import as_text as _text
from alerts.ingest.parsers.jsondoc import load_json_object
from alerts.ingest.records import (
    AdvisoryRecord,
    DocumentLink,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

_CHECKSUM_SUFFIXES = (".asc", ".sha256", ".sha512")
_COMMENT_PREFIXES = ("#", "//")


# ----------------------------------------------------------------------------- shared


def _absolute(href: str, base_url: str | None) -> str | None:
    """href resolved against base_url; None for anything but http(s) once resolved
    (a relative href without a base_url is kept relative for the caller to resolve)."""
    if not href:
        return None
    url = urljoin(base_url, href) if base_url else href
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https") or (not scheme and not base_url):
        return url
    return None


def _warn_relative(result: ParseResult) -> None:
    relative = sum(1 for link in result.links if not urlsplit(link.url).scheme)
    if relative:
        result.warnings.append(f"{relative} links are relative and no base_url was given")


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedDocument(f"not UTF-8 text: {error}") from None
    if text.lstrip().startswith("<"):
        raise UnsupportedDocument("an HTML or XML page, not a CSAF directory listing")
    return text


def _item_id_from_path(path: str) -> str:
    """'2025/wid-sec-w-2025-0001.json' -> 'wid-sec-w-2025-0001' (the name, case kept)."""
    name = urlsplit(path).path.rsplit("/", 1)[-1]
    return name[: -len(".json")] if name.lower().endswith(".json") else name


# ----------------------------------------------------------------------------- ROLIE feed


def parse_rolie_feed(data: bytes, base_url: str | None = None) -> ParseResult:
    """A ROLIE feed: one stub AdvisoryRecord and one DocumentLink per entry.

    Kept cheap per entry: CISA's OT feed holds 2379 entries in 2.6 MB.
    """
    root = load_json_object(data, "ROLIE feed")
    feed = root.get("feed")
    if not isinstance(feed, dict):
        raise UnsupportedDocument("JSON without a ROLIE 'feed' object")
    if not isinstance(feed.get("entry", []), list):
        raise MalformedDocument("feed.entry is not an array")
    result = ParseResult(format="csaf-rolie", title=_text(feed.get("title")) or None)
    for index, entry in enumerate(_list(feed.get("entry"))):
        _add_rolie_entry(result, entry, index, base_url)
    _warn_relative(result)
    return result


def _add_rolie_entry(result: ParseResult, entry: Any, index: int, base_url: str | None) -> None:
    entry = _dict(entry)
    item_id = _text(entry.get("id"))
    href = _entry_document_href(entry)
    url = _absolute(href, base_url)
    if not item_id or not url:
        missing = "id" if not item_id else "usable CSAF document link"
        result.warnings.append(f"feed.entry[{index}] skipped: no {missing}")
        return
    title = _text(entry.get("title")) or item_id
    updated = parse_date(entry.get("updated"))
    result.advisories.append(_stub(entry, item_id, title, url, updated, base_url))
    result.links.append(DocumentLink(url=url, updated=updated, item_id=item_id, title=title))


def _entry_document_href(entry: dict[str, Any]) -> str:
    """The CSAF JSON: the link with rel "self", else content.src."""
    for link in map(_dict, _list(entry.get("link"))):
        if link.get("rel") == "self" and _text(link.get("href")):
            return _text(link.get("href"))
    return _text(_dict(entry.get("content")).get("src"))


def _stub(
    entry: dict[str, Any],
    item_id: str,
    title: str,
    url: str,
    updated: datetime | None,
    base_url: str | None,
) -> AdvisoryRecord:
    summary = shorten(tidy_text(_text(_dict(entry.get("summary")).get("content"))))
    return AdvisoryRecord(
        item_id=item_id,
        title=title,
        summary_text=summary,
        summary_html=text_to_html(summary),
        url=url,
        links=_entry_other_links(entry, url, base_url),
        published=parse_date(entry.get("published")),
        updated=updated,
        cve_ids=extract_cves(title, summary),
        facts={"stub": True, "csaf_url": url},
        raw=entry,
    )


def _entry_other_links(entry: dict[str, Any], url: str, base_url: str | None) -> list[str]:
    """Other absolute renderings (SICK's PDF), without hashes and signatures."""
    links = []
    for link in map(_dict, _list(entry.get("link"))):
        href = _absolute(_text(link.get("href")), base_url) or ""
        if urlsplit(href).scheme and href != url and not href.endswith(_CHECKSUM_SUFFIXES):
            links.append(href)
    return list(dict.fromkeys(links))


# ----------------------------------------------------------------------------- index.txt


def parse_index_txt(data: bytes, base_url: str | None = None) -> ParseResult:
    """A CSAF directory index.txt: one relative path per line."""
    result = ParseResult(format="csaf-index")
    lines = _decode_text(data).splitlines()
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.strip()
        if line and not line.startswith(_COMMENT_PREFIXES):
            _add_path(result, line, None, f"line {number}", base_url)
    _require_links(result, lines, "no .json paths")
    _warn_relative(result)
    return result


def _add_path(
    result: ParseResult, path: str, updated: datetime | None, where: str, base_url: str | None
) -> None:
    if not urlsplit(path).path.lower().endswith(".json"):
        result.warnings.append(f"{where}: {path[:80]!r} is not a .json path; skipped")
        return
    url = _absolute(path, base_url)
    if url is None:
        result.warnings.append(f"{where}: {path[:80]!r} is not an http(s) location; skipped")
        return
    result.links.append(DocumentLink(url=url, updated=updated, item_id=_item_id_from_path(path)))


def _require_links(result: ParseResult, lines: list[str], problem: str) -> None:
    """A listing with content but not one usable line is not a listing."""
    if not result.links and any(line.strip() for line in lines):
        detail = f" ({result.warnings[0]})" if result.warnings else ""
        raise MalformedDocument(f"{problem} in a non-empty file{detail}")


# ----------------------------------------------------------------------------- changes.csv


def parse_changes_csv(data: bytes, base_url: str | None = None) -> ParseResult:
    """A CSAF directory changes.csv: "path","timestamp" rows, newest first.

    A path listed twice (Stackable re-published one advisory) gives one link with its
    newest timestamp.
    """
    result = ParseResult(format="csaf-changes")
    text = _decode_text(data)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise MalformedDocument(f"broken CSV: {error}") from None
    for number, row in enumerate(rows, start=1):
        if row and any(cell.strip() for cell in row):
            _add_change(result, row, f"row {number}", base_url)
    _require_links(result, text.splitlines(), "no valid path,timestamp rows")
    result.links = _newest_per_url(result.links)
    _warn_relative(result)
    return result


def _add_change(result: ParseResult, row: list[str], where: str, base_url: str | None) -> None:
    if len(row) != 2:
        result.warnings.append(f"{where}: expected 2 columns (path, timestamp), got {len(row)}")
        return
    updated = parse_date(row[1].strip())
    if updated is None:
        result.warnings.append(f"{where}: unreadable timestamp {row[1][:40]!r}; skipped")
        return
    _add_path(result, row[0].strip(), updated, where, base_url)


def _newest_per_url(links: list[DocumentLink]) -> list[DocumentLink]:
    newest: dict[str, DocumentLink] = {}
    for link in links:
        known = newest.get(link.url)
        if known is None or (link.updated and known.updated and link.updated > known.updated):
            newest[link.url] = link
    return list(newest.values())


# ----------------------------------------------------------------------------- metadata


def parse_provider_metadata(data: bytes, base_url: str | None = None) -> ParseResult:
    """provider-metadata.json, an aggregator's aggregator.json or a ROLIE service document:
    links to the feeds, directories and providers they name; no advisories."""
    root = load_json_object(data, "CSAF provider metadata")
    result = ParseResult(format="csaf-provider")
    if isinstance(root.get("service"), dict):
        _service_links(result, root["service"], base_url)
    elif isinstance(root.get("aggregator"), dict) or "csaf_providers" in root:
        _aggregator_links(result, root, base_url)
    elif "distributions" in root or "publisher" in root:
        _provider_links(result, root, base_url)
    else:
        raise UnsupportedDocument(
            "JSON that is neither CSAF provider metadata, an aggregator nor a ROLIE service"
        )
    return result


def _link(result: ParseResult, href: Any, base_url: str | None, **fields: Any) -> None:
    url = _absolute(_text(href), base_url)
    if url is None:
        result.warnings.append(f"unusable link {_text(href)[:80]!r}; skipped")
    elif all(known.url != url for known in result.links):
        result.links.append(DocumentLink(url=url, **fields))


def _provider_links(result: ParseResult, root: dict[str, Any], base_url: str | None) -> None:
    """ROLIE feeds as they are; a directory through its changes.csv, which unlike index.txt
    carries timestamps, so a poller fetches only what changed (both are mandatory)."""
    publisher = _dict(root.get("publisher"))
    result.title = _text(publisher.get("name")) or _text(root.get("canonical_url")) or None
    for distribution in map(_dict, _list(root.get("distributions"))):
        for feed in map(_dict, _list(_dict(distribution.get("rolie")).get("feeds"))):
            label = _text(feed.get("tlp_label")).upper()
            if label in RESTRICTED_TLP:
                # A public alert service must not hold restricted-distribution advisories.
                result.warnings.append(f"ROLIE feed marked TLP:{label} skipped (restricted)")
                continue
            title = _text(feed.get("summary")) or label or None
            _link(result, feed.get("url"), base_url, title=title)
        directory = _text(distribution.get("directory_url"))
        if directory:
            directory = directory if directory.endswith("/") else directory + "/"
            _link(result, urljoin(directory, "changes.csv"), base_url, title="changes.csv")
    if not result.links:
        result.warnings.append("provider metadata names no ROLIE feed and no directory")


def _aggregator_links(result: ParseResult, root: dict[str, Any], base_url: str | None) -> None:
    result.title = _text(_dict(root.get("aggregator")).get("name")) or None
    for key in ("csaf_providers", "csaf_publishers"):
        for listed in map(_dict, _list(root.get(key))):
            metadata = _dict(listed.get("metadata"))
            name = _text(_dict(metadata.get("publisher")).get("name")) or None
            updated = parse_date(metadata.get("last_updated"))
            _link(result, metadata.get("url"), base_url, title=name, updated=updated)


def _service_links(result: ParseResult, service: dict[str, Any], base_url: str | None) -> None:
    workspaces = [_dict(w) for w in _list(service.get("workspace"))]
    result.title = next((_text(w.get("title")) for w in workspaces if w.get("title")), None)
    for workspace in workspaces:
        for collection in map(_dict, _list(workspace.get("collection"))):
            title = _text(collection.get("title")) or None
            _link(result, collection.get("href"), base_url, title=title)
