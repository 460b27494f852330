"""What composition takes in and gives back, and which language version of an alert is used.

Staff text is plain text: it reaches the templates only as variables (escaped in HTML), never
as template source."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from alerts.compose.gsm import SegmentCount
from alerts.templating import LANGUAGES

ENGLISH = "en"
URGENT = "urgent"
NEWSLETTER = "newsletter"


@dataclass(frozen=True)
class AlertText:
    """One language version, written by staff; plain text, never template code."""

    title: str
    what: str  # what is going on (paragraphs separated by blank lines)
    affected: str  # who is affected: the products in plain words
    actions: tuple[str, ...]  # what to do now: concrete steps
    urgency: str = ""  # e.g. "Act today" (free text)


@dataclass(frozen=True)
class Firm:
    """An entry of the "Who can help" block."""

    name: str
    website: str
    phone: str = ""
    email: str = ""
    kmo_portefeuille: bool = False
    specialities: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertContent:
    alert_id: int
    tier: str  # "urgent" | "newsletter"
    public_url: str  # the public alert page (absolute URL)
    texts: Mapping[str, AlertText]  # language -> text; "en" should exist, others may be missing
    cves: tuple[str, ...] = ()
    known_exploited: bool = False
    links: tuple[tuple[str, str], ...] = ()  # (label, url): vendor advisories, CERT pages
    published: date | None = None


@dataclass(frozen=True)
class RecipientLinks:
    """Per subscriber, or PLACEHOLDERS that the batch sender substitutes per recipient."""

    preferences: str
    unsubscribe: str
    sms_optout: str = ""


PLACEHOLDERS = RecipientLinks(
    preferences="[[PREFERENCES]]", unsubscribe="[[UNSUBSCRIBE]]", sms_optout="[[SMS_OPTOUT]]"
)
PLACEHOLDER = re.compile(r"\[\[[A-Z_]+\]\]")


@dataclass(frozen=True)
class ComposedEmail:
    subject: str
    text: str
    html: str
    language: str  # the language of the static wording
    fallback: bool  # the subscriber's language was missing and English was used


@dataclass(frozen=True)
class ComposedSms:
    text: str
    language: str
    fallback: bool
    segments: SegmentCount  # [[...]] placeholders counted at a realistic link length


class MissingText(ValueError):
    """Neither the subscriber's language nor English has a text: nothing can be composed."""


def missing_languages(content: AlertContent) -> list[str]:
    """Our languages (nl, fr, en, de) without a usable text: the note staff see."""
    return [language for language in LANGUAGES if _missing(content.texts.get(language))]


def pick_text(content: AlertContent, language: str) -> tuple[str, AlertText, bool]:
    """(language used, its text, fell back to English?)."""
    if language in LANGUAGES and not _missing(content.texts.get(language)):
        return language, content.texts[language], False
    if not _missing(content.texts.get(ENGLISH)):
        return ENGLISH, content.texts[ENGLISH], language != ENGLISH
    raise MissingText(f"alert {content.alert_id} has no {language} and no English text")


def _missing(text: AlertText | None) -> bool:
    """No version, or one with a blank title."""
    return text is None or not text.title.strip()


def one_line(text: str) -> str:
    return " ".join(text.split())


def paragraphs(text: str) -> list[list[str]]:
    """Blank-line separated paragraphs, each as its lines (shown joined by <br> in HTML)."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return []
    return [[line.strip() for line in block.split("\n")] for block in re.split(r"\n\s*\n", text)]


def shorten(text: str, limit: int, ellipsis: str = "...") -> str:
    """At most `limit` characters, cut at a word boundary when one is near."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ellipsis), 1)]
    space = cut.rfind(" ")
    if space > len(cut) * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + ellipsis
