"""Relevance in the store: score advisories when they arrive or change, and re-score those
a known-exploited catalogue or an EPSS file has just spoken about.

A re-score only brings an advisory back to the top of the curation queue (`queued_at`)
when its tier rises — newly known-exploited, say — never for a cosmetic edit."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from alerts.enrich import Context, KevEntry
from alerts.models import Advisory, AdvisoryCve, EpssScore
from alerts.relevance.catalogue import CATALOGUE_FILE, Catalogue, load_catalogue
from alerts.relevance.engine import TIER_RANK, Decision
from alerts.relevance.rules import RULES_FILE, RuleHolder
from alerts.relevance.scoring import Scorer

log = logging.getLogger(__name__)
BATCH = 500


@lru_cache(maxsize=1)
def default_rules() -> RuleHolder:
    """The rules in force: ALERTS_RULES_FILE, else the packaged rules.yaml."""
    from alerts.settings import get_settings

    return RuleHolder(get_settings().rules_file or RULES_FILE)


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    from alerts.settings import get_settings

    return load_catalogue(get_settings().catalogue_file or CATALOGUE_FILE)


SCORED_COLUMNS = [
    getattr(Advisory, name)
    for name in (
        "id",
        "item_id",
        "title",
        "summary_text",
        "url",
        "kind",
        "language",
        "published",
        "cve_ids",
        "cvss_score",
        "vendors",
        "products",
        "known_exploited",
        "facts",
        "tier",
    )
]


def score_advisories(
    session: Session,
    ids: Sequence[int],
    *,
    holder: RuleHolder | None = None,
    catalogue: Catalogue | None = None,
) -> int:
    """(Re-)score the given advisories; returns how many rose to a higher tier."""
    holder = holder or default_rules()
    holder.reload()  # staff may have edited the rules; a bad edit keeps the old ones
    catalogue = catalogue or default_catalogue()
    raised = 0
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        rows = session.execute(select(*SCORED_COLUMNS).where(Advisory.id.in_(batch))).all()
        scorer = Scorer(holder.rules, catalogue, _context(session, rows), holder.signals)
        updates = [_values(row, *scorer.score(row)) for row in rows]
        raised += sum(update.pop("_rose") for update in updates)
        if updates:  # one executemany per batch, not one UPDATE per row through the ORM
            session.execute(update(Advisory), updates)
    return raised


def rescore_cves(
    session: Session, cve_ids: Iterable[str], *, exclude: set[int] = frozenset(), **kwargs
) -> int:
    """Every advisory about these CVEs, from any source (e.g. after a KEV update)."""
    cves = sorted(set(cve_ids))
    ids: set[int] = set()
    for start in range(0, len(cves), BATCH):
        ids.update(
            session.scalars(
                select(AdvisoryCve.advisory_id).where(
                    AdvisoryCve.cve_id.in_(cves[start : start + BATCH])
                )
            )
        )
    return score_advisories(session, sorted(ids - exclude), **kwargs)


def rescore_all(session: Session, *, only_unscored: bool = False, **kwargs) -> int:
    query = select(Advisory.id).order_by(Advisory.id)
    if only_unscored:
        query = query.where(Advisory.tier.is_(None))
    return score_advisories(session, list(session.scalars(query)), **kwargs)


def after_store(session: Session, changed_ids: Sequence[int], epss_cves: Iterable[str] = ()):
    """Called by ingestion after each document: score what changed; when a known-exploited
    entry or an EPSS score changed, re-score every advisory about the same CVEs."""
    score_advisories(session, list(changed_ids))
    kev = set()
    for start in range(0, len(changed_ids), BATCH):
        kev.update(
            session.scalars(
                select(AdvisoryCve.cve_id)
                .join(Advisory, Advisory.id == AdvisoryCve.advisory_id)
                .where(
                    Advisory.id.in_(changed_ids[start : start + BATCH]),
                    Advisory.kind == "known-exploited",
                )
            )
        )
    kev.update(epss_cves)
    if kev:
        raised = rescore_cves(session, kev, exclude=set(changed_ids))
        if raised:
            log.info("%d advisories rose to a higher tier after a known-exploited update", raised)


def _values(row, facts, decision: Decision) -> dict:
    now = datetime.now(UTC)
    previous = row.tier
    rose = previous is not None and TIER_RANK[decision.tier] > TIER_RANK.get(previous, 0)
    values = {
        "id": row.id,
        "tier": decision.tier,
        "score": decision.score,
        "rules_version": decision.rules_version,
        "reasons": [reason.as_dict() for reason in decision.reasons],
        "families": [hit.family.id for hit in decision.families],
        "exploitation": facts.exploitation,
        "ransomware": facts.ransomware,
        "epss": facts.epss,
        "scored_at": now,
        "_rose": int(rose),
    }
    if (previous is None and decision.tier != "ignore") or rose:
        values["queued_at"] = now  # new in the queue, or back on top because it rose
    return values


def _context(session: Session, rows: list[Advisory]) -> Context:
    """What the catalogues and EPSS in the store say about these advisories' CVEs."""
    cves = sorted({cve for row in rows for cve in row.cve_ids})
    if not cves:
        return Context()
    return Context(kev=_kev_entries(session, cves), epss=_epss(session, cves))


def _kev_entries(session: Session, cves: list[str]) -> dict[str, KevEntry]:
    rows = session.execute(
        select(AdvisoryCve.cve_id, Advisory.source, Advisory.facts)
        .join(Advisory, Advisory.id == AdvisoryCve.advisory_id)
        .where(AdvisoryCve.cve_id.in_(cves), Advisory.kind == "known-exploited")
    )
    found: dict[str, KevEntry] = {}
    for cve, source, facts in rows:
        used = str((facts or {}).get("known_ransomware_campaign_use", "")).lower() == "known"
        old = found.get(cve)
        catalogues = tuple(sorted({source, *(old.catalogues if old else ())}))
        found[cve] = KevEntry(catalogues, used or bool(old and old.ransomware))
    return found


def _epss(session: Session, cves: list[str]) -> dict[str, float]:
    rows = session.execute(
        select(EpssScore.cve_id, EpssScore.epss).where(EpssScore.cve_id.in_(cves))
    )
    return dict(rows.all())


def tier_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Advisory.tier, func.count()).group_by(Advisory.tier))
    return {tier or "unscored": count for tier, count in rows}
