"""Matching firms to an alert and a subscriber, and the fairness of the rotation."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from alerts.referrals.matching import Candidate, choose, eligible, need_for

TODAY = date(2026, 11, 27)


def _firm(number: int, **changes) -> Candidate:
    values = {
        "id": number,
        "regions": frozenset({"BE-VAN", "BE-BRU"}),
        "languages": frozenset({"nl", "fr"}),
        "specialities": frozenset({"incident-response"}),
        "vetted": True,
        "expires_on": date(2027, 6, 1),
    }
    return Candidate(**(values | changes))


@pytest.mark.parametrize(
    ("categories", "exploited", "ransomware", "wanted"),
    [
        (["edge"], True, False, {"incident-response", "network-firewall"}),
        ([], False, True, {"incident-response", "ransomware-recovery", "backup-recovery"}),
        (["cms"], False, False, {"web-cms-security"}),
        (["office"], False, False, {"security-audit", "managed-security"}),  # general advice
    ],
)
def test_what_help_an_alert_calls_for(categories, exploited, ransomware, wanted):
    need = need_for(categories, exploited, ransomware)
    assert need.specialities == wanted and need.reasons


def test_only_vetted_unexpired_firms_of_the_region_language_and_speciality_qualify():
    need = need_for(["edge"], True, False)
    firms = [
        _firm(1),
        _firm(2, vetted=False),
        _firm(3, expires_on=TODAY),  # expires today: no longer shown
        _firm(4, expires_on=date(2026, 11, 28)),  # tomorrow: still shown
        _firm(5, regions=frozenset({"BE-WLG"})),
        _firm(6, languages=frozenset({"de"})),
        _firm(7, specialities=frozenset({"awareness-training"})),
    ]
    matches = eligible(firms, need, "BE-VAN", "nl", TODAY)
    assert [match.firm_id for match in matches] == [1, 4]
    assert matches[0].reasons == ("serves BE-VAN", "works in nl", "offers incident-response")


def test_a_resend_shows_the_same_firms_in_the_same_order():
    matches = eligible(
        [_firm(n) for n in range(1, 9)], need_for(["edge"], True, False), "BE-VAN", "nl", TODAY
    )
    first = choose(matches, alert_id=12, subscriber_id=345)
    assert len(first) == 3 and first == choose(list(reversed(matches)), 12, 345)


def test_rotation_is_fair_over_100000_messages():
    """Seven eligible firms, three shown per message: each should appear in 3/7 of the
    messages and come first in 1/7, within a few percent."""
    matches = eligible(
        [_firm(n) for n in range(1, 8)], need_for(["edge"], True, False), "BE-VAN", "nl", TODAY
    )
    shown, first = Counter(), Counter()
    messages = 100_000
    for number in range(messages):
        chosen = choose(matches, alert_id=number % 40, subscriber_id=number)
        shown.update(match.firm_id for match in chosen)
        first[chosen[0].firm_id] += 1
    for firm_id in range(1, 8):
        assert shown[firm_id] == pytest.approx(messages * 3 / 7, rel=0.03)
        assert first[firm_id] == pytest.approx(messages / 7, rel=0.03)
