"""Server-side staff sessions: a random token in an HttpOnly cookie, its SHA-256 in the
database. A new token at every login (no session fixation); sessions end after an idle
time and after a fixed lifetime, at logout, and when the account is disabled or reset."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from alerts.staff.models import StaffSession, StaffUser

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


def open_session(session: Session, user: StaffUser, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(token_hash=_hash(token), user_id=user.id, created_at=now, last_seen_at=now)
    )
    return token


def current(
    session: Session, token: str | None, now: datetime, idle: timedelta, lifetime: timedelta
) -> StaffUser | None:
    """The logged-in, active user of this token, or None (and an expired session is gone)."""
    if not token or len(token) > 100:
        return None
    row = session.get(StaffSession, _hash(token))
    if row is None:
        return None
    if row.last_seen_at < now - idle or row.created_at < now - lifetime:
        session.delete(row)
        return None
    user = session.get(StaffUser, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return user


def owner(session: Session, token: str | None) -> StaffUser | None:
    """Whose session this token opened, expired or not (for the logout's audit row)."""
    row = session.get(StaffSession, _hash(token)) if token and len(token) <= 100 else None
    return session.get(StaffUser, row.user_id) if row else None


def close(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(StaffSession).where(StaffSession.token_hash == _hash(token)))


def close_all(session: Session, user_id: int) -> None:
    session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


def purge(session: Session, now: datetime, idle: timedelta, lifetime: timedelta) -> int:
    expired = or_(StaffSession.last_seen_at < now - idle, StaffSession.created_at < now - lifetime)
    return session.execute(delete(StaffSession).where(expired)).rowcount or 0


def purge_expired(database, settings, now: datetime | None = None) -> int:
    """The scheduler's hourly job."""
    with database.session() as session:
        return purge(
            session,
            now or datetime.now(UTC),
            timedelta(minutes=settings.staff_idle_minutes),
            timedelta(hours=settings.staff_session_hours),
        )


def active_count(session: Session, user_id: int) -> int:
    query = select(func.count()).where(StaffSession.user_id == user_id)
    return session.scalar(query) or 0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
