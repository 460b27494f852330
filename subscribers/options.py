"""The sign-up form's choices (options.yaml) and the product families offered, by category."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from alerts.relevance.catalogue import Catalogue

OPTIONS_FILE = Path(__file__).with_name("options.yaml")
NEWSLETTER = ("none", "weekly", "daily")


@dataclass(frozen=True)
class Choice:
    code: str
    labels: dict[str, str]

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["en"]


@dataclass(frozen=True)
class FamilyGroup:
    """One category of product families as the form shows it."""

    category: Choice
    families: tuple[Choice, ...]


@lru_cache(maxsize=1)
def _options() -> dict[str, tuple[Choice, ...]]:
    raw = yaml.safe_load(OPTIONS_FILE.read_text(encoding="utf-8"))
    return {
        group: tuple(Choice(str(code), labels) for code, labels in entries.items())
        for group, entries in raw.items()
    }


def choices(group: str) -> tuple[Choice, ...]:
    """languages, regions, sectors, size_bands, newsletter or categories."""
    return _options()[group]


def codes(group: str) -> frozenset[str]:
    return frozenset(choice.code for choice in choices(group))


def label(group: str, code: str, language: str) -> str:
    for choice in choices(group):
        if choice.code == code:
            return choice.label(language)
    return code


def family_groups(catalogue: Catalogue) -> tuple[FamilyGroup, ...]:
    """Offered families grouped by category, in the form's order; families named as
    the catalogue names them (product names are not translated)."""
    groups = []
    for category in choices("categories"):
        members = [
            Choice(f.id, {"en": f.name})
            for f in catalogue.families
            if f.category == category.code and f.exposure != "none"
        ]
        if members:
            groups.append(FamilyGroup(category, tuple(sorted(members, key=lambda c: c.code))))
    return tuple(groups)


def offered_families(catalogue: Catalogue) -> frozenset[str]:
    return frozenset(c.code for group in family_groups(catalogue) for c in group.families)
