"""Provider receipts: what became of each outbox message, told by SendGrid's Event Webhook,
Twilio's status callbacks or the simulator, through one pure table (STYLE.md practice 10).

A receipt is kept once (insert-or-ignore on the provider's event id), so a webhook posted
twice changes nothing. It moves its outbox row forward only (see RANK): a late "processed"
never undoes "delivered". Receipts naming no outbox row we know are counted and dropped, and
the endpoint still answers 200 so the provider stops retrying.

The simulator (practice 11): reserved addresses and numbers that never reach a provider;
`simulate` builds the receipt a provider would send and stores it through `apply_events`,
the code every real receipt goes through."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from alerts.delivery.models import (
    CREATED,
    DELIVERED,
    PERMANENT,
    SENDING,
    TECHNICAL,
    TEMPORARY,
    DeliveryEvent,
    OutboxMessage,
)
from alerts.settings import Settings


@dataclass(frozen=True)
class Receipt:
    """One provider event about one message. `detail` holds "code" (SendGrid's bounce type,
    Twilio's ErrorCode) and "message_id" (the provider's id for the message), when given;
    never an address."""

    event_id: str
    outbox_id: int | None
    event: str
    detail: dict[str, str] = field(default_factory=dict)
    # (batch id, subscriber id) for a message sent in a batch ("b12.345"), which has an
    # outbox row only once something, such as this receipt, is said of it alone.
    batch_ref: tuple[int, int] | None = None


@dataclass
class ReceiptCounts:
    received: int = 0  # receipts given
    stored: int = 0  # new DeliveryEvent rows
    duplicates: int = 0  # event ids seen before: nothing changed
    unknown: int = 0  # no outbox row of ours: ignored
    changed: int = 0  # outbox rows whose status moved
    resolved: int = 0  # outcome-unknown rows the receipt settled


# --- the table ------------------------------------------------------------------------------

# (provider, event) -> the outbox status it proves, or None: accepted, nothing more to say.
# A refined key "event/code" (bounce type, Twilio ErrorCode) wins over the plain event.
# An event missing from the table maps to None as well.
TABLE: dict[tuple[str, str], str | None] = {
    # SendGrid Event Webhook, delivery events.
    ("sendgrid", "processed"): None,  # accepted and queued for delivery
    ("sendgrid", "deferred"): None,  # the receiving server said "later"; SendGrid retries
    ("sendgrid", "delivered"): DELIVERED,  # the receiving server accepted it
    ("sendgrid", "bounce"): PERMANENT,  # refused for good (type "bounce", or no type given)
    ("sendgrid", "bounce/bounce"): PERMANENT,
    # A block: refused for now (our IP's or content's reputation, a full mailbox); SendGrid
    # does not retry a block, so the message goes back to our own bounded retries.
    ("sendgrid", "bounce/blocked"): TEMPORARY,
    # SendGrid will not even try: address on its bounce/spam/unsubscribe list, invalid, or
    # content refused; the same message to the same address would be dropped again.
    ("sendgrid", "dropped"): PERMANENT,
    # Engagement and list events: a spam report proves the message arrived (the suppression
    # table stops the next ones); unsubscribes are the suppressions' business, not a status.
    ("sendgrid", "spamreport"): DELIVERED,
    ("sendgrid", "unsubscribe"): None,
    ("sendgrid", "group_unsubscribe"): None,
    ("sendgrid", "group_resubscribe"): None,
    ("sendgrid", "open"): None,  # never stored: see ENGAGEMENT
    ("sendgrid", "click"): None,
    # Twilio status callbacks (MessageStatus, refined by ErrorCode).
    ("twilio", "accepted"): None,  # taken by a messaging service
    ("twilio", "scheduled"): None,
    ("twilio", "queued"): None,
    ("twilio", "sending"): None,
    ("twilio", "sent"): None,  # handed to the carrier; no handset receipt yet
    ("twilio", "delivered"): DELIVERED,  # the carrier confirmed the handset has it
    ("twilio", "undelivered"): TEMPORARY,  # the carrier gave up; the code says whether for good
    ("twilio", "undelivered/30003"): TEMPORARY,  # handset off, no signal: try again later
    ("twilio", "undelivered/30005"): PERMANENT,  # unknown number: it may not exist any more
    ("twilio", "undelivered/30006"): PERMANENT,  # landline or unreachable carrier
    ("twilio", "undelivered/30007"): PERMANENT,  # carrier filtered it: the same text would be too
    ("twilio", "undelivered/30008"): TEMPORARY,  # unknown carrier error
    ("twilio", "undelivered/21610"): PERMANENT,  # the recipient replied STOP
    ("twilio", "failed"): PERMANENT,  # Twilio could not send it (invalid number, STOP, ...)
    ("twilio", "failed/30001"): TEMPORARY,  # Twilio's queue overflowed: later may work
    # The simulator's events are the outcomes themselves.
    ("simulator", DELIVERED): DELIVERED,
    ("simulator", TEMPORARY): TEMPORARY,
    ("simulator", PERMANENT): PERMANENT,
}

# Forward only: a receipt moves a row to a status of higher rank, never lower. Our own
# technical-failure (e.g. outcome unknown) yields to anything a provider says; delivered
# beats a temporary failure; a permanent failure beats delivered, because a receiving mail
# server may accept a message and bounce it later, while nothing is delivered after failing
# for good (such a pair is receipts arriving out of order).
RANK = {CREATED: 0, TECHNICAL: 0, SENDING: 1, TEMPORARY: 2, DELIVERED: 3, PERMANENT: 4}
FAILURES = frozenset({TEMPORARY, PERMANENT})
# A temporary failure puts the row back in the dispatcher's queue after this delay, while it
# has attempts left; then it is given up as technical-failure, as the dispatcher does.
RETRY_DELAY = timedelta(minutes=30)
DEFAULT_MAX_ATTEMPTS: int = Settings.model_fields["delivery_max_attempts"].default


def table_key(event: str, detail: dict[str, str]) -> str:
    """'bounce' + code 'blocked' -> 'bounce/blocked'; the name stored with the receipt."""
    code = detail.get("code")
    return f"{event}/{code}" if code else event


def status_for(provider: str, event: str, detail: dict[str, str] | None = None) -> str | None:
    """The pure table lookup: the refined key first, then the event alone."""
    refined = (provider, table_key(event, detail or {}))
    return TABLE[refined] if refined in TABLE else TABLE.get((provider, event))


def supersedes(new: str, current: str) -> bool:
    return RANK.get(new, 0) > RANK.get(current, 0)


def below(status: str) -> list[str]:
    """The statuses a receipt for `status` may replace."""
    return [other for other, rank in RANK.items() if rank < RANK[status]]


# --- parsing --------------------------------------------------------------------------------

ENGAGEMENT = frozenset({"open", "click"})  # not receipts: we do not record who reads what
REFERENCE = re.compile(r"outbox-([0-9]{1,18})")
BATCH_REFERENCE = re.compile(r"b([0-9]{1,18})\.([0-9]{1,18})")
MAX_EVENT_ID = 100  # DeliveryEvent.event_id
MAX_EVENT = 30  # DeliveryEvent.event


def sendgrid_receipts(events: list) -> list[Receipt]:
    """The receipts in one Event Webhook post; junk entries and engagement events are
    skipped. Our id comes back as the custom arg "outbox_id" (or "reference": outbox-N)."""
    found = []
    for event in events:
        if isinstance(event, dict) and (receipt := _sendgrid_receipt(event)) is not None:
            found.append(receipt)
    return found


def _sendgrid_receipt(event: dict[str, Any]) -> Receipt | None:
    kind = _text(event.get("event"))
    if not kind or kind in ENGAGEMENT:
        return None
    outbox_id = outbox_id_from(event.get("outbox_id")) or reference_id(event.get("reference"))
    detail = _compact(code=_text(event.get("type")), message_id=_text(event.get("sg_message_id")))
    batch = batch_ref(event.get("outbox_id"))
    return Receipt(sendgrid_event_id(event, kind), outbox_id, kind, detail, batch)


def sendgrid_event_id(event: dict[str, Any], kind: str) -> str:
    """sg_event_id; without one, a stable id from sg_message_id + event + timestamp (or,
    lacking a message id, from the whole event), so a re-posted event is still a duplicate."""
    given = _text(event.get("sg_event_id"))
    if given and len(given) <= MAX_EVENT_ID:
        return given
    message_id = _text(event.get("sg_message_id"))
    if given or not message_id:
        basis = given or json.dumps(event, sort_keys=True, default=str)
    else:
        basis = f"{message_id}|{kind}|{event.get('timestamp', '')}"
    return "sendgrid:" + hashlib.sha256(basis.encode()).hexdigest()


def twilio_receipt(form: dict[str, str], query_reference: str | None) -> Receipt | None:
    """A status callback as a receipt; None for an inbound message (it has a Body) or a post
    without a message sid and status. Our id rides in the callback URL: ?reference=outbox-N."""
    status = _text(form.get("MessageStatus")).lower()
    sid = _text(form.get("MessageSid")) or _text(form.get("SmsSid"))
    if not status or not sid or "Body" in form:
        return None
    detail = _compact(code=_text(form.get("ErrorCode")), message_id=sid)
    return Receipt(f"{sid}:{status}"[:MAX_EVENT_ID], reference_id(query_reference), status, detail)


def outbox_id_from(value: object) -> int | None:
    """'123' or 123 -> 123; anything else (bools, junk, absurd lengths) -> None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value.strip()):
        return int(value) or None
    return None


def batch_ref(value: object) -> tuple[int, int] | None:
    """'b12.345' (a batch's message: batch 12, subscriber 345) -> (12, 345)."""
    match = BATCH_REFERENCE.fullmatch(value.strip()) if isinstance(value, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def reference_id(reference: object) -> int | None:
    """'outbox-123' (the reference the dispatcher gives a message) -> 123."""
    match = REFERENCE.fullmatch(reference.strip()) if isinstance(reference, str) else None
    return outbox_id_from(match.group(1)) if match else None


# --- storing --------------------------------------------------------------------------------


def apply_events(
    session: Session,
    provider: str,
    events: Iterable[Receipt],
    now: datetime,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> ReceiptCounts:
    """Store each new receipt and move its outbox row forward; works in the caller's
    transaction, on SQLite and PostgreSQL alike."""
    counts = ReceiptCounts()
    for receipt in events:
        counts.received += 1
        row = _outbox_row(session, receipt, now)
        if row is None:
            counts.unknown += 1
        elif not _insert_event(session, provider, receipt, row.id, now):
            counts.duplicates += 1
        else:
            counts.stored += 1
            if _same_attempt(row.provider_id, receipt.detail.get("message_id")):
                counts.resolved += _resolve(session, row, now)
                counts.changed += _advance(session, provider, receipt, row, now, max_attempts)
    return counts


def _outbox_row(session: Session, receipt: Receipt, now: datetime) -> Row | None:
    """Our row, by the id we sent along (for a batch's message, created from the batch),
    or else by the provider's message id."""
    if receipt.batch_ref is not None:
        from alerts.delivery import batches  # the batch queue builds on the outbox

        outbox_id = batches.receipt_row(session, *receipt.batch_ref, now)
        if outbox_id is None:
            return None
        where = OutboxMessage.id == outbox_id
    elif receipt.outbox_id is not None:
        where = OutboxMessage.id == receipt.outbox_id
    elif receipt.detail.get("message_id"):
        where = OutboxMessage.provider_id == receipt.detail["message_id"]
    else:
        return None
    return session.execute(select(*_ROW_COLUMNS).where(where).limit(1)).first()


_ROW_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.status,
    OutboxMessage.outcome_unknown,
    OutboxMessage.attempts,
    OutboxMessage.provider_id,
    OutboxMessage.sent_at,
)


def _insert_event(
    session: Session, provider: str, receipt: Receipt, outbox_id: int, now: datetime
) -> bool:
    """Insert-or-ignore on the event id: True when this receipt is new."""
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    values = {
        "provider": provider[:20],
        "event_id": receipt.event_id[:MAX_EVENT_ID],
        "outbox_id": outbox_id,
        "event": table_key(receipt.event, receipt.detail)[:MAX_EVENT],
        "status": status_for(provider, receipt.event, receipt.detail),
        "at": now,
    }
    table = DeliveryEvent.__table__
    statement = insert(table).values(values).on_conflict_do_nothing(index_elements=["event_id"])
    # RETURNING, not rowcount: psycopg reports -1 for a row ORM sessions insert this way.
    return session.execute(statement.returning(table.c.id)).first() is not None


def _same_attempt(row_message_id: str | None, receipt_message_id: str | None) -> bool:
    """False for a late receipt of an earlier attempt: the row now carries another provider
    id. SendGrid's sg_message_id extends the X-Message-Id we keep ('<id>.filter...')."""
    if not row_message_id or not receipt_message_id:
        return True
    return receipt_message_id == row_message_id or receipt_message_id.startswith(
        row_message_id + "."
    )


def _resolve(session: Session, row: Row, now: datetime) -> int:
    """A receipt proves the provider took the message: an unknown outcome is known now."""
    if not row.outcome_unknown:
        return 0
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.outcome_unknown.is_(True))
        .values(outcome_unknown=False, sent_at=row.sent_at or now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount or 0


def _advance(
    session: Session, provider: str, receipt: Receipt, row: Row, now: datetime, max_attempts: int
) -> int:
    """Move the row to what the receipt proves, if that is further on (compare-and-set, so
    two receipts racing for one row cannot move it backwards). An outcome-unknown row that
    hears only "accepted" is at least sending."""
    status = status_for(provider, receipt.event, receipt.detail)
    target = status or (SENDING if row.outcome_unknown else None)
    if target is None or not supersedes(target, row.status):
        return 0
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if target in FAILURES:
        values["last_error"] = f"{provider}: {table_key(receipt.event, receipt.detail)}"[:300]
    if target == TEMPORARY:
        values |= _retry_or_give_up(row, values["last_error"], now, max_attempts)
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.status.in_(below(target)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount or 0


def _retry_or_give_up(row: Row, error: str, now: datetime, max_attempts: int) -> dict[str, Any]:
    """A temporary failure is the dispatcher's to retry: back in its queue after RETRY_DELAY,
    as a row the provider never took (so its lease and outcome checks hold); with no attempts
    left, technical-failure, as the dispatcher gives up."""
    if row.attempts >= max_attempts:
        return {"status": TECHNICAL, "last_error": f"{error}, after {row.attempts} attempts"}
    return {
        "next_attempt_at": now + RETRY_DELAY,
        "claimed_by": None,
        "claimed_at": None,
        "handed_off_at": None,
        "sent_at": None,
    }


# --- the simulator --------------------------------------------------------------------------

SIMULATOR_DOMAIN = "simulator.sme-alerts.invalid"  # .invalid: no mail can ever go there
SIMULATED_EMAILS = {
    f"{outcome}@{SIMULATOR_DOMAIN}": outcome for outcome in (DELIVERED, TEMPORARY, PERMANENT)
}
# Ofcom's range for drama (+44 7700 900000 to 900999): numbers that reach no one.
SIMULATED_NUMBERS = {
    "+447700900001": DELIVERED,
    "+447700900002": TEMPORARY,
    "+447700900003": PERMANENT,
}


def simulated_outcome(address: str) -> str | None:
    """The event to simulate for a reserved address or number (delivered, temporary-failure,
    permanent-failure); None for every real recipient, who goes to the provider."""
    text = address.strip() if isinstance(address, str) else ""
    if text in SIMULATED_NUMBERS:
        return SIMULATED_NUMBERS[text]
    if SIMULATOR_DOMAIN not in text.lower():  # the common case, checked cheaply
        return None
    return SIMULATED_EMAILS.get(parseaddr(text)[1].lower())


def simulate(
    session: Session,
    channel: str,
    outbox_id: int,
    address: str,
    now: datetime,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> ReceiptCounts:
    """Instead of sending to a reserved recipient: the receipt its provider would post, one
    per attempt, stored through `apply_events` like any other."""
    outcome = simulated_outcome(address)
    if outcome is None or ("@" in address) != (channel == "email"):
        raise ValueError(f"not a simulator {channel} recipient")
    attempts = session.scalar(select(OutboxMessage.attempts).where(OutboxMessage.id == outbox_id))
    event_id = f"simulator:{outbox_id}:{attempts or 0}:{outcome}"
    receipt = Receipt(event_id, outbox_id, outcome)
    return apply_events(session, "simulator", [receipt], now, max_attempts=max_attempts)


# --- helpers --------------------------------------------------------------------------------


def _compact(**detail: str) -> dict[str, str]:
    return {name: value[:100] for name, value in detail.items() if value}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
