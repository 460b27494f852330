"""Provider webhooks as suppressions: pure tables from SendGrid events and Twilio callbacks
to (channel, address, reason), and one function that stores what they found.

Only what must stop sending is taken here: hard bounces, spam complaints, the provider's own
unsubscribe, numbers that cannot take a text. Everything else (delivered, deferred, open,
click, processed, a temporary block) maps to nothing: receipts are another table's job."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from subscribers import consent
from subscribers.consent import Origin
from subscribers.suppressions import address_key, subscribers_with, suppress
from subscribers.tokens import Signer

MAX_ADDRESS = 320  # the longest email address; anything longer is not an address


@dataclass(frozen=True)
class SuppressionEvent:
    """One address a provider told us to stop sending to. The address stays out of repr,
    so an event that reaches a log or a traceback names nobody."""

    channel: str  # email | sms
    address: str = field(repr=False)
    reason: str  # one of subscribers.suppressions.REASONS
    provider_id: str = ""  # SendGrid's sg_event_id, Twilio's message sid


# --- SendGrid Event Webhook ------------------------------------------------------------

# Events whose name alone decides; "bounce" and "dropped" look further.
SENDGRID_EVENTS = {
    "spamreport": "spam-complaint",
    "unsubscribe": "provider-unsubscribe",
    "group_unsubscribe": "provider-unsubscribe",
}
# A bounce's "type": "bounce" is permanent; "blocked" is a temporary refusal (no suppression).
SENDGRID_BOUNCE_TYPES = {"bounce": "hard-bounce"}
# A drop's "reason": SendGrid would not even try, as the address is on one of its lists.
# "Invalid SMTPAPI header", "Spam Content" and "Recipient List over Package Quota" are our
# message's or account's fault, not the address's: they match nothing.
SENDGRID_DROP_REASONS = (
    (re.compile(r"\bbounced address\b", re.I), "hard-bounce"),
    (re.compile(r"\bspam reporting address\b", re.I), "spam-complaint"),
    (re.compile(r"\bunsubscribed address\b", re.I), "provider-unsubscribe"),
    (re.compile(r"^invalid(?: (?:recipient |email )?address)?$", re.I), "hard-bounce"),
)


def sendgrid_suppressions(events: list[dict]) -> list[SuppressionEvent]:
    """The suppressions in one Event Webhook post (a JSON array); junk entries are skipped."""
    found = []
    for event in events:
        if not isinstance(event, dict):
            continue
        reason, address = sendgrid_reason(event), _text(event.get("email"))
        if reason and _plausible(address):
            found.append(
                SuppressionEvent("email", address, reason, _text(event.get("sg_event_id")))
            )
    return found


def sendgrid_reason(event: dict[str, Any]) -> str | None:
    kind = _text(event.get("event"))
    if kind == "bounce":
        return SENDGRID_BOUNCE_TYPES.get(_text(event.get("type")))
    if kind == "dropped":
        return _drop_reason(_text(event.get("reason")))
    return SENDGRID_EVENTS.get(kind)


def _drop_reason(text: str) -> str | None:
    return next((reason for pattern, reason in SENDGRID_DROP_REASONS if pattern.search(text)), None)


# --- Twilio: inbound messages and status callbacks --------------------------------------

# Twilio's own opt-out keywords, plus how people write "stop" in Dutch, French and German.
# Compared without case, accents, surrounding blanks or a final full stop / exclamation mark.
TWILIO_OPT_OUT = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
    | {"STOPPEN", "UITSCHRIJVEN", "AFMELDEN"}  # nl
    | {"ARRET", "DESABONNER", "DESINSCRIRE"}  # fr (ARRÊT, DÉSABONNER, ...)
    | {"ABMELDEN", "ABBESTELLEN"}  # de
)
# Error codes of a status callback that say the number will never take our texts.
TWILIO_ERRORS = {
    "21610": "provider-unsubscribe",  # the recipient replied STOP to this sender
    "21211": "invalid-number",  # not a valid phone number
    "21614": "invalid-number",  # not a mobile number
    "30006": "invalid-number",  # landline or unreachable carrier
}


def twilio_suppressions(form: dict[str, str]) -> list[SuppressionEvent]:
    """An inbound message (it has a Body) that opts out names its sender (From); a status
    callback with a permanent error names our recipient (To)."""
    sid = _text(form.get("MessageSid")) or _text(form.get("SmsSid"))
    if "Body" in form:
        reason = "provider-unsubscribe" if is_opt_out(form) else None
        address = _text(form.get("From"))
    else:
        reason, address = TWILIO_ERRORS.get(_text(form.get("ErrorCode"))), _text(form.get("To"))
    if reason is None or not _plausible(address):
        return []
    return [SuppressionEvent("sms", address, reason, sid)]


def is_opt_out(form: dict[str, str]) -> bool:
    """Twilio Advanced Opt-Out says so itself (OptOutType); otherwise the keyword decides."""
    if _text(form.get("OptOutType")).upper() == "STOP":
        return True
    return keyword(_text(form.get("Body"))) in TWILIO_OPT_OUT


def keyword(body: str) -> str:
    """' Arrêt! ' -> 'ARRET'"""
    plain = "".join(c for c in unicodedata.normalize("NFKD", body) if not unicodedata.combining(c))
    return plain.strip().rstrip(".!").strip().upper()


# --- storing ----------------------------------------------------------------------------


def apply(
    session: Session,
    signer: Signer,
    events: list[SuppressionEvent],
    source: str,
    now: datetime,
) -> int:
    """Suppress each address; a subscriber holding it gets a "suppressed" consent event the
    first time only, so a webhook delivered twice changes nothing. Returns how many
    suppressions are new."""
    origin, new = Origin(source), 0
    for event in events:
        if not suppress(session, signer, event.channel, event.address, event.reason, source, now):
            continue
        new += 1
        key = address_key(signer, event.channel, event.address)
        for subscriber in subscribers_with(session, event.channel, key):
            what = {"suppressed": event.channel, "reason": event.reason}
            consent.record(session, subscriber, "suppressed", origin, now, channels=what)
    return new


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _plausible(address: str) -> bool:
    return 0 < len(address) <= MAX_ADDRESS
