"""The delivery worker: claim an alert's email batches and outbox rows, compose once per
alert and language, hand them to the channel (requests of up to 1,000 for SendGrid), and
record each outcome: once per request for a batch, once per message for a row.

Several workers may run at once (PostgreSQL). A stop request (SIGTERM) lets the batch in
flight finish and gives back what was claimed but not handed off, so nothing is lost."""

from __future__ import annotations

import gc
import logging
import os
import re
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from alerts.compose import (
    PLACEHOLDERS,
    RecipientLinks,
    compose_email,
    compose_newsletter,
    compose_sms,
)
from alerts.curation.content import alert_content, alert_firms
from alerts.curation.models import SENDABLE, SENT, Alert
from alerts.curation.models import SENDING as ALERT_SENDING
from alerts.delivery import batches, outbox, receipts
from alerts.delivery.batches import Batch
from alerts.delivery.channels import BatchRecipient, SendError
from alerts.delivery.messages import EmailMessage, SmsMessage
from alerts.delivery.models import DELIVERED, PERMANENT, TECHNICAL
from alerts.delivery.outbox import Claimed
from alerts.delivery.recipients import Recipient, read_recipients
from alerts.delivery.throttle import Throttle
from alerts.referrals.selection import Referrals
from alerts.relevance.service import default_catalogue
from alerts.settings import Settings
from alerts.store import Database
from subscribers.links import Links
from subscribers.suppressions import suppress
from subscribers.tokens import Signer

log = logging.getLogger(__name__)
CLAIM_LIMIT = 4_000  # a thousand per language and batch, when all four are present
BATCH_CLAIM_LIMIT = 4  # batches per round: as many messages as a round of rows
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600)
MAX_RETRY_AFTER = 3600  # a provider asking us to wait longer is treated as an outage
# Twilio codes that name the recipient: invalid number, not a mobile, replied STOP.
RECIPIENT_REFUSALS = re.compile(r"error (21211|21614|21610)\b")
LIVE = (*SENDABLE, SENT)  # alert statuses whose queued messages may still go out


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        email_channel,
        sms_channel,
        clock: Callable[[], datetime] = utcnow,
        worker: str | None = None,
    ):
        self.database = database
        self.settings = settings
        self.email_channel = email_channel
        self.sms_channel = sms_channel
        self.clock = clock
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.signer = Signer(settings.signing_key())
        self.links = Links(settings.public_base_url, self.signer)
        self.email_throttle = Throttle(settings.email_per_second)
        self.sms_throttle = Throttle(settings.sms_per_second)
        self.lease = timedelta(seconds=settings.delivery_lease_seconds)
        self.receipt_grace = timedelta(seconds=settings.receipt_grace_seconds)
        self.receipt_channels = receipt_channels(settings)
        self.stopping = threading.Event()
        self._composed: dict[tuple, object] = {}
        self.referrals = Referrals(
            database, default_catalogue(), settings.public_base_url, self.signer, self.now
        )
        self._sender: ThreadPoolExecutor | None = None  # during run_once
        self._in_flight: Future | None = None

    def now(self) -> datetime:
        return self.clock()  # late-bound: tests replace the clock after construction

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> Dispatcher:
        from alerts.delivery.channels import email_channel, sms_channel

        return cls(database, settings, email_channel(settings), sms_channel(settings))

    # --- the loop -----------------------------------------------------------------------

    def run(self, idle_seconds: float = 1.0) -> None:
        """Until stop(): claim and send; sleep a little when the queue is empty."""
        # What the process holds by now (modules, settings, the catalogue: ~140,000
        # objects) lives as long as it does; frozen, the collector stops scanning it again
        # for every few thousand messages built (about 7 µs per recipient at 1,000 a request).
        gc.freeze()
        while not self.stopping.is_set():
            try:
                claimed = self.run_once()
            except Exception:  # a locked database, a bug: log, wait, go on; never die
                log.exception("delivery round failed; retrying")
                claimed = 0
            if claimed == 0:
                self.stopping.wait(idle_seconds)

    def stop(self) -> None:
        self.stopping.set()

    def run_once(self) -> int:
        """One claim and its sending; returns the number of messages claimed."""
        now = self.clock()
        with self.database.session() as session:
            outbox.sweep_unknown(session, now, self.lease)
            outbox.resend_unheard(session, now, self.receipt_grace, self.receipt_channels)
            self._settle_lost_batches(session, now)
            claimed_batches = batches.claim(
                session, self.worker, BATCH_CLAIM_LIMIT, now, self.lease
            )
            room = CLAIM_LIMIT - sum(len(batch.subscriber_ids) for batch in claimed_batches)
            claimed = outbox.claim(session, self.worker, room, now, self.lease) if room > 0 else []
        if not claimed and not claimed_batches:
            # A fan-out may have ended after the last batch was sent: nothing of it is
            # claimed again, so its alert is finished here.
            self._finish_alerts(self._sending_alerts())
            return 0
        # One request in flight while the next is prepared: the provider's time and ours
        # overlap. Leaving the block waits for the last request and its record.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery-send") as sender:
            self._sender = sender
            try:
                self._send_batches(claimed_batches)
                self._send(claimed)
            finally:
                self._sender = self._in_flight = None
        alert_ids = {row.alert_id for row in claimed if row.alert_id}
        self._finish_alerts(alert_ids | {batch.alert_id for batch in claimed_batches})
        return len(claimed) + sum(len(batch.subscriber_ids) for batch in claimed_batches)

    def drain(self) -> int:
        """Send until nothing is due (tests, `alerts send --wait`)."""
        total = 0
        while (claimed := self.run_once()) > 0:
            total += claimed
        return total

    # --- sending ------------------------------------------------------------------------

    def _send(self, claimed: list[Claimed]) -> None:
        recipients = self._recipients([row.subscriber_id for row in claimed])
        groups: dict[tuple, list[Claimed]] = defaultdict(list)
        for row in claimed:
            groups[_group_key(row)].append(row)
        for key, rows in groups.items():
            if self.stopping.is_set():
                self._release(rows)
                continue
            rows = self._within_attempts(rows)
            try:
                if key[0] == "newsletter":
                    self._send_newsletter(key[1], rows, recipients)
                else:
                    self._send_group(key[0], key[1], rows, recipients)
            except DBAPIError:
                # The database went away: nothing here is the message's fault. The rows stay
                # claimed, and come back when their lease runs out (handed-off ones are
                # settled by the sweep), so the round is abandoned, not the messages.
                raise
            except Exception as error:  # one bad group must not hold up the others
                log.exception("could not send group %s", key)
                self._fail(rows, TECHNICAL, f"could not compose or send: {type(error).__name__}")

    # --- batches ------------------------------------------------------------------------

    def _send_batches(self, claimed: list[Batch]) -> None:
        for batch in claimed:
            if self.stopping.is_set():
                self._release_batches([batch])
                continue
            try:
                self._send_batch(batch)
            except DBAPIError:
                raise  # as for rows: the lease brings the batch back
            except Exception as error:  # one bad batch must not hold up the others
                self._fail_batch(batch, error)

    def _send_batch(self, batch: Batch) -> None:
        """Split the batch by content and the channel's request size (a request each),
        give the recipients who need the per-message path rows of their own, then hand each
        part off as one request."""
        if batch.attempts > self.settings.delivery_max_attempts:
            rows = self._explode_held(batch)
            return self._fail(rows, TECHNICAL, "claimed too often without being sent")
        alert = self._alert(batch.alert_id)
        if alert is None or alert.status not in LIVE:
            rows = self._explode_held(batch)
            return self._fail(rows, TECHNICAL, "alert not found, cancelled or withdrawn")
        recipients = self._recipients(batch.subscriber_ids)
        groups, own = self._batch_groups(alert, batch, recipients)
        requests = [
            (content, chunk)
            for content, ids in groups.items()
            for chunk in outbox.chunks(ids, self.email_channel.batch_size)
        ]
        with self.database.session() as session:
            now = self.clock()
            parts = batches.split(session, batch, [ids for _, ids in requests], self.worker, now)
            if parts is None:  # another worker holds it now (this one's lease ran out)
                return
            rows = batches.explode(session, batch, own, self.worker, now)
        if rows:
            self._send(rows)  # not sendable any more, or a reserved test address
        for ((language, firms), _), part in zip(requests, parts, strict=True):
            try:
                self._send_part(alert, part, language, firms, recipients)
            except DBAPIError:
                raise
            except Exception as error:  # raised before its hand-off: the others go on
                self._fail_batch(part, error)

    def _fail_batch(self, batch: Batch, error: Exception) -> None:
        """A batch (not handed off) that could not be composed or built fails, message by
        message: its recipients get rows of their own, as technical failures."""
        log.exception("could not send batch %s", batch.id)
        text = f"could not compose or send: {type(error).__name__}"
        self._fail(self._explode_held(batch), TECHNICAL, text)

    def _batch_groups(
        self, alert: Alert, batch: Batch, recipients: dict[int, Recipient]
    ) -> tuple[dict[tuple[str, tuple], list[int]], list[int]]:
        """Recipients by (language, referred firms): one request each. Those who may not
        be sent this any more, and reserved simulator addresses, go the per-message way."""
        groups: dict[tuple[str, tuple], list[int]] = defaultdict(list)
        own: list[int] = []
        for subscriber_id in batch.subscriber_ids:
            recipient = recipients.get(subscriber_id)
            if (
                recipient is None
                or not recipient.urgent_email_ok
                or receipts.simulated_outcome(recipient.email)
            ):
                own.append(subscriber_id)
                continue
            firms = self.referrals.choose(
                alert, recipient.region, recipient.language, subscriber_id
            )
            groups[(recipient.language, firms)].append(subscriber_id)
        return groups, own

    def _send_part(self, alert: Alert, part: Batch, language: str, firms: tuple, recipients):
        ids = part.subscriber_ids
        message = self._email(alert, language, recipients[ids[0]].email, firms)
        if self.stopping.is_set():
            return self._release_batches([part])
        self.email_throttle.acquire(len(ids))
        final = DELIVERED if self.email_channel.name == "file" else outbox.SENDING
        reference = f"b{part.id}."
        built = [
            self._batch_recipient(reference + str(i), i, recipients[i]) for i in ids
        ]  # before the hand-off: a fault here leaves the batch safely unsent
        with self.database.session() as session:
            if not batches.hand_off(session, part.id, self.worker, self.clock()):
                return
        self.referrals.count_shown(alert.id, firms, len(ids))  # once: only the holder gets here
        part = part._replace(handed_off_at=self.clock())
        send = partial(self.email_channel.send_batch, message, built)
        if self._in_flight is not None:
            self._in_flight.result()  # at most one request out while this one waits
        if self._sender is None:
            return self._deliver_batch(part, send, final)
        self._in_flight = self._sender.submit(self._deliver_batch, part, send, final)

    def _deliver_batch(self, part: Batch, send: Callable[[], str], final: str) -> None:
        """The request and its record, on the sending thread. A failure gives every
        recipient a row of its own and is recorded as for rows (retry, unknown, failure);
        if even that cannot be recorded, the sweep settles the batch as after a crash."""
        try:
            try:
                provider_id = send()
            except SendError as error:
                with self.database.session() as session:
                    settle_if = batches.handed_off_by(self.worker)
                    rows = batches.explode(
                        session,
                        part,
                        part.subscriber_ids,
                        self.worker,
                        self.clock(),
                        settle_if=settle_if,
                    )
                if rows:  # none if a sweep took the batch for lost meanwhile
                    self._record_failure(rows, error)
                return
            with self.database.session() as session:
                batches.accepted(session, part.id, provider_id, self.clock(), final)
        except Exception:
            log.exception("sending or recording batch %s failed", part.id)

    def _explode_held(self, batch: Batch) -> list[Claimed]:
        """All of a batch this worker holds (not handed off) as rows of their own."""
        with self.database.session() as session:
            held = batches.held(batch.id, self.worker)
            return batches.explode(
                session, batch, batch.subscriber_ids, self.worker, self.clock(), settle_if=held
            )

    def _release_batches(self, claimed: list[Batch]) -> None:
        with self.database.session() as session:
            batches.release(session, [batch.id for batch in claimed], self.worker, self.clock())

    def _settle_lost_batches(self, session, now: datetime) -> None:
        """Batches handed off by a worker that died before hearing back: each recipient
        gets a row whose outcome is unknown (a receipt may still settle it)."""
        for batch in batches.stale_handed_off(session, now, self.lease):
            lost = batches.lost(now, self.lease)
            rows = batches.explode(
                session, batch, batch.subscriber_ids, self.worker, now, settle_if=lost
            )
            text = "worker stopped while the provider request was in flight"
            outbox.outcome_unknown(session, [row.id for row in rows], text, now)

    def _within_attempts(self, rows: list[Claimed]) -> list[Claimed]:
        """Rows reclaimed again and again (their worker kept dying) stop at the bound."""
        limit = self.settings.delivery_max_attempts
        spent = [row for row in rows if row.attempts > limit]
        self._fail(spent, TECHNICAL, "claimed too often without being sent")
        return [row for row in rows if row.attempts <= limit]

    def _send_group(self, alert_id, channel, rows, recipients) -> None:
        alert = self._alert(alert_id)
        if alert is None or alert.status not in LIVE:
            return self._fail(rows, TECHNICAL, "alert not found, cancelled or withdrawn")
        sendable = self._sendable(rows, recipients)
        if channel == "email":
            self._send_emails(alert, sendable, recipients)
        else:
            self._send_sms(alert, sendable, recipients)

    def _send_newsletter(self, alert_ids: tuple[int, ...], rows, recipients) -> None:
        """One issue content per (set of alerts, language), sent in batches like an alert."""
        sendable = self._sendable(rows, recipients)
        found = (self._alert(alert_id) for alert_id in alert_ids)
        alerts = [alert for alert in found if alert is not None and alert.status in LIVE]
        by_language: dict[str, list[Claimed]] = defaultdict(list)
        for row in sendable:
            by_language[recipients[row.subscriber_id].language].append(row)
        for language, group in by_language.items():
            message = self._newsletter(alerts, language, recipients[group[0].subscriber_id].email)
            if message is None:
                self._fail(group, TECHNICAL, "empty newsletter: its alerts are gone")
                continue
            for chunk in outbox.chunks(group, self.email_channel.batch_size):
                self._email_batch(message, chunk, recipients)

    def _newsletter(self, alerts: list[Alert], language: str, first: str) -> EmailMessage | None:
        base = self.settings.public_base_url
        items = [alert_content(alert, base) for alert in alerts]
        composed = compose_newsletter(items, language, PLACEHOLDERS)
        if composed is None:
            return None
        return EmailMessage(
            to=first,
            subject=composed.subject,
            text=composed.text,
            html=composed.html,
            category="newsletter",
        )

    def _sendable(self, rows: list[Claimed], recipients) -> list[Claimed]:
        """The rows whose subscriber still wants this channel; the others fail at once."""
        sendable, gone = [], []
        for row in rows:
            (sendable if self._may_send(row, recipients) else gone).append(row)
        self._fail(gone, PERMANENT, "not sent: left, paused, suppressed or erased before sending")
        return sendable

    def _may_send(self, row: Claimed, recipients: dict[int, Recipient]) -> bool:
        recipient = recipients.get(row.subscriber_id)
        if recipient is None:
            return False
        if row.channel == "sms":
            return recipient.sendable_sms
        return recipient.newsletter_ok if row.kind == "newsletter" else recipient.urgent_email_ok

    def _send_emails(self, alert, rows: list[Claimed], recipients) -> None:
        """One content per language and set of referred firms (each subscriber's firms come
        from a fair rotation, so recipients sharing them share a request)."""
        groups: dict[tuple[str, tuple], list[Claimed]] = defaultdict(list)
        for row in rows:
            recipient = recipients[row.subscriber_id]
            firms = self.referrals.choose(
                alert, recipient.region, recipient.language, recipient.subscriber_id
            )
            groups[(recipient.language, firms)].append(row)
        for (language, firms), group in groups.items():
            first = recipients[group[0].subscriber_id].email
            message = self._email(alert, language, first, firms)
            for chunk in outbox.chunks(group, self.email_channel.batch_size):
                self._email_batch(message, chunk, recipients)
            self.referrals.count_shown(alert.id, firms, len(group))

    def _email_batch(self, message: EmailMessage, rows: list[Claimed], recipients) -> None:
        if self.stopping.is_set():  # stopping: what is not handed off goes back at once
            return self._release(rows)
        simulated, real = [], []
        for row in rows:
            address = recipients[row.subscriber_id].email
            (simulated if receipts.simulated_outcome(address) else real).append(row)
        self._simulate(simulated, recipients, "email")
        if not real:
            return
        self.email_throttle.acquire(len(real))
        final = DELIVERED if self.email_channel.name == "file" else outbox.SENDING

        # Built before the hand-off, so that a fault here leaves the rows safely unsent.
        built = {
            row.id: self._batch_recipient(
                str(row.id), row.subscriber_id, recipients[row.subscriber_id]
            )
            for row in real
        }

        def send(owned: list[Claimed]) -> str:
            return self.email_channel.send_batch(message, [built[row.id] for row in owned])

        self._hand_off(real, send, final)

    def _batch_recipient(
        self, reference: str, subscriber: int, recipient: Recipient
    ) -> BatchRecipient:
        preferences, unsubscribe, headers = self.links.message_links(subscriber, recipient.link_key)
        substitutions = {
            PLACEHOLDERS.preferences: preferences,
            PLACEHOLDERS.unsubscribe: unsubscribe,
        }
        return BatchRecipient(recipient.email, substitutions, headers, reference)

    def _send_sms(self, alert, rows: list[Claimed], recipients) -> None:
        for row in rows:
            if self.stopping.is_set():
                self._release([row])
                continue
            recipient = recipients[row.subscriber_id]
            if receipts.simulated_outcome(recipient.phone or ""):
                self._simulate([row], recipients, "sms")
                continue
            message = self._sms(alert, recipient, row)
            self.sms_throttle.acquire(1)
            final = DELIVERED if self.sms_channel.name == "file" else outbox.SENDING
            self._hand_off([row], lambda _, m=message: self.sms_channel.send(m), final)

    def _hand_off(
        self, rows: list[Claimed], send: Callable[[list[Claimed]], str], final: str
    ) -> None:
        """Mark, send, record: the only place a provider is called. Only rows this worker
        still holds go out."""
        with self.database.session() as session:
            owned = outbox.hand_off(session, [row.id for row in rows], self.worker, self.clock())
        rows = [row for row in rows if row.id in owned]
        if not rows:
            return
        if self._in_flight is not None:
            self._in_flight.result()  # at most one request out while this one waits
        if self._sender is None:  # called outside run_once
            return self._deliver(rows, send, final)
        self._in_flight = self._sender.submit(self._deliver, rows, send, final)

    def _deliver(self, rows: list[Claimed], send: Callable[[list[Claimed]], str], final) -> None:
        """The request and its record (on the sending thread). Rows handed off whose
        outcome could not be recorded stay 'sending': the sweep settles them as unknown,
        exactly as after a crash, and nothing is sent twice."""
        try:
            self._send_and_record(rows, send, final)
        except Exception:
            log.exception("sending or recording %d message(s) failed", len(rows))

    def _send_and_record(self, rows: list[Claimed], send, final) -> None:
        try:
            provider_id = send(rows)
        except SendError as error:
            return self._record_failure(rows, error)
        with self.database.session() as session:
            outbox.accepted(session, [row.id for row in rows], provider_id, self.clock(), final)

    def _record_failure(self, rows: list[Claimed], error: SendError) -> None:
        now, ids, text = self.clock(), [row.id for row in rows], str(error)
        log.warning("send failed for %d message(s): %s", len(rows), text)
        with self.database.session() as session:
            if error.outcome_unknown:
                outbox.outcome_unknown(session, ids, text, now)
            elif error.permanent:
                self._permanent(session, rows, text, now)
            else:
                retry_at = now + timedelta(seconds=self._backoff(rows, error))
                limit = self.settings.delivery_max_attempts
                outbox.failed_temporarily(session, rows, text, retry_at, limit, now)

    def _permanent(self, session, rows: list[Claimed], text: str, now: datetime) -> None:
        """A refusal naming the number (invalid, not mobile, opted out) fails the message
        and suppresses the number. Anything else — a whole batch, a bad key, a bad sender —
        is ours to fix: technical-failure, and no subscriber is suppressed for it (email
        bounces arrive through receipts)."""
        ids = [row.id for row in rows]
        refused = RECIPIENT_REFUSALS.search(text)
        if len(rows) > 1 or rows[0].channel != "sms" or not refused:
            return outbox.failed(session, ids, TECHNICAL, text, now)
        outbox.failed(session, ids, PERMANENT, text, now)
        recipient = self._recipients([rows[0].subscriber_id]).get(rows[0].subscriber_id)
        if recipient is not None and recipient.phone:
            reason = "provider-unsubscribe" if refused.group(1) == "21610" else "invalid-number"
            suppress(session, self.signer, "sms", recipient.phone, reason, "delivery", now)

    def _backoff(self, rows: list[Claimed], error: SendError) -> float:
        attempt = max(row.attempts for row in rows)
        planned = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
        return max(planned, min(error.retry_after or 0, MAX_RETRY_AFTER))

    def _simulate(self, rows: list[Claimed], recipients, channel: str) -> None:
        if not rows:
            return
        now = self.clock()
        with self.database.session() as session:
            outbox.accepted(session, [row.id for row in rows], "simulator", now)
            for row in rows:
                recipient = recipients[row.subscriber_id]
                address = recipient.email if channel == "email" else recipient.phone or ""
                receipts.simulate(
                    session,
                    channel,
                    row.id,
                    address,
                    now,
                    max_attempts=self.settings.delivery_max_attempts,
                )

    def _release(self, rows: list[Claimed]) -> None:
        with self.database.session() as session:
            outbox.release(session, [row.id for row in rows], self.worker, self.clock())

    def _fail(self, rows: list[Claimed], status: str, text: str) -> None:
        """Rows not handed off, still held by this worker."""
        if rows:
            with self.database.session() as session:
                ids, now = [row.id for row in rows], self.clock()
                outbox.failed(session, ids, status, text, now, worker=self.worker)

    # --- content ------------------------------------------------------------------------

    def _alert(self, alert_id: int | None) -> Alert | None:
        return _load_alert(self.database, alert_id) if alert_id else None

    def _email(
        self, alert: Alert, language: str, first_address: str, firm_ids: tuple = ()
    ) -> EmailMessage:
        """Composed once per alert version, language and referred firms, whatever the number
        of recipients. With no directory firm for them, the firms staff gave on the alert."""
        key = (alert.id, alert.updated_at, language, firm_ids)
        if key not in self._composed:
            if len(self._composed) > 1024:
                self._composed.clear()
            content = alert_content(alert, self.settings.public_base_url)
            firms = self.referrals.views(alert, firm_ids) if firm_ids else alert_firms(alert)
            self._composed[key] = compose_email(content, language, PLACEHOLDERS, firms)
        composed = self._composed[key]
        return EmailMessage(
            to=first_address,
            subject=composed.subject,
            text=composed.text,
            html=composed.html,
            category=f"alert-{alert.tier}",
        )

    def _sms(self, alert: Alert, recipient: Recipient, row: Claimed) -> SmsMessage:
        links = RecipientLinks(
            preferences=self.links.preferences(recipient.subscriber_id, recipient.link_key),
            unsubscribe=self.links.unsubscribe(recipient.subscriber_id, "sms"),
            sms_optout=self.links.sms_optout(recipient.sms_optout_code),
        )
        content = alert_content(alert, self.settings.public_base_url)
        composed = compose_sms(content, recipient.language, links)
        return SmsMessage(
            to=recipient.phone or "", body=composed.text, reference=f"outbox-{row.id}"
        )

    def _recipients(self, subscriber_ids: Iterable[int | None]) -> dict[int, Recipient]:
        ids = sorted({i for i in subscriber_ids if i is not None})
        found: dict[int, Recipient] = {}
        with self.database.session() as session:
            for chunk in outbox.chunks(ids, 5_000):
                found.update(read_recipients(session, chunk))
        return found

    def _sending_alerts(self) -> set[int]:
        with self.database.session() as session:
            query = select(Alert.id).where(
                Alert.status == ALERT_SENDING, Alert.fan_out_started_at.is_(None)
            )
            return set(session.scalars(query))

    def _finish_alerts(self, alert_ids: set[int]) -> None:
        """An alert is sent when none of its rows can still go out."""
        with self.database.session() as session:
            for alert_id in alert_ids:
                alert = session.get(Alert, alert_id)
                if (
                    alert
                    and alert.status == ALERT_SENDING
                    and alert.fan_out_started_at is None  # a fan-out may add more
                    and not outbox.unfinished(session, alert_id, self.receipt_channels)
                ):
                    alert.status, alert.sent_at = SENT, self.clock()


def receipt_channels(settings: Settings) -> tuple[str, ...]:
    """Channels whose provider reports every message it accepts back to us."""
    channels = []
    if settings.email_channel == "sendgrid" and settings.sendgrid_webhook_public_key:
        channels.append("email")
    if settings.sms_channel == "twilio":  # its status callback is always set
        channels.append("sms")
    return tuple(channels)


def _group_key(row: Claimed) -> tuple:
    """Rows sent with one composed content: an alert's channel, or a newsletter's items."""
    if row.kind == "newsletter":
        return ("newsletter", tuple(row.payload.get("alerts") or ()))
    return (row.alert_id, row.channel)


def _load_alert(database: Database, alert_id: int) -> Alert | None:
    with database.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is not None:
            session.expunge(alert)
        return alert
