"""Tables for staff: accounts, server-side sessions, and the audit trail of every change
that matters (logins, accounts, and later alerts, feeds and firms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from alerts.models import Base, JsonType, UtcDateTime

EDITOR, APPROVER, ADMIN = "editor", "approver", "admin"
ROLES = (EDITOR, APPROVER, ADMIN)
# What each role may do, cumulatively: an approver also edits, an admin also approves.
RANK = {EDITOR: 1, APPROVER: 2, ADMIN: 3}


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids in the audit trail stay unique

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, PHC string
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set for passwords someone else chose or saw (created, reset): changed at next login.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=false()
    )
    language: Mapped[str] = mapped_column(String(2), default="en")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StaffSession(Base):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is stored,
    so a copy of the database opens no session."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class AuditEvent(Base):
    """Append-only: who did what to which thing, when, and what changed."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # The actor's id and, as it was then, their address: the row outlives the account.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))  # "system" for jobs and the CLI
    action: Mapped[str] = mapped_column(String(40))  # e.g. login, login-failed, user-added
    subject: Mapped[str] = mapped_column(String(60))  # e.g. "user:3", "alert:12"
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
