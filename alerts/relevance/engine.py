"""The relevance engine: a pure function from enriched facts and rules to a decision.

score = base + the weights of the rules that fired, kept within 0..100. The tier follows
the rule file's policy: some rules force "ignore"; "urgent" needs each of its required
groups to have fired and none of its blockers; otherwise the thresholds decide."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.enrich import Enrichment
from alerts.relevance.catalogue import FamilyHit
from alerts.relevance.rules import LANGUAGES, Condition, FamilyCondition, Rule, RuleSet

TIER_RANK = {"ignore": 0, "newsletter": 1, "urgent": 2}


@dataclass(frozen=True)
class Reason:
    rule: str
    weight: int
    texts: dict[str, str]  # language -> the reason in words

    def text(self, language: str = "en") -> str:
        return self.texts.get(language) or self.texts["en"]

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "weight": self.weight,
            "text": self.texts["en"],
            "texts": self.texts,
        }


@dataclass(frozen=True)
class Decision:
    tier: str
    score: int
    reasons: tuple[Reason, ...]
    families: tuple[FamilyHit, ...]
    rules_version: str

    def as_dict(self) -> dict:
        return {
            "tier": self.tier,
            "score": self.score,
            "reasons": [reason.as_dict() for reason in self.reasons],
            "families": [
                {
                    "id": h.family.id,
                    "name": h.family.name,
                    "evidence": h.evidence,
                    "matched": h.matched,
                }
                for h in self.families
            ],
            "rules_version": self.rules_version,
        }


def decide(facts: Enrichment, rules: RuleSet) -> Decision:
    fired: list[Reason] = []
    for rule in rules.rules:
        values = _fires(rule.when, facts)
        if values is not None:
            fired.append(_reason(rule, values))
    score = max(0, min(100, rules.base + sum(reason.weight for reason in fired)))
    tier = _tier(score, {reason.rule for reason in fired}, rules)
    families = facts.primary_families
    return Decision(tier, score, tuple(fired), families, rules.version)


def _tier(score: int, fired: set[str], rules: RuleSet) -> str:
    policy = rules.tiers
    if fired & set(policy.ignore_when_any):
        return "ignore"
    urgent_allowed = all(fired & set(group) for group in policy.urgent_requires) and not (
        fired & set(policy.urgent_blocked_by)
    )
    if urgent_allowed and score >= rules.thresholds.urgent:
        return "urgent"
    if score >= rules.thresholds.newsletter:
        return "newsletter"
    return "ignore"


def _reason(rule: Rule, values: dict[str, str]) -> Reason:
    texts = {}
    for language in LANGUAGES:
        template = getattr(rule.reason, language)
        texts[language] = template.format_map(_Blank(values))
    return Reason(rule.id, rule.weight, texts)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


# ----------------------------------------------------------------------------- conditions


def _fires(condition: Condition, facts: Enrichment) -> dict[str, str] | None:
    """The values to fill into the reason when every condition holds; None otherwise."""
    values: dict[str, str] = {}
    for check in _CHECKS:
        outcome = check(condition, facts, values)
        if outcome is False:
            return None
    return values


def _flags(condition: Condition, facts: Enrichment, values: dict) -> bool:
    pairs = [
        (condition.known_exploited, facts.known_exploited),
        (condition.ransomware, facts.ransomware),
        (condition.cert_alert, facts.cert_alert),
        (condition.news, facts.news),
        (condition.rejected, facts.rejected),
    ]
    if facts.kev_catalogues:
        values["catalogues"] = ", ".join(facts.kev_catalogues)
    return all(wanted is None or wanted == actual for wanted, actual in pairs)


def _exploitation(condition: Condition, facts: Enrichment, values: dict) -> bool:
    if condition.exploitation is None:
        return True
    values["evidence"] = facts.exploitation_evidence or ""
    return (facts.exploitation or "none") == condition.exploitation


def _wording(condition: Condition, facts: Enrichment, values: dict) -> bool:
    if condition.wording is not None:
        if condition.wording not in facts.wording:
            return False
        values["wording"] = facts.wording[condition.wording]
    absent = condition.no_wording
    names = [absent] if isinstance(absent, str) else absent or []
    return not any(name in facts.wording for name in names)


def _numbers(condition: Condition, facts: Enrichment, values: dict) -> bool:
    cvss, epss = facts.cvss, facts.epss
    if condition.cvss_min is not None and (cvss is None or cvss < condition.cvss_min):
        return False
    if condition.cvss_below is not None and (cvss is None or cvss >= condition.cvss_below):
        return False
    if condition.epss_min is not None and (epss is None or epss < condition.epss_min):
        return False
    age = facts.cve_age_years
    if condition.cve_age_min is not None and (age is None or age < condition.cve_age_min):
        return False
    values["cvss"] = f"{cvss:.1f}" if cvss is not None else ""
    values["epss"] = f"{epss:.0%}" if epss is not None else ""
    return True


def _families(condition: Condition, facts: Enrichment, values: dict) -> bool:
    hits = facts.primary_families
    if condition.no_family is not None and condition.no_family != (not hits):
        return False
    if condition.family is not None:
        hit = next((h for h in hits if _family_ok(condition.family, h)), None)
        if hit is None:
            return False
        values |= {"family": hit.family.name, "matched": hit.matched}
    if condition.all_families is not None:
        if not hits or not all(_family_ok(condition.all_families, h) for h in hits):
            return False
        values.setdefault("family", hits[0].family.name)
    return True


def _family_ok(condition: FamilyCondition, hit: FamilyHit) -> bool:
    family = hit.family
    return (
        (condition.category_in is None or family.category in condition.category_in)
        and (condition.exposure_in is None or family.exposure in condition.exposure_in)
        and (condition.sme_weight_min is None or family.sme_weight >= condition.sme_weight_min)
        and (condition.sme_weight_below is None or family.sme_weight < condition.sme_weight_below)
    )


def _kind(condition: Condition, facts: Enrichment, values: dict) -> bool:
    return condition.kind_in is None or facts.kind in condition.kind_in


_CHECKS = (_flags, _exploitation, _wording, _numbers, _families, _kind)
