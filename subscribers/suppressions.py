"""Addresses we must not send to, recognised by keyed hash (never stored in clear).

Providers tell us through webhooks (hard bounce, spam complaint, their own unsubscribe
link); staff can add one. Confirming a subscription again through its emailed link lifts
the email suppression: the click proves the address works and wants mail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from subscribers.models import Subscriber, Suppression
from subscribers.tokens import Signer

REASONS = ("hard-bounce", "spam-complaint", "provider-unsubscribe", "invalid-number", "staff")
# Addresses we will not even send a confirmation link to (it would bounce or annoy again).
NO_CONFIRMATION = ("hard-bounce", "spam-complaint")
CHANNEL_KINDS = {"email": "email", "sms": "sms"}  # channel -> Signer.key kind


def address_key(signer: Signer, channel: str, address: str) -> str:
    return signer.key(CHANNEL_KINDS[channel], address)


def suppress(
    session: Session,
    signer: Signer,
    channel: str,
    address: str,
    reason: str,
    source: str,
    now: datetime,
) -> bool:
    """Mark an address; True when it was not suppressed before (idempotent)."""
    if reason not in REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    key = address_key(signer, channel, address)
    existing = session.scalar(
        select(Suppression).where(Suppression.channel == channel, Suppression.address_key == key)
    )
    if existing is not None:
        was_lifted = existing.lifted
        existing.lifted, existing.reason, existing.source = False, reason, source
        existing.created_at = now if was_lifted else existing.created_at
        return was_lifted
    session.add(
        Suppression(channel=channel, address_key=key, reason=reason, source=source, created_at=now)
    )
    return True


def is_suppressed(session: Session, channel: str, key: str | None) -> bool:
    if key is None:
        return False
    return _active(session, channel, key) is not None


def lift(session: Session, channel: str, key: str | None) -> None:
    if key is not None:
        session.execute(
            update(Suppression)
            .where(Suppression.channel == channel, Suppression.address_key == key)
            .values(lifted=True)
        )


def sendable_for_confirmation(session: Session, signer: Signer, email: str) -> bool:
    suppression = _active(session, "email", address_key(signer, "email", email))
    return suppression is None or suppression.reason not in NO_CONFIRMATION


def subscribers_with(session: Session, channel: str, key: str) -> list[Subscriber]:
    column = Subscriber.email_key if channel == "email" else Subscriber.phone_key
    return list(session.scalars(select(Subscriber).where(column == key)))


def _active(session: Session, channel: str, key: str) -> Suppression | None:
    return session.scalar(
        select(Suppression).where(
            Suppression.channel == channel,
            Suppression.address_key == key,
            Suppression.lifted.is_(False),
        )
    )
