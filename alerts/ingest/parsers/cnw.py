"""EU CSIRTs Network (CNW) advisories: Markdown files from github.com/enisaeu/CNW.

Layout: a "# CSIRTs Network - ..." heading, a two-column key/value table (Date, Number,
Keywords, CVE, Details, Mitigation) and a table of national CSIRT alerts (Country,
Organisation, Language, Warning). Parsed with markdown-it-py (raw HTML disabled), so cells
come as inline tokens whose links are read from the token tree, not with regexes.

The files carry no Vendor/Product rows: "Keywords" goes to facts, and vendors/products are
filled only when a file has such rows. Dates are written day-first ("10-01-2024").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from alerts.ingest.normalize import (
    extract_cves,
    html_to_text,
    parse_date,
    safe_html,
    shorten,
    strip_markdown,
    unique,
)
from alerts.ingest.records import (
    AdvisoryRecord,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
_NUMBER_RE = re.compile(r"\bCNW-(\d{4})-\d+\b", re.I)
_DATE_RE = re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b|\b(\d{4})-(\d{2})-(\d{2})\b")
_URL_RE = re.compile(r"https?://[^\s<>()\[\]|\"']+")
# "Exploitation of ...", "... vulnerability exploited", but not "likely exploited".
_EXPLOITED_RE = re.compile(r"\bexploit(ed|ation)\b", re.I)
_HEDGED_RE = re.compile(r"\b(likely|possibl[ey]|potential(ly)?|may be)\s+exploit", re.I)


@dataclass
class Cell:
    text: str  # the cell's Markdown source
    links: list[str] = field(default_factory=list)


def parse(data: bytes, base_url: str | None = None) -> ParseResult:
    tokens = _MD.parse(_decode(data))
    title = _first_heading(tokens)
    tables = _tables(tokens)
    info = _info_table(tables)
    if not title or info is None:
        raise UnsupportedDocument("Markdown without the CNW advisory heading and key/value table")
    result = ParseResult(format="cnw-markdown", title=title)
    result.advisories.append(_record(title, info, _national_table(tables), base_url, result))
    return result


# ----------------------------------------------------------------------------- Markdown


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedDocument(f"Markdown is not UTF-8 text: {error}") from None
    if not text.strip():
        raise MalformedDocument("empty document")
    return text


def _first_heading(tokens: list[Token]) -> str:
    for index, token in enumerate(tokens[:-1]):
        if token.type == "heading_open":
            return strip_markdown(tokens[index + 1].content)
    return ""


def _tables(tokens: list[Token]) -> list[list[list[Cell]]]:
    """Every table as rows of cells; the header row comes first."""
    tables: list[list[list[Cell]]] = []
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open" and tables:
            tables[-1].append([])
        elif token.type == "inline" and index and tokens[index - 1].type in ("th_open", "td_open"):
            tables[-1][-1].append(_cell(token))
    return tables


def _cell(token: Token) -> Cell:
    children = token.children or []
    hrefs = [str(child.attrs.get("href", "")) for child in children if child.type == "link_open"]
    # Fortibleed lists bare URLs; read them from text nodes only, never from link targets.
    texts = " ".join(child.content for child in children if child.type == "text")
    bare = [m.group(0).rstrip(".,;") for m in _URL_RE.finditer(texts)]
    links = [link for link in unique([*hrefs, *bare]) if link.startswith(("http://", "https://"))]
    return Cell(text=token.content.strip(), links=links)


def _info_table(tables: list[list[list[Cell]]]) -> dict[str, Cell] | None:
    """The key/value table: "**Date**" | "10-01-2024" rows, keyed by lower-case label."""
    for table in tables:
        pairs = ((strip_markdown(row[0].text).lower(), row) for row in table if len(row) >= 2)
        rows = {label: row[1] for label, row in pairs if label}  # header row included, if used
        if "number" in rows or ("date" in rows and rows.keys() & {"cve", "details"}):
            return rows
    return None


def _national_table(tables: list[list[list[Cell]]]) -> dict[str, list[str]]:
    """Country code -> national CSIRT alert URLs (an empty list when a country has none)."""
    for table in tables:
        header = [strip_markdown(cell.text).lower() for cell in table[0]] if table else []
        if "country" in header:
            return _national_links(table[1:], header.index("country"))
    return {}


def _national_links(rows: list[list[Cell]], country_at: int) -> dict[str, list[str]]:
    national: dict[str, list[str]] = {}
    for row in rows:
        if len(row) <= country_at or not (code := strip_markdown(row[country_at].text).upper()):
            continue
        links = [link for cell in row for link in cell.links]
        national[code] = unique([*national.get(code, []), *links])
    return national


# ----------------------------------------------------------------------------- record


def _record(
    title: str,
    info: dict[str, Cell],
    national: dict[str, list[str]],
    base_url: str | None,
    result: ParseResult,
) -> AdvisoryRecord:
    details = _plain(info, "details") or _plain(info, "keywords")  # Fortibleed has no details
    mitigation = _plain(info, "mitigation")
    summary_text = shorten(
        "\n\n".join(p for p in (details, f"Mitigation: {mitigation}" if mitigation else "") if p)
    )
    structured = extract_cves(info["cve"].text) if "cve" in info else []
    cve_ids = unique([*structured, *extract_cves(title, summary_text)])
    item_id = _item_id(info, cve_ids, title, result)
    published, updated = _dates(info, item_id, result)
    url = base_url if base_url and base_url.startswith(("http://", "https://")) else None
    return AdvisoryRecord(
        item_id=item_id,
        title=title,
        summary_text=summary_text,
        summary_html=_summary_html(info),
        url=url,
        links=_links(info, national, url),
        published=published,
        updated=updated,
        language="en",
        cve_ids=cve_ids,
        vendors=_names(info, "vendor", "vendors"),
        products=_names(info, "product", "products"),
        known_exploited=bool(_EXPLOITED_RE.search(title)) and not _HEDGED_RE.search(title),
        facts=_facts(info, national),
        raw={key: cell.text for key, cell in info.items()},
    )


def _plain(info: dict[str, Cell], key: str) -> str:
    """A cell as plain text: Markdown and any inline HTML the Markdown carried removed."""
    return html_to_text(strip_markdown(info[key].text)) if key in info else ""


def _item_id(info: dict[str, Cell], cve_ids: list[str], title: str, result: ParseResult) -> str:
    """The "Number" row (CNW-2024-01); without it, a stable id derived from the content."""
    if match := _NUMBER_RE.search(_plain(info, "number")):
        return match.group(0).upper()
    fallback = f"CNW-{cve_ids[0]}" if cve_ids else "CNW-" + re.sub(r"\W+", "-", title).strip("-")
    result.warnings.append(f"no CNW number in the table; using {fallback!r} as the id")
    return fallback


def _dates(
    info: dict[str, Cell], item_id: str, result: ParseResult
) -> tuple[datetime | None, datetime | None]:
    """Date row: "10-01-2024 (last updated 28-02-2024)" -> published, updated."""
    found = [_to_date(match) for match in _DATE_RE.finditer(_plain(info, "date"))]
    found = [value for value in found if value is not None]
    if not found:
        result.warnings.append(f"{item_id}: no readable date in the Date row")
        return None, None
    published, updated = found[0], (found[-1] if len(found) > 1 else None)
    number = _NUMBER_RE.search(item_id)
    if number and published.year < int(number.group(1)):
        result.warnings.append(
            f"{item_id}: Date {published.date().isoformat()} is earlier than the year of its"
            " number; kept as the publisher wrote it"
        )
    return published, updated


def _to_date(match: re.Match[str]) -> datetime | None:
    day, month, year, iso_year, iso_month, iso_day = match.groups()
    try:
        if iso_year:
            return parse_date(f"{iso_year}-{iso_month}-{iso_day}")
        return datetime(int(year), int(month), int(day), tzinfo=UTC)  # CNW writes day-first
    except ValueError:
        return None


def _summary_html(info: dict[str, Cell]) -> str:
    details = _source(info, "details") or _source(info, "keywords")
    mitigation = _source(info, "mitigation")
    parts = [details, f"**Mitigation:** {mitigation}" if mitigation else ""]
    source = "\n\n".join(part for part in parts if part)
    return safe_html(_MD.render(source)) if source else ""


def _source(info: dict[str, Cell], key: str) -> str:
    return info[key].text if key in info else ""


def _links(info: dict[str, Cell], national: dict[str, list[str]], url: str | None) -> list[str]:
    table_links = [link for cell in info.values() for link in cell.links]
    national_links = [link for links in national.values() for link in links]
    return [link for link in unique([*table_links, *national_links]) if link != url]


def _names(info: dict[str, Cell], *keys: str) -> list[str]:
    for key in keys:
        if key in info:
            return unique(part for part in _plain(info, key).split(","))
    return []


def _facts(info: dict[str, Cell], national: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "keywords": _plain(info, "keywords") or None,
        "date_text": _plain(info, "date") or None,
        "national_advisories": national,
        "countries_with_advisories": [code for code, links in national.items() if links],
    }
