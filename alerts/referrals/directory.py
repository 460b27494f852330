"""The directory in the database: firms added, changed, vetted, suspended and expired —
each change audited — and the anonymous counts of where firms were shown and clicked."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from alerts.curation.content import BRUSSELS
from alerts.referrals.models import EXPIRED, SUSPENDED, VETTED, Firm, ReferralCount
from alerts.referrals.validation import FirmRecord
from alerts.staff import audit
from alerts.staff.models import StaffUser
from subscribers.tokens import link_key

WARN_BEFORE = timedelta(days=30)


class DirectoryError(ValueError):
    """A change that cannot be made; the message says why."""


def today(now: datetime) -> date:
    return now.astimezone(BRUSSELS).date()


def add(session: Session, record: FirmRecord, actor: StaffUser | None, now: datetime) -> Firm:
    if _by_number(session, record.enterprise_number) is not None:
        raise DirectoryError(f"a firm with enterprise number {record.enterprise_number} exists")
    firm = Firm(**asdict(record), link_key=link_key(), created_at=now, updated_at=now)
    if record.status == VETTED:
        firm.vetted_by = actor.email if actor else audit.SYSTEM
        firm.vetted_on = record.vetted_on or today(now)
    session.add(firm)
    session.flush()
    audit.record(session, now, actor, "firm-added", f"firm:{firm.id}", status=firm.status)
    return firm


def update(
    session: Session, firm: Firm, record: FirmRecord, actor: StaffUser | None, now: datetime
) -> dict[str, list]:
    """Store the record; returns the changed fields as {field: [before, after]}."""
    other = _by_number(session, record.enterprise_number)
    if other is not None and other.id != firm.id:
        raise DirectoryError(f"another firm has enterprise number {record.enterprise_number}")
    changes = {}
    for name, value in asdict(record).items():
        before = getattr(firm, name)
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
            setattr(firm, name, value)
    if changes.get("status", [None, None])[1] == VETTED:
        firm.vetted_by, firm.vetted_on = actor.email if actor else audit.SYSTEM, today(now)
    if changes:
        firm.updated_at = now
        audit.record(session, now, actor, "firm-changed", f"firm:{firm.id}", changes=changes)
    return changes


def vet(
    session: Session, firm: Firm, expires_on: date, actor: StaffUser | None, now: datetime
) -> None:
    if expires_on <= today(now):
        raise DirectoryError("the vetting must expire in the future")
    firm.status, firm.vetted_on, firm.expires_on = VETTED, today(now), expires_on
    firm.vetted_by = actor.email if actor else audit.SYSTEM
    firm.expiry_warned_on, firm.updated_at = None, now
    audit.record(
        session, now, actor, "firm-vetted", f"firm:{firm.id}", expires_on=expires_on.isoformat()
    )


def suspend(
    session: Session, firm: Firm, reason: str, actor: StaffUser | None, now: datetime
) -> None:
    reason = " ".join(reason.split())[:300]
    if not reason:
        raise DirectoryError("give a reason for suspending")
    firm.status, firm.updated_at = SUSPENDED, now
    audit.record(session, now, actor, "firm-suspended", f"firm:{firm.id}", reason=reason)


def expire_due(session: Session, now: datetime) -> list[int]:
    """Vetted firms whose vetting ends today or earlier become expired (the scheduler's
    daily job; `shown` also checks the date, so an expired firm is never shown meanwhile)."""
    due = session.scalars(
        select(Firm).where(Firm.status == VETTED, Firm.expires_on <= today(now))
    ).all()
    for firm in due:
        firm.status, firm.updated_at = EXPIRED, now
        audit.record(session, now, None, "firm-expired", f"firm:{firm.id}")
    return [firm.id for firm in due]


def expiring_soon(session: Session, now: datetime) -> list[Firm]:
    """Vetted firms whose vetting ends within 30 days, soonest first (staff are warned)."""
    day = today(now)
    query = select(Firm).where(
        Firm.status == VETTED, Firm.expires_on > day, Firm.expires_on <= day + WARN_BEFORE
    )
    return list(session.scalars(query.order_by(Firm.expires_on, Firm.id)))


def shown(session: Session, now: datetime) -> list[Firm]:
    """The firms that may appear in messages and on public pages right now."""
    query = select(Firm).where(Firm.status == VETTED, Firm.expires_on > today(now))
    return list(session.scalars(query.order_by(Firm.id)))


def count(
    session: Session,
    alert_id: int,
    now: datetime,
    *,
    shown: dict[int, int] | None = None,
    first: dict[int, int] | None = None,
    clicks: dict[int, int] | None = None,
) -> None:
    """Add to the per-day counts (one upsert per firm): how often shown, shown first,
    clicked. Counts only — never who."""
    day = today(now).isoformat()
    firms = set(shown or {}) | set(first or {}) | set(clicks or {})
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    for firm_id in sorted(firms):
        values = {
            "shown": (shown or {}).get(firm_id, 0),
            "shown_first": (first or {}).get(firm_id, 0),
            "clicks": (clicks or {}).get(firm_id, 0),
        }
        statement = insert(ReferralCount).values(
            firm_id=firm_id, alert_id=alert_id, day=day, **values
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["firm_id", "alert_id", "day"],
                set_={name: getattr(ReferralCount, name) + value for name, value in values.items()},
            )
        )


def totals(session: Session, firm_id: int) -> dict[str, int]:
    row = session.execute(
        select(
            func.coalesce(func.sum(ReferralCount.shown), 0),
            func.coalesce(func.sum(ReferralCount.shown_first), 0),
            func.coalesce(func.sum(ReferralCount.clicks), 0),
        ).where(ReferralCount.firm_id == firm_id)
    ).one()
    return {"shown": row[0], "shown_first": row[1], "clicks": row[2]}


def _by_number(session: Session, number: str) -> Firm | None:
    return session.scalar(select(Firm).where(Firm.enterprise_number == number))


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value
