"""The alert editor's form, checked before anything is stored, and the text diff each edit
leaves in the audit trail. Pure: no database, no web."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerts.curation.drafting import LANGUAGES

TIERS = ("urgent", "newsletter")
LIMITS = {"title": 200, "what": 2000, "affected": 1000, "urgency": 100}
MULTILINE = ("what", "affected")  # paragraphs kept; the others are one line
MAX_ACTIONS, MAX_ACTION = 10, 300
MAX_LINKS, MAX_LABEL, MAX_URL = 10, 100, 500


@dataclass(frozen=True)
class AlertEdit:
    tier: str
    texts: dict[str, dict[str, Any]]
    links: list[list[str]]
    families: list[str]
    sectors: list[str]
    regions: list[str]

    @property
    def targeting(self) -> dict[str, list[str]]:
        return {"families": self.families, "sectors": self.sectors, "regions": self.regions}


class EditErrors(ValueError):
    """Field name -> message, for every field that is wrong."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{name}: {text}" for name, text in errors.items()))
        self.errors = errors


def parse(
    form: Mapping[str, Any],
    lists: Mapping[str, list[str]],
    known: Mapping[str, frozenset[str]],
) -> AlertEdit:
    """`form` holds single fields (title_en, what_fr, actions_nl as lines, links as lines
    "label | https://…", tier); `lists` the multi-selects (families, sectors, regions);
    `known` the allowed codes of each multi-select."""
    errors: dict[str, str] = {}
    tier = str(form.get("tier") or "")
    if tier not in TIERS:
        errors["tier"] = "choose urgent or newsletter"
    texts = {language: _text(form, language, errors) for language in LANGUAGES}
    texts = {language: text for language, text in texts.items() if any(text.values())}
    links = _links(str(form.get("links") or ""), errors)
    chosen = {}
    for name in ("families", "sectors", "regions"):
        values = list(dict.fromkeys(lists.get(name) or []))
        unknown = [value for value in values if value not in known[name]]
        if unknown:
            errors[name] = f"unknown: {', '.join(unknown[:5])}"
        chosen[name] = values
    if errors:
        raise EditErrors(errors)
    return AlertEdit(tier=tier, texts=texts, links=links, **chosen)


def _text(form: Mapping[str, Any], language: str, errors: dict[str, str]) -> dict[str, Any]:
    text: dict[str, Any] = {}
    for name, limit in LIMITS.items():
        raw = form.get(f"{name}_{language}")
        value = _clean_block(raw) if name in MULTILINE else _clean(raw)
        if len(value) > limit:
            errors[f"{name}_{language}"] = f"at most {limit} characters"
        text[name] = value
    actions = [_clean(line) for line in str(form.get(f"actions_{language}") or "").splitlines()]
    actions = [line for line in actions if line]
    if len(actions) > MAX_ACTIONS or any(len(line) > MAX_ACTION for line in actions):
        errors[f"actions_{language}"] = (
            f"at most {MAX_ACTIONS} steps of {MAX_ACTION} characters, one per line"
        )
    text["actions"] = actions
    return text


def _links(value: str, errors: dict[str, str]) -> list[list[str]]:
    links = []
    for line in filter(None, (line.strip() for line in value.splitlines())):
        label, separator, url = line.rpartition("|")
        label, url = (label.strip(), url.strip()) if separator else (url.strip(), url.strip())
        if not url.startswith("https://") or len(url) > MAX_URL or " " in url:
            errors["links"] = "each link needs an https:// address (one per line: label | URL)"
        links.append([label[:MAX_LABEL], url])
    if len(links) > MAX_LINKS:
        errors["links"] = f"at most {MAX_LINKS} links"
    return links


def _clean_block(value: Any) -> str:
    """Text of several paragraphs: lines and blank-line paragraph breaks kept (the
    messages show them), each line cleaned as `_clean` does, runs of blank lines made one."""
    lines = [_clean(line) for line in str(value or "").replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _clean(value: Any) -> str:
    """Text as typed, without control characters (tabs and newlines inside become spaces)."""
    text = str(value or "")
    return "".join(char if char.isprintable() else " " for char in text).strip()


def missing_for_submission(texts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Languages that still lack a title, what is going on or what to do."""
    return [
        language
        for language in LANGUAGES
        if not all((texts.get(language) or {}).get(name) for name in ("title", "what", "actions"))
    ]


def text_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """A unified diff of the texts, language by language, for the audit trail."""
    return "\n".join(
        difflib.unified_diff(_lines(before), _lines(after), "before", "after", lineterm="", n=0)
    )


def _lines(texts: Mapping[str, Any]) -> list[str]:
    lines = []
    for language in sorted(texts or {}):
        for name, value in sorted((texts[language] or {}).items()):
            values = value if isinstance(value, list) else [value]
            lines += [f"{language}.{name}: {item}" for item in values]
    return lines
