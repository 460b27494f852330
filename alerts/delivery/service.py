"""Sending an approved alert: fan-out to the outbox (who gets it, on which channel), after
which the delivery workers take over. Subscribers who take no urgent email read an urgent
alert in their next newsletter instead; that happens when the newsletter is assembled."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from alerts.curation.models import SENDABLE, SENDING, SENT, Alert
from alerts.curation.service import due_scheduled
from alerts.delivery import batches, outbox
from alerts.delivery.models import NEWSLETTER, URGENT
from alerts.relevance.catalogue import Catalogue
from alerts.store import Database
from subscribers import audience_sql

# Email and sms are queued now; "newsletter" readers are counted (their next issue has it).
from subscribers.audience import CHANNELS, AudienceIndex, Targeting, targeting_for
from subscribers.directory import load_index

log = logging.getLogger(__name__)


class SendRefused(Exception):
    """The alert does not exist or is not approved."""


@dataclass(frozen=True)
class FanOut:
    alert_id: int
    audience: dict[str, int]  # channel -> recipients (newsletter included, for the record)
    written: int  # outbox rows created now (0 when they existed already, or in a dry run)


def send_alert(
    database: Database,
    catalogue: Catalogue,
    alert_id: int,
    dry_run: bool = False,
    now: datetime | None = None,
) -> FanOut:
    """Queue an approved alert (idempotent): its emails as batches of one language, its
    text messages as outbox rows; or count them (dry run). The database finds the audience
    (subscribers.audience_sql): no subscriber becomes a Python object on the way."""
    now = now or datetime.now(UTC)
    with database.session() as session:
        alert = _sendable(session, alert_id, lock=not dry_run)
        targeting = alert_targeting(alert, catalogue)
        if dry_run:
            index = load_index(session) if targeting else AudienceIndex()
            return FanOut(alert_id, index.count(targeting) if targeting else {}, 0)
        priority = URGENT if alert.tier == "urgent" else NEWSLETTER
        audience: Counter[str] = Counter()
        texts: list[int] = []
        written = 0
        if targeting:
            listed = audience_sql.recipients(session, targeting, CHANNELS)
            emails = _emails(listed, audience, texts)
            written += batches.enqueue(session, alert.id, emails, priority, now)
            sms = ((subscriber_id, "sms") for subscriber_id in texts)
            written += outbox.enqueue(session, alert.id, sms, priority, now)
        alert.status, alert.fanned_out_at = SENDING, alert.fanned_out_at or now
    counted = dict.fromkeys(CHANNELS, 0) | audience if targeting else {}
    return FanOut(alert_id, counted, written)


def _emails(
    listed: Iterable[tuple[int, str, str]], audience: Counter[str], texts: list[int]
) -> Iterator[tuple[int, str]]:
    """(subscriber id, language) of the email recipients, streamed to the batches; on the
    way, every channel counted and the text message recipients set aside (far fewer)."""
    for subscriber_id, channel, language in listed:
        audience[channel] += 1
        if channel == "email":
            yield subscriber_id, language
        elif channel == "sms":
            texts.append(subscriber_id)


def alert_targeting(alert: Alert, catalogue: Catalogue) -> Targeting | None:
    """Staff targeting: no product families means everyone (within the sectors and regions
    chosen); otherwise the relevance rules (targeting_for) decide, None meaning nobody."""
    wanted = alert.targeting or {}
    if not wanted.get("families"):
        sectors, regions = wanted.get("sectors") or (), wanted.get("regions") or ()
        return Targeting(alert.tier, sectors=frozenset(sectors), regions=frozenset(regions))
    return targeting_for(
        alert.tier,
        wanted.get("families") or (),
        catalogue,
        sectors=wanted.get("sectors") or (),
        regions=wanted.get("regions") or (),
    )


def _sendable(session: Session, alert_id: int, lock: bool = False) -> Alert:
    """The alert, locked for this fan-out: batches have no per-recipient key to collide on,
    so two fan-outs of one alert (a double click, the scheduler) must take turns, the
    second finding the first's batches. A no-op UPDATE takes the row lock on PostgreSQL and
    the write lock on SQLite (whose driver would otherwise begin the transaction only at
    the first insert, after the second fan-out has read an empty queue)."""
    if lock:
        no_op = update(Alert).where(Alert.id == alert_id).values(status=Alert.status)
        session.execute(no_op.execution_options(synchronize_session=False))
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise SendRefused(f"no alert {alert_id}")
    if alert.status == SENT:
        raise SendRefused(f"alert {alert_id} was sent already")
    if alert.status not in SENDABLE:
        raise SendRefused(f"alert {alert_id} is {alert.status}: only approved alerts are sent")
    return alert


def send_scheduled(database: Database, catalogue: Catalogue, now: datetime) -> list[int]:
    """Fan out every scheduled alert whose time has come; one failing alert does not hold
    up the others. Returns the alerts sent."""
    with database.session() as session:
        due = due_scheduled(session, now)
    sent = []
    for alert_id in due:
        try:
            send_alert(database, catalogue, alert_id, now=now)
        except Exception:  # logged; the alert stays scheduled and is tried next minute
            log.exception("could not send scheduled alert %s", alert_id)
            continue
        sent.append(alert_id)
    return sent
