"""Sending an approved alert: fan-out to the outbox (who gets it, on which channel), after
which the delivery workers take over. Subscribers who take no urgent email read an urgent
alert in their next newsletter instead; that happens when the newsletter is assembled."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, update
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
    written: int  # messages queued now (0 when all were queued already, or in a dry run)


def send_alert(
    database: Database,
    catalogue: Catalogue,
    alert_id: int,
    dry_run: bool = False,
    now: datetime | None = None,
) -> FanOut:
    """Queue an approved alert (idempotent): its emails as batches of one language, its
    text messages as outbox rows; or count them (dry run).

    The database finds the audience (subscribers.audience_sql) and the batches are
    committed as they fill up, so the delivery workers start on the first ones while the
    rest are being written; the alert is claimed for the fan-out meanwhile (a second one
    is refused) and becomes "sending" when every message is queued."""
    now = now or datetime.now(UTC)
    with database.session() as session:
        alert = _sendable(session, alert_id)
        targeting = alert_targeting(alert, catalogue)
        if dry_run:
            index = load_index(session) if targeting else AudienceIndex()
            return FanOut(alert_id, index.count(targeting) if targeting else {}, 0)
        priority = URGENT if alert.tier == "urgent" else NEWSLETTER
        _claim_fan_out(session, alert_id, now)
    try:
        audience, texts, written = _queue(database, alert_id, targeting, priority, now)
        with database.session() as session:
            _still_ours(session, alert_id, now)
            sms = ((subscriber_id, "sms") for subscriber_id in texts)
            written += outbox.enqueue(session, alert_id, sms, priority, now)
            _fanned_out(session, alert_id, now)
    except BaseException:
        _release_fan_out(database, alert_id, now)  # what was queued stays; a repeat adds the rest
        raise
    counted = dict.fromkeys(CHANNELS, 0) | audience if targeting else {}
    return FanOut(alert_id, counted, written)


FAN_OUT_LEASE = timedelta(minutes=10)  # a fan-out claimed longer ago than this has died
COMMIT_EVERY = 10  # batches per commit while fanning out: workers start after the first


def _claim_fan_out(session: Session, alert_id: int, now: datetime) -> None:
    """Mark the alert as being fanned out by this call (its start time is the claim's
    token), unless another fan-out of it runs (one that started more than FAN_OUT_LEASE ago
    has died: its place is taken) or it was cancelled meanwhile. Batches have no
    per-recipient key to collide on: two fan-outs at once must not both write."""
    stale = now - FAN_OUT_LEASE
    free = or_(Alert.fan_out_started_at.is_(None), Alert.fan_out_started_at < stale)
    claim = (
        update(Alert)
        .where(Alert.id == alert_id, Alert.status.in_(SENDABLE), free)
        .values(fan_out_started_at=now)
    )
    if _changed(session, claim) != 1:
        raise SendRefused(f"alert {alert_id} is being sent right now")


def _still_ours(session: Session, alert_id: int, claimed: datetime) -> None:
    """Fencing before each write: the claim is still this fan-out's (a slow one whose
    place was taken stops here). It locks the alert row until the write commits, so the
    fan-out taking over reads what this one wrote."""
    fence = (
        update(Alert)
        .where(Alert.id == alert_id, Alert.fan_out_started_at == claimed)
        .values(fan_out_started_at=claimed)
    )
    if _changed(session, fence) != 1:
        raise SendRefused(f"alert {alert_id}: another fan-out took over")


def _fanned_out(session: Session, alert_id: int, now: datetime) -> None:
    """Every message queued: the alert is "sending", unless it was cancelled meanwhile
    (its queued messages then fail as cancelled, as they would have before)."""
    done = (
        update(Alert)
        .where(Alert.id == alert_id, Alert.fan_out_started_at == now)
        .values(fan_out_started_at=None, fanned_out_at=func.coalesce(Alert.fanned_out_at, now))
    )
    _changed(session, done)
    live = update(Alert).where(Alert.id == alert_id, Alert.status.in_(SENDABLE))
    _changed(session, live.values(status=SENDING))


def _release_fan_out(database: Database, alert_id: int, claimed: datetime) -> None:
    with database.session() as session:
        mine = Alert.fan_out_started_at == claimed
        _changed(
            session, update(Alert).where(Alert.id == alert_id, mine).values(fan_out_started_at=None)
        )


def _changed(session: Session, statement) -> int:
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _queue(
    database: Database,
    alert_id: int,
    targeting: Targeting | None,
    priority: int,
    now: datetime,
) -> tuple[Counter[str], list[int], int]:
    """Stream the audience from one reading session; write and commit the email batches
    from another, COMMIT_EVERY at a time. Returns the audience per channel, the text
    message recipients (far fewer; queued by the caller) and the emails queued."""
    audience: Counter[str] = Counter()
    texts: list[int] = []
    written = 0
    if targeting is None:
        return audience, texts, written
    with database.session() as reader:
        queued = batches.already_queued(reader, alert_id, "email")
        listed = audience_sql.recipients(reader, targeting, CHANNELS)
        emails = _emails(listed, audience, texts)
        for rows in batches.batch_rows(emails, alert_id, priority, now, queued, chunk=COMMIT_EVERY):
            with database.session() as writer:
                _still_ours(writer, alert_id, now)
                batches.insert_batches(writer, rows)
            written += sum(row["size"] for row in rows)
    return audience, texts, written


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


def _sendable(session: Session, alert_id: int) -> Alert:
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
