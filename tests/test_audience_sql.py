"""The audience listed by the database (subscribers.audience_sql) against the reference
(subscribers.audience.recipients over directory.members): named edge cases, then random
subscribers and targetings. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from subscribers import audience, audience_sql, directory
from subscribers.audience import CHANNELS, Targeting
from subscribers.models import STATUSES, Subscriber, Suppression

NOW = datetime(2025, 3, 1, tzinfo=UTC)
URGENT = Targeting("urgent")
QNAP = frozenset({"qnap"})


def row(number: int, **changes) -> dict:
    """A subscribers row for an active, email-only QNAP user; keys e<n> and p<n>."""
    values = {
        "id": number,
        "status": "active",
        "organisation": f"Business {number}",
        "email": f"owner{number}@example.be",
        "email_key": f"e{number}",
        "phone_key": f"p{number}",
        "phone_confirmed_at": NOW,
        "language": "nl",
        "region": "BE-VAN",
        "sector": "retail",
        "size_band": "2-9",
        "families": ["qnap"],
        "knows_products": True,
        "urgent_email": True,
        "urgent_sms": False,
        "newsletter": "weekly",
        "created_at": NOW,
        "updated_at": NOW,
        "link_key": f"k{number}",
        "sms_optout_code": f"s{number}",
        "source": "import",
    }
    return values | changes


def suppression(channel: str, key: str, lifted: bool = False) -> dict:
    reason = "hard-bounce" if channel == "email" else "invalid-number"
    return {
        "channel": channel,
        "address_key": key,
        "reason": reason,
        "source": "staff",
        "created_at": NOW,
        "lifted": lifted,
    }


def store(database, subscribers: list[dict], suppressions: list[dict] = ()) -> None:
    with database.session() as session:
        session.execute(insert(Subscriber), subscribers)
        if suppressions:
            session.execute(insert(Suppression), list(suppressions))


def listed(database, targeting: Targeting, channels=audience_sql.IMMEDIATE) -> list[tuple]:
    """The database's answer, after checking it matches the reference's."""
    with database.session() as session:
        got = list(audience_sql.recipients(session, targeting, channels))
        assert [(sid, channel) for sid, channel, _ in got] == reference(
            session, targeting, channels
        )
    return got


def reference(session, targeting: Targeting, channels, members=None) -> list[tuple[int, str]]:
    members = list(directory.members(session)) if members is None else members
    answer = audience.recipients(targeting, members)
    return [(sid, channel) for sid, channel in answer if channel in channels]


# ------------------------------------------------------------------ named cases


def test_a_lifted_suppression_counts_as_not_suppressed(database):
    store(
        database,
        [row(1), row(2), row(3, urgent_sms=True), row(4, urgent_sms=True)],
        [
            suppression("email", "e1", lifted=True),
            suppression("email", "e2"),
            suppression("sms", "p3", lifted=True),
            suppression("sms", "p4"),
        ],
    )
    assert listed(database, URGENT) == [
        (1, "email", "nl"),
        (3, "email", "nl"),
        (3, "sms", "nl"),
        (4, "email", "nl"),
    ]
    assert listed(database, Targeting("newsletter"), CHANNELS) == [
        (1, "newsletter", "nl"),
        (3, "newsletter", "nl"),
        (4, "newsletter", "nl"),
    ]


def test_a_suppression_on_the_other_channel_changes_nothing(database):
    store(
        database, [row(1, urgent_sms=True)], [suppression("sms", "e1"), suppression("email", "p1")]
    )
    assert listed(database, URGENT) == [(1, "email", "nl"), (1, "sms", "nl")]


def test_an_unconfirmed_phone_gets_no_sms(database):
    store(
        database,
        [
            row(1, urgent_email=False, urgent_sms=True, phone_confirmed_at=None),
            row(2, urgent_email=False, urgent_sms=True),
        ],
    )
    assert listed(database, URGENT) == [(2, "sms", "nl")]


def test_i_dont_know_subscribers_are_reached_only_by_common_families(database):
    store(
        database,
        [
            row(1, knows_products=False, families=[]),
            row(2, families=["wordpress"]),
            row(3, knows_products=False, families=["wordpress"]),
        ],
    )
    common = Targeting("urgent", QNAP, QNAP)
    assert listed(database, common) == [(1, "email", "nl"), (3, "email", "nl")]
    assert listed(database, Targeting("urgent", QNAP)) == []
    wordpress = frozenset({"wordpress"})
    assert listed(database, Targeting("urgent", wordpress)) == [
        (2, "email", "nl"),
        (3, "email", "nl"),
    ]


def test_no_families_sectors_or_regions_means_no_restriction_but_inactive_get_nothing(database):
    store(
        database,
        [row(number, status=status) for number, status in enumerate(STATUSES, 1)]
        + [row(9, families=[], knows_products=False, sector="ict", region="BE-WLX")],
    )
    assert listed(database, URGENT) == [(2, "email", "nl"), (9, "email", "nl")]


def test_sectors_and_regions_restrict(database):
    store(
        database,
        [
            row(1),
            row(2, sector="ict"),
            row(3, region="BE-WLX"),
            row(4, sector="ict", region="BE-WLX"),
        ],
    )
    only = Targeting("urgent", sectors={"ict"}, regions={"BE-WLX", "BE-BRU"})
    assert listed(database, only) == [(4, "email", "nl")]


def test_subscribers_in_id_order_channels_in_rule_order_with_their_language(database):
    store(
        database,
        [
            row(3, urgent_sms=True, language="fr"),
            row(1, urgent_email=False, urgent_sms=True, newsletter="daily", language="de"),
            row(2, urgent_sms=True, newsletter="none", language="en"),
        ],
    )
    assert listed(database, URGENT, ("sms", "newsletter", "email")) == [
        (1, "sms", "de"),
        (1, "newsletter", "de"),
        (2, "email", "en"),
        (2, "sms", "en"),
        (3, "email", "fr"),
        (3, "sms", "fr"),
    ]
    assert listed(database, URGENT, ("sms",)) == [
        (1, "sms", "de"),
        (2, "sms", "en"),
        (3, "sms", "fr"),
    ]
    assert listed(database, Targeting("newsletter"), ("email", "sms")) == []


def test_channels_must_be_names_of_channels(database):
    with database.session() as session:
        with pytest.raises(ValueError, match="unknown channels"):
            list(audience_sql.recipients(session, URGENT, ("email", "fax")))
        with pytest.raises(TypeError):
            list(audience_sql.recipients(session, URGENT, "email"))


def test_unsaved_subscribers_are_flushed_first(database):
    with database.session() as session:
        session.add(Subscriber(**row(1)))
        assert list(audience_sql.recipients(session, URGENT)) == [(1, "email", "nl")]


# ------------------------------------------------------------------ random


FAMILIES = ("qnap", "wordpress", "veeam", "fortinet-fortigate", "microsoft-exchange")
SECTORS = ("retail", "ict", "healthcare")
REGIONS = ("BE-VAN", "BE-BRU", "BE-WLX")


def random_subscribers(rng: random.Random, count: int) -> tuple[list[dict], list[dict]]:
    """Subscribers over small value sets (so that targetings hit), and their suppressions:
    none, standing or lifted, on their own channel or by mistake on the other one."""
    subscribers, suppressions = [], {}
    for number in range(1, count + 1):
        phone = rng.choice((f"p{number}", f"p{rng.randint(1, number)}", None))  # shared too
        subscribers.append(
            row(
                number,
                status=rng.choices(STATUSES, weights=(1, 6, 1, 1))[0],
                phone_key=phone,
                phone_confirmed_at=rng.choice((NOW, None)) if phone else None,
                language=rng.choice(audience.LANGUAGES),
                region=rng.choice(REGIONS),
                sector=rng.choice(SECTORS),
                families=rng.sample(FAMILIES, rng.randint(0, 3)),
                knows_products=rng.random() < 0.7,
                urgent_email=rng.random() < 0.6,
                urgent_sms=rng.random() < 0.5,
                newsletter=rng.choice(audience.NEWSLETTERS),
            )
        )
        for channel, key in (("email", f"e{number}"), ("sms", phone), ("sms", f"e{number}")):
            if key and rng.random() < 0.3:
                suppressions[channel, key] = suppression(channel, key, rng.random() < 0.5)
    return subscribers, list(suppressions.values())


def random_targeting(rng: random.Random) -> Targeting:
    """Any tier; families (some nobody runs), a part of them common; sectors and regions
    often unrestricted."""
    families = frozenset(rng.sample((*FAMILIES, "nobody-runs"), rng.choice((0, 0, 1, 2, 3))))
    return Targeting(
        rng.choice(audience.TIERS),
        families,
        frozenset(family for family in families if rng.random() < 0.4),
        _some(rng, (*SECTORS, "agriculture")),
        _some(rng, (*REGIONS, "BE-WNA")),
    )


def _some(rng: random.Random, values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(rng.sample(values, rng.choice((0, 0, 0, 1, 2))))


@pytest.mark.parametrize("seed", [1, 2])
def test_the_database_answers_as_the_reference_on_random_subscribers(database, seed):
    rng = random.Random(seed)
    store(database, *random_subscribers(rng, 300))
    with database.session() as session:
        members = list(directory.members(session))
        languages = {member.id: member.language for member in members}
        reached = set()
        for _ in range(150):
            targeting = random_targeting(rng)
            for channels in (audience_sql.IMMEDIATE, CHANNELS, ("newsletter",)):
                got = list(audience_sql.recipients(session, targeting, channels))
                expected = reference(session, targeting, channels, members)
                assert [(sid, channel) for sid, channel, _ in got] == expected, targeting
                assert all(language == languages[sid] for sid, _, language in got)
                reached.update(channel for _, channel, _ in got)
    assert reached == set(CHANNELS)  # the random data exercised every rule
