"""Audience matching: every rule on hand-made members, checked on the reference and on the
index alike, then the index against the reference on random members and targetings."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from alerts.relevance.catalogue import load_catalogue
from alerts.relevance.match import Profile, match_scored
from subscribers.audience import (
    CHANNELS,
    AudienceIndex,
    Member,
    Targeting,
    channels_for,
    recipients,
    targeting_for,
)

CATALOGUE = load_catalogue()
BASE = Member(
    id=1,
    families=frozenset({"qnap"}),
    knows_products=True,
    sector="retail",
    region="BE-VAN",
    language="nl",
    urgent_email=True,
    urgent_sms=False,
    newsletter="weekly",
    email_suppressed=False,
    sms_suppressed=False,
    active=True,
)
URGENT = Targeting("urgent")
NEWSLETTER = Targeting("newsletter")


def member(**changes) -> Member:
    return replace(BASE, **changes)


def channels(one: Member, targeting: Targeting) -> tuple[str, ...]:
    """The reference answer for one member, after checking the index gives the same."""
    expected = channels_for(one, targeting)
    index = AudienceIndex.build([one])
    assert sorted(index.recipients(targeting)) == sorted((one.id, c) for c in expected)
    assert index.count(targeting) == {c: int(c in expected) for c in CHANNELS}
    return expected


def qnap(tier: str = "urgent", common: bool = False, **restrictions) -> Targeting:
    families = frozenset({"qnap"})
    return Targeting(tier, families, families if common else frozenset(), **restrictions)


# ------------------------------------------------------------------ product


def test_a_member_who_runs_a_targeted_family_gets_it():
    assert channels(member(), qnap()) == ("email",)
    assert channels(member(families=frozenset({"qnap", "wordpress"})), qnap()) == ("email",)


def test_a_member_who_runs_none_of_the_families_gets_nothing():
    assert channels(member(families=frozenset({"wordpress"})), qnap(common=True)) == ()
    assert channels(member(families=frozenset()), qnap(common=True)) == ()


def test_i_dont_know_members_get_only_alerts_about_common_families():
    dont_know = member(families=frozenset(), knows_products=False)
    assert channels(dont_know, qnap(common=True)) == ("email",)
    assert channels(dont_know, qnap(common=False)) == ()


def test_i_dont_know_members_who_named_some_products_still_get_theirs():
    partly = member(families=frozenset({"qnap"}), knows_products=False)
    assert channels(partly, qnap(common=False)) == ("email",)


def test_no_families_means_everyone():
    assert channels(member(families=frozenset()), URGENT) == ("email",)
    assert channels(member(families=frozenset(), knows_products=False), URGENT) == ("email",)


def test_unknown_ids_match_nobody():
    assert channels(member(), Targeting("urgent", frozenset({"no-such-family"}))) == ()
    assert channels(member(), Targeting("urgent", sectors=frozenset({"no-such"}))) == ()
    assert channels(member(), Targeting("urgent", regions=frozenset({"XX-YYY"}))) == ()


# ------------------------------------------------------------------ sector, region


def test_sector_restriction():
    assert channels(member(), qnap(sectors=frozenset({"retail", "legal"}))) == ("email",)
    assert channels(member(sector="farming"), qnap(sectors=frozenset({"retail"}))) == ()


def test_region_restriction():
    assert channels(member(), qnap(regions=frozenset({"BE-VAN"}))) == ("email",)
    assert channels(member(region="BE-WLG"), qnap(regions=frozenset({"BE-VAN"}))) == ()


def test_sector_and_region_together():
    both = qnap(sectors=frozenset({"retail"}), regions=frozenset({"BE-BRU"}))
    assert channels(member(region="BE-BRU"), both) == ("email",)
    assert channels(member(region="BE-BRU", sector="ict"), both) == ()
    assert channels(member(), both) == ()


# ------------------------------------------------------------------ channels, urgent tier


def test_urgent_email_and_sms():
    assert channels(member(urgent_sms=True), URGENT) == ("email", "sms")
    assert channels(member(urgent_email=False, urgent_sms=True), URGENT) == ("sms", "newsletter")


def test_urgent_news_waits_for_the_newsletter_of_those_without_urgent_email():
    assert channels(member(urgent_email=False), URGENT) == ("newsletter",)
    assert channels(member(urgent_email=False, newsletter="daily"), URGENT) == ("newsletter",)
    assert channels(member(urgent_email=False, newsletter="none"), URGENT) == ()


def test_a_suppressed_address_stops_email_and_newsletter_but_not_sms():
    suppressed = member(email_suppressed=True, urgent_sms=True)
    assert channels(suppressed, URGENT) == ("sms",)
    assert channels(replace(suppressed, urgent_email=False), URGENT) == ("sms",)
    assert channels(suppressed, NEWSLETTER) == ()


def test_a_suppressed_number_stops_sms_only():
    assert channels(member(urgent_sms=True, sms_suppressed=True), URGENT) == ("email",)
    assert channels(member(urgent_sms=True, sms_suppressed=True), NEWSLETTER) == ("newsletter",)


def test_inactive_members_get_nothing():
    inactive = member(active=False, urgent_sms=True, families=frozenset())
    assert channels(inactive, URGENT) == ()
    assert channels(inactive, NEWSLETTER) == ()


# ------------------------------------------------------------------ newsletter tier


@pytest.mark.parametrize(("cadence", "expected"), [("none", ()), ("daily", ("newsletter",))])
def test_newsletter_tier_goes_to_newsletter_readers_only(cadence, expected):
    assert channels(member(newsletter=cadence, urgent_sms=True), NEWSLETTER) == expected
    assert channels(member(newsletter="weekly"), qnap("newsletter")) == ("newsletter",)


def test_newsletter_tier_ignores_urgent_preferences():
    assert channels(member(urgent_email=False, urgent_sms=True), NEWSLETTER) == ("newsletter",)


# ------------------------------------------------------------------ the data shapes


def test_bad_values_are_refused():
    with pytest.raises(ValueError):
        member(newsletter="monthly")
    with pytest.raises(ValueError):
        Targeting("ignore")
    with pytest.raises(ValueError):
        Targeting("urgent", frozenset({"qnap"}), frozenset({"wordpress"}))
    with pytest.raises(TypeError):
        Targeting("urgent", sectors="retail")


def test_targeting_takes_any_collection():
    assert Targeting("urgent", ["qnap"], regions=("BE-VAN",)).families == frozenset({"qnap"})


# ------------------------------------------------------------------ targeting_for


def test_targeting_for_fills_common_families_from_the_catalogue():
    targeting = targeting_for("urgent", ["microsoft-windows", "mikrotik", "nope"], CATALOGUE)
    assert targeting.families == {"microsoft-windows", "mikrotik"}
    assert targeting.common_families == {"microsoft-windows"}
    assert targeting_for("newsletter", ["qnap"], CATALOGUE, ["retail"], ["BE-BRU"]) == Targeting(
        "newsletter",
        frozenset({"qnap"}),
        frozenset({"qnap"}),
        frozenset({"retail"}),
        frozenset({"BE-BRU"}),
    )


def test_targeting_for_what_concerns_nobody_or_everyone():
    assert targeting_for("urgent", [], CATALOGUE) == URGENT
    assert targeting_for("urgent", ["nope"], CATALOGUE) == URGENT
    assert targeting_for("newsletter", ["nope"], CATALOGUE) is None
    assert targeting_for("ignore", ["qnap"], CATALOGUE) is None
    assert targeting_for(None, ["qnap"], CATALOGUE) is None


def test_targeting_for_agrees_with_match_scored():
    rng = random.Random(7)
    ids = [family.id for family in CATALOGUE.families] + ["not-in-catalogue"]
    for _ in range(2000):
        tier = rng.choice(["urgent", "newsletter", "ignore"])
        advisory = rng.sample(ids, rng.randint(0, 3))
        profile = Profile(frozenset(rng.sample(ids, rng.randint(0, 3))), rng.random() < 0.7)
        someone = member(families=profile.families, knows_products=profile.knows_products)
        targeting = targeting_for(tier, advisory, CATALOGUE)
        ours = targeting is not None and bool(channels_for(someone, targeting))
        assert ours == match_scored(tier, advisory, profile, CATALOGUE).matched, (tier, advisory)


# ------------------------------------------------------------------ the index = the reference

FAMILIES = ["qnap", "wordpress", "microsoft-windows", "mikrotik", "veeam", "ot-ics"]
SECTORS = ["retail", "ict", "legal", "farming"]
REGIONS = ["BE-VAN", "BE-BRU", "BE-WLG"]


def random_member(rng: random.Random, id: int) -> Member:
    return Member(
        id=id,
        families=frozenset(rng.sample(FAMILIES, rng.randint(0, 3))),
        knows_products=rng.random() < 0.8,
        sector=rng.choice(SECTORS),
        region=rng.choice(REGIONS),
        language=rng.choice(["nl", "fr", "en", "de"]),
        urgent_email=rng.random() < 0.6,
        urgent_sms=rng.random() < 0.3,
        newsletter=rng.choice(["none", "daily", "weekly"]),
        email_suppressed=rng.random() < 0.1,
        sms_suppressed=rng.random() < 0.1,
        active=rng.random() < 0.85,
    )


def some(rng: random.Random, values: list[str], unknown: str) -> frozenset[str]:
    """Often nothing (no restriction), sometimes an id nobody has."""
    return frozenset(rng.sample(values + [unknown], rng.choice([0, 0, 1, 2, 3])))


def random_targeting(rng: random.Random) -> Targeting:
    families = some(rng, FAMILIES, "no-such-family")
    common = frozenset(f for f in families if rng.random() < 0.5)
    sectors, regions = some(rng, SECTORS, "no-sector"), some(rng, REGIONS, "XX-YYY")
    return Targeting(rng.choice(["urgent", "newsletter"]), families, common, sectors, regions)


def reference_counts(targeting, members) -> tuple[dict, dict]:
    by_channel, by_language = Counter(), Counter()
    languages = {one.id: one.language for one in members}
    for id, channel in recipients(targeting, members):
        by_channel[channel] += 1
        by_language[channel, languages[id]] += 1
    per_language = {
        c: {lang: by_language[c, lang] for lang in ["nl", "fr", "en", "de"]} for c in CHANNELS
    }
    return {c: by_channel[c] for c in CHANNELS}, per_language


def test_the_index_equals_the_reference_on_random_members_and_targetings():
    rng = random.Random(20240601)
    members = [random_member(rng, id) for id in rng.sample(range(10**9), 3000)]
    index = AudienceIndex.build(iter(members))
    assert len(index) == len(members)
    for _ in range(300):
        targeting = random_targeting(rng)
        by_channel, by_language = reference_counts(targeting, members)
        assert index.count(targeting) == by_channel, targeting
        assert index.count_by_language(targeting) == by_language, targeting
        assert sorted(index.recipients(targeting)) == sorted(recipients(targeting, members))


def test_members_added_after_a_query_are_counted_too():
    rng = random.Random(3)
    members = [random_member(rng, id) for id in range(1000)]
    index = AudienceIndex()
    for one in members[:400]:
        index.add(one)
    assert index.count(URGENT) == reference_counts(URGENT, members[:400])[0]
    for one in members[400:]:
        index.add(one)
    for _ in range(50):
        targeting = random_targeting(rng)
        assert index.count(targeting) == reference_counts(targeting, members)[0]
        assert sorted(index.recipients(targeting)) == sorted(recipients(targeting, members))


def test_an_empty_index_counts_nothing():
    index = AudienceIndex.build([])
    assert len(index) == 0
    assert index.count(URGENT) == dict.fromkeys(CHANNELS, 0)
    assert index.count_by_language(URGENT) == {c: {} for c in CHANNELS}
    assert list(index.recipients(NEWSLETTER)) == []


def test_recipients_come_channel_by_channel_in_the_order_members_were_added():
    members = [member(id=30, urgent_sms=True), member(id=10), member(id=20, urgent_email=False)]
    assert list(AudienceIndex.build(members).recipients(URGENT)) == [
        (30, "email"),
        (10, "email"),
        (30, "sms"),
        (20, "newsletter"),
    ]
