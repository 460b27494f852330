"""Confirming a mobile number with a 6-digit code, safely.

Codes are stored as keyed hashes, expire after ten minutes and allow five guesses (counted
with an atomic UPDATE, so parallel guesses cannot get more). Issuing is limited per
subscriber and per number, so neither a preference link nor a list of numbers can be used
to pump SMS; numbers that replied STOP get no code."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from alerts.templating import N_
from subscribers import ratelimit, tokens
from subscribers.models import ACTIVE, Subscriber
from subscribers.suppressions import is_suppressed
from subscribers.tokens import Signer

CODE_MINUTES = 10
ATTEMPTS = 5
CODES_PER_HOUR = 3  # per subscriber and per number


class CodeRefused(Exception):
    """A wrong, expired or exhausted code; the message is safe to show."""


class TooManyCodes(Exception):
    """Enough codes were sent for now."""


def wanted(subscriber: Subscriber) -> bool:
    """SMS chosen, a number given, not yet confirmed, subscription live."""
    return bool(
        subscriber.urgent_sms
        and subscriber.phone
        and subscriber.status == ACTIVE
        and subscriber.phone_confirmed_at is None
    )


def issue(session: Session, signer: Signer, subscriber: Subscriber, now: datetime) -> str | None:
    """A fresh code to send, or None when none is needed or the number said STOP.
    Raises TooManyCodes past the hourly limits."""
    if not wanted(subscriber) or is_suppressed(session, "sms", subscriber.phone_key):
        return None
    hour = timedelta(hours=1)
    for key in (f"subscriber:{subscriber.id}", f"number:{subscriber.phone_key}"):
        if not ratelimit.allow(session, signer.key("sms-code", key), CODES_PER_HOUR, hour, now):
            raise TooManyCodes(N_("We sent several codes already. Please wait an hour."))
    code = tokens.sms_code()
    subscriber.sms_code_hash = _hash(signer, subscriber.id, code)
    subscriber.sms_code_expires_at = now + timedelta(minutes=CODE_MINUTES)
    subscriber.sms_code_attempts = 0
    return code


def check(
    session: Session, signer: Signer, subscriber: Subscriber, code: str, now: datetime
) -> str | None:
    """None when the code is right; otherwise what to tell the person. The attempt is
    counted in the caller's transaction, which must commit even when the code is wrong."""
    if subscriber.sms_code_hash is None or subscriber.sms_code_expires_at < now:
        return N_("This code has expired. Ask for a new one.")
    counted = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id, Subscriber.sms_code_attempts < ATTEMPTS)
        .values(sms_code_attempts=Subscriber.sms_code_attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not counted:
        return N_("Too many wrong codes. Ask for a new one.")
    if not hmac.compare_digest(
        _hash(signer, subscriber.id, code.strip()), subscriber.sms_code_hash
    ):
        return N_("This code is not right. Check the SMS and try again.")
    return None


def _hash(signer: Signer, subscriber_id: int, code: str) -> str:
    return signer.key("sms-code", f"{subscriber_id}:{code}")
