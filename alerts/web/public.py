"""The public face of the alerts that went out: one alert's page (every message links to it),
the archive of all of them (search, filters, pages) and the newest ones as Atom, RSS and JSON
feeds. Each is in the reader's language, English when that text is missing.

Only PUBLISHED alerts are shown anywhere here. Staff text is plain text: escaped in HTML,
an XML text node in the feeds (an escaped HTML string in RSS descriptions, which readers
take as HTML), a JSON string in the JSON feed."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from babel import Locale, UnknownLocaleError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from sqlalchemy import ColumnElement, String, cast, func, or_, select
from sqlalchemy.orm import Session

from alerts.compose.content import (
    ENGLISH,
    NEWSLETTER,
    URGENT,
    AlertContent,
    AlertText,
    MissingText,
    one_line,
    paragraphs,
    pick_text,
    shorten,
)
from alerts.compose.views import alert_view, firm_view, local_date
from alerts.curation.content import BRUSSELS, alert_content, alert_firms
from alerts.curation.models import SENDING, SENT, Alert
from alerts.curation.service import count_view
from alerts.templating import LANGUAGES, gettext, reader_language, render
from alerts.web.params import RowId

router = APIRouter()
PUBLISHED = (SENDING, SENT)  # approved or scheduled alerts stay private until they go out
PAGE_SIZE = 20  # alerts per archive page
FEED_SIZE = 50  # alerts per feed
MAX_QUERY = 200  # characters of a search
SUMMARY_LENGTH = 240
TIERS = (URGENT, NEWSLETTER)
SEARCHED = ("title", "what", "affected")  # the text fields a search looks in
EXPLOITED = "known-exploited"  # the feeds' category for known exploited alerts
TITLE = "Cyber alerts for SMEs"
DESCRIPTION = (
    "A public service that warns small businesses about cyber attacks, "
    "based on the advisories of the national CERTs."
)
JSON_FEED = "https://jsonfeed.org/version/1.1"
FEED_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml"}
CACHE = {"cache-control": "public, max-age=300"}
# When an alert went public: its fan-out (status SENDING), else the end of sending, else
# its approval; created_at is never empty, so the order is the same on every database.
PUBLISHED_AT = func.coalesce(
    Alert.fanned_out_at, Alert.sent_at, Alert.approved_at, Alert.created_at
)
NEWEST_FIRST = (PUBLISHED_AT.desc(), Alert.id.desc())
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
NO_TEXT = AlertText(title="", what="", affected="", actions=())


# --- one published alert, in one language --------------------------------------------------


@dataclass(frozen=True)
class PublishedAlert:
    """What the archive and the feeds show of an alert, in the language asked for."""

    id: int
    url: str  # the public page, absolute: also the alert's id in the feeds
    title: str
    what: str  # plain text, paragraphs separated by blank lines
    language: str  # of the text
    fallback: bool  # the language asked for was missing
    tier: str
    exploited: bool
    cves: tuple[str, ...]
    published: datetime

    @property
    def summary(self) -> str:
        return shorten(" ".join((paragraphs(self.what) or [[""]])[0]), SUMMARY_LENGTH, "…")

    @property
    def categories(self) -> list[str]:
        return [self.tier, *self.cves, *([EXPLOITED] if self.exploited else [])]

    def link(self, language: str) -> str:
        return f"{self.url}?lang={language}"


def published_alert(alert: Alert, language: str, base_url: str) -> PublishedAlert:
    content = alert_content(alert, base_url)
    used, text, fallback = _pick(content, language)
    return PublishedAlert(
        id=alert.id,
        url=content.public_url,
        title=one_line(text.title),
        what=text.what.strip(),
        language=used,
        fallback=fallback,
        tier=alert.tier,
        exploited=bool(alert.known_exploited),
        cves=content.cves,
        published=alert.fanned_out_at or alert.sent_at or alert.approved_at or alert.created_at,
    )


def _pick(content: AlertContent, language: str) -> tuple[str, AlertText, bool]:
    """The reader's text, else English, else the first one with a title."""
    try:
        return pick_text(content, language)
    except MissingText:  # neither their language nor English: show what there is
        codes = [*LANGUAGES, *content.texts]
        titled = [code for code in codes if content.texts.get(code, NO_TEXT).title.strip()]
        used = (titled or list(content.texts) or [language])[0]
        return used, content.texts.get(used, NO_TEXT), True


# --- which alerts: the archive's search and filters, in SQL ----------------------------------


@dataclass(frozen=True)
class ArchiveQuery:
    """The archive's search and filters, read leniently from the query string: unknown
    values are ignored and the page number is clamped, so no input is an error."""

    text: str = ""
    tier: str = ""
    exploited: bool = False
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ArchiveQuery:
        text = " ".join(params.get("q", "")[: MAX_QUERY * 4].replace("\x00", " ").split())
        tier = params.get("tier", "")
        return cls(
            text=text[:MAX_QUERY],
            tier=tier if tier in TIERS else "",
            exploited=params.get("exploited", "") in ("1", "on", "true", "yes"),
            page=_page_number(params.get("page", "")),
        )

    @property
    def active(self) -> bool:
        return bool(self.text or self.tier or self.exploited)

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = [Alert.status.in_(PUBLISHED), _has_title()]
        if self.text:
            conditions.append(_matches(self.text))
        if self.tier:
            conditions.append(Alert.tier == self.tier)
        if self.exploited:
            conditions.append(Alert.known_exploited.is_(True))
        return conditions

    def link(self, language: str, page: int = 1) -> str:
        """The archive's address for these filters, in a language, at a page."""
        params = {
            "q": self.text,
            "tier": self.tier,
            "exploited": "1" if self.exploited else "",
            "lang": language,
            "page": str(page) if page > 1 else "",
        }
        return "/alerts?" + urlencode({name: value for name, value in params.items() if value})


def _page_number(raw: str) -> int:
    return max(1, int(raw)) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 1


def _has_title() -> ColumnElement[bool]:
    """At least one of our languages has a title: anything less cannot be shown."""
    titles = (func.trim(Alert.texts[(code, "title")].as_string()) for code in LANGUAGES)
    return or_(*(title != "" for title in titles))


def _matches(text: str) -> ColumnElement[bool]:
    """Case-insensitive: in the title, what or affected text of any language, or a CVE id."""
    fields = [Alert.texts[(code, field)].as_string() for code in LANGUAGES for field in SEARCHED]
    fields.append(cast(Alert.cves, String))
    return or_(*(field.icontains(text, autoescape=True) for field in fields))


def _newest(
    session: Session, conditions: list[ColumnElement[bool]], limit: int, offset: int = 0
) -> list[Alert]:
    statement = select(Alert).where(*conditions).order_by(*NEWEST_FIRST)
    return list(session.scalars(statement.limit(limit).offset(offset)))


@dataclass(frozen=True)
class ArchivePage:
    alerts: list[PublishedAlert]
    page: int  # the page shown (the one asked for, within 1..pages)
    pages: int
    total: int


def archive_page(
    session: Session, query: ArchiveQuery, language: str, base_url: str
) -> ArchivePage:
    conditions = query.conditions()
    total = session.scalar(select(func.count()).select_from(Alert).where(*conditions)) or 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(query.page, pages)
    rows = _newest(session, conditions, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return ArchivePage([published_alert(a, language, base_url) for a in rows], page, pages, total)


# --- pages ------------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def archive(request: Request) -> Response:
    language = reader_language(request)
    query = ArchiveQuery.parse(request.query_params)
    base_url = request.app.state.settings.public_base_url
    with request.app.state.database.session() as session:
        result = archive_page(session, query, language, base_url)
    page = render(
        "web/alerts_archive.html",
        language,
        query=query,
        result=result,
        rows=[_archive_row(alert, language) for alert in result.alerts],
        pages={
            "newer": query.link(language, result.page - 1) if result.page > 1 else "",
            "older": query.link(language, result.page + 1) if result.page < result.pages else "",
        },
        language_links={code: query.link(code, result.page) for code in LANGUAGES},
        feeds={kind: f"/alerts/feed.{kind}?lang={language}" for kind in ("atom", "rss", "json")},
    )
    return HTMLResponse(page)


def _archive_row(alert: PublishedAlert, language: str) -> dict[str, object]:
    day = alert.published.astimezone(BRUSSELS).date()
    return {
        "alert": alert,
        "href": f"/alerts/{alert.id}?lang={language}",
        "date": local_date(day, language),
        "datetime": day.isoformat(),
        "language_name": _language_name(alert.language) if alert.fallback else "",
    }


def _language_name(code: str) -> str:
    """A language's own name ("Nederlands"), for a text shown in another language."""
    try:
        return Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        return code


@router.get("/alerts/feed.atom")
def atom_feed(request: Request) -> Response:
    return _xml_feed_response(request, "atom")


@router.get("/alerts/feed.rss")
def rss_feed(request: Request) -> Response:
    return _xml_feed_response(request, "rss")


@router.get("/alerts/feed.json")
def json_feed(request: Request) -> Response:
    language, base, alerts = _feed_alerts(request)
    feed = {
        "version": JSON_FEED,
        "title": gettext(language, TITLE),
        "description": gettext(language, DESCRIPTION),
        "home_page_url": f"{base}/alerts?lang={language}",
        "feed_url": f"{base}/alerts/feed.json?lang={language}",
        "language": language,
        "items": [_json_item(alert, language) for alert in alerts],
    }
    return JSONResponse(feed, media_type="application/feed+json", headers=CACHE)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: RowId) -> Response:
    language = reader_language(request)
    with request.app.state.database.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status not in PUBLISHED or not alert.texts:
            return HTMLResponse(render("web/alert_missing.html", language), status_code=404)
        content = alert_content(alert, request.app.state.settings.public_base_url)
        firms = [firm_view(firm) for firm in alert_firms(alert)]
        count_view(session, alert.id, datetime.now(UTC))  # a number per day, no visitor data
    used, text, fallback = _pick(content, language)
    view = alert_view(content, used, text, fallback)
    page = render("web/alert.html", used if not fallback else language, alert=view, firms=firms)
    return HTMLResponse(page)


# --- feeds ------------------------------------------------------------------------------------


def _feed_alerts(request: Request) -> tuple[str, str, list[PublishedAlert]]:
    """The feed's language (?lang=, else English), the public base URL, the newest alerts."""
    language = request.query_params.get("lang")
    language = language if language in LANGUAGES else ENGLISH
    base = request.app.state.settings.public_base_url.rstrip("/")
    with request.app.state.database.session() as session:
        rows = _newest(session, ArchiveQuery().conditions(), FEED_SIZE)
        return language, base, [published_alert(alert, language, base) for alert in rows]


def _xml_feed_response(request: Request, kind: str) -> Response:
    language, base, alerts = _feed_alerts(request)
    feed = FeedGenerator()
    self_url = f"{base}/alerts/feed.{kind}?lang={language}"
    feed.id(self_url)
    feed.title(gettext(language, TITLE))
    feed.subtitle(gettext(language, DESCRIPTION))
    feed.link(href=self_url, rel="self")
    feed.link(href=f"{base}/alerts?lang={language}", rel="alternate")  # last: RSS's <link>
    feed.language(language)
    feed.updated(alerts[0].published if alerts else datetime.now(UTC))
    for alert in alerts:
        _feed_entry(feed.add_entry(order="append"), alert, language, rss=kind == "rss")
    body = feed.rss_str(pretty=True) if kind == "rss" else feed.atom_str(pretty=True)
    return Response(body, media_type=f"{FEED_TYPES[kind]}; charset=utf-8", headers=CACHE)


def _feed_entry(entry: FeedEntry, alert: PublishedAlert, language: str, rss: bool) -> None:
    entry.guid(alert.url, permalink=True)  # also the Atom id
    entry.title(_xml(alert.title))
    entry.link(href=alert.link(language), rel="alternate", hreflang=alert.language)
    entry.published(alert.published)
    entry.updated(alert.published)
    if rss:  # readers take an RSS description as HTML: give them the text escaped
        entry.description(html.escape(_xml(alert.what), quote=False))
    else:  # an Atom summary without a type is plain text
        entry.summary(_xml(alert.what))
    entry.category([{"term": _xml(term)} for term in alert.categories if _xml(term)])


def _xml(text: str) -> str:
    """Without the characters XML 1.0 cannot hold (control characters, lone surrogates)."""
    return NOT_XML.sub("", text)


def _json_item(alert: PublishedAlert, language: str) -> dict[str, object]:
    return {
        "id": alert.url,
        "url": alert.link(language),
        "title": alert.title,
        "content_text": alert.what,
        "summary": alert.summary,
        "date_published": alert.published.isoformat(),
        "language": alert.language,
        "tags": alert.categories,
    }
