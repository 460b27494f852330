"""The nl/fr/de catalogues: complete, placeholder-safe, in step with the sources, and loaded
by alerts.templating the way the pages and emails use them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from alerts import templating

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "templates" / "translations"
POT = TRANSLATIONS / "messages.pot"
TRANSLATED = ("nl", "fr", "de")
SUBMIT = {"nl": "Inschrijven", "fr": "S'abonner", "de": "Abonnieren"}
SERVICE = {
    "nl": "Cyberwaarschuwingen voor kmo's",
    "fr": "Alertes cyber pour les PME",
    "de": "Cyberwarnungen für KMU",
}

PERCENT_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
BRACE_PLACEHOLDER = re.compile(r"\{(\w+)\}")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _msgids(catalog: Catalog) -> set[str]:
    return {message.id for message in catalog if message.id}


def _catalog(language: str) -> Catalog:
    return _read(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language)


def _placeholders(text: str | tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The placeholders of a message; of all its forms together for a plural one."""
    text = _joined(text)
    return set(PERCENT_PLACEHOLDER.findall(text)), set(BRACE_PLACEHOLDER.findall(text))


def _joined(text: str | tuple[str, ...]) -> str:
    return "\n".join(text) if isinstance(text, tuple) else text


@pytest.fixture(scope="module")
def template_ids() -> set[str]:
    return _msgids(_read(POT))


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language, template_ids):
    catalog = _catalog(language)
    missing = sorted(i for i in template_ids if i not in catalog or not catalog[i].string)
    fuzzy = sorted(i for i in template_ids if i in catalog and catalog[i].fuzzy)
    assert not missing, f"{language}: untranslated messages {missing}"
    assert not fuzzy, f"{language}: fuzzy translations to review {fuzzy}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_placeholders_are_kept_and_nothing_else_is_formatted(language, template_ids):
    problems = []
    for message in _catalog(language):
        if message.id not in template_ids or not message.string:
            continue
        msgid, msgstr = message.id, _joined(message.string)
        if _placeholders(msgid) != _placeholders(msgstr):
            problems.append(f"placeholders differ: {msgid!r} -> {msgstr!r}")
        # Jinja %-formats every translated string, str.format sees every brace in tr().
        if "%" in PERCENT_PLACEHOLDER.sub("", msgstr):
            problems.append(f"bare % (write the word instead): {msgstr!r}")
        if re.search(r"[{}]", BRACE_PLACEHOLDER.sub("", msgstr)):
            problems.append(f"stray brace: {msgstr!r}")
        if HTML_TAG.search(msgstr) and not HTML_TAG.search(msgid):
            problems.append(f"HTML in a translation of plain text: {msgstr!r}")
    assert not problems, f"{language}:\n" + "\n".join(problems)


def test_template_is_current(tmp_path):
    """The .pot holds exactly what `make translations` extracts from the sources."""
    pybabel = Path(sys.executable).with_name("pybabel")
    extracted = tmp_path / "messages.pot"
    command = [
        str(pybabel),
        "extract",
        "-F",
        "babel.cfg",
        "-k",
        "N_",
        "-k",
        "_problem",
        "-k",
        "gettext:2",
        "--no-location",
        "--sort-output",
        "--omit-header",
        "-o",
        str(extracted),
        ".",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    current, committed = _msgids(_read(extracted)), _msgids(_read(POT))
    assert current == committed, (
        "templates/translations/messages.pot is out of date: run `make translations`, then "
        "translate the new entries in the nl, fr and de catalogues.\n"
        f"new in the sources: {sorted(current - committed, key=str)}\n"
        f"no longer in the sources: {sorted(committed - current, key=str)}"
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_templating_uses_the_catalogue(language):
    assert templating.translations(language).gettext("Subscribe") == SUBMIT[language]
    assert templating.gettext(language, "Subscribe") == SUBMIT[language]
    assert templating.gettext(language, "Cyber alerts for SMEs") == SERVICE[language]
    limit = templating.gettext(language, "Use at most {limit} characters.", limit=200)
    assert "200" in limit and "{" not in limit
    assert templating.gettext("en", "Subscribe") == "Subscribe"
