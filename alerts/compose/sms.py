"""The alert SMS (templates/sms/alert.txt): label and title, the staff's urgency when it fits,
the public alert link and the opt-out link, downgraded to GSM-7 and fitted to two segments
by shortening the title (then dropping the urgency line) when the links leave too little room.

Links are counted at their real length, and [[PLACEHOLDERS]] at LINK_LENGTH, so the batch
sender's per-recipient links do not push a message past the count staff approved."""

from __future__ import annotations

from collections.abc import Iterator

from alerts.compose.content import (
    PLACEHOLDER,
    URGENT,
    AlertContent,
    ComposedSms,
    RecipientLinks,
    missing_languages,
    one_line,
    pick_text,
    shorten,
)
from alerts.compose.gsm import SegmentCount, sms_segments, to_gsm7
from alerts.templating import LANGUAGES, render

MAX_SEGMENTS = 2
LINK_LENGTH = 60  # a realistic https://…/s/<code> or public alert address
MIN_TITLE_WITH_URGENCY = 40
MIN_TITLE = 20
REPORT_LINK = "https://" + "x" * (LINK_LENGTH - len("https://"))


def compose_sms(content: AlertContent, language: str, links: RecipientLinks) -> ComposedSms:
    """The SMS in the subscriber's language (or English, fallback), within MAX_SEGMENTS when
    the links allow it; `segments` says what it costs."""
    if not links.sms_optout.strip():
        raise ValueError("an alert SMS needs the recipient's opt-out link (links.sms_optout)")
    used, text, fallback = pick_text(content, language)
    context = {
        "urgent": content.tier == URGENT,
        "public_url": content.public_url.strip(),
        "sms_optout": links.sms_optout.strip(),
    }
    candidates = _candidates(one_line(text.title), one_line(text.urgency))
    body, count = "", None
    for title, urgency in candidates:
        body = to_gsm7(render("sms/alert.txt", used, title=title, urgency=urgency, **context))
        count = measure(body)
        if count.segments <= MAX_SEGMENTS:
            break
    return ComposedSms(text=body, language=used, fallback=fallback, segments=count)


def sms_report(content: AlertContent) -> dict[str, SegmentCount]:
    """Segments per language version, with an opt-out link of realistic length: for staff
    to see before approving."""
    return {language: sms.segments for language, sms in sms_previews(content).items()}


def sms_previews(content: AlertContent) -> dict[str, ComposedSms]:
    """The SMS of each language version as it would go out, a link of realistic length
    standing in for each recipient's opt-out link."""
    links = RecipientLinks(preferences="", unsubscribe="", sms_optout=REPORT_LINK)
    missing = missing_languages(content)
    languages = [language for language in LANGUAGES if language not in missing]
    return {language: compose_sms(content, language, links) for language in languages}


def measure(text: str) -> SegmentCount:
    """Segments of the text once each [[PLACEHOLDER]] is a LINK_LENGTH link."""
    return sms_segments(PLACEHOLDER.sub(REPORT_LINK, text))


def _candidates(title: str, urgency: str) -> Iterator[tuple[str, str]]:
    """Longest first: the whole text, shorter titles, then without the urgency line."""
    seen = set()
    plans = [(urgency, MIN_TITLE_WITH_URGENCY), ("", MIN_TITLE)] if urgency else [("", MIN_TITLE)]
    for line, minimum in plans:
        for limit in range(len(title), min(minimum, len(title)) - 1, -1):
            candidate = (shorten(title, limit), line)
            if candidate not in seen:
                seen.add(candidate)
                yield candidate
