"""Normalization helpers shared by every parser: dates, text, safe HTML, CVE ids, CVSS.

All pure. Parsers call these so that every source ends up with the same shapes: UTC
datetimes, plain text without markup, allowlisted HTML, upper-case CVE ids.
"""

from __future__ import annotations

import email.utils
import html
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from urllib.parse import urljoin, urlsplit

import nh3
from dateutil import parser as dateutil_parser

from alerts.ingest.records import Cvss

CVE_RE = re.compile(r"\bCVE[-\u2010\u2011\u2013_ ](\d{4})[-\u2010\u2011\u2013_ ](\d{4,7})\b", re.I)
_WS_RE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES_RE = re.compile(r"\n\s*\n+")
_MD_LINK_RE = re.compile(r"\[([^\]]*)\]\((?:[^)\s]+)\)")
# Paired emphasis only: "FortiOS 7.2.*" and "*.example.com" keep their stars.
_MD_EMPHASIS_RE = re.compile(
    r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])"
)
_MD_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])")

# Dates earlier than this are parser accidents (epoch zero, "0001-01-01"), not advisories.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)

SAFE_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
SAFE_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}


def unique(values: Iterable[str | None]) -> list[str]:
    """Drop empties and duplicates, keep the first-seen order."""
    seen: dict[str, None] = {}
    for value in values:
        if value and (v := value.strip()):
            seen.setdefault(v, None)
    return list(seen)


# ----------------------------------------------------------------------------- dates


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC: publishers that omit the zone mean UTC or close."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_date(value: object, *, dayfirst: bool = False) -> datetime | None:
    """Any publisher's date notation to an aware UTC datetime, or None when unusable.

    Handles ISO 8601 (with or without seconds, zone or fraction), RFC 822 with 2-digit
    years, date-only strings, "Jan 14, 2025, 9:31:47 PM", "2025/01/17" and, with
    `dayfirst`, "17/01/25".
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        result = to_utc(value)
    elif isinstance(value, date):
        result = datetime.combine(value, time(), tzinfo=UTC)
    elif isinstance(value, str):
        result = _parse_date_text(value.strip(), dayfirst=dayfirst)
    else:
        return None
    if result is None or result < _EARLIEST:
        return None
    return result


def _parse_date_text(text: str, *, dayfirst: bool) -> datetime | None:
    if not text:
        return None
    try:
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        pass
    if "," in text[:5] or re.match(r"^\d{1,2} [A-Za-z]{3} \d{2,4}", text):
        try:
            written = email.utils.parsedate_to_datetime(text)  # in its own time zone
            if written is not None:
                return to_utc(written) if _rfc822_year_kept(text, written) else None
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return _parse_complete_date(text, dayfirst=dayfirst)


_RFC822_YEAR = re.compile(r"\b\d{1,2} [A-Za-z]{3,} (\d{2,4})\b")


def _rfc822_year_kept(text: str, parsed: datetime) -> bool:
    """The email parser reads any year below 100 as a two-digit one ("0001" -> 2001): a
    year written with four digits must come out as written."""
    written = _RFC822_YEAR.search(text)
    if written is None or len(written.group(1)) < 3:
        return True
    return int(written.group(1)) == parsed.year


_FILL_A = datetime(2001, 1, 1)
_FILL_B = datetime(2002, 2, 2)


def _parse_complete_date(text: str, *, dayfirst: bool) -> datetime | None:
    """dateutil fills missing fields from a default: parse with two different defaults and
    accept only when year, month and day came from the text ("2025" or "Monday" do not)."""
    try:
        first = dateutil_parser.parse(text, dayfirst=dayfirst, default=_FILL_A)
        second = dateutil_parser.parse(text, dayfirst=dayfirst, default=_FILL_B)
        if first.date() != second.date():
            return None
        return to_utc(first)
    except (ValueError, OverflowError, TypeError):
        return None


def from_struct_time(value) -> datetime | None:
    """feedparser's *_parsed fields (time.struct_time in UTC) to a datetime."""
    if not value:
        return None
    try:
        return parse_date(datetime(*value[:6], tzinfo=UTC))
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- text


def html_to_text(fragment: str | None) -> str:
    """Markup-free text from an HTML (or entity-escaped HTML) fragment.

    Script and style bodies are dropped with their tags; block ends become line breaks.
    """
    if not fragment:
        return ""
    text = fragment
    if "&lt;" in text and "<" not in text:
        text = html.unescape(text)  # entity-escaped HTML, as in CISA's descriptions
    # Keep the closing tags (the cleaner needs them to keep text in order) and add breaks.
    text = re.sub(r"(?i)<\s*br\s*/?>", "\n", text)
    text = re.sub(r"(?i)(</\s*(?:p|div|li|tr|h[1-6]|table|ul|ol)\s*>)", "\\1\n", text)
    text = re.sub(r"(?i)(</\s*t[dh]\s*>)", "\\1 ", text)
    text = nh3.clean(text, tags=set())
    return tidy_text(html.unescape(text))


def tidy_text(text: str | None) -> str:
    """Collapse runs of blanks, normalise line ends, trim."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_WS_RE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


def strip_markdown(text: str | None) -> str:
    """Remove Markdown remnants some publishers leave in plain text (\\[1\\], **bold**)."""
    if not text:
        return ""
    text = _MD_LINK_RE.sub(r"\1", text)
    text = _MD_ESCAPE_RE.sub(r"\1", text)
    text = _MD_EMPHASIS_RE.sub(lambda m: m.group(2) or m.group(3), text)
    return tidy_text(text)


def safe_html(fragment: str | None, *, base_url: str | None = None) -> str:
    """Allowlisted HTML for display: no scripts, no event handlers, no javascript: links.

    Relative links are made absolute against the publisher's address (base_url); without
    one they are dropped, since they would otherwise point into our own site."""
    if not fragment:
        return ""
    text = fragment
    if "&lt;" in text and "<" not in text:
        text = html.unescape(text)
    return nh3.clean(
        text,
        tags=SAFE_TAGS,
        attributes=SAFE_ATTRIBUTES,
        attribute_filter=_absolute_links(base_url),
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()


def _absolute_links(base_url: str | None):
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute != "href" or urlsplit(value).scheme:
            return value
        if not base_url or not base_url.startswith(("http://", "https://")):
            return None
        return urljoin(base_url, value)

    return keep


def text_to_html(text: str | None) -> str:
    """Plain text as safe HTML paragraphs (for sources that only give text)."""
    if not text:
        return ""
    paragraphs = [p for p in tidy_text(text).split("\n\n") if p]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def shorten(text: str, limit: int = 4000) -> str:
    """Cap stored summaries; full text stays in the raw document."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "\u2026"


# ----------------------------------------------------------------------------- CVEs


def extract_cves(*texts: str | None) -> list[str]:
    """Every CVE id mentioned, upper-cased and de-duplicated in order of appearance."""
    found: list[str] = []
    for text in texts:
        if text:
            found.extend(f"CVE-{m.group(1)}-{m.group(2)}" for m in CVE_RE.finditer(text))
    return unique(found)


def normalize_cve(value: str | None) -> str | None:
    if not value or not isinstance(value, str):
        return None
    match = CVE_RE.search(value)
    return f"CVE-{match.group(1)}-{match.group(2)}" if match else None


# ----------------------------------------------------------------------------- CVSS


def severity_for(score: float | None) -> str | None:
    """The CVSS v3/v4 qualitative rating for a base score."""
    if score is None:
        return None
    if score == 0:
        return "NONE"
    if score < 4:
        return "LOW"
    if score < 7:
        return "MEDIUM"
    if score < 9:
        return "HIGH"
    return "CRITICAL"


def make_cvss(
    version: str | None,
    score: float | str | None = None,
    vector: str | None = None,
    severity: str | None = None,
) -> Cvss | None:
    """A Cvss from whatever a publisher gives; the score is computed from the vector when
    missing (with the maintained `cvss` library)."""
    vector = (vector or "").strip() or None
    version = _cvss_version(version, vector)
    if version is None:
        return None
    number = _to_float(score)
    if number is None and vector:
        number = _score_from_vector(version, vector)
    if number is None and vector is None:
        return None
    rating = (severity or "").upper() or severity_for(number)
    return Cvss(version=version, score=number, vector=vector, severity=rating or None)


def best_cvss(candidates: Iterable[Cvss | None]) -> Cvss | None:
    """Prefer the newest CVSS version, then the highest score."""
    present = [c for c in candidates if c is not None]
    if not present:
        return None
    return max(present, key=lambda c: (c.version, c.score or 0.0))


def _cvss_version(version: str | None, vector: str | None) -> str | None:
    if vector:
        match = re.match(r"CVSS:(\d\.\d)/", vector)
        if match:
            return match.group(1)
    if version:
        match = re.search(r"(\d)(?:\.(\d))?", str(version))
        if match:
            return f"{match.group(1)}.{match.group(2) or '0'}"
    if vector and vector.startswith("AV:"):
        return "2.0"
    return None


def _to_float(value: float | str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0.0 <= number <= 10.0 else None


def _score_from_vector(version: str, vector: str) -> float | None:
    import cvss  # local import: only needed when a publisher gives a vector without a score

    try:
        if version.startswith("4"):
            return float(cvss.CVSS4(vector).base_score)
        if version.startswith("3"):
            return float(cvss.CVSS3(vector).scores()[0])
        return float(cvss.CVSS2(vector.removeprefix("(").removesuffix(")")).scores()[0])
    except Exception:  # the library raises several error types for a malformed vector
        return None
