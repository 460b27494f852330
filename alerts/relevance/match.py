"""Does an advisory concern one subscriber? A pure function, with the reasons in words
("You run Fortinet FortiGate / FortiOS"), for the audience stage and the message itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from alerts.relevance.catalogue import Catalogue
from alerts.relevance.engine import TIER_RANK

YOU_RUN = {
    "en": "You run {name}",
    "nl": "U gebruikt {name}",
    "fr": "Vous utilisez {name}",
    "de": "Sie nutzen {name}",
}
WIDELY_USED = {
    "en": "{name}: used by most small businesses",
    "nl": "{name}: gebruikt door de meeste kmo's",
    "fr": "{name} : utilisé par la plupart des PME",
    "de": "{name}: von den meisten KMU genutzt",
}
EVERYONE = {
    "en": "This threat concerns businesses of every kind",
    "nl": "Deze dreiging betreft alle soorten bedrijven",
    "fr": "Cette menace concerne tous les types d'entreprises",
    "de": "Diese Bedrohung betrifft Unternehmen jeder Art",
}


@dataclass(frozen=True)
class Profile:
    """What a subscriber told us. An empty `families` with knows_products=False means
    "I don't know what we run": they get what concerns most small businesses."""

    families: frozenset[str] = frozenset()
    knows_products: bool = True
    min_tier: str = "newsletter"  # "urgent": only urgent alerts


@dataclass(frozen=True)
class Match:
    matched: bool
    reasons: tuple[dict[str, str], ...] = field(default=())  # language -> text

    def text(self, language: str = "en") -> list[str]:
        return [reason.get(language) or reason["en"] for reason in self.reasons]


def match(advisory, profile: Profile, catalogue: Catalogue | None = None) -> Match:
    """Does this advisory concern this subscriber? `advisory` is anything with the scored
    `tier` and `families` (a stored Advisory, or a Decision's values)."""
    families = getattr(advisory, "families", None) or []
    return match_scored(advisory.tier, families, profile, catalogue or _default_catalogue())


def match_scored(
    tier: str | None, families: Iterable[str], profile: Profile, catalogue: Catalogue
) -> Match:
    """The same, from the tier and family ids themselves."""
    if tier is None or tier == "ignore" or TIER_RANK[tier] < TIER_RANK[profile.min_tier]:
        return Match(False)
    known = [f for f in (catalogue.get(i) for i in families) if f is not None]
    if not known:
        return Match(tier == "urgent", (EVERYONE,) if tier == "urgent" else ())
    theirs = [f for f in known if f.id in profile.families]
    if theirs:
        return Match(True, tuple(_say(YOU_RUN, f.name) for f in theirs))
    if not profile.knows_products:
        common = [f for f in known if f.sme_common]
        return Match(bool(common), tuple(_say(WIDELY_USED, f.name) for f in common))
    return Match(False)


def _default_catalogue() -> Catalogue:
    from alerts.relevance.service import default_catalogue

    return default_catalogue()


def _say(templates: dict[str, str], name: str) -> dict[str, str]:
    return {language: text.format(name=name) for language, text in templates.items()}
