"""Subscriptions: sign-up, double opt-in, SMS confirmation, preferences, leaving, and the
subscriber's own export and erasure.

Each operation is one transaction; messages go out after it commits, so a failed send never
undoes a stored choice, and a repeated request finds the state it left (idempotent)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.maturity.models import MaturityResult
from alerts.relevance.catalogue import Catalogue
from alerts.settings import Settings
from alerts.store import Database
from alerts.templating import N_
from subscribers import consent, privacy, ratelimit, sms_codes, tokens
from subscribers.consent import Origin
from subscribers.links import Links
from subscribers.models import ACTIVE, LEFT, PAUSED, PENDING, Subscriber
from subscribers.notify import Notifier, Recipient
from subscribers.options import offered_families
from subscribers.suppressions import is_suppressed, lift, sendable_for_confirmation
from subscribers.tokens import Signer, TokenError, TokenExpired
from subscribers.validation import Profile, parse_profile

PROFILE_FIELDS = tuple(name for name in Profile.model_fields if name != "email")
DATA_LINK_SECONDS = 3600  # export and erase need a link this fresh
DATA_LINKS_PER_HOUR = 3


class SubscriptionError(Exception):
    """A request that cannot be honoured; the message is safe to show."""


class RateLimited(SubscriptionError):
    pass


class LinkUsed(SubscriptionError):
    """A one-use link that was used already or replaced by a newer one."""


class CodeRejected(SubscriptionError):
    """A wrong, expired or exhausted SMS code."""


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
        try:
            return self._signup(profile, origin, source)
        except IntegrityError:  # the same new address posted twice at once: now it exists
            return self._signup(profile, origin, source)

    def _signup(self, profile: Profile, origin: Origin, source: str) -> int:
        now = self.clock()
        with self.database.session() as session:
            self._check_limits(session, profile.email, origin, now)
            subscriber = self._find(session, profile.email)
            if subscriber is None or subscriber.status == PENDING:
                subscriber = self._store_pending(session, subscriber, profile, source, now)
                kind, seen_by = "confirm", origin
            else:  # someone who knows the address: their IP is not the subscriber's data
                subscriber.pending_profile = profile.model_dump(mode="json")
                kind, seen_by = "confirm-update", Origin(origin.method)
            nonce = subscriber.confirm_nonce = tokens.nonce()
            subscriber.confirm_expires_at = now + timedelta(hours=self._hours)
            wanted = {name: getattr(profile, name) for name in consent.CHANNEL_FIELDS}
            notice = profile.language if source == "web" else None  # imports saw no notice
            consent.record(session, subscriber, "signup", seen_by, now, notice, wanted)
            to = _recipient(subscriber, profile)
            sendable = sendable_for_confirmation(session, self.signer, profile.email)
        if sendable:
            link = self.links.confirm(to.subscriber_id, nonce)
            self.notifier.email(kind, to, confirm_url=link, hours=self._hours)
        return to.subscriber_id

    def confirm(self, token: str, origin: Origin, notice_language: str | None = None) -> int:
        """Use a confirmation link: the subscription (or its update) takes effect. The
        confirm page shows the privacy notice, recorded in the language it was shown."""
        subscriber_id, nonce = self._one_use(tokens.CONFIRM, token)
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._claim(session, subscriber_id, Subscriber.confirm_nonce, nonce)
            if subscriber.pending_profile:
                self._apply(subscriber, Profile.model_validate(subscriber.pending_profile))
            subscriber.confirm_expires_at = None
            self._activate(subscriber, now)
            lift(session, "email", subscriber.email_key)
            language = notice_language or subscriber.language
            consent.record(session, subscriber, "email-confirmed", origin, now, language)
            code = self._sms_code(session, subscriber, now)
            to = _recipient(subscriber)
        self._send_code(to, code)
        return subscriber_id

    def confirm_email_change(self, token: str, origin: Origin) -> int:
        subscriber_id, nonce = self._one_use(tokens.CHANGE_EMAIL, token)
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._claim(session, subscriber_id, Subscriber.email_nonce, nonce)
            new_email = subscriber.pending_email or subscriber.email
            if self._find(session, new_email) not in (None, subscriber):
                raise SubscriptionError(N_("This address already has its own subscription."))
            subscriber.email, subscriber.email_key = new_email, self._email_key(new_email)
            subscriber.pending_email = None
            subscriber.link_key = tokens.link_key()  # links in mail to the old address die
            subscriber.updated_at = now
            consent.record(session, subscriber, "preferences", origin, now)
        return subscriber_id

    # --- SMS ----------------------------------------------------------------------------

    def send_sms_code(self, subscriber_id: int) -> None:
        """A new code on request (limited per subscriber and per number)."""
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            try:
                code = sms_codes.issue(session, self.signer, subscriber, now)
            except sms_codes.TooManyCodes as error:
                raise RateLimited(str(error)) from None
            to = _recipient(subscriber)
        self._send_code(to, code)

    def confirm_sms(self, subscriber_id: int, code: str, origin: Origin) -> None:
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            problem = sms_codes.check(session, self.signer, subscriber, code, now)
            if problem is None:
                subscriber.phone_confirmed_at = now
                subscriber.sms_code_hash = subscriber.sms_code_expires_at = None
                subscriber.updated_at = now
                consent.record(session, subscriber, "sms-confirmed", origin, now)
        if problem is not None:  # raised after commit: the failed attempt stays counted
            raise CodeRejected(problem)

    # --- preferences --------------------------------------------------------------------

    def subscriber_for(self, preferences_token: str) -> int:
        """The subscriber a preference link belongs to. Links sit in every message and do
        not expire; an address change or erasure makes the old ones useless."""
        subscriber_id, link_key = self._sealed(tokens.PREFERENCES, preferences_token)
        return self._with_key(subscriber_id, link_key)

    def preferences_token(self, subscriber_id: int) -> str:
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            return self.links.preferences_token(subscriber.id, subscriber.link_key)

    def update(self, subscriber_id: int, profile: Profile, origin: Origin) -> None:
        """Save the preference centre; after leaving, saving subscribes again."""
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            changed_email = self._email_key(profile.email) != subscriber.email_key
            rejoined = subscriber.status == LEFT
            self._apply(subscriber, profile)
            if rejoined:
                self._activate(subscriber, now)
            if changed_email:
                subscriber.pending_email = profile.email
                nonce = subscriber.email_nonce = tokens.nonce()
                subscriber.confirm_expires_at = now + timedelta(hours=self._hours)
            notice = subscriber.language if rejoined else None
            consent.record(session, subscriber, "preferences", origin, now, notice)
            code = self._sms_code(session, subscriber, now)
            to = _recipient(subscriber)
            sendable = sendable_for_confirmation(session, self.signer, profile.email)
        if changed_email and sendable:
            new_to = Recipient(to.subscriber_id, profile.email, to.language, to.organisation)
            link = self.links.confirm_email(subscriber_id, nonce)
            self.notifier.email("change-email", new_to, confirm_url=link, hours=self._hours)
        self._send_code(to, code)

    def pause(self, subscriber_id: int, origin: Origin) -> None:
        self._set_status(subscriber_id, PAUSED, "paused", origin, only_from=(ACTIVE,))

    def resume(self, subscriber_id: int, origin: Origin) -> None:
        self._set_status(subscriber_id, ACTIVE, "resumed", origin, only_from=(PAUSED,))

    def leave(self, subscriber_id: int, channel: str, origin: Origin) -> None:
        """Stop one channel ("sms", "email") or everything ("all"). Idempotent."""
        if channel not in ("all", "email", "sms"):
            raise SubscriptionError(N_("We could not do that"))
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            _withdraw(subscriber, channel, now)
            if channel == "all":  # leaving ends staff access to scan answers for good
                session.execute(
                    update(MaturityResult)
                    .where(MaturityResult.subscriber_id == subscriber_id)
                    .values(staff_may_view=False)
                )
            left = {"left": channel}
            consent.record(session, subscriber, "withdrawn", origin, now, channels=left)

    def unsubscribe(self, token: str, origin: Origin) -> tuple[int | None, str]:
        """The link in List-Unsubscribe (RFC 8058): no login, no cookie, no second click.
        An erased subscriber is unsubscribed already: that is a success, not an error."""
        subscriber_id, channel = self._sealed(tokens.UNSUBSCRIBE, token)
        if channel not in ("all", "email", "sms"):
            raise TokenError("this link is not valid")
        try:
            self.leave(subscriber_id, channel, origin)
        except TokenError:
            return None, channel
        return subscriber_id, channel

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

    # --- the subscriber's own data ------------------------------------------------------

    def send_data_link(self, subscriber_id: int) -> None:
        """Export and erasure need a fresh link sent to the address itself: a preference
        link forwarded with an old alert must not hand over (or delete) the data."""
        now = self.clock()
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            key = self.signer.key("data-link", str(subscriber_id))
            hour = timedelta(hours=1)
            if not ratelimit.allow(session, key, DATA_LINKS_PER_HOUR, hour, now):
                raise RateLimited(N_("We sent several links already. Please wait an hour."))
            link = self.links.data(subscriber.id, subscriber.link_key)
            to = _recipient(subscriber)
        self.notifier.email("data-link", to, data_url=link, minutes=DATA_LINK_SECONDS // 60)

    def subscriber_for_data(self, data_token: str) -> int:
        return self._keyed(tokens.DATA, data_token, max_age=DATA_LINK_SECONDS)

    def export(self, subscriber_id: int) -> dict[str, Any]:
        with self.database.session() as session:
            return privacy.export(session, self._get(session, subscriber_id).id)

    def erase(self, subscriber_id: int, origin: Origin) -> None:
        with self.database.session() as session:
            privacy.erase(session, self._get(session, subscriber_id).id, origin, self.clock())

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

    def _keyed(self, purpose: str, token: str, max_age: float | None = None) -> int:
        """The subscriber of a signed, expiring link that carries their current link key."""
        payload = self._load(purpose, token, max_age)
        if len(payload) != 2 or not isinstance(payload[1], str):
            raise TokenError("this link is not valid")
        return self._with_key(payload[0], payload[1])

    def _sealed(self, purpose: str, token: str) -> tuple[int, str]:
        """(subscriber id, second part) of a permanent link."""
        parts = self.signer.unseal(purpose, token)
        if len(parts) != 2 or not parts[0].isdigit():
            raise TokenError("this link is not valid")
        return int(parts[0]), parts[1]

    def _with_key(self, subscriber_id: int, link_key: str) -> int:
        with self.database.session() as session:
            subscriber = self._get(session, subscriber_id)
            if not hmac.compare_digest(subscriber.link_key, link_key):
                raise TokenError("this link is no longer valid")
            return subscriber.id

    def _one_use(self, purpose: str, token: str) -> tuple[int, str]:
        payload = self._load(purpose, token, max_age=self._hours * 3600)
        if len(payload) != 2:
            raise TokenError("this link is not valid")
        return payload[0], str(payload[1])

    def _claim(self, session: Session, subscriber_id: int, column, nonce: str) -> Subscriber:
        """Use up a one-use link: an atomic compare-and-clear of its nonce, so two clicks at
        the same moment cannot both succeed."""
        subscriber = self._get(session, subscriber_id)
        expires = subscriber.confirm_expires_at
        if getattr(subscriber, column.key) == nonce and (expires is None or expires < self.clock()):
            raise TokenExpired("this link has expired")
        cleared = session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id, column == nonce)
            .values({column.key: None})
            .execution_options(synchronize_session=False)
        ).rowcount
        if cleared != 1:
            raise LinkUsed(N_("This link was used already, or a newer one was sent."))
        session.refresh(subscriber)
        return subscriber

    def _check_limits(self, session: Session, email: str, origin: Origin, now: datetime) -> None:
        hour = timedelta(hours=1)
        checks = [(self.signer.key("signup-email", email), self.settings.signup_limit_per_address)]
        if origin.ip_address:
            ip_key = self.client_key("signup-ip", origin.ip_address)
            checks.append((ip_key, self.settings.signup_limit_per_ip))
        for key, limit in checks:
            if not ratelimit.allow(session, key, limit, hour, now):
                raise RateLimited(
                    N_("Too many sign-ups in a short time. Please try again in an hour.")
                )

    def client_key(self, purpose: str, address: str) -> str:
        """A rate-limit key for a client address (an IPv6 /64 counts as one client); keyed,
        so the table never holds an address."""
        return self.signer.key(purpose, _client_block(address))

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
                link_key=tokens.link_key(),
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

    def _activate(self, subscriber: Subscriber, now: datetime) -> None:
        subscriber.status = ACTIVE
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.left_at = None
        subscriber.updated_at = now

    def _sms_code(self, session: Session, subscriber: Subscriber, now: datetime) -> str | None:
        """A code to send along with another change; past the limits, none (the person
        can ask for one later)."""
        try:
            return sms_codes.issue(session, self.signer, subscriber, now)
        except sms_codes.TooManyCodes:
            return None

    def _send_code(self, to: Recipient, code: str | None) -> None:
        if code:
            self.notifier.sms_code(to, code)

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


def _client_block(address: str) -> str:
    """One IPv4 address, or the /64 an IPv6 client can move around in freely."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


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
