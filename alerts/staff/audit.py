"""The audit trail: one append-only row per change that matters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.staff.models import AuditEvent, StaffUser

SYSTEM = "system"  # the actor of scheduled jobs and of the command line


def record(
    session: Session,
    now: datetime,
    actor: StaffUser | None,
    action: str,
    subject: str,
    **detail: Any,
) -> None:
    session.add(
        AuditEvent(
            at=now,
            actor_id=actor.id if actor else None,
            actor=actor.email if actor else SYSTEM,
            action=action[:40],
            subject=subject[:60],
            detail=detail,
        )
    )


def trail(session: Session, subject: str | None = None, limit: int = 200) -> list[AuditEvent]:
    """The newest events first, for one subject or all."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditEvent.subject == subject)
    return list(session.scalars(query))
