"""What sending needs about each subscriber, read when the message goes out: the address,
language and links, and whether each kind of message may still be sent to them."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import orjson
from sqlalchemy import BigInteger, String, and_, any_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from subscribers.models import ACTIVE, Subscriber, Suppression


class Recipient(NamedTuple):
    """What sending needs about a subscriber, read when the message goes out."""

    subscriber_id: int
    email: str
    phone: str | None
    language: str
    region: str
    link_key: str
    sms_optout_code: str
    urgent_email_ok: bool
    newsletter_ok: bool
    sendable_sms: bool


_IDS = "recipient_ids"


def read_recipients(session, ids: list[int]) -> dict[int, Recipient]:
    """The recipients of claimed rows, read at send time (their current choices).

    Thousands per claim, so the database does the work: the query is built once per
    dialect (only the id list changes), the three verdicts are computed in it, and each
    row is already a Recipient's fields. Core rows, read a hundred at a time: a thousand
    rows alive at once would double the garbage collector's passes here."""
    dialect = session.bind.dialect.name
    value = list(ids) if dialect == "postgresql" else orjson.dumps(list(ids)).decode()
    result = session.connection().execute(_query(dialect), {_IDS: value})
    make = Recipient._make
    found = {}
    for rows in result.partitions(100):
        for row in rows:
            found[row[0]] = make(row)
    return found


@cache
def _query(dialect: str):
    """The ids are one parameter, as in `alerts.store.among`: a PostgreSQL array, a JSON list
    on SQLite. Suppressions are joined by their keyed hash, as in subscribers.directory."""
    if dialect == "postgresql":
        listed = cast(bindparam(_IDS, type_=ARRAY(BigInteger)), ARRAY(BigInteger))
        wanted = Subscriber.id == any_(listed)
    else:
        values = func.json_each(bindparam(_IDS, type_=String)).table_valued("value")
        wanted = Subscriber.id.in_(select(values.c.value))
    email_block, sms_block = aliased(Suppression), aliased(Suppression)
    active = Subscriber.status == ACTIVE
    email_ok = active & email_block.id.is_(None)
    return (
        select(  # in Recipient's order; no column can be NULL in the three verdicts
            Subscriber.id,
            Subscriber.email,
            Subscriber.phone,
            Subscriber.language,
            Subscriber.region,
            Subscriber.link_key,
            Subscriber.sms_optout_code,
            email_ok & Subscriber.urgent_email,
            email_ok & (Subscriber.newsletter != "none"),
            active
            & Subscriber.urgent_sms
            & Subscriber.phone_confirmed_at.is_not(None)
            & sms_block.id.is_(None),
        )
        .outerjoin(email_block, _suppressed(email_block, "email", Subscriber.email_key))
        .outerjoin(sms_block, _suppressed(sms_block, "sms", Subscriber.phone_key))
        .where(wanted)
    )


def _suppressed(table, channel: str, key_column):
    """At most one row matches: suppressions are unique by (channel, address_key)."""
    return and_(table.channel == channel, table.address_key == key_column, table.lifted.is_(False))
