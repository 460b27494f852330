"""The consent ledger: append-only events saying what was agreed, to which notice, when,
from where and how it was confirmed. Nothing here updates or deletes an event; erasure
(subscribers.privacy) only strips the identifying columns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy.orm import Session

from alerts.templating import TEMPLATES_DIR
from subscribers.models import ConsentEvent, Subscriber

NOTICE_VERSION = "privacy-v1"
CHANNEL_FIELDS = ("urgent_email", "urgent_sms", "newsletter")
KINDS = (
    "signup",  # agreed on the form (or was imported): not yet confirmed
    "email-confirmed",  # clicked the link in the confirmation email
    "sms-confirmed",  # typed the code sent to the phone
    "preferences",  # changed channels or profile
    "paused",
    "resumed",
    "withdrawn",  # left a channel or everything
    "suppressed",  # provider told us to stop (bounce, complaint, unsubscribe)
    "erased",
)


@dataclass(frozen=True)
class Origin:
    """Where a request came from; method says how (web-form, email-link, one-click, ...)."""

    method: str
    ip_address: str | None = None
    user_agent: str | None = None


@lru_cache(maxsize=8)
def notice_text(language: str, version: str = NOTICE_VERSION) -> str:
    return (TEMPLATES_DIR / "notices" / f"{version}.{language}.html").read_text(encoding="utf-8")


def notice_sha256(language: str, version: str = NOTICE_VERSION) -> str:
    return hashlib.sha256(notice_text(language, version).encode()).hexdigest()


def channels_of(subscriber: Subscriber) -> dict[str, object]:
    """What the subscriber agreed to receive, as recorded with each event."""
    return {
        "urgent_email": subscriber.urgent_email,
        "urgent_sms": subscriber.urgent_sms and subscriber.phone_confirmed_at is not None,
        "newsletter": subscriber.newsletter,
    }


def record(
    session: Session,
    subscriber: Subscriber,
    kind: str,
    origin: Origin,
    now: datetime,
    notice_language: str | None = None,
    channels: dict[str, object] | None = None,
) -> ConsentEvent:
    """Append one event; `notice_language` when the privacy notice was shown with it."""
    if kind not in KINDS:
        raise ValueError(f"unknown consent event {kind!r}")
    event = ConsentEvent(
        subscriber_id=subscriber.id,
        kind=kind,
        channels=channels if channels is not None else channels_of(subscriber),
        notice_version=NOTICE_VERSION if notice_language else None,
        notice_sha256=notice_sha256(notice_language) if notice_language else None,
        method=origin.method,
        ip_address=(origin.ip_address or None) and origin.ip_address[:45],
        user_agent=(origin.user_agent or None) and origin.user_agent[:300],
        at=now,
    )
    session.add(event)
    return event
