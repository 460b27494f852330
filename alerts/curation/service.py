"""Curation in the database: the queue of scored advisories, alerts created from them,
edits and life-cycle steps — each one checked by `lifecycle` and written to the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, exists, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from alerts.curation import drafting, editing, lifecycle
from alerts.curation.content import BRUSSELS
from alerts.curation.models import (
    APPROVED,
    DISMISSED,
    SCHEDULED,
    USED,
    Alert,
    AlertAdvisory,
    AlertView,
    QueueDecision,
)
from alerts.models import Advisory, AdvisoryCve
from alerts.queries import _escape_like, sources_for_cves
from alerts.relevance.catalogue import Catalogue
from alerts.staff import audit
from alerts.staff.models import StaffUser

QUEUE_TIERS = ("urgent", "newsletter")
MAX_SOURCES = 20  # advisories one alert may be made from


class CurationError(ValueError):
    """A request that cannot be carried out; the message says why."""


# --- the queue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    tier: str = "urgent"
    source: str | None = None
    family: str | None = None
    language: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: keyset pagination on (score, queued_at, id), so page 500
    costs what page 1 costs."""

    score: int
    queued_at: datetime
    id: int

    def token(self) -> str:
        return f"{self.score}~{self.queued_at.isoformat()}~{self.id}"

    @classmethod
    def parse(cls, token: str | None) -> Cursor | None:
        parts = (token or "").split("~")
        if len(parts) != 3 or len(token) > 80:
            return None
        try:
            return cls(int(parts[0]), datetime.fromisoformat(parts[1]), int(parts[2]))
        except ValueError:
            return None

    @classmethod
    def after(cls, row: Advisory) -> Cursor:
        return cls(row.score or 0, row.queued_at, row.id)


def queue(
    session: Session, filters: QueueFilter, after: Cursor | None = None, limit: int = 25
) -> tuple[list[Advisory], Cursor | None]:
    """Undecided advisories of one tier, highest score first, then newest in the queue, and
    the next page's cursor (None on the last page). Walks the (tier, score, queued_at, id)
    index."""
    key = tuple_(Advisory.score, Advisory.queued_at, Advisory.id)
    query = _queue_query(select(Advisory), filters).where(Advisory.score.is_not(None))
    if after is not None:
        query = query.where(key < tuple_(after.score, after.queued_at, after.id))
    order = (Advisory.score.desc(), Advisory.queued_at.desc(), Advisory.id.desc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (Cursor.after(rows[-1]) if more and rows else None)


@dataclass
class QueueItem:
    """Advisories of one page about the same CVEs, shown and chosen as one item."""

    lead: Advisory  # the newest in the queue
    members: list[Advisory]

    @property
    def ids(self) -> str:
        return ",".join(str(member.id) for member in self.members)

    @property
    def sources(self) -> list[str]:
        return sorted({member.source for member in self.members})


def merge_duplicates(rows: list[Advisory]) -> list[QueueItem]:
    """Rows sharing a CVE become one item, in the order of their first row. Pure."""
    items: list[QueueItem] = []
    by_cve: dict[str, QueueItem] = {}
    for row in rows:
        cves = row.cve_ids or ()
        item = next((by_cve[cve] for cve in cves if cve in by_cve), None)
        if item is None:
            item = QueueItem(row, [row])
            items.append(item)
        else:
            item.members.append(row)
        for cve in cves:
            by_cve.setdefault(cve, item)
    return items


def other_sources(session: Session, rows: list[Advisory]) -> dict[int, list[str]]:
    """For each advisory of a page, the other sources that wrote about its CVEs: one
    vulnerability, several voices (choose them together to make one alert)."""
    by_cve = sources_for_cves(session, sorted({cve for row in rows for cve in row.cve_ids or ()}))
    return {
        row.id: sorted({s for cve in row.cve_ids or () for s in by_cve.get(cve, ())} - {row.source})
        for row in rows
    }


def queue_counts(session: Session) -> dict[str, int]:
    """Undecided advisories per tier, for the tabs."""
    query = _queue_query(select(Advisory.tier, func.count()), QueueFilter(tier=""))
    rows = session.execute(query.where(Advisory.tier.in_(QUEUE_TIERS)).group_by(Advisory.tier))
    return dict.fromkeys(QUEUE_TIERS, 0) | dict(rows.all())


def _queue_query(query, filters: QueueFilter):
    decided = exists().where(QueueDecision.advisory_id == Advisory.id)
    query = query.where(Advisory.queued_at.is_not(None), ~decided)
    if filters.tier:
        query = query.where(Advisory.tier == filters.tier)
    if filters.source:
        query = query.where(Advisory.source == filters.source)
    if filters.language:
        query = query.where(Advisory.language == filters.language)
    if filters.family:
        # JSON lists differ per database; the quoted id inside the text is exact enough.
        pattern = f'%"{_escape_like(filters.family)}"%'
        query = query.where(cast(Advisory.families, Text).like(pattern, escape="\\"))
    if filters.text:
        pattern = "%" + _escape_like(filters.text.lower()) + "%"
        query = query.where(
            or_(
                func.lower(Advisory.title).like(pattern, escape="\\"),
                func.lower(Advisory.summary_text).like(pattern, escape="\\"),
                Advisory.id.in_(
                    select(AdvisoryCve.advisory_id).where(
                        AdvisoryCve.cve_id == filters.text.strip().upper()
                    )
                ),
            )
        )
    return query


def dismiss(
    session: Session, advisory_ids: list[int], reason: str, actor: StaffUser, now: datetime
) -> int:
    """Out of the queue, with the reason (kept and audited)."""
    reason = " ".join(reason.split())[:300]
    if not reason:
        raise CurationError("give a reason for dismissing")
    ids = _undecided(session, advisory_ids)
    for advisory_id in ids:
        session.add(
            QueueDecision(
                advisory_id=advisory_id,
                decision=DISMISSED,
                reason=reason,
                decided_by_id=actor.id,
                decided_at=now,
            )
        )
        audit.record(
            session, now, actor, "advisory-dismissed", f"advisory:{advisory_id}", reason=reason
        )
    return len(ids)


def _undecided(session: Session, advisory_ids: list[int]) -> list[int]:
    wanted = sorted(set(advisory_ids))[:MAX_SOURCES]
    if not wanted:
        raise CurationError("choose at least one advisory")
    decided = select(QueueDecision.advisory_id).where(QueueDecision.advisory_id.in_(wanted))
    present = select(Advisory.id).where(Advisory.id.in_(wanted), Advisory.id.not_in(decided))
    return list(session.scalars(present))


# --- alerts ------------------------------------------------------------------------------


def create_from_advisories(
    session: Session,
    advisory_ids: list[int],
    actor: StaffUser,
    catalogue: Catalogue,
    now: datetime,
) -> Alert:
    """A draft in four languages from one or several queued advisories."""
    ids = _undecided(session, advisory_ids)
    if not ids:
        raise CurationError("these advisories were dismissed or used already")
    advisories = list(session.scalars(select(Advisory).where(Advisory.id.in_(ids))))
    first = drafting.draft([_source(advisory) for advisory in advisories], catalogue)
    alert = Alert(
        tier=first.tier,
        status="draft",
        texts=first.texts,
        targeting={"families": first.families, "sectors": [], "regions": []},
        cves=first.cves,
        known_exploited=first.known_exploited,
        links=first.links,
        firms=[],
        created_at=now,
        updated_at=now,
        created_by_id=actor.id,
        last_editor_id=actor.id,
    )
    session.add(alert)
    session.flush()
    for advisory in advisories:
        session.add(AlertAdvisory(alert_id=alert.id, advisory_id=advisory.id))
        session.add(
            QueueDecision(
                advisory_id=advisory.id,
                decision=USED,
                alert_id=alert.id,
                decided_by_id=actor.id,
                decided_at=now,
            )
        )
    audit.record(session, now, actor, "alert-created", f"alert:{alert.id}", advisories=ids)
    return alert


def _source(advisory: Advisory) -> drafting.Source:
    facts = advisory.facts or {}
    return drafting.Source(
        title=advisory.title or "",
        source=advisory.source,
        url=advisory.url,
        cves=tuple(advisory.cve_ids or ()),
        families=tuple(advisory.families or ()),
        products=tuple(advisory.products or ()),
        known_exploited=bool(advisory.known_exploited),
        ransomware=bool(advisory.ransomware),
        required_action=facts.get("required_action"),
        links=tuple(link for link in advisory.links or () if isinstance(link, str)),
    )


def sources_of(session: Session, alert_id: int) -> list[Advisory]:
    query = (
        select(Advisory)
        .join(AlertAdvisory, AlertAdvisory.advisory_id == Advisory.id)
        .where(AlertAdvisory.alert_id == alert_id)
        .order_by(Advisory.id)
    )
    return list(session.scalars(query))


def edit(session: Session, alert: Alert, change: editing.AlertEdit, actor: StaffUser, now) -> None:
    """Store an edit. After approval it goes back to review; the editor becomes the last
    editor, whom the four-eyes rule keeps from approving it. Not while its messages are
    being queued: they would go out with text nobody approved."""
    if alert.fan_out_started_at is not None:
        raise CurationError("this alert is being sent right now: cancel it instead")
    status = lifecycle.check(alert.status, lifecycle.EDIT, _actor(actor), alert.last_editor_id)
    diff = editing.text_diff(alert.texts or {}, change.texts)
    alert.tier, alert.texts, alert.links = change.tier, change.texts, change.links
    alert.targeting = change.targeting
    before = alert.status
    alert.status, alert.last_editor_id, alert.updated_at = status, actor.id, now
    if before in (APPROVED, SCHEDULED):
        alert.approved_at = alert.approved_by = alert.approved_by_id = None
        alert.scheduled_for = None
    audit.record(
        session,
        now,
        actor,
        "alert-edited",
        f"alert:{alert.id}",
        before=before,
        after=status,
        diff=diff,
    )


def act(
    session: Session,
    alert: Alert,
    action: str,
    actor: StaffUser,
    now: datetime,
    *,
    reason: str = "",
    when: datetime | None = None,
) -> str:
    """A life-cycle step other than edit and send (send goes through the delivery stage);
    returns the new status."""
    status = lifecycle.check(alert.status, action, _actor(actor), alert.last_editor_id)
    if action == lifecycle.SUBMIT and (missing := editing.missing_for_submission(alert.texts)):
        raise CurationError(f"complete the text in: {', '.join(missing)}")
    if action in (lifecycle.REJECT, lifecycle.CANCEL):
        reason = " ".join(reason.split())[:500]
        if not reason:
            raise CurationError("give a reason")
        alert.closing_reason = reason
    if action == lifecycle.SCHEDULE:
        if when is None or when <= now:
            raise CurationError("choose a time in the future")
        alert.scheduled_for = when
    if action == lifecycle.UNSCHEDULE:
        alert.scheduled_for = None
    if action == lifecycle.SUBMIT:
        alert.submitted_at = now
    if action == lifecycle.APPROVE:
        alert.approved_at, alert.approved_by, alert.approved_by_id = now, actor.email, actor.id
    before, alert.status, alert.updated_at = alert.status, status, now
    detail = {"before": before, "after": status}
    if reason:
        detail["reason"] = reason
    if when is not None and action == lifecycle.SCHEDULE:
        detail["at"] = when.isoformat()
    audit.record(session, now, actor, f"alert-{action}", f"alert:{alert.id}", **detail)
    return status


def check_send(session: Session, alert: Alert, actor: StaffUser, now: datetime) -> None:
    """Whether this person may send it now; audited. The delivery stage then fans it out."""
    status = lifecycle.check(alert.status, lifecycle.SEND, _actor(actor), alert.last_editor_id)
    audit.record(
        session, now, actor, "alert-send", f"alert:{alert.id}", before=alert.status, after=status
    )


def due_scheduled(session: Session, now: datetime) -> list[int]:
    """Scheduled alerts whose time has come (the scheduler's job sends them)."""
    query = select(Alert.id).where(Alert.status == SCHEDULED, Alert.scheduled_for <= now)
    return list(session.scalars(query.order_by(Alert.scheduled_for)))


def list_alerts(session: Session, statuses: tuple[str, ...] | None = None, limit: int = 100):
    query = select(Alert).order_by(Alert.updated_at.desc(), Alert.id.desc()).limit(limit)
    if statuses:
        query = query.where(Alert.status.in_(statuses))
    return list(session.scalars(query))


def _actor(user: StaffUser) -> lifecycle.Actor:
    return lifecycle.Actor(user.id, user.role)


def count_view(session: Session, alert_id: int, now: datetime) -> None:
    """One more view of the public page today (Brussels); an upsert, safe under load."""
    day = now.astimezone(BRUSSELS).date().isoformat()
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(AlertView).values(alert_id=alert_id, day=day, views=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["alert_id", "day"], set_={"views": AlertView.views + 1}
        )
    )


def views(session: Session, alert_id: int) -> int:
    query = select(func.coalesce(func.sum(AlertView.views), 0)).where(
        AlertView.alert_id == alert_id
    )
    return session.scalar(query) or 0
