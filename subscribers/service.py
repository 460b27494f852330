"""Subscriptions: sign-up, double opt-in, SMS confirmation, preferences, leaving.

Each operation is one transaction; messages go out after it commits, so a failed send never
undoes a stored choice, and a repeated request finds the state it left (idempotent)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.relevance.catalogue import Catalogue
from alerts.settings import Settings
from alerts.store import Database
from alerts.templating import N_
from subscribers import consent, ratelimit, tokens
from subscribers.consent import Origin
from subscribers.links import Links
from subscribers.models import ACTIVE, LEFT, PAUSED, PENDING, Subscriber
from subscribers.notify import Notifier, Recipient
from subscribers.options import offered_families
from subscribers.suppressions import is_suppressed, lift, sendable_for_confirmation
from subscribers.tokens import Signer, TokenError, TokenExpired
from subscribers.validation import Profile, parse_profile

SMS_CODE_MINUTES = 10
SMS_CODE_ATTEMPTS = 5
PROFILE_FIELDS = tuple(name for name in Profile.model_fields if name != "email")


class SubscriptionError(Exception):
    """A request that cannot be honoured; the message is safe to show."""


class RateLimited(SubscriptionError):
    pass


class LinkUsed(SubscriptionError):
    """A one-use link that was used already or replaced by a newer one."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Subscriptions:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        catalogue: Catalogue,
        notifier: Notifier,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.database = database
        self.settings = settings
        self.signer = Signer(settings.signing_key())
        self.links = Links(settings.public_base_url, self.signer)
        self.notifier = notifier
        self.offered = offered_families(catalogue)
        self.clock = clock

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> Subscriptions:
        """With the configured channels and the relevance catalogue."""
        from alerts.delivery.channels import email_channel, sms_channel
        from alerts.relevance.service import default_catalogue

        notifier = Notifier(email_channel(settings), sms_channel(settings))
        return cls(database, settings, default_catalogue(), notifier)

    # --- sign-up and confirmation ------------------------------------------------------

    def parse(self, data: Mapping[str, Any], require_consent: bool = True) -> Profile:
        return parse_profile(data, self.offered, require_consent)

    def signup(self, profile: Profile, origin: Origin, source: str = "web") -> int:
        """Store a sign-up and email its confirmation link. A known address is not changed
        until that link is used, and the answer is the same either way."""
        now = self.clock()
        with self.database.session() as session:
            self._check_limits(session, profile.email, origin, now)
            subscriber = self._find(session, profile.email)
            if subscriber is None or subscriber.status == PENDING:
                subscriber = self._store_pending(session, subscriber, profile, source, now)
                kind = "confirm"
            else:
                subscriber.pending_profile = profile.model_dump(mode="json")
                kind = "confirm-update"
            nonce = self._new_nonce(subscriber, now)
            wanted = {name: getattr(profile, name) for name in consent.CHANNEL_FIELDS}
            consent.record(session, subscriber, "signup", origin, now, True, wanted)
            to = _recipient(subscriber, profile)
            sendable = sendable_for_confirmation(session, self.signer, profile.email)
        if sendable:
            link = self.links.confirm(to.subscriber_id, nonce)
            self.notifier.email(kind, to, confirm_url=link, hours=self._hours)
        return to.subscriber_id

    def confirm(self, token: str, origin: Origin) -> int:
        """Use a confirmation link: the subscription (or its update) takes effect."""
        subscriber_id, nonce = self._one_use(tokens.CONFIRM, token)
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._claim(session, subscriber_id, nonce)
            if subscriber.pending_profile:
                self._apply(subscriber, Profile.model_validate(subscriber.pending_profile))
            subscriber.status = ACTIVE
            subscriber.confirmed_at = subscriber.confirmed_at or now
            subscriber.left_at = None
            subscriber.updated_at = now
            lift(session, "email", subscriber.email_key)
            consent.record(session, subscriber, "email-confirmed", origin, now)
            code = self._sms_code_if_needed(subscriber, now)
            to = _recipient(subscriber)
        if code:
            self.notifier.sms_code(to, code)
        return subscriber_id

    def confirm_email_change(self, token: str, origin: Origin) -> int:
        subscriber_id, nonce = self._one_use(tokens.CHANGE_EMAIL, token)
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._claim(session, subscriber_id, nonce)
            new_email = subscriber.pending_email or subscriber.email
            if self._find(session, new_email) not in (None, subscriber):
                raise SubscriptionError(N_("This address already has its own subscription."))
            subscriber.email, subscriber.email_key = new_email, self._email_key(new_email)
            subscriber.pending_email = None
            subscriber.updated_at = now
            consent.record(session, subscriber, "preferences", origin, now)
        return subscriber_id

    # --- SMS ----------------------------------------------------------------------------

    def send_sms_code(self, subscriber_id: int) -> None:
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            code = self._sms_code_if_needed(subscriber, now)
            to = _recipient(subscriber)
        if code:
            self.notifier.sms_code(to, code)

    def confirm_sms(self, subscriber_id: int, code: str, origin: Origin) -> None:
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            problem = self._check_sms_code(subscriber, code.strip(), now)
            if problem is None:
                subscriber.phone_confirmed_at = now
                subscriber.sms_code_hash = subscriber.sms_code_expires_at = None
                subscriber.updated_at = now
                consent.record(session, subscriber, "sms-confirmed", origin, now)
        if problem is not None:  # raised after commit: the failed attempt stays counted
            raise SubscriptionError(problem)

    # --- preferences --------------------------------------------------------------------

    def subscriber_for(self, preferences_token: str) -> int:
        """The subscriber a preference link belongs to (links do not expire: they sit in
        every message; erasing the subscriber makes them useless)."""
        (subscriber_id,) = self._load(tokens.PREFERENCES, preferences_token)
        return int(subscriber_id)

    def update(self, subscriber_id: int, profile: Profile, origin: Origin) -> None:
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            changed_email = self._email_key(profile.email) != subscriber.email_key
            self._apply(subscriber, profile)
            subscriber.updated_at = now
            if changed_email:
                subscriber.pending_email = profile.email
                nonce = self._new_nonce(subscriber, now)
            consent.record(session, subscriber, "preferences", origin, now)
            code = self._sms_code_if_needed(subscriber, now)
            to = _recipient(subscriber)
        if changed_email:
            new_to = Recipient(to.subscriber_id, profile.email, to.language, to.organisation)
            link = self.links.confirm_email(subscriber_id, nonce)
            self.notifier.email("change-email", new_to, confirm_url=link, hours=self._hours)
        if code:
            self.notifier.sms_code(to, code)

    def pause(self, subscriber_id: int, origin: Origin) -> None:
        self._set_status(subscriber_id, PAUSED, "paused", origin, only_from=(ACTIVE,))

    def resume(self, subscriber_id: int, origin: Origin) -> None:
        self._set_status(subscriber_id, ACTIVE, "resumed", origin, only_from=(PAUSED,))

    def leave(self, subscriber_id: int, channel: str, origin: Origin) -> None:
        """Stop one channel ("sms", "email") or everything ("all"). Idempotent."""
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            _withdraw(subscriber, channel, now)
            consent.record(
                session, subscriber, "withdrawn", origin, now, channels={"left": channel}
            )

    def unsubscribe(self, token: str, origin: Origin) -> tuple[int, str]:
        """The link in List-Unsubscribe (RFC 8058): no login, no cookie, no second click."""
        subscriber_id, channel = self._load(tokens.UNSUBSCRIBE, token)
        if channel not in ("all", "email", "sms"):
            raise TokenError("this link is not valid")
        self.leave(int(subscriber_id), channel, origin)
        return int(subscriber_id), channel

    def sms_optout(self, code: str, origin: Origin) -> int:
        with self.database.session() as session:
            subscriber_id = session.scalar(
                select(Subscriber.id).where(Subscriber.sms_optout_code == code[:16])
            )
        if subscriber_id is None:
            raise TokenError("this link is not valid")
        self.leave(subscriber_id, "sms", origin)
        return subscriber_id

    def state(self, subscriber_id: int) -> Subscriber:
        """A detached copy for pages to show."""
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            session.expunge(subscriber)
        return subscriber

    def is_subscribed(self, email: str) -> bool:
        """A confirmed subscription (active, paused or left) exists for this address."""
        with self.database.session() as session:
            found = self._find(session, email)
            return found is not None and found.status != PENDING

    def has_suppressed_email(self, subscriber_id: int) -> bool:
        with self.database.session() as session:
            return is_suppressed(session, "email", self._get(session, subscriber_id).email_key)

    # --- helpers ------------------------------------------------------------------------

    @property
    def _hours(self) -> int:
        return self.settings.signup_confirm_hours

    def _email_key(self, email: str) -> str:
        return self.signer.key("email", email)

    def _find(self, session: Session, email: str) -> Subscriber | None:
        key = self._email_key(email)
        return session.scalar(select(Subscriber).where(Subscriber.email_key == key))

    def _get(self, session: Session, subscriber_id: int) -> Subscriber:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            raise TokenError("this link is no longer valid: the subscription was erased")
        return subscriber

    def _load(self, purpose: str, token: str, max_age: float | None = None) -> list[Any]:
        payload = self.signer.loads(purpose, token, max_age=max_age)
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], int):
            raise TokenError("this link is not valid")
        return payload

    def _one_use(self, purpose: str, token: str) -> tuple[int, str]:
        payload = self._load(purpose, token, max_age=self._hours * 3600)
        if len(payload) != 2:
            raise TokenError("this link is not valid")
        return payload[0], str(payload[1])

    def _claim(self, session: Session, subscriber_id: int, nonce: str) -> Subscriber:
        """The subscriber whose one-use link this is, forgetting the nonce (single use)."""
        subscriber = self._get(session, subscriber_id)
        if subscriber.confirm_nonce is None or subscriber.confirm_nonce != nonce:
            raise LinkUsed(N_("This link was used already, or a newer one was sent."))
        if subscriber.confirm_expires_at is None or subscriber.confirm_expires_at < self.clock():
            raise TokenExpired("this link has expired")
        subscriber.confirm_nonce = None
        subscriber.confirm_expires_at = None
        return subscriber

    def _new_nonce(self, subscriber: Subscriber, now: datetime) -> str:
        subscriber.confirm_nonce = tokens.nonce()
        subscriber.confirm_expires_at = now + timedelta(hours=self._hours)
        return subscriber.confirm_nonce

    def _check_limits(self, session: Session, email: str, origin: Origin, now: datetime) -> None:
        hour = timedelta(hours=1)
        checks = [("email", email, self.settings.signup_limit_per_address)]
        if origin.ip_address:
            checks.append(("ip", origin.ip_address, self.settings.signup_limit_per_ip))
        for kind, value, limit in checks:
            if not ratelimit.allow(
                session, self.signer.key(f"signup-{kind}", value), limit, hour, now
            ):
                raise RateLimited(N_("Too many sign-ups from here. Please try again in an hour."))

    def _store_pending(
        self,
        session: Session,
        subscriber: Subscriber | None,
        profile: Profile,
        source: str,
        now: datetime,
    ) -> Subscriber:
        if subscriber is None:
            subscriber = Subscriber(
                status=PENDING,
                email=profile.email,
                email_key=self._email_key(profile.email),
                sms_optout_code=tokens.short_code(),
                source=source,
                created_at=now,
            )
            session.add(subscriber)
        self._apply(subscriber, profile)
        subscriber.updated_at = now
        session.flush()  # the id, for the link and the consent event
        return subscriber

    def _apply(self, subscriber: Subscriber, profile: Profile) -> None:
        """Copy the profile's choices (not the address: that changes only by its own link)."""
        phone_changed = profile.phone != subscriber.phone
        for name in PROFILE_FIELDS:
            value = getattr(profile, name)
            setattr(subscriber, name, list(value) if name == "families" else value)
        subscriber.pending_profile = None
        if phone_changed:
            subscriber.phone_key = self.signer.key("sms", profile.phone) if profile.phone else None
            subscriber.phone_confirmed_at = None

    def _sms_code_if_needed(self, subscriber: Subscriber, now: datetime) -> str | None:
        """A fresh code when SMS is wanted on a phone not yet confirmed (active only)."""
        wanted = subscriber.urgent_sms and subscriber.phone and subscriber.status == ACTIVE
        if not wanted or subscriber.phone_confirmed_at is not None:
            return None
        code = tokens.sms_code()
        subscriber.sms_code_hash = self.signer.key("sms-code", f"{subscriber.id}:{code}")
        subscriber.sms_code_expires_at = now + timedelta(minutes=SMS_CODE_MINUTES)
        subscriber.sms_code_attempts = 0
        return code

    def _check_sms_code(self, subscriber: Subscriber, code: str, now: datetime) -> str | None:
        """None when the code is right; otherwise what to tell the person."""
        if subscriber.sms_code_hash is None or subscriber.sms_code_expires_at < now:
            return N_("This code has expired. Ask for a new one.")
        if subscriber.sms_code_attempts >= SMS_CODE_ATTEMPTS:
            return N_("Too many wrong codes. Ask for a new one.")
        subscriber.sms_code_attempts += 1
        expected = subscriber.sms_code_hash
        if not hmac.compare_digest(
            self.signer.key("sms-code", f"{subscriber.id}:{code}"), expected
        ):
            return N_("This code is not right. Check the SMS and try again.")
        return None

    def _set_status(
        self, subscriber_id: int, status: str, kind: str, origin: Origin, only_from: tuple
    ) -> None:
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            if subscriber.status not in only_from:
                return
            subscriber.status = status
            subscriber.updated_at = now
            consent.record(session, subscriber, kind, origin, now)


def _withdraw(subscriber: Subscriber, channel: str, now: datetime) -> None:
    if channel == "sms":
        subscriber.urgent_sms = False
    if channel == "email":
        subscriber.urgent_email = False
        subscriber.newsletter = "none"
    nothing_left = not (subscriber.urgent_email or subscriber.urgent_sms)
    if channel == "all" or (nothing_left and subscriber.newsletter == "none"):
        subscriber.status = LEFT
        subscriber.left_at = subscriber.left_at or now
    subscriber.updated_at = now


def _recipient(subscriber: Subscriber, profile: Profile | None = None) -> Recipient:
    """Who to write to; for a re-sign-up, in the language just chosen."""
    return Recipient(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        language=profile.language if profile else subscriber.language,
        organisation=profile.organisation if profile else subscriber.organisation,
        phone=subscriber.phone,
    )
