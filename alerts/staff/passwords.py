"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's second
recommended profile) and the few rules a password must meet."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 200  # argon2 takes any length; a megabyte "password" is a denial of service
_HASHER = PasswordHasher()


class WeakPassword(ValueError):
    """The password breaks a rule; the message says which."""


def check(password: str, email: str = "") -> str:
    """The password if it is acceptable (NIST SP 800-63B: length, not the account name)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"use at most {MAX_LENGTH} characters")
    if len(set(password)) < 4:
        raise WeakPassword("use more different characters")
    name = email.split("@")[0].lower()
    if len(name) >= 4 and name in password.lower():  # shorter names occur in any phrase
        raise WeakPassword("do not use your address in the password")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(password_hash: str, password: str) -> bool:
    """True when the password matches. Oversized input is refused before hashing."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(password_hash)


def generate() -> str:
    """A password for a new or reset account, shown once: 20 URL-safe characters."""
    return secrets.token_urlsafe(15)


@cache
def dummy_hash() -> str:
    """Verified against when an address has no account, so that a login for an unknown
    address costs the same time as one for a known address (no enumeration by timing)."""
    return _HASHER.hash(secrets.token_urlsafe(15))
