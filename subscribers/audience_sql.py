"""Who gets an alert, answered by the database: the rules of subscribers.audience as one SQL
query, streamed as (subscriber id, channel, language) rows.

A fan-out used to read every subscriber into a Member and build an AudienceIndex
(directory.load_index, seconds at a million subscribers) to list a fraction of them. Here the
database filters and Python only unpacks the rows it returns: no ORM objects, no Members.

subscribers.audience.recipients over directory.members stays the reference: this module must
give exactly its (id, channel) pairs, in its order (tests/test_audience_sql.py checks that
on random subscribers and targetings, on SQLite and PostgreSQL alike). Each rule below is
named after the function of subscribers.audience it mirrors."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import compress

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.orm import Session

from subscribers.audience import CHANNELS, Targeting
from subscribers.models import ACTIVE, Subscriber, Suppression

BATCH = 5_000
IMMEDIATE = ("email", "sms")  # what the fan-out writes to the outbox now


def recipients(
    session: Session, targeting: Targeting, channels: tuple[str, ...] = IMMEDIATE
) -> Iterator[tuple[int, str, str]]:
    """(subscriber id, channel, language) for every delivery of `targeting` on `channels`:
    subscribers by id, each one's channels in the order of CHANNEL_RULES[targeting.tier]
    (whatever the order of `channels`). Channels the tier has no rule for give nothing."""
    rules = _channel_rules(targeting.tier, _checked(channels))
    if not rules:
        return
    names = tuple(name for name, _ in rules)
    query = (
        select(Subscriber.id, Subscriber.language, *(rule.label(name) for name, rule in rules))
        .where(*_audience(targeting, session.bind.dialect.name))
        .where(or_(*(rule for _, rule in rules)))
        .order_by(Subscriber.id)
        .execution_options(yield_per=BATCH)
    )
    # The connection does not autoflush: send this session's pending changes first.
    session.flush()
    for batch in session.connection().execute(query).partitions():
        for row in batch:
            for name in compress(names, row[2:]):
                yield row[0], name, row[1]


def _checked(channels: tuple[str, ...]) -> frozenset[str]:
    """The channels as a set, refusing a bare string and names that are no channel (which
    would otherwise silently list nobody)."""
    if isinstance(channels, str):
        raise TypeError(f"channels must be a collection of names, not the string {channels!r}")
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown channels {sorted(unknown)}; expected some of {CHANNELS}")
    return frozenset(channels)


# ------------------------------------------------------------------ who is concerned


def _audience(targeting: Targeting, dialect: str) -> list[ColumnElement[bool]]:
    """in_audience: active, and concerned by product, sector and region."""
    conditions = [Subscriber.status == ACTIVE]
    if targeting.sectors:
        conditions.append(Subscriber.sector.in_(sorted(targeting.sectors)))
    if targeting.regions:
        conditions.append(Subscriber.region.in_(sorted(targeting.regions)))
    if targeting.families:
        conditions.append(_runs_targeted_product(targeting, dialect))
    return conditions


def _runs_targeted_product(targeting: Targeting, dialect: str) -> ColumnElement[bool]:
    """Runs one of the families, or said "I don't know" and the alert is about a common one."""
    runs = _runs_any(sorted(targeting.families), dialect)
    if not targeting.common_families:
        return runs
    return or_(runs, not_(Subscriber.knows_products))


def _runs_any(families: list[str], dialect: str) -> ColumnElement[bool]:
    """The subscriber's families (a JSON list) share an element with `families`.

    JsonType is JSONB on PostgreSQL: its `?|` operator tests exactly that. SQLite keeps JSON
    text: json_each unpacks it inside an EXISTS, correlated with the subscriber's row."""
    if dialect == "postgresql":
        return type_coerce(Subscriber.families, JSONB).has_any(array(families))
    listed = func.json_each(Subscriber.families).table_valued("value")
    return exists(select(true()).select_from(listed).where(listed.c.value.in_(families)))


# ------------------------------------------------------------------ who wants which channel


def _channel_rules(tier: str, channels: frozenset[str]) -> list[tuple[str, ColumnElement]]:
    """CHANNEL_RULES[tier] as SQL, in channel order, the wanted channels only."""
    rules = {
        "urgent": (
            ("email", _wants_email),
            ("sms", _wants_sms),
            ("newsletter", _newsletter_instead),
        ),
        "newsletter": (("newsletter", _reads_newsletter),),
    }[tier]
    return [(name, rule()) for name, rule in rules if name in channels]


def _wants_email() -> ColumnElement[bool]:
    return and_(Subscriber.urgent_email, not_(_suppressed("email", Subscriber.email_key)))


def _wants_sms() -> ColumnElement[bool]:
    """Urgent SMS counts only once the number is confirmed (as directory._member reads it)."""
    return and_(
        Subscriber.urgent_sms,
        Subscriber.phone_confirmed_at.is_not(None),
        not_(_suppressed("sms", Subscriber.phone_key)),
    )


def _reads_newsletter() -> ColumnElement[bool]:
    return and_(Subscriber.newsletter != "none", not_(_suppressed("email", Subscriber.email_key)))


def _newsletter_instead() -> ColumnElement[bool]:
    return and_(_reads_newsletter(), not_(Subscriber.urgent_email))


def _suppressed(channel: str, key_column) -> ColumnElement[bool]:
    """A suppression not lifted for this address, matched by keyed hash (as directory does)."""
    return exists().where(
        Suppression.channel == channel,
        Suppression.address_key == key_column,
        Suppression.lifted.is_(False),
    )
