"""Alerts and firms as the email templates see them: split into paragraphs, dates formatted
for the language, and links checked, so that only web, tel: and mailto: addresses become
clickable; anything else is shown as text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from babel.core import UnknownLocaleError
from babel.dates import format_date

from alerts.compose.content import (
    URGENT,
    AlertContent,
    AlertText,
    Firm,
    one_line,
    paragraphs,
    shorten,
)

SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")  # no user:password@ tricks
CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
CVE_RECORD = "https://www.cve.org/CVERecord?id={}"
EMAIL = re.compile(r"^[^@\s<>\"'?&]+@[^@\s<>\"'?&]+\.[^@\s<>\"'?&]+$")
SUMMARY_LENGTH = 320


@dataclass(frozen=True)
class Link:
    label: str
    href: str  # "" when the address is not one we make clickable


@dataclass(frozen=True)
class AlertView:
    title: str
    urgency: str
    urgent: bool
    exploited: bool
    what: list[list[str]]
    affected: list[list[str]]
    actions: list[str]
    cves: list[Link]
    references: list[Link]
    public_url: str
    published: str  # formatted for the language, "" when unknown
    summary: str  # the first paragraph of `what`, shortened
    language: str  # the language of the text
    fallback: bool


@dataclass(frozen=True)
class FirmView:
    name: str
    website: Link
    phone: Link
    email: Link
    kmo_portefeuille: bool
    specialities: str


def alert_view(content: AlertContent, language: str, text: AlertText, fallback: bool) -> AlertView:
    return AlertView(
        title=one_line(text.title),
        urgency=one_line(text.urgency),
        urgent=content.tier == URGENT,
        exploited=content.known_exploited,
        what=paragraphs(text.what),
        affected=paragraphs(text.affected),
        actions=[one_line(step) for step in text.actions if step.strip()],
        cves=[
            Link(cve, CVE_RECORD.format(cve) if CVE_ID.match(cve) else "") for cve in content.cves
        ],
        references=[Link(one_line(label) or url, web_href(url)) for label, url in content.links],
        public_url=web_href(content.public_url),
        published=local_date(content.published, language),
        summary=shorten(" ".join((paragraphs(text.what) or [[""]])[0]), SUMMARY_LENGTH, "…"),
        language=language,
        fallback=fallback,
    )


def firm_view(firm: Firm) -> FirmView:
    website = firm.website.strip()
    website = web_href(website if SCHEME.match(website) else f"https://{website}")
    digits = re.sub(r"[^\d+]", "", firm.phone)
    return FirmView(
        name=one_line(firm.name),
        website=Link(website.split("//", 1)[-1].rstrip("/"), website),
        phone=Link(one_line(firm.phone), f"tel:{digits}" if len(digits) >= 6 else ""),
        email=Link(
            firm.email.strip(), f"mailto:{firm.email.strip()}" if is_email(firm.email) else ""
        ),
        kmo_portefeuille=firm.kmo_portefeuille,
        specialities=", ".join(one_line(s) for s in firm.specialities if s.strip()),
    )


def urgency_order(content: AlertContent) -> tuple:
    """Sort key, most urgent first: urgent tier, then known exploited, then the newest."""
    published = content.published.toordinal() if content.published else 0
    return (content.tier != URGENT, not content.known_exploited, -published, content.alert_id)


def web_href(url: str) -> str:
    """The address when it is an absolute http(s) URL, else ""."""
    url = url.strip()
    parts = urlsplit(url)
    web = parts.scheme.lower() in ("http", "https") and HOST.match(parts.netloc)
    return url if web and not re.search(r"\s", url) else ""


def is_email(address: str) -> bool:
    return bool(EMAIL.match(address.strip()))


def number_locale(language: str) -> str:
    """Belgian conventions; English as in Britain (a decimal point, day before month)."""
    return "en_GB" if language == "en" else f"{language}_BE"


def local_date(day: date | None, language: str) -> str:
    if day is None:
        return ""
    try:
        return format_date(day, format="long", locale=f"{language}_BE")
    except UnknownLocaleError:
        return format_date(day, format="long", locale=language)
