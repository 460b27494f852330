"""The rule file (rules.yaml): schema, loading with the line at fault, and a holder that
keeps the previous rules in force when an edited file is invalid."""

from __future__ import annotations

import logging
import re
import string
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.enrich import Signals
from alerts.relevance.catalogue import Category, Exposure
from alerts.yamlfile import DataFileError, line_of, load_model_with_nodes

log = logging.getLogger(__name__)
RULES_FILE = Path(__file__).with_name("rules.yaml")
LANGUAGES = ("en", "nl", "fr", "de")
Tier = Literal["urgent", "newsletter", "ignore"]


class Text(BaseModel):
    """A reason in the four languages; {family}, {matched}, {cvss}, {epss}, {catalogues}
    and {wording} are filled in when the rule fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    en: str
    nl: str
    fr: str
    de: str


class FamilyCondition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    category_in: list[Category] | None = None
    exposure_in: list[Exposure] | None = None
    sme_weight_min: float | None = Field(None, ge=0, le=1)
    sme_weight_below: float | None = Field(None, ge=0, le=1)


class Condition(BaseModel):
    """Every key given must hold for the rule to fire."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    known_exploited: bool | None = None
    exploitation: Literal["active", "poc", "none"] | None = None
    ransomware: bool | None = None
    cert_alert: bool | None = None
    news: bool | None = None
    rejected: bool | None = None
    wording: str | None = None  # a signal name that must be present
    no_wording: str | list[str] | None = None  # signal name(s) that must be absent
    cvss_min: float | None = Field(None, ge=0, le=10)
    cvss_below: float | None = Field(None, ge=0, le=10)
    epss_min: float | None = Field(None, ge=0, le=1)
    cve_age_min: int | None = Field(None, ge=0)  # years between the CVE and the advisory
    family: FamilyCondition | None = None  # some family of the advisory satisfies this
    all_families: FamilyCondition | None = None  # every family (at least one) satisfies this
    no_family: bool | None = None
    kind_in: list[str] | None = None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,60}$")
    weight: int = Field(ge=-100, le=100)
    when: Condition
    reason: Text


class TierPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ignore_when_any: list[str] = []
    urgent_requires: list[list[str]] = []  # every group: at least one of its rules fired
    urgent_blocked_by: list[str] = []


class SignalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    news_domains: list[str] = []
    alert_urls: list[str] = []
    alert_ids: list[str] = []
    wording: dict[str, list[str]] = {}

    def compile(self) -> Signals:
        patterns = {name: _phrases(phrases) for name, phrases in self.wording.items()}
        return Signals(
            patterns, frozenset(self.news_domains), tuple(self.alert_urls), tuple(self.alert_ids)
        )


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    urgent: int = Field(ge=0, le=100)
    newsletter: int = Field(ge=0, le=100)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    base: int = Field(ge=0, le=100)
    thresholds: Thresholds
    signals: SignalConfig
    rules: list[Rule]
    tiers: TierPolicy

    def compiled_signals(self) -> Signals:
        return self.signals.compile()


PLACEHOLDERS = {"family", "matched", "cvss", "epss", "catalogues", "wording", "evidence"}


def _check_template(rule: str, language: str, template: str) -> None:
    """Only the documented {placeholders}, without attributes, indexes or conversions."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"rule {rule}: reason.{language}: {error}") from None
    for _text, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise ValueError(f"rule {rule}: reason.{language}: {{{name}}} is not one of {known}")


def _phrases(phrases: list[str]) -> re.Pattern:
    """Phrases as one case-insensitive pattern on word boundaries; "re:" marks a regex."""
    parts = [p[3:] if p.startswith("re:") else re.escape(p) for p in phrases]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)


def load_rules(path: Path = RULES_FILE) -> RuleSet:
    """Read and validate; DataFileError names the line at fault, cross-checks included."""
    rules, root = load_model_with_nodes(path, RuleSet)
    problems = _cross_check(rules)
    if problems:
        where, message = problems[0]
        raise DataFileError(f"{path}: line {line_of(root, where)}: {message}")
    return rules


def _cross_check(rules: RuleSet) -> list[tuple[tuple, str]]:
    """(location in the file, problem) for what a schema alone cannot see."""
    problems: list[tuple[tuple, str]] = []
    ids = [rule.id for rule in rules.rules]
    for index, rule in enumerate(rules.rules):
        if ids.index(rule.id) != index:
            problems.append((("rules", index, "id"), f"rule id {rule.id!r} is repeated"))
        problems += _check_rule(index, rule, rules.signals.wording)
    problems += _check_tiers(rules.tiers, set(ids))
    for name, phrases in rules.signals.wording.items():
        for index, phrase in enumerate(phrases):
            if phrase.startswith("re:") and (error := _regex_error(phrase[3:])):
                problems.append((("signals", "wording", name, index), error))
    if rules.thresholds.newsletter > rules.thresholds.urgent:
        problems.append(
            (
                ("thresholds", "newsletter"),
                "the newsletter threshold must not exceed the urgent threshold",
            )
        )
    return problems


def _check_rule(index: int, rule: Rule, wording: dict) -> list[tuple[tuple, str]]:
    problems = []
    absent = rule.when.no_wording
    for key, name in [
        ("wording", rule.when.wording),
        *(("no_wording", n) for n in ([absent] if isinstance(absent, str) else absent or [])),
    ]:
        if name is not None and name not in wording:
            problems.append((("rules", index, "when", key), f"undefined wording signal {name!r}"))
    for language in LANGUAGES:
        try:
            _check_template(rule.id, language, getattr(rule.reason, language))
        except ValueError as error:
            problems.append((("rules", index, "reason", language), str(error)))
    return problems


def _check_tiers(tiers: TierPolicy, ids: set[str]) -> list[tuple[tuple, str]]:
    problems = []
    for key in ("ignore_when_any", "urgent_blocked_by"):
        for index, name in enumerate(getattr(tiers, key)):
            if name not in ids:
                problems.append((("tiers", key, index), f"unknown rule {name!r}"))
    for group_index, group in enumerate(tiers.urgent_requires):
        for index, name in enumerate(group):
            if name not in ids:
                where = ("tiers", "urgent_requires", group_index, index)
                problems.append((where, f"unknown rule {name!r}"))
    return problems


def _regex_error(expression: str) -> str | None:
    try:
        re.compile(expression)
    except re.error as error:
        return f"not a valid expression: {error}"
    return None


class RuleHolder:
    """The rules in force. `reload()` swaps in an edited file only when it is valid."""

    def __init__(self, path: Path = RULES_FILE, *, fallback: Path | None = None):
        self.path = path
        self._lock = threading.Lock()
        self._mtime = _mtime(path)
        try:
            self.rules = load_rules(path)
        except DataFileError as error:
            if fallback is None or fallback == path:
                raise
            log.error("rule file rejected, the packaged rules are in force: %s", error)
            self.rules = load_rules(fallback)
        self.signals = self.rules.compiled_signals()

    def epss_threshold(self) -> float | None:
        """The lowest EPSS score a rule looks at (None when no rule does)."""
        values = [r.when.epss_min for r in self.rules.rules if r.when.epss_min is not None]
        return min(values) if values else None

    def reload(self, *, force: bool = False) -> str | None:
        """None when the rules in force are current; else the error that kept them."""
        mtime = _mtime(self.path)
        if not force and mtime == self._mtime:
            return None
        try:
            rules = load_rules(self.path)
        except DataFileError as error:
            log.error("rule file rejected, previous rules stay in force: %s", error)
            self._mtime = mtime
            return str(error)
        with self._lock:
            self.rules, self.signals, self._mtime = rules, rules.compiled_signals(), mtime
        log.info("relevance rules %s loaded", rules.version)
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
