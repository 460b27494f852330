"""The alert email and the newsletter: one named template set each (subject.txt, body.txt,
body.html under templates/email/), rendered in the language actually used."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from alerts.compose.content import (
    ENGLISH,
    AlertContent,
    ComposedEmail,
    Firm,
    RecipientLinks,
    one_line,
    pick_text,
)
from alerts.compose.views import alert_view, firm_view, urgency_order
from alerts.templating import LANGUAGES, N_, gettext, render

BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")  # at most one blank line in a row
FALLBACK_NOTE = N_(
    "This alert is not available in your language yet, so you receive the English version."
)


def compose_email(
    content: AlertContent, language: str, links: RecipientLinks, firms: Sequence[Firm] = ()
) -> ComposedEmail:
    """The alert in the subscriber's language, or in English (fallback) when it has none."""
    used, text, fallback = pick_text(content, language)
    reader = language if language in LANGUAGES else ENGLISH
    context = {
        "alert": alert_view(content, used, text, fallback),
        "fallback_note": gettext(reader, FALLBACK_NOTE) if fallback else "",
        "reader_language": reader,
    }
    return _render_set("email/alert", used, fallback, context, links, firms)


def compose_newsletter(
    items: Sequence[AlertContent],
    language: str,
    links: RecipientLinks,
    firms: Sequence[Firm] = (),
) -> ComposedEmail | None:
    """Every item, most urgent first, or None when there is nothing to send. Items missing in
    the subscriber's language are shown in English and say so; `fallback` is then True."""
    unique = {content.alert_id: content for content in items}.values()  # once each
    if not unique:
        return None
    reader = language if language in LANGUAGES else ENGLISH
    views = [alert_view(c, *pick_text(c, reader)) for c in sorted(unique, key=urgency_order)]
    fallback = any(view.fallback for view in views)
    context = {"items": views, "count": len(views)}
    return _render_set("email/newsletter", reader, fallback, context, links, firms)


def _render_set(
    folder: str,
    language: str,
    fallback: bool,
    context: Mapping[str, object],
    links: RecipientLinks,
    firms: Sequence[Firm],
) -> ComposedEmail:
    context = {**context, "recipient": links, "firms": [firm_view(f) for f in firms]}
    subject = one_line(render(f"{folder}/subject.txt", language, **context))
    context["subject"] = subject
    text = BLANK_LINES.sub("\n\n", render(f"{folder}/body.txt", language, **context)).strip()
    html = render(f"{folder}/body.html", language, **context)
    return ComposedEmail(subject, text + "\n", html, language, fallback)
