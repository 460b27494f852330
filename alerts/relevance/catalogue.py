"""Product families (catalogue.yaml) and spotting them in an advisory.

Structured data (vendor + product fields, CPE names) is trusted most; then names in the
title; names only in the summary are kept apart as weaker evidence (a news article may
mention Windows in passing)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.yamlfile import load_model

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
Category = Literal[
    "edge",
    "remote-access",
    "email",
    "file-transfer",
    "nas",
    "backup",
    "cms",
    "ecommerce",
    "collaboration",
    "virtualisation",
    "desktop-os",
    "office",
    "browser",
    "mobile",
    "document-reader",
    "archiver",
    "server",
    "web-server",
    "network",
    "security",
    "runtime",
    "business",
    "devops",
    "library",
    "enterprise",
    "mainframe",
    "ot",
    "medical",
    "consumer",
]
Exposure = Literal["internet", "user", "internal", "none"]
_SUMMARY_CHARS = 3000  # names deep in long articles say little about the subject


class Family(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,50}$")
    name: str
    vendor: str
    category: Category
    exposure: Exposure
    sme_weight: float = Field(ge=0, le=1)
    aliases: list[str] = []
    vendors: list[str] = []
    products: list[str] = []
    cpe: list[str] = []

    @field_validator("aliases")
    @classmethod
    def _valid_patterns(cls, aliases: list[str]) -> list[str]:
        for alias in aliases:
            if alias.startswith("re:"):
                try:
                    re.compile(alias[3:])
                except re.error as error:  # reported with its line, not as a traceback
                    raise ValueError(f"{alias!r} is not a valid expression: {error}") from None
        return aliases

    @property
    def sme_common(self) -> bool:
        return self.sme_weight >= 0.5


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    families: list[Family]

    @field_validator("families")
    @classmethod
    def _unique_ids(cls, families: list[Family]) -> list[Family]:
        seen = set()
        for family in families:
            if family.id in seen:
                raise ValueError(f"family id {family.id!r} is repeated")
            seen.add(family.id)
        return families

    def get(self, family_id: str) -> Family | None:
        return self._by_id.get(family_id)

    @cached_property
    def _by_id(self) -> dict[str, Family]:
        return {family.id: family for family in self.families}

    @cached_property
    def matcher(self) -> FamilyMatcher:
        return FamilyMatcher(self.families)


@dataclass(frozen=True)
class FamilyHit:
    family: Family
    evidence: str  # "vendor/product", "cpe", "title" or "summary"
    matched: str  # what matched, for the reason shown to staff

    @property
    def primary(self) -> bool:
        return self.evidence != "summary"


class FamilyMatcher:
    """Finds aliases by indexing them on their first word: one pass over the words of a
    text instead of one huge regular expression."""

    def __init__(self, families: list[Family]):
        self.families = families
        self._index: dict[str, list[tuple[str, int, bool, Family]]] = {}
        self._expressions: list[tuple[re.Pattern, Family]] = []
        self._vendors: dict[str, list[Family]] = {}
        for family in families:
            for vendor in family.vendors:
                self._vendors.setdefault(vendor, []).append(family)
            for alias in family.aliases:
                if alias.startswith("re:"):
                    self._expressions.append((re.compile(alias[3:], re.I), family))
                else:
                    self._add(alias, family)

    def _add(self, alias: str, family: Family) -> None:
        exact = alias.startswith("cs:")
        text = alias[3:] if exact else alias.lower()
        word = _WORD.search(text.lower())
        if word is None:
            return
        self._index.setdefault(word.group(0), []).append((text, word.start(), exact, family))

    def in_text(self, text: str) -> list[tuple[Family, str]]:
        spans: list[tuple[int, int, Family]] = []
        lowered = text.lower()
        for word in _WORD.finditer(lowered):
            for alias, offset, exact, family in self._index.get(word.group(0), ()):
                start = word.start() - offset
                if start >= 0 and _aligned(text if exact else lowered, alias, start):
                    spans.append((start, start + len(alias), family))
        found: dict[str, tuple[Family, str]] = {}
        for start, end, family in _outermost(spans):
            found.setdefault(family.id, (family, text[start:end]))
        for expression, family in self._expressions:
            if family.id not in found and (match := expression.search(text)):
                found[family.id] = (family, match.group(0))
        return list(found.values())

    def structured(self, vendors: list[str], products: list[str]) -> list[tuple[Family, str]]:
        """Families of the named vendors ("Fortinet, Inc." counts as "fortinet") whose
        product list, when they have one, names one of the products."""
        product_names = [p.lower() for p in products if p]
        found: dict[str, tuple[Family, str]] = {}
        for vendor in (v.lower() for v in vendors if v):
            for family in self._families_of(vendor):
                product = _product_of(family, product_names)
                if product is not None and family.id not in found:
                    found[family.id] = (family, f"{vendor} / {product}" if product else vendor)
        return list(found.values())

    def _families_of(self, vendor: str) -> list[Family]:
        words = vendor.replace(",", " ").split()
        names = [" ".join(words[:n]) for n in range(1, len(words) + 1)]
        return [f for name in names for f in self._vendors.get(name, ())]

    def cpes(self, cpes: list[str]) -> list[tuple[Family, str]]:
        found = []
        for cpe in cpes:
            parts = _cpe_parts(cpe)
            if parts is None:
                continue
            for family in self.families:
                if any(_cpe_matches(parts, prefix) for prefix in family.cpe):
                    found.append((family, f"{parts[1]}:{parts[2]}"))
        return found


def _cpe_parts(cpe: str) -> list[str] | None:
    """part, vendor, product, version, ... from a CPE 2.3 name or a CPE 2.2 URI."""
    text = cpe.strip().lower().replace("\\/", "/")
    if text.startswith("cpe:2.3:"):
        parts = text[len("cpe:2.3:") :].split(":")
    elif text.startswith("cpe:/"):
        parts = text[len("cpe:/") :].split(":")
    else:
        return None
    return parts if len(parts) >= 3 else None


_WORD = re.compile(r"[0-9a-zà-ÿ]+")


def _outermost(spans: list[tuple[int, int, Family]]) -> list[tuple[int, int, Family]]:
    """Drop a name found inside a longer one ("Cisco IOS" inside "Cisco IOS XR")."""
    return [
        (start, end, family)
        for start, end, family in spans
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in spans)
    ]


def _aligned(text: str, alias: str, start: int) -> bool:
    """The alias sits at `start` as a whole phrase: no letter or digit glued to it."""
    if not text.startswith(alias, start):
        return False
    end = start + len(alias)
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before in "_-") and not (after.isalnum() or after == "_")


def _product_of(family: Family, products: list[str]) -> str | None:
    """The product that places an advisory of this vendor in this family ("" = any)."""
    if not family.products:
        return products[0] if products else ""
    for product in products:
        if any(name in product for name in family.products):
            return product
    return None


def _cpe_matches(parts: list[str], prefix: str) -> bool:
    """Every field the prefix gives must match ("*" any, "abc*" a prefix)."""
    wanted = prefix.lower().replace("\\/", "/").split(":")
    if len(parts) < len(wanted):
        parts = parts + ["*"] * (len(wanted) - len(parts))
    for have, want in zip(parts, wanted, strict=False):
        if want.endswith("*") and want != "*":
            if not have.startswith(want[:-1]):
                return False
        elif want != "*" and have != want:
            return False
    return True


def find_families(
    catalogue: Catalogue,
    *,
    title: str,
    summary: str,
    vendors: list[str],
    products: list[str],
    cpes: list[str] = (),
) -> list[FamilyHit]:
    """Every family the advisory concerns, strongest evidence first, each family once."""
    matcher = catalogue.matcher
    hits: dict[str, FamilyHit] = {}
    sources = [
        ("vendor/product", matcher.structured(vendors, products)),
        ("cpe", matcher.cpes(list(cpes))),
        ("title", matcher.in_text(title)),
        ("summary", matcher.in_text(summary[:_SUMMARY_CHARS])),
    ]
    for evidence, found in sources:
        for family, matched in found:
            hits.setdefault(family.id, FamilyHit(family, evidence, matched))
    return list(hits.values())


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    return load_model(path, Catalogue)
