"""Jinja2 environments per language, with gettext catalogues (Babel) from templates/translations.

The .po files are the source; they are compiled in memory on first use, so no binary .mo
files live in the repository. One environment per language keeps concurrent requests in
different languages apart. Autoescaping is on for every .html template."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
TRANSLATIONS_DIR = TEMPLATES_DIR / "translations"
LANGUAGES = ("nl", "fr", "en", "de")
DEFAULT_LANGUAGE = "nl"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> NullTranslations:
    """The catalogue for a language; English is the source language (msgids)."""
    po_file = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po_file.exists():
        return NullTranslations()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def N_(message: str) -> str:
    """Marks a message for translation where it is defined; it is translated when shown."""
    return message


def gettext(language: str, message: str, **params: object) -> str:
    text = translations(language).gettext(message)
    return text.format(**params) if params else text


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)
    env.globals["language"] = language
    env.globals["languages"] = LANGUAGES
    return env


def render(template: str, language: str, **context: object) -> str:
    return environment(language).get_template(template).render(**context)


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of our languages for an Accept-Language header ("fr-BE,fr;q=0.9,en;q=0.8")."""
    ranked = []
    for position, part in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()[:2]))
    for _, _, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return default


def reader_language(request, preferred: str | None = None) -> str:
    """The language of a page: ?lang=, else the remembered choice (cookie), else
    `preferred` (a subscriber's own), else the browser's Accept-Language."""
    asked = request.query_params.get("lang") or request.cookies.get("lang")
    if asked in LANGUAGES:
        return asked
    return preferred or negotiate(request.headers.get("accept-language"))
