"""Plain data that parsers produce: no network, no database.

A parser turns one document (bytes) into a ParseResult. Advisories are what staff will
see; links are further documents a directory-style source points to (CSAF index.txt, ROLIE,
provider metadata, cvelistV5 delta); EPSS scores are enrichment input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


class ParseError(Exception):
    """A document could not be turned into records. The message is shown to staff."""

    kind = "parse-error"

    def __init__(self, message: str, *, format: str | None = None):
        super().__init__(message)
        self.format = format

    def __str__(self) -> str:
        prefix = f"[{self.format}] " if self.format else ""
        return f"{prefix}{self.args[0]}"


class MalformedDocument(ParseError):
    """Broken syntax: truncated XML, invalid JSON, a CSV without its header."""

    kind = "malformed"


class HostileDocument(ParseError):
    """The document tries something dangerous: entity expansion, external entities."""

    kind = "hostile"


class UnsupportedDocument(ParseError):
    """Well-formed, but not a document this service reads (a JSON schema, an HTML page)."""

    kind = "unsupported"


@dataclass(frozen=True, slots=True)
class Cvss:
    version: str  # "2.0", "3.0", "3.1", "4.0"
    score: float | None
    vector: str | None = None
    severity: str | None = None  # NONE, LOW, MEDIUM, HIGH, CRITICAL


@dataclass(slots=True)
class AdvisoryRecord:
    """One normalized advisory as a publisher wrote it.

    `item_id` is the publisher's stable identity for the item within its source (guid,
    CSAF tracking id, CVE id, KEV cveID...). Dates are timezone-aware UTC.
    """

    item_id: str
    title: str
    summary_text: str = ""
    summary_html: str = ""
    url: str | None = None
    links: list[str] = field(default_factory=list)
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None
    cve_ids: list[str] = field(default_factory=list)
    cvss: Cvss | None = None
    vendors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    known_exploited: bool = False
    kind: str = "advisory"  # advisory | news | known-exploited | vulnerability
    facts: dict[str, Any] = field(default_factory=dict)  # format-specific extras, JSON-able
    raw: Any = None  # the item as published (JSON-able: dict, list or str)


@dataclass(frozen=True, slots=True)
class DocumentLink:
    """A further document to fetch, e.g. a CSAF file listed in index.txt."""

    url: str
    updated: datetime | None = None
    item_id: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class EpssScore:
    cve_id: str
    epss: float
    percentile: float | None
    scored_on: date | None


@dataclass(slots=True)
class ParseResult:
    format: str
    advisories: list[AdvisoryRecord] = field(default_factory=list)
    links: list[DocumentLink] = field(default_factory=list)
    epss: list[EpssScore] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    title: str | None = None  # the feed's or document's own title, when it has one
