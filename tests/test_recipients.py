"""What sending reads about each subscriber: every combination of status, choices, phone
and suppressions, checked against the rule written out in Python, on both databases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy import insert, select

from alerts.delivery.recipients import Recipient, read_recipients
from subscribers.models import ACTIVE, LEFT, PAUSED, PENDING, Subscriber, Suppression
from subscribers.tokens import Signer

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SIGNER = Signer("recipients-test-signing-key-0123")
SUPPRESSION = (None, "active", "lifted")


def _grid() -> list[tuple]:
    return list(
        itertools.product(
            (ACTIVE, PAUSED, LEFT, PENDING),
            (True, False),  # urgent_email
            ("weekly", "none"),  # newsletter
            ("none", "unconfirmed", "confirmed"),  # phone
            (True, False),  # urgent_sms
            SUPPRESSION,  # of the email address
            SUPPRESSION,  # of the phone number
        )
    )


def _fill(database) -> dict[int, tuple]:
    """One subscriber per combination; returns {id: combination}."""
    grid = _grid()
    rows, suppressions = [], []
    for number, (status, urgent_email, newsletter, phone, urgent_sms, email_s, sms_s) in enumerate(
        grid
    ):
        email = f"owner{number}@shop.example"
        number_text = f"+3247{number:07d}" if phone != "none" else None
        rows.append(
            {
                "status": status,
                "organisation": f"Shop {number}",
                "email": email,
                "email_key": SIGNER.key("email", email),
                "phone": number_text,
                "phone_key": SIGNER.key("sms", number_text) if number_text else None,
                "phone_confirmed_at": NOW if phone == "confirmed" else None,
                "language": ("nl", "fr", "en", "de")[number % 4],
                "region": "BE-VAN",
                "sector": "retail",
                "size_band": "2-9",
                "families": [],
                "urgent_email": urgent_email,
                "urgent_sms": urgent_sms,
                "newsletter": newsletter,
                "created_at": NOW,
                "updated_at": NOW,
                "link_key": f"key{number}",
                "sms_optout_code": f"opt{number}",
            }
        )
        for channel, state, key in (
            ("email", email_s, rows[-1]["email_key"]),
            ("sms", sms_s, rows[-1]["phone_key"] or SIGNER.key("sms", f"+3248{number:07d}")),
        ):
            if state is not None:
                suppressions.append(
                    {
                        "channel": channel,
                        "address_key": key,
                        "reason": "hard-bounce",
                        "source": "test",
                        "created_at": NOW,
                        "lifted": state == "lifted",
                    }
                )
    with database.session() as session:
        session.execute(insert(Subscriber), rows)
        session.execute(insert(Suppression), suppressions)
        ids = session.scalars(select(Subscriber.id).order_by(Subscriber.id)).all()
    return dict(zip(ids, grid, strict=True))


def _expected(subscriber_id: int, combination: tuple, number: int) -> Recipient:
    status, urgent_email, newsletter, phone, urgent_sms, email_s, sms_s = combination
    active = status == ACTIVE
    email_ok = active and email_s != "active"
    phone_text = f"+3247{number:07d}" if phone != "none" else None
    return Recipient(
        subscriber_id=subscriber_id,
        email=f"owner{number}@shop.example",
        phone=phone_text,
        language=("nl", "fr", "en", "de")[number % 4],
        region="BE-VAN",
        link_key=f"key{number}",
        sms_optout_code=f"opt{number}",
        urgent_email_ok=email_ok and urgent_email,
        newsletter_ok=email_ok and newsletter != "none",
        sendable_sms=active and urgent_sms and phone == "confirmed" and sms_s != "active",
    )


def test_recipients_follow_status_choices_and_suppressions(database):
    subscribers = _fill(database)
    expected = {
        subscriber_id: _expected(subscriber_id, combination, number)
        for number, (subscriber_id, combination) in enumerate(subscribers.items())
    }
    ids = list(subscribers)
    with database.session() as session:
        found = read_recipients(session, ids)
        assert found == expected
        for recipient in found.values():
            assert type(recipient) is Recipient
            flags = recipient.urgent_email_ok, recipient.newsletter_ok, recipient.sendable_sms
            assert all(type(flag) is bool for flag in flags)
        assert any(r.sendable_sms for r in found.values())
        assert any(r.urgent_email_ok for r in found.values())

        # a part, in any order, with unknown and repeated ids; then none
        part = ids[::-3] + [ids[0], ids[0], 10**9]
        assert read_recipients(session, part) == {i: expected[i] for i in part if i in expected}
        assert read_recipients(session, []) == {}
        assert read_recipients(session, [10**9]) == {}


def test_a_suppression_applies_at_once_and_lifting_it_restores(database):
    subscribers = _fill(database)
    plain = next(
        subscriber_id
        for subscriber_id, combination in subscribers.items()
        if combination == (ACTIVE, True, "weekly", "confirmed", True, None, None)
    )
    with database.session() as session:
        before = read_recipients(session, [plain])[plain]
        assert before.urgent_email_ok and before.newsletter_ok and before.sendable_sms
        subscriber = session.get(Subscriber, plain)
        for channel, key in (("email", subscriber.email_key), ("sms", subscriber.phone_key)):
            session.add(
                Suppression(
                    channel=channel,
                    address_key=key,
                    reason="hard-bounce",
                    source="test",
                    created_at=NOW,
                )
            )
        session.flush()
        after = read_recipients(session, [plain])[plain]
        assert not (after.urgent_email_ok or after.newsletter_ok or after.sendable_sms)
        for suppression in session.scalars(select(Suppression)):
            suppression.lifted = True
        session.flush()
        assert read_recipients(session, [plain])[plain] == before
