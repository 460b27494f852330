"""Enrichment: from a stored or parsed advisory to the facts relevance rules look at.

Pure. The caller hands over what the store knows (known-exploited catalogue entries, EPSS
scores) as plain data, so the same code scores a file, a database row, or a test case."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from alerts.ingest.normalize import extract_cves
from alerts.relevance.catalogue import Catalogue, FamilyHit, find_families


@dataclass(frozen=True)
class Subject:
    """What relevance needs of an advisory, whatever it came from."""

    title: str
    summary: str = ""
    item_id: str = ""
    published: datetime | None = None
    url: str | None = None
    kind: str = "advisory"
    language: str | None = None
    cve_ids: tuple[str, ...] = ()
    cvss_score: float | None = None
    vendors: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    known_exploited: bool = False
    facts: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, advisory) -> Subject:
        """From an AdvisoryRecord or an Advisory row (they share these attribute names)."""
        cvss = getattr(advisory, "cvss", None)
        score = cvss.score if cvss is not None else getattr(advisory, "cvss_score", None)
        return cls(
            title=advisory.title or "",
            summary=advisory.summary_text or "",
            url=advisory.url,
            item_id=advisory.item_id,
            published=advisory.published,
            kind=advisory.kind,
            language=advisory.language,
            cve_ids=tuple(advisory.cve_ids),
            cvss_score=score,
            vendors=tuple(advisory.vendors),
            products=tuple(advisory.products),
            known_exploited=bool(advisory.known_exploited),
            facts=advisory.facts or {},
        )


@dataclass(frozen=True)
class KevEntry:
    """What the known-exploited catalogues in the store say about one CVE."""

    catalogues: tuple[str, ...]  # e.g. ("cisa-kev", "eu-kev")
    ransomware: bool = False


def ransomware_used(facts: Mapping[str, Any] | None) -> bool:
    """CISA KEV's knownRansomwareCampaignUse, as our KEV parser stores it."""
    return str((facts or {}).get("known_ransomware_campaign_use", "")).lower() == "known"


def add_kev_entry(found: dict[str, KevEntry], cve: str, catalogue: str, facts) -> None:
    """Merge one catalogue's entry for a CVE into `found` (catalogues listed, ransomware
    kept if any catalogue says so)."""
    old = found.get(cve)
    names = tuple(sorted({catalogue, *(old.catalogues if old else ())}))
    found[cve] = KevEntry(names, ransomware_used(facts) or bool(old and old.ransomware))


@dataclass(frozen=True)
class Context:
    kev: Mapping[str, KevEntry] = field(default_factory=dict)
    epss: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Signals:
    """Compiled wording patterns from the rule file (see rules.yaml `signals`)."""

    patterns: Mapping[str, re.Pattern]
    news_domains: frozenset[str]
    alert_urls: tuple[str, ...]
    alert_ids: tuple[str, ...] = ()

    def says(self, name: str, text: str) -> str | None:
        """The first words matching the signal that no negation just before denies
        ("not aware of active exploitation", "kan worden misbruikt", "pourrait être")."""
        pattern = self.patterns.get(name)
        if pattern is None:
            return None
        negation = self.patterns.get("negation") if name != "negation" else None
        for match in pattern.finditer(text):
            if negation is None or not negation.search(_clause_before(text, match.start())):
                return match.group(0)
        return None


@dataclass(frozen=True)
class Enrichment:
    cve_ids: tuple[str, ...]
    cvss: float | None
    known_exploited: bool
    kev_catalogues: tuple[str, ...]
    ransomware: bool
    epss: float | None
    exploitation: str | None  # "active" | "poc" | None
    exploitation_evidence: str | None
    wording: Mapping[str, str]  # signal name -> the words that matched
    families: tuple[FamilyHit, ...]
    news: bool
    cert_alert: bool
    rejected: bool
    kind: str = "advisory"
    cve_age_years: int | None = None  # how old the oldest CVE was when this was published

    @property
    def primary_families(self) -> tuple[FamilyHit, ...]:
        """Families named in structured data or the title; else those in the summary."""
        primary = tuple(hit for hit in self.families if hit.primary)
        return primary or self.families


def enrich(
    subject: Subject, catalogue: Catalogue, signals: Signals, context: Context | None = None
) -> Enrichment:
    context = context or Context()
    text = f"{subject.title}\n{subject.summary}"
    cves = tuple(dict.fromkeys([*subject.cve_ids, *extract_cves(text)]))
    kev = [context.kev[c] for c in cves if c in context.kev]
    wording = {
        name: hit
        for name in signals.patterns
        if name != "negation" and (hit := signals.says(name, text))
    }
    exploitation, evidence = _exploitation(subject, wording, bool(kev))
    return Enrichment(
        cve_ids=cves,
        cvss=subject.cvss_score,
        known_exploited=subject.known_exploited or bool(kev),
        kev_catalogues=tuple(sorted({name for entry in kev for name in entry.catalogues})),
        ransomware=_ransomware(subject, kev),
        epss=_max(context.epss.get(c) for c in cves),
        exploitation=exploitation,
        exploitation_evidence=evidence,
        wording=wording,
        families=tuple(_families(subject, catalogue)),
        news=_is_news(subject, signals),
        cert_alert=_is_alert(subject, signals),
        rejected=str(subject.facts.get("state", "")).upper() == "REJECTED",
        kind=subject.kind,
        cve_age_years=_cve_age(cves, subject.published),
    )


def _clause_before(text: str, end: int, width: int = 60) -> str:
    """The words just before a position, within the same sentence."""
    window = text[max(0, end - width) : end]
    cut = max(window.rfind(". "), window.rfind("\n"), window.rfind("; "))
    return window[cut + 1 :] if cut >= 0 else window


def _families(subject: Subject, catalogue: Catalogue) -> list[FamilyHit]:
    cpes = subject.facts.get("cpe") or subject.facts.get("cpes") or []
    if isinstance(cpes, str):
        cpes = [cpes]
    return find_families(
        catalogue,
        title=subject.title,
        summary=subject.summary,
        vendors=list(subject.vendors),
        products=list(subject.products),
        cpes=[c for c in cpes if isinstance(c, str)],
    )


def _exploitation(subject: Subject, wording: Mapping[str, str], in_kev: bool):
    """'active' when a catalogue, the publisher's data or its words say so; 'poc' when
    exploit code is public; a denial ("no known exploitation") cancels the wording only."""
    ssvc = str(subject.facts.get("ssvc_exploitation", "")).lower()
    if subject.known_exploited or in_kev:
        return "active", "known-exploited catalogue"
    if ssvc == "active":
        return "active", "CISA SSVC: exploitation active"
    if "active_exploitation" in wording and "no_exploitation" not in wording:
        return "active", wording["active_exploitation"]
    if ssvc == "poc":
        return "poc", "CISA SSVC: proof of concept"
    if "proof_of_concept" in wording:
        return "poc", wording["proof_of_concept"]
    return None, None


def _ransomware(subject: Subject, kev: list[KevEntry]) -> bool:
    return ransomware_used(subject.facts) or any(entry.ransomware for entry in kev)


def _is_news(subject: Subject, signals: Signals) -> bool:
    host = urlsplit(subject.url or "").hostname or ""
    return subject.kind == "news" or any(
        host == domain or host.endswith("." + domain) for domain in signals.news_domains
    )


def _is_alert(subject: Subject, signals: Signals) -> bool:
    url = subject.url or ""
    return any(marker in url for marker in signals.alert_urls) or any(
        subject.item_id.startswith(prefix) for prefix in signals.alert_ids
    )


def _cve_age(cves: tuple[str, ...], published: datetime | None) -> int | None:
    years = [int(cve[4:8]) for cve in cves if cve[4:8].isdigit()]
    if not years or published is None:
        return None
    return max(0, published.year - min(years))


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
