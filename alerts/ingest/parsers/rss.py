"""RSS 0.9x / 1.0 (RDF) / 2.0 and Atom feeds, read with feedparser.

feedparser gets the bytes wrapped in a BytesIO: given plain bytes it would first try them as
a file name. It never fetches anything here, and we switch off its sanitizing and URI
rewriting because safe_html() sanitizes every format the same way. Documents that declare
entities are refused before feedparser sees them (entity expansion, external entities).
JVN's mod_sec elements (CVSS, CPE, references) are read again with defusedxml, because
feedparser keeps only the attributes of the last element of each kind.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from alerts.ingest.normalize import (
    best_cvss,
    extract_cves,
    from_struct_time,
    html_to_text,
    make_cvss,
    normalize_cve,
    parse_date,
    safe_html,
    shorten,
    strip_markdown,
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

FORMAT = "rss"
SEC_NS = "http://jvn.jp/rss/mod_sec/"
RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
TITLE_LIMIT = 300
FALLBACK_TITLE_LIMIT = 120

_TAG_RE = re.compile(r"<\s*/?\s*[A-Za-z][^>]*>")
_CLOSED_ITEM_RE = re.compile(rb"</\s*(?:[\w.-]+:)?(?:item|entry)\s*>", re.I)
_HTML_PAGE_RE = re.compile(r"<\s*(!doctype\s+html|html)\b", re.I)
_XML_ENCODING_RE = re.compile(r"""^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)["']""")
_LANGUAGE_RE = re.compile(r"^\s*([A-Za-z]{2})(?:[-_]|\s*$)")
# CERT-FR marks updated items with "[MàJ]" in the title and "[Mise à jour du 4 mars 2024]"
# in the text; the pubDate stays the first publication date.
_UPDATE_MARKER_RE = re.compile(r"^\s*\[\s*m[àa]j\s*\]", re.I)
_FR_UPDATE_RE = re.compile(r"mise à jour du (\d{1,2})(?:er)? ([a-zéû]+) (\d{4})", re.I)
_FR_MONTHS = {
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "décembre": 12, "decembre": 12,
}  # fmt: skip
_LINK_RELS = {"alternate", "related", "enclosure", "via"}
EBCDIC_MARKER = b"\x4c\x6f\xa7\x94"  # "<?xm" in EBCDIC, which feedparser also reads


@dataclass(slots=True)
class _SecInfo:
    """JVN mod_sec data of one item."""

    identifier: str | None = None
    references: list[dict[str, str]] = field(default_factory=list)
    cpes: list[dict[str, str]] = field(default_factory=list)
    cvss: list[Cvss | None] = field(default_factory=list)


@dataclass(slots=True)
class _Feed:
    """What every item needs from its feed."""

    bases: list[str]
    language: str | None
    sec: dict[str, _SecInfo]


# ----------------------------------------------------------------------------- entry point


_HUGE_CHARREF = re.compile(rb"&#(?:0*\d{8,}|[xX]0*[0-9a-fA-F]{7,});")


def parse(data: bytes, base_url: str | None = None) -> ParseResult:
    """Every item of an RSS/Atom/RDF feed as an AdvisoryRecord (kind left to the registry)."""
    _refuse_entity_declarations(data)
    # A character reference beyond Unicode makes feedparser's lenient mode crash on chr().
    data = _HUGE_CHARREF.sub(b"&#xFFFD;", data)
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    _check_is_feed(parsed, data)
    entries, warnings = _complete_entries(parsed, data)
    feed = _feed_context(parsed, data, base_url, warnings)
    result = ParseResult(format=FORMAT, warnings=warnings)
    result.title = _one_line(parsed.feed.get("title")) or None
    seen: set[str] = set()
    for position, entry in enumerate(entries, 1):
        record = _record(entry, feed)
        if record is None:
            warnings.append(f"item {position} has no title, summary or link; skipped")
        elif record.item_id in seen:
            warnings.append(f"item {position} repeats item id {record.item_id!r}; skipped")
        else:
            seen.add(record.item_id)
            result.advisories.append(record)
    return result


# ----------------------------------------------------------------------------- checks


def _refuse_entity_declarations(data: bytes) -> None:
    """Empty bodies and DTDs that declare entities (billion laughs, XXE) stop here."""
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
        raise MalformedDocument("empty document")
    for text in _readings(data):
        if _declares_entity(text):
            raise HostileDocument(
                "the document declares XML entities (<!ENTITY> in its DTD): entity expansion"
                " and external entities are refused"
            )


def _readings(data: bytes) -> list[str]:
    """The document as text, read so that '<!ENTITY' shows in any encoding feedparser takes:
    ASCII-compatible and UTF-16/32 (NUL bytes dropped), EBCDIC, and the declared encoding
    (UTF-7 can spell '<' as '+ADw-')."""
    readings = [data.replace(b"\x00", b"").decode("latin-1")]
    if data.startswith(EBCDIC_MARKER):
        readings.append(data.decode("cp037", errors="replace"))
    declared = _XML_ENCODING_RE.match(readings[0])
    if declared:
        # an unknown encoding name is skipped: feedparser then falls back to UTF-8 as well
        with contextlib.suppress(LookupError, ValueError):
            readings.append(data.decode(declared.group(1), errors="replace"))
    return readings


def _declares_entity(text: str) -> bool:
    """True when '<!ENTITY' appears as markup, not inside CDATA or a comment (an article
    about XXE may quote it). A linear scan: no regex backtracking on hostile input."""
    position = 0
    while (start := text.find("<!", position)) != -1:
        if text[start + 2 : start + 8].upper() == "ENTITY":
            return True
        position = _after_quoted(text, start)
        if position < 0:  # a CDATA section or comment that never closes: judge the rest
            return "<!ENTITY" in text[start:].upper()
    return False


def _after_quoted(text: str, start: int) -> int:
    """Where the scan resumes after the '<!' at `start`: past its CDATA section or comment
    (-1 when that never closes), else right after the '<!'."""
    for opener, closer in (("<![CDATA[", "]]>"), ("<!--", "-->")):
        if text.startswith(opener, start):
            end = text.find(closer, start + len(opener))
            return end + len(closer) if end != -1 else -1
    return start + 2


def _check_is_feed(parsed: Any, data: bytes) -> None:
    """HTML pages and other XML are unsupported; broken feeds with no items are malformed."""
    if parsed.entries:
        return
    problem = _bozo_problem(parsed)
    if not parsed.get("version"):
        head = data[:4096].decode("utf-8", errors="replace")
        if _HTML_PAGE_RE.search(head):
            raise UnsupportedDocument("an HTML page, not an RSS/Atom/RDF feed")
        if problem:
            raise MalformedDocument(f"not a readable feed: {problem}")
        raise UnsupportedDocument("well-formed XML, but not an RSS/Atom/RDF feed")
    if problem:
        raise MalformedDocument(f"feed is not well-formed XML ({problem}); no items")


def _bozo_problem(parsed: Any) -> str | None:
    """feedparser's complaint about the XML, with its line, or None when it is fine."""
    if not parsed.get("bozo"):
        return None
    error = parsed.get("bozo_exception")
    if isinstance(error, ThingsNobodyCaresAboutButMe):
        return None  # encoding notes: the document itself parsed
    line = getattr(error, "getLineNumber", lambda: None)()
    message = error.getMessage() if hasattr(error, "getMessage") else str(error)
    return f"line {line}: {message}" if line else message


def _complete_entries(parsed: Any, data: bytes) -> tuple[list[Any], list[str]]:
    """The entries to read, and warnings about the ones left out.

    When the XML is broken, feedparser re-reads it leniently. Entries whose closing tag
    never came (a cut-off download) may then carry half a summary, so only as many entries
    as there are closing </item>/</entry> tags are kept, and only those with a title and a
    link or id. A broken document with no such entry is malformed as a whole.
    """
    entries = list(parsed.entries)
    warnings: list[str] = []
    error = parsed.get("bozo_exception")
    if isinstance(error, ThingsNobodyCaresAboutButMe):
        warnings.append(f"feed encoding: {error}")
    problem = _bozo_problem(parsed)
    if not problem:
        return entries, warnings
    closed = len(_CLOSED_ITEM_RE.findall(data))
    kept = [
        entry
        for entry in entries[:closed]
        if entry.get("title") and (entry.get("link") or entry.get("id"))
    ]
    if not kept:
        raise MalformedDocument(f"feed is not well-formed XML ({problem}); no complete items")
    warnings.append(
        f"feed is not well-formed XML ({problem}); {len(kept)} of {len(entries)} items kept"
    )
    return kept, warnings


# ----------------------------------------------------------------------------- feed


def _feed_context(parsed: Any, data: bytes, base_url: str | None, warnings: list[str]) -> _Feed:
    channel = parsed.feed
    # The channel link first: item ids made from relative links must not change when the
    # feed itself moves (a 301 updates the URL we fetch from).
    bases = [b for b in (channel.get("link"), base_url) if b and _is_web_url(b)]
    language = _language_code(channel.get("language"))
    sec: dict[str, _SecInfo] = {}
    if SEC_NS in parsed.get("namespaces", {}).values() and not _bozo_problem(parsed):
        sec = _read_mod_sec(data, warnings)
    return _Feed(bases=bases, language=language, sec=sec)


def _language_code(value: str | None) -> str | None:
    """'fr-FR' -> 'fr', 'en-us' -> 'en'; None for anything that is not a 2-letter code."""
    match = _LANGUAGE_RE.match(value or "")
    return match.group(1).lower() if match else None


# ----------------------------------------------------------------------------- items


def _record(entry: Any, feed: _Feed) -> AdvisoryRecord | None:
    url = _absolute(entry.get("link"), feed.bases)
    body_html, body_text = _body(entry, url or (feed.bases[0] if feed.bases else None))
    title = shorten(_one_line(entry.get("title")), TITLE_LIMIT)
    title = title or shorten(_one_line(body_text), FALLBACK_TITLE_LIMIT) or url or ""
    item_id = _item_id(entry, url)
    if not title or not item_id:
        return None
    sec = feed.sec.get(entry.get("id")) or feed.sec.get(url or "") or _sec_from_entry(entry)
    published, updated = _dates(entry, body_text)
    return AdvisoryRecord(
        item_id=item_id,
        title=title,
        summary_text=shorten(body_text),
        summary_html=body_html,
        url=url,
        links=_links(entry, url, sec, feed.bases),
        published=published,
        updated=updated,
        language=_entry_language(entry) or feed.language,
        cve_ids=unique([*_sec_cves(sec), *extract_cves(title, body_text, entry.get("summary"))]),
        cvss=best_cvss(sec.cvss),
        vendors=unique(c.get("vendor") for c in sec.cpes),
        products=unique(c.get("product") for c in sec.cpes),
        facts=_facts(entry, title, sec),
        raw=_jsonable(entry),
    )


def _one_line(fragment: str | None) -> str:
    """Markup-free text on one line, for titles (entity-escaped HTML included, so Dark
    Reading's double-escaped "&amp;amp;" ends up as a single "&")."""
    return " ".join(html_to_text(fragment).split())


def _item_id(entry: Any, url: str | None) -> str | None:
    """The guid as given (CISA's relative "/node/25107" included), else the link, else a
    hash of title and summary so a re-read of the same item keeps its identity."""
    guid = (entry.get("id") or "").strip()
    link = url or (entry.get("link") or "").strip()
    if guid or link:
        return guid or link
    content = f"{entry.get('title', '')}\n{entry.get('summary', '')}".strip()
    if not content:
        return None
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()


def _body(entry: Any, base_url: str | None) -> tuple[str, str]:
    """(safe HTML, plain text) of the fullest body: content:encoded / Atom content when the
    item has it, else the description / summary. Markdown remnants leave the text; relative
    links in the HTML resolve against the item's own address."""
    value, content_type = _body_source(entry)
    if not value:
        return "", ""
    if content_type == "text/plain":
        text = strip_markdown(tidy_text(value))
        return text_to_html(text), text
    text = strip_markdown(html_to_text(value))
    has_markup = _TAG_RE.search(value if "<" in value else html.unescape(value))
    html_body = safe_html(value, base_url=base_url) if has_markup else text_to_html(text)
    return html_body, text


def _body_source(entry: Any) -> tuple[str, str]:
    contents = [c for c in entry.get("content") or [] if (c.get("value") or "").strip()]
    if contents:
        html_first = sorted(contents, key=lambda c: "html" not in (c.get("type") or ""))
        return html_first[0]["value"], html_first[0].get("type") or "text/html"
    detail = entry.get("summary_detail") or {}
    return entry.get("summary") or "", detail.get("type") or "text/html"


def _dates(entry: Any, text: str) -> tuple[datetime | None, datetime | None]:
    """Published and updated in UTC. `updated` only when the item says so (feedparser's own
    fallback from updated to published is bypassed), else from a CERT-FR update note. Atom
    entries with only <updated> use it as published too."""
    published = _entry_date(entry, "published")
    updated = _entry_date(entry, "updated")
    if updated is None:
        noted = _french_update_date(text)
        updated = noted if noted and (published is None or noted >= published) else None
    return published or updated, updated


def _entry_date(entry: Any, name: str) -> datetime | None:
    raw = dict.get(entry, name)
    if not _iso_fields_in_range(raw):
        return None  # feedparser rolls "2025-13-45T99:99" over into a date nobody wrote
    parsed = dict.get(entry, f"{name}_parsed")
    return from_struct_time(parsed) or parse_date(raw)


_ISO_FIELDS = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")


def _iso_fields_in_range(raw: Any) -> bool:
    """True unless `raw` is an ISO 8601 date whose month, day or time is out of range."""
    found = _ISO_FIELDS.match(raw) if isinstance(raw, str) else None
    if found is None:
        return True
    year, month, day, hour, minute, second = (int(v) if v else 0 for v in found.groups())
    try:
        date(year, month, day)
    except ValueError:
        return False
    return hour <= 23 and minute <= 59 and second <= 60


def _french_update_date(text: str) -> datetime | None:
    """The latest "[Mise à jour du 22 novembre 2023]" in a CERT-FR text, as UTC midnight."""
    dates = []
    for day, month, year in _FR_UPDATE_RE.findall(text or ""):
        number = _FR_MONTHS.get(month.lower())
        if number:
            try:
                dates.append(datetime(int(year), number, int(day), tzinfo=UTC))
            except ValueError:
                continue
    return max(dates, default=None)


def _entry_language(entry: Any) -> str | None:
    """xml:lang on the item (Atom, JVN's RDF), which feedparser reports per field."""
    for name in ("title_detail", "summary_detail"):
        code = _language_code((entry.get(name) or {}).get("language"))
        if code:
            return code
    return None


def _links(entry: Any, url: str | None, sec: _SecInfo, bases: list[str]) -> list[str]:
    """Further references: the item's own link elements (no images) and JVN references."""
    hrefs = [
        link.get("href")
        for link in entry.get("links") or []
        if link.get("rel", "alternate") in _LINK_RELS
        and not (link.get("type") or "").startswith("image/")
    ]
    hrefs += [ref.get("url") for ref in sec.references]
    absolute = (_absolute(href, bases) for href in hrefs)
    return [link for link in unique(absolute) if link != url]


def _absolute(href: str | None, bases: list[str]) -> str | None:
    """An http(s) URL, joined to the feed's base when relative; None for anything else
    (javascript:, data:, relative links of a feed without a usable base)."""
    href = (href or "").strip()
    if not href:
        return None
    for candidate in [href, *(urljoin(base, href) for base in bases)]:
        if _is_web_url(candidate):
            return candidate
    return None


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _facts(entry: Any, title: str, sec: _SecInfo) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    categories = unique(tag.get("term") for tag in entry.get("tags") or [])
    if categories:
        facts["categories"] = categories
    if entry.get("author"):
        facts["author"] = tidy_text(entry.get("author"))
    if _UPDATE_MARKER_RE.match(title):
        facts["update_marker"] = True
    if sec.identifier:
        facts["identifier"] = sec.identifier
    cpes = unique(c.get("cpe") for c in sec.cpes)
    if cpes:
        facts["cpe"] = cpes
    cwes = unique(r.get("id") for r in sec.references if (r.get("id") or "").startswith("CWE-"))
    if cwes:
        facts["cwe_ids"] = cwes
    return facts


def _jsonable(value: Any) -> Any:
    """feedparser's entry as plain JSON data (the parsed struct_time copies are dropped)."""
    if isinstance(value, dict):
        return {
            str(k): _jsonable(v)
            for k, v in value.items()
            if not isinstance(v, time.struct_time) and not str(k).endswith("_parsed")
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ----------------------------------------------------------------------------- JVN mod_sec


def _read_mod_sec(data: bytes, warnings: list[str]) -> dict[str, _SecInfo]:
    """sec:identifier / sec:references / sec:cpe / sec:cvss per item, keyed by rdf:about
    and by link."""
    try:
        root = DefusedET.fromstring(data)
    except (DefusedET.ParseError, DefusedXmlException) as error:
        warnings.append(f"JVN sec: details not read: {error}")
        return {}
    infos: dict[str, _SecInfo] = {}
    for item in root.iter():
        if _local_name(item.tag) != "item":
            continue
        info = _sec_info(item)
        link = next((c.text for c in item if _local_name(c.tag) == "link"), None)
        for key in (item.get(RDF_ABOUT), link):
            if key:
                infos[key.strip()] = info
    return infos


def _sec_info(item: Any) -> _SecInfo:
    info = _SecInfo()
    for child in item:
        if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{SEC_NS}}}"):
            continue
        name, attrs, text = _local_name(child.tag), dict(child.attrib), (child.text or "").strip()
        if name == "identifier":
            info.identifier = text or None
        elif name == "references":
            info.references.append({**attrs, "url": text})
        elif name == "cpe":
            info.cpes.append({**attrs, "cpe": text})
        elif name == "cvss":
            info.cvss.append(_sec_cvss(attrs))
    return info


def _sec_from_entry(entry: Any) -> _SecInfo:
    """What feedparser kept of mod_sec (the last element of each kind, attributes only):
    the fallback when the document could not be re-read."""
    cpe = entry.get("sec_cpe")
    cvss = entry.get("sec_cvss")
    reference = entry.get("sec_references")
    return _SecInfo(
        identifier=entry.get("sec_identifier") or None,
        references=[dict(reference)] if isinstance(reference, dict) else [],
        cpes=[dict(cpe)] if isinstance(cpe, dict) else [],
        cvss=[_sec_cvss(cvss)] if isinstance(cvss, dict) else [],
    )


def _sec_cvss(attrs: dict[str, str]) -> Cvss | None:
    return make_cvss(
        attrs.get("version"), attrs.get("score"), attrs.get("vector"), attrs.get("severity")
    )


def _sec_cves(sec: _SecInfo) -> list[str | None]:
    return [normalize_cve(ref.get("id")) for ref in sec.references]


def _local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
