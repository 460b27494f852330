"""Fixed-window rate limits kept in the database, so every web process shares them.

Keys are keyed hashes (subscribers.tokens.Signer.key): the table never holds an address."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from subscribers.models import RateLimitHit


def allow(session: Session, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """Count one hit for `key` in the current window; False once the limit is passed."""
    return hit(session, key, window, now) <= limit


def hit(session: Session, key: str, window: timedelta, now: datetime) -> int:
    """Count one hit for `key` in the current window; returns the window's count."""
    start = _window_start(now, window)
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(RateLimitHit).values(
        key=key[:80], window_start=start, count=1, expires_at=start + window
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key", "window_start"], set_={"count": RateLimitHit.count + 1}
        )
    )
    return hits(session, key, window, now)


def hits(session: Session, key: str, window: timedelta, now: datetime) -> int:
    """Hits counted for `key` in the current window, without counting one more."""
    start = _window_start(now, window)
    count = session.scalar(
        select(RateLimitHit.count).where(
            RateLimitHit.key == key[:80], RateLimitHit.window_start == start
        )
    )
    return count or 0


def purge(session: Session, now: datetime) -> int:
    return session.execute(delete(RateLimitHit).where(RateLimitHit.expires_at < now)).rowcount


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)
