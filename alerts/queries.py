"""Read-side queries shared by the CLI and the web app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from alerts.ingest.normalize import normalize_cve
from alerts.models import Advisory, AdvisoryCve, Feed


@dataclass(frozen=True)
class AdvisoryFilter:
    source: str | None = None
    since: datetime | None = None
    cve: str | None = None
    text: str | None = None
    kind: str | None = None
    known_exploited: bool | None = None
    tier: str | None = None


def _filtered(query: Select, filters: AdvisoryFilter) -> Select:
    if filters.source:
        query = query.where(Advisory.source == filters.source)
    if filters.since:
        query = query.where(
            func.coalesce(Advisory.published, Advisory.first_seen_at) >= filters.since
        )
    if filters.cve:
        cve = normalize_cve(filters.cve) or filters.cve.upper()
        query = query.where(
            Advisory.id.in_(select(AdvisoryCve.advisory_id).where(AdvisoryCve.cve_id == cve))
        )
    if filters.text:
        pattern = "%" + _escape_like(filters.text.lower()) + "%"
        query = query.where(
            or_(
                func.lower(Advisory.title).like(pattern, escape="\\"),
                func.lower(Advisory.summary_text).like(pattern, escape="\\"),
            )
        )
    if filters.kind:
        query = query.where(Advisory.kind == filters.kind)
    if filters.tier:
        query = query.where(Advisory.tier == filters.tier)
    if filters.known_exploited is not None:
        query = query.where(Advisory.known_exploited.is_(filters.known_exploited))
    return query


def _escape_like(text: str) -> str:
    """Search text is text: % and _ match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_advisories(
    session: Session, filters: AdvisoryFilter, *, limit: int = 50, offset: int = 0
) -> list[Advisory]:
    """Newest first (by publication date, else by when we first saw it)."""
    newest = func.coalesce(Advisory.published, Advisory.first_seen_at)
    query = _filtered(select(Advisory), filters).order_by(newest.desc(), Advisory.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_advisories(session: Session, filters: AdvisoryFilter) -> int:
    query = _filtered(select(func.count()).select_from(Advisory), filters)
    return session.scalar(query) or 0


def find_advisory(session: Session, uid: str) -> Advisory | None:
    query = select(Advisory).where(or_(Advisory.uid == uid, Advisory.id == _as_int(uid)))
    return session.scalars(query).first()


def _as_int(value: str) -> int:
    return int(value) if value.isdigit() else -1


def sources_for_cves(session: Session, cve_ids: list[str]) -> dict[str, list[str]]:
    """For each CVE, the sources that wrote about it: one vulnerability, several voices."""
    if not cve_ids:
        return {}
    rows = session.execute(
        select(AdvisoryCve.cve_id, Advisory.source)
        .join(Advisory, Advisory.id == AdvisoryCve.advisory_id)
        .where(AdvisoryCve.cve_id.in_(cve_ids))
        .distinct()
    )
    grouped: dict[str, list[str]] = {}
    for cve, source in rows:
        grouped.setdefault(cve, []).append(source)
    return {cve: sorted(sources) for cve, sources in grouped.items()}


@dataclass
class Vulnerability:
    """All advisories about one CVE, merged for display."""

    cve_id: str
    advisories: list[Advisory]

    @property
    def sources(self) -> list[str]:
        return sorted({a.source for a in self.advisories})

    @property
    def known_exploited(self) -> bool:
        return any(a.known_exploited for a in self.advisories)

    @property
    def first_published(self) -> datetime | None:
        dates = [a.published for a in self.advisories if a.published]
        return min(dates) if dates else None

    @property
    def title(self) -> str:
        """The most descriptive title: a vendor or CERT advisory over a bare CVE record."""
        preferred = sorted(self.advisories, key=lambda a: (a.kind == "vulnerability", a.id))
        return preferred[0].title if preferred else self.cve_id


def vulnerability(session: Session, cve_id: str) -> Vulnerability | None:
    cve = normalize_cve(cve_id)
    if cve is None:
        return None
    advisories = list_advisories(session, AdvisoryFilter(cve=cve), limit=500)
    return Vulnerability(cve, advisories) if advisories else None


def list_vulnerabilities(session: Session, *, limit: int = 50, min_sources: int = 1):
    """CVE ids with how many sources wrote about them, most-covered first."""
    source_count = func.count(func.distinct(Advisory.source))
    query = (
        select(
            AdvisoryCve.cve_id,
            source_count.label("sources"),
            func.max(func.coalesce(Advisory.published, Advisory.first_seen_at)).label("latest"),
        )
        .join(Advisory, Advisory.id == AdvisoryCve.advisory_id)
        .group_by(AdvisoryCve.cve_id)
        .having(source_count >= min_sources)
        .order_by(source_count.desc(), AdvisoryCve.cve_id.desc())
        .limit(limit)
    )
    return session.execute(query).all()


def feed_health(session: Session) -> list[Feed]:
    return list(session.scalars(select(Feed).order_by(Feed.name)))


def advisory_json(a) -> dict:
    """One advisory as plain data, for `alerts advisories list --json` and /api/advisories."""
    return {
        "id": a.uid,
        "source": a.source,
        "tier": a.tier,
        "score": a.score,
        "reasons": [reason["text"] for reason in a.reasons or []],
        "families": a.families or [],
        "item_id": a.item_id,
        "kind": a.kind,
        "title": a.title,
        "url": a.url,
        "published": a.published.isoformat() if a.published else None,
        "updated": a.updated.isoformat() if a.updated else None,
        "language": a.language,
        "cve_ids": a.cve_ids,
        "cvss": {
            "version": a.cvss_version,
            "score": a.cvss_score,
            "vector": a.cvss_vector,
            "severity": a.cvss_severity,
        },
        "vendors": a.vendors,
        "products": a.products,
        "known_exploited": a.known_exploited,
        "revision": a.revision,
        "summary": a.summary_text,
    }
