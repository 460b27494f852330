"""What sending needs about each subscriber, read when the message goes out: the address,
language and links, and whether each kind of message may still be sent to them."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select

from alerts.store import among
from subscribers.models import ACTIVE, Subscriber, Suppression


class Recipient(NamedTuple):
    """What sending needs about a subscriber, read when the message goes out."""

    subscriber_id: int
    email: str
    phone: str | None
    language: str
    region: str
    link_key: str
    sms_optout_code: str
    urgent_email_ok: bool
    newsletter_ok: bool
    sendable_sms: bool


def read_recipients(session, ids: list[int]) -> dict[int, Recipient]:
    """The recipients of claimed rows, read at send time (their current choices)."""
    query = select(
        Subscriber.id,
        Subscriber.email,
        Subscriber.phone,
        Subscriber.language,
        Subscriber.region,
        Subscriber.link_key,
        Subscriber.sms_optout_code,
        Subscriber.status,
        Subscriber.urgent_email,
        Subscriber.newsletter,
        Subscriber.urgent_sms & Subscriber.phone_confirmed_at.is_not(None),
        Subscriber.email_key.in_(_suppressed_keys("email")),
        Subscriber.phone_key.in_(_suppressed_keys("sms")),
    ).where(among(Subscriber.id, ids, session.bind.dialect.name))
    found = {}
    for row in session.connection().execute(query):  # Core rows: thousands per claim
        (
            id_,
            email,
            phone,
            language,
            region,
            key,
            code,
            status,
            urgent_email,
            newsletter,
            sms_ok,
            email_blocked,
            sms_blocked,
        ) = row
        active = status == ACTIVE
        found[id_] = Recipient(
            id_,
            email,
            phone,
            language,
            region,
            key,
            code,
            urgent_email_ok=bool(active and not email_blocked and urgent_email),
            newsletter_ok=bool(active and not email_blocked and newsletter != "none"),
            sendable_sms=bool(active and sms_ok and not sms_blocked),
        )
    return found


def _suppressed_keys(channel: str):
    return select(Suppression.address_key).where(
        Suppression.channel == channel, Suppression.lifted.is_(False)
    )
