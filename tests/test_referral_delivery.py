"""Firms from the directory in the alert emails: the matching firms of each subscriber's
region and language, in the rotation's order, linked through the counting redirect; the
shown counts recorded; expired or suspended firms never appear."""

from __future__ import annotations

import email
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.service import send_alert
from alerts.referrals import directory
from alerts.referrals.models import ReferralCount
from alerts.referrals.validation import parse_firm
from alerts.relevance.service import default_catalogue
from tests.delivery_setup import add_alert, add_subscribers

NOW = datetime.now(UTC)
NUMBERS = ("0123.456.749", "0200.065.765", "0202.239.951", "0203.201.340", "0207.437.468")


def _firm(database, number: int, **changes) -> int:
    values = {
        "name": f"Secure Firm {number}",
        "enterprise_number": NUMBERS[number],
        "website": f"https://firm{number}.example",
        "email": f"help@firm{number}.example",
        "phone": "+3225418111",
        "regions": "BE-VAN",
        "languages": "en;nl",
        "specialities": "incident-response;network-firewall",
        "status": "vetted",
        "vetted_on": (NOW - timedelta(days=10)).date().isoformat(),
        "expires_on": (NOW + timedelta(days=200)).date().isoformat(),
    } | changes
    with database.session() as session:
        return directory.add(session, parse_firm(values), None, NOW).id


def _emails(settings) -> list[email.message.Message]:
    folder = settings.outbox_dir() / "email"
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def _text(message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def test_each_email_shows_up_to_three_matching_firms_through_the_redirect(database, settings):
    for number in range(4):
        _firm(database, number)
    _firm(database, 4, regions="BE-WLG")  # serves another province: never shown here
    add_subscribers(database, settings, 30)  # BE-VAN, English
    alert_id = add_alert(database)
    send_alert(database, default_catalogue(), alert_id, now=NOW)
    Dispatcher.from_settings(database, settings).drain()

    messages = _emails(settings)
    assert len(messages) == 30
    seen = set()
    for message in messages:
        names = re.findall(r"Secure Firm (\d)", _text(message))
        assert len(names) == 3 and "4" not in names
        seen.update(names)
        assert "/r/" in _text(message) and "https://firm0.example" not in _text(message)
    assert seen == {"0", "1", "2", "3"}  # the rotation spreads them
    with database.session() as session:
        shown = session.scalar(select(func.sum(ReferralCount.shown)))
        first = session.scalar(select(func.sum(ReferralCount.shown_first)))
    assert (shown, first) == (90, 30)


def test_expired_and_suspended_firms_are_never_shown(database, settings):
    _firm(database, 0, expires_on=date.today().isoformat(), vetted_on="2026-01-01")
    suspended = _firm(database, 1)
    with database.session() as session:
        firm = session.get(directory.Firm, suspended)
        directory.suspend(session, firm, "complaint under review", None, NOW)
    add_subscribers(database, settings, 3)
    alert_id = add_alert(database)
    send_alert(database, default_catalogue(), alert_id, now=NOW)
    Dispatcher.from_settings(database, settings).drain()
    for message in _emails(settings):
        assert "Secure Firm" not in _text(message)


def test_a_ransomware_alert_calls_for_recovery_and_backup_firms(database, settings):
    from alerts.curation.models import AlertAdvisory
    from tests.test_curation import _advisory

    _firm(database, 0, specialities="backup-recovery")
    _firm(database, 1, specialities="network-firewall")
    add_subscribers(database, settings, 2)
    alert_id = add_alert(database, targeting={"families": []})  # everyone
    advisory = _advisory(database, 1, "Ransomware group exploits backup servers", ransomware=True)
    with database.session() as session:
        session.add(AlertAdvisory(alert_id=alert_id, advisory_id=advisory))
    send_alert(database, default_catalogue(), alert_id, now=NOW)
    Dispatcher.from_settings(database, settings).drain()
    for message in _emails(settings):
        text = _text(message)
        assert "Secure Firm 0" in text and "Secure Firm 1" not in text
