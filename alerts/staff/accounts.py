"""Staff accounts: created, disabled and reset by an admin or on the command line; logins
checked against argon2 hashes, throttled per account and per client, audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic_core import PydanticCustomError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.staff import audit, passwords, sessions
from alerts.staff.models import ADMIN, RANK, ROLES, StaffUser
from subscribers import ratelimit
from subscribers.tokens import Signer
from subscribers.validation import normalise_email as subscriber_email

LOGIN_WINDOW = timedelta(minutes=15)
FIRST_ADMIN = "admin@localhost.localdomain"  # a placeholder address: add real accounts
CLIENT_LOGIN_LIMIT = 30  # failed logins per client address per window, all accounts


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message says why."""


class LoginRefused(Exception):
    """Wrong address or password, a disabled account (told apart from nothing, so nobody
    learns which addresses have accounts), or too many failures ("held")."""

    def __init__(self, held: bool = False):
        super().__init__("held" if held else "invalid")
        self.held = held


def normalise_email(email: str) -> str:
    """The sign-up form's check (email-validator), lower-cased: the login is the address."""
    try:
        return subscriber_email(email).lower()
    except PydanticCustomError as error:
        raise AccountError(f"not a valid address: {error.message()}") from None


def find(session: Session, email: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def listing(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.name, StaffUser.id)))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StaffUser)) or 0


def add(
    session: Session,
    email: str,
    name: str,
    role: str,
    password: str,
    now: datetime,
    actor: StaffUser | None = None,
) -> StaffUser:
    email = normalise_email(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 120:
        raise AccountError("give a name of 1 to 120 characters")
    if find(session, email) is not None:
        raise AccountError(f"{email} has an account already")
    _check_password(password, email)
    user = StaffUser(
        email=email,
        name=name.strip(),
        role=role,
        password_hash=passwords.hash_password(password),
        active=True,
        must_change_password=True,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(session, now, actor, "user-added", f"user:{user.id}", role=role, email=email)
    return user


def set_active(
    session: Session, email: str, active: bool, now: datetime, actor: StaffUser | None = None
) -> StaffUser:
    """Disable (ends every session at once) or enable an account."""
    user = _existing(session, email)
    if actor is not None and actor.id == user.id and not active:
        raise AccountError("you cannot disable your own account")
    user.active, user.updated_at = active, now
    if not active:
        sessions.close_all(session, user.id)
    audit.record(session, now, actor, "user-enabled" if active else "user-disabled", _subject(user))
    return user


def reset_password(
    session: Session, email: str, password: str, now: datetime, actor: StaffUser | None = None
) -> StaffUser:
    """A password someone else knows: every session ends, and the owner must change it."""
    user = _existing(session, email)
    _check_password(password, user.email)
    user.password_hash, user.must_change_password, user.updated_at = (
        passwords.hash_password(password),
        True,
        now,
    )
    sessions.close_all(session, user.id)
    audit.record(session, now, actor, "password-reset", _subject(user))
    return user


def change_password(
    session: Session, user: StaffUser, current: str, new: str, now: datetime
) -> None:
    """The owner's own change: the current password proves it is them."""
    if not passwords.verify(user.password_hash, current):
        raise AccountError("the current password is not correct")
    if current == new:
        raise AccountError("choose a password different from the current one")
    _check_password(new, user.email)
    user.password_hash, user.must_change_password, user.updated_at = (
        passwords.hash_password(new),
        False,
        now,
    )
    audit.record(session, now, user, "password-changed", _subject(user))


def set_role(
    session: Session, email: str, role: str, now: datetime, actor: StaffUser | None = None
) -> StaffUser:
    user = _existing(session, email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if actor is not None and actor.id == user.id and RANK[role] < RANK[user.role]:
        raise AccountError("you cannot lower your own role")
    previous, user.role, user.updated_at = user.role, role, now
    audit.record(session, now, actor, "role-changed", _subject(user), before=previous, after=role)
    return user


def authenticate(
    session: Session,
    signer: Signer,
    email: str,
    password: str,
    client: str,
    now: datetime,
    account_limit: int,
) -> StaffUser:
    """The account for these credentials, or LoginRefused. Failures count against the
    account and against the client address; a held account stays held for the window
    even with the right password (so guessing cannot go on in the background)."""
    email = email.strip().lower()[:320]
    account_key = signer.key("staff-login", email)
    client_key = signer.key("staff-login-client", client)
    if _held(session, account_key, account_limit, now) or _held(
        session, client_key, CLIENT_LOGIN_LIMIT, now
    ):
        audit.record(session, now, None, "login-held", f"login:{account_key[:16]}")
        raise LoginRefused(held=True)
    user = find(session, email)
    known = user is not None and user.active
    if not passwords.verify(user.password_hash if known else passwords.dummy_hash(), password):
        _count_failure(session, (account_key, client_key), now)
        subject = _subject(user) if user else f"login:{account_key[:16]}"
        audit.record(session, now, None, "login-failed", subject)
        raise LoginRefused()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = now
    audit.record(session, now, user, "login", _subject(user))
    return user


def first_admin(session: Session, now: datetime) -> tuple[str, str] | None:
    """On a service with no staff account at all: an admin with a generated password,
    returned once as (email, password) so that `alerts run` can print it; else None."""
    if count(session):
        return None
    password = passwords.generate()
    user = add(session, FIRST_ADMIN, "Administrator", ADMIN, password, now)
    return user.email, password


def _held(session: Session, key: str, limit: int, now: datetime) -> bool:
    return ratelimit.hits(session, key, LOGIN_WINDOW, now) >= limit


def _count_failure(session: Session, keys: tuple[str, ...], now: datetime) -> None:
    for key in keys:
        ratelimit.hit(session, key, LOGIN_WINDOW, now)


def _existing(session: Session, email: str) -> StaffUser:
    user = find(session, email)
    if user is None:
        raise AccountError(f"no account for {email.strip().lower()}")
    return user


def _check_password(password: str, email: str) -> None:
    try:
        passwords.check(password, email)
    except passwords.WeakPassword as error:
        raise AccountError(f"password refused: {error}") from None


def _subject(user: StaffUser) -> str:
    return f"user:{user.id}"
