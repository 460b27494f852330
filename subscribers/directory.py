"""The subscriber list as the audience stage sees it, streamed from the database.

Rows are read in batches (yield_per) straight into an AudienceIndex: no step holds all
subscribers as objects. Suppressions are joined by their keyed hash."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from subscribers.audience import AudienceIndex, Member
from subscribers.models import ACTIVE, Subscriber, Suppression

BATCH = 5_000


def members(session: Session) -> Iterator[Member]:
    """Every subscriber as a Member (inactive ones included, flagged inactive)."""
    return (member for member, _ in rows(session))


def rows(session: Session, *conditions, extra=()) -> Iterator[tuple[Member, tuple]]:
    """Subscribers matching `conditions` as Members, each with the `extra` columns' values,
    streamed in batches."""
    email_block, sms_block = aliased(Suppression), aliased(Suppression)
    columns = (  # what _member reads
        Subscriber.id,
        Subscriber.status,
        Subscriber.families,
        Subscriber.knows_products,
        Subscriber.sector,
        Subscriber.region,
        Subscriber.language,
        Subscriber.urgent_email,
        Subscriber.urgent_sms,
        Subscriber.phone_confirmed_at.is_not(None),
        Subscriber.newsletter,
        email_block.id,
        sms_block.id,
    )
    query = (
        select(*columns, *extra)
        .outerjoin(email_block, _suppressed(email_block, "email", Subscriber.email_key))
        .outerjoin(sms_block, _suppressed(sms_block, "sms", Subscriber.phone_key))
        .where(*conditions)
        .order_by(Subscriber.id)
        .execution_options(yield_per=BATCH)
    )
    # Core rows, not ORM entities: a million of them is the point of this function. The
    # connection does not autoflush, so pending changes of this session are flushed first.
    session.flush()
    width = len(columns)
    for batch in session.connection().execute(query).partitions():
        for row in batch:
            yield _member(row[:width]), tuple(row[width:])


def _suppressed(table, channel: str, key_column):
    return and_(table.channel == channel, table.address_key == key_column, table.lifted.is_(False))


def _member(row) -> Member:
    (
        id_,
        status,
        families,
        knows,
        sector,
        region,
        language,
        urgent_email,
        urgent_sms,
        phone_confirmed,
        newsletter,
        email_blocked,
        sms_blocked,
    ) = row
    return Member(
        id=id_,
        families=frozenset(families or ()),
        knows_products=knows,
        sector=sector,
        region=region,
        language=language,
        urgent_email=urgent_email,
        urgent_sms=bool(urgent_sms and phone_confirmed),
        newsletter=newsletter,
        email_suppressed=email_blocked is not None,
        sms_suppressed=sms_blocked is not None,
        active=status == ACTIVE,
    )


def load_index(session: Session) -> AudienceIndex:
    return AudienceIndex.build(members(session)).freeze()
