"""Relevance in the store: score advisories when they arrive or change, and re-score those
a known-exploited catalogue or an EPSS score has just spoken about.

Scoring runs after the storing transaction has committed, in short transactions of its
own (ordered by id), so a scoring problem never loses stored advisories and two pollers
never deadlock on each other's rows. A re-score only brings an advisory back to the top of
the curation queue (`queued_at`) when its tier rises — never for a cosmetic edit."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from alerts.enrich import Context, KevEntry, add_kev_entry
from alerts.models import Advisory, AdvisoryCve, EpssScore
from alerts.relevance.catalogue import CATALOGUE_FILE, Catalogue, load_catalogue
from alerts.relevance.engine import TIER_RANK, Decision
from alerts.relevance.rules import RULES_FILE, RuleHolder
from alerts.relevance.scoring import Scorer
from alerts.store import Database

log = logging.getLogger(__name__)
BATCH = 500
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
        "first_seen_at",
    )
]


@lru_cache(maxsize=1)
def default_rules() -> RuleHolder:
    """The rules in force: ALERTS_RULES_FILE, else the packaged rules.yaml. A staff file
    that is invalid at start-up falls back to the packaged rules (and says so)."""
    from alerts.settings import get_settings

    return RuleHolder(get_settings().rules_file or RULES_FILE, fallback=RULES_FILE)


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    from alerts.settings import get_settings

    return load_catalogue(get_settings().catalogue_file or CATALOGUE_FILE)


def epss_watch() -> float | None:
    """The EPSS threshold the rules care about: scores crossing it need a re-score."""
    return default_rules().epss_threshold()


# ----------------------------------------------------------------------------- entry points


def after_store(database: Database, changed_ids: Sequence[int], epss_cves: Iterable[str] = ()):
    """After ingestion committed: score what changed; when a known-exploited entry changed or
    an EPSS score crossed the threshold, re-score every advisory about the same CVEs.
    Never raises: what could not be scored stays unscored and the sweep retries it."""
    try:
        score_ids(database, changed_ids)
        cves = set(epss_cves) | _kev_cves(database, changed_ids)
        if cves:
            raised = rescore_cves(database, cves, exclude=set(changed_ids))
            if raised:
                log.info("%d advisories rose a tier after a known-exploited/EPSS update", raised)
    except Exception:
        log.exception("relevance scoring failed; the advisories stay unscored for the sweep")


def score_ids(database: Database, ids: Iterable[int]) -> int:
    """(Re-)score advisories by id, a batch per transaction; returns how many rose a tier."""
    ordered = sorted(set(ids))
    holder, catalogue = default_rules(), default_catalogue()
    holder.reload()  # staff may have edited the rules; a bad edit keeps the old ones
    raised = 0
    for start in range(0, len(ordered), BATCH):
        with database.session() as session:
            raised += _score_batch(session, ordered[start : start + BATCH], holder, catalogue)
    return raised


def rescore_cves(
    database: Database, cve_ids: Iterable[str], *, exclude: set[int] = frozenset()
) -> int:
    """Every advisory about these CVEs, from any source (e.g. after a KEV update)."""
    cves = sorted(set(cve_ids))
    ids: set[int] = set()
    with database.session() as session:
        for start in range(0, len(cves), BATCH):
            chunk = cves[start : start + BATCH]
            ids.update(
                session.scalars(
                    select(AdvisoryCve.advisory_id).where(AdvisoryCve.cve_id.in_(chunk))
                )
            )
    return score_ids(database, ids - exclude)


def sweep(database: Database, *, everything: bool = False) -> int:
    """Score what is unscored (after an upgrade, or a failed scoring); with `everything`,
    re-score all (after a rule change). Returns how many rose a tier."""
    query = select(Advisory.id)
    if not everything:
        query = query.where(Advisory.tier.is_(None))
    with database.session() as session:
        ids = list(session.scalars(query))
    return score_ids(database, ids)


def tier_counts(database: Database) -> dict[str, int]:
    with database.session() as session:
        rows = session.execute(select(Advisory.tier, func.count()).group_by(Advisory.tier))
        return {tier or "unscored": count for tier, count in rows}


# ----------------------------------------------------------------------------- scoring


def _score_batch(session: Session, ids: list[int], holder: RuleHolder, catalogue: Catalogue) -> int:
    rows = session.execute(
        select(*SCORED_COLUMNS).where(Advisory.id.in_(ids)).order_by(Advisory.id)
    ).all()
    scorer = Scorer(holder.rules, catalogue, _context(session, rows), holder.signals)
    updates = [_values(row, *scorer.score(row)) for row in rows]
    raised = sum(values.pop("_rose") for values in updates)
    if updates:  # one executemany per batch, not one UPDATE per row through the ORM
        session.execute(update(Advisory), updates)
    return raised


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
    if previous is None and decision.tier != "ignore":
        # First score: it joins the queue when it arrived (an upgrade scoring old advisories
        # must not push them all to the top).
        values["queued_at"] = row.first_seen_at or now
    elif rose:
        values["queued_at"] = now  # back on top: newly exploited, say
    return values


def _kev_cves(database: Database, changed_ids: Sequence[int]) -> set[str]:
    """CVEs of known-exploited entries among the changed advisories."""
    ordered = sorted(set(changed_ids))
    found: set[str] = set()
    with database.session() as session:
        for start in range(0, len(ordered), BATCH):
            found.update(
                session.scalars(
                    select(AdvisoryCve.cve_id)
                    .join(Advisory, Advisory.id == AdvisoryCve.advisory_id)
                    .where(
                        Advisory.id.in_(ordered[start : start + BATCH]),
                        Advisory.kind == "known-exploited",
                    )
                )
            )
    return found


def _context(session: Session, rows) -> Context:
    """What the catalogues and EPSS in the store say about these advisories' CVEs."""
    cves = sorted({cve for row in rows for cve in row.cve_ids})
    kev: dict[str, KevEntry] = {}
    epss: dict[str, float] = {}
    for start in range(0, len(cves), BATCH):
        chunk = cves[start : start + BATCH]
        kev.update(_kev_entries(session, chunk))
        epss.update(
            session.execute(
                select(EpssScore.cve_id, EpssScore.epss).where(EpssScore.cve_id.in_(chunk))
            ).all()
        )
    return Context(kev=kev, epss=epss)


def _kev_entries(session: Session, cves: list[str]) -> dict[str, KevEntry]:
    rows = session.execute(
        select(AdvisoryCve.cve_id, Advisory.source, Advisory.facts)
        .join(Advisory, Advisory.id == AdvisoryCve.advisory_id)
        .where(AdvisoryCve.cve_id.in_(cves), Advisory.kind == "known-exploited")
    )
    found: dict[str, KevEntry] = {}
    for cve, source, facts in rows:
        add_kev_entry(found, cve, source, facts)
    return found
