"""The directory's daily job: vettings that ended expire, and staff are warned once about
each vetting that ends within 30 days (the staff firm list shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from alerts.referrals import directory
from alerts.staff import audit
from alerts.store import Database


@dataclass(frozen=True)
class ExpiryRun:
    expired: list[int]  # firm ids
    warned: list[int]


def expire_and_warn(database: Database, now: datetime | None = None) -> ExpiryRun:
    now = now or datetime.now(UTC)
    with database.session() as session:
        expired = directory.expire_due(session, now)
        warned = []
        for firm in directory.expiring_soon(session, now):
            if firm.expiry_warned_on is not None:
                continue
            firm.expiry_warned_on = directory.today(now)
            audit.record(
                session,
                now,
                None,
                "firm-expiry-warning",
                f"firm:{firm.id}",
                expires_on=firm.expires_on.isoformat(),
            )
            warned.append(firm.id)
    return ExpiryRun(expired=expired, warned=warned)
