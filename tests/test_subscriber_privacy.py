"""Export, erase, purge, suppressions and the audience as read from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import String, Text, func, select

from alerts.models import Base
from subscribers import directory
from subscribers.audience import Targeting
from subscribers.models import ConsentEvent, Subscriber
from subscribers.privacy import purge_expired
from subscribers.suppressions import suppress
from tests.subscriber_site import SIGNUP, Site

PERSONAL = (
    "bakkerij-jansens.be",
    "Bakkerij Jansens",
    "+32470123456",
    "0123456749",
    "TestBrowser",
    "198.51.100.7",
)


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


def _every_text_value(database) -> list[str]:
    """Every string, JSON and text value in every table of the schema."""
    values = []
    with database.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                values.extend(str(value) for value in row if value is not None)
    return values


def _data_page(site, preferences: str) -> str:
    assert site.submit(f"{preferences}/data-link", page=preferences).status_code == 303
    return site.last_link("my-data")


def test_export_holds_everything_about_the_subscriber(site):
    preferences = site.subscribe_and_confirm()
    answer = site.client.get(f"{_data_page(site, preferences)}/export")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    data = answer.json()
    assert data["subscription"]["email"] == "info@bakkerij-jansens.be"
    assert data["subscription"]["phone"] == "+32470123456"
    assert data["subscription"]["families"] == ["fortinet-fortigate", "microsoft-exchange"]
    assert [e["kind"] for e in data["consent_events"]] == ["signup", "email-confirmed"]
    assert data["consent_events"][0]["notice_version"] == "privacy-v1"


def test_erase_leaves_no_personal_data_in_any_table(site):
    browser = site.browser(ip="198.51.100.7", **{"user-agent": "TestBrowser/1.0"})
    assert site.signup(client=browser).status_code == 200
    preferences = site.confirm(site.last_link()).headers["location"].split("?")[0]
    site.submit(f"{preferences}/sms-code", {"code": site.last_sms_code()}, page=preferences)
    with site.database.session() as session:
        suppress(
            session, site.service.signer, "email", SIGNUP["email"], "hard-bounce", "t", site.clock()
        )
    site.signup(
        client=site.browser(),
        email="other@example.be",
        organisation="Other Shop",
        phone="+32 499 11 22 33",
        enterprise_number="",
    )
    before = " ".join(_every_text_value(site.database))
    assert all(value in before for value in PERSONAL)

    data_page = _data_page(site, preferences)
    refused = site.submit(f"{data_page}/erase", {}, page=data_page)
    assert refused.status_code == 422  # the box was not ticked
    done = site.submit(f"{data_page}/erase", {"confirm_erase": "1"}, page=data_page)
    assert done.status_code == 200 and "erased" in done.text
    assert (
        site.submit(f"{data_page}/erase", {"confirm_erase": "1"}, page=data_page).status_code == 404
    )

    after = " ".join(_every_text_value(site.database))
    leaks = [value for value in PERSONAL if value in after]
    assert leaks == []
    assert "other@example.be" in after  # only that subscriber went
    with site.database.session() as session:
        kinds = list(session.scalars(select(ConsentEvent.kind).order_by(ConsentEvent.id)))
    assert kinds.count("erased") == 1 and kinds.count("signup") == 2  # counts are kept
    assert site.client.get(preferences).status_code == 404  # the old link is dead


# Every text column of the subscriber tables, and what it holds. A new column fails this
# test until someone decides whether erasure must clear it.
TEXT_COLUMNS = {
    "subscribers": "all personal: the row is deleted",
    "consent_events.kind": "event type",
    "consent_events.notice_version": "notice id",
    "consent_events.notice_sha256": "notice hash",
    "consent_events.method": "how",
    "consent_events.ip_address": "personal: cleared",
    "consent_events.user_agent": "personal: cleared",
    "consent_events.channels": "choices, no identity",
    "suppressions.channel": "email or sms",
    "suppressions.address_key": "keyed hash",
    "suppressions.reason": "why",
    "suppressions.source": "provider",
    "rate_limit_hits.key": "keyed hash",
}


def test_every_text_column_is_accounted_for():
    found = set()
    for table in Base.metadata.sorted_tables:
        if table.name not in ("subscribers", "consent_events", "suppressions", "rate_limit_hits"):
            continue
        for column in table.columns:
            if isinstance(column.type, String | Text) or column.name == "channels":
                found.add(
                    table.name if table.name == "subscribers" else f"{table.name}.{column.name}"
                )
    assert found == set(TEXT_COLUMNS)


def test_unconfirmed_signups_are_purged(site):
    site.signup()
    site.signup(client=site.browser(), email="late@example.be", organisation="Late Shop")
    site.confirm()  # the second one confirms
    site.clock.advance(hours=site.settings.signup_confirm_hours + 1)
    with site.database.session() as session:
        counts = purge_expired(session, site.clock())
    assert counts["sign-ups purged"] == 1 and counts["left subscriptions erased"] == 0
    with site.database.session() as session:
        emails = list(session.scalars(select(Subscriber.email)))
        orphans = session.scalar(select(func.count()).where(ConsentEvent.subscriber_id.is_(None)))
    assert emails == ["late@example.be"] and orphans == 1
    assert "bakkerij" not in " ".join(_every_text_value(site.database)).lower()


def test_pending_change_is_forgotten_after_the_deadline(site):
    site.subscribe_and_confirm()
    site.signup(client=site.browser(), organisation="Pretender")
    site.clock.advance(hours=site.settings.signup_confirm_hours + 1)
    with site.database.session() as session:
        assert purge_expired(session, site.clock())["changes forgotten"] == 1
        subscriber = session.scalar(select(Subscriber))
        assert subscriber.pending_profile is None and subscriber.status == "active"


def test_hard_bounced_address_gets_no_confirmation_mail(site):
    with site.database.session() as session:
        suppress(
            session,
            site.service.signer,
            "email",
            "Info@Bakkerij-Jansens.be",
            "hard-bounce",
            "sendgrid",
            site.clock(),
        )
    assert site.signup().status_code == 200  # the page says the same as always
    assert site.emails() == []


def test_confirming_again_lifts_a_provider_unsubscribe(site):
    with site.database.session() as session:
        suppress(
            session,
            site.service.signer,
            "email",
            SIGNUP["email"],
            "provider-unsubscribe",
            "sendgrid",
            site.clock(),
        )
    site.subscribe_and_confirm()
    with site.database.session() as session:
        (member,) = directory.members(session)
    assert member.active and not member.email_suppressed


def test_audience_from_the_database_honours_status_channels_and_suppressions(site):
    site.subscribe_and_confirm()  # SMS wanted but the phone is not confirmed yet
    site.subscribe_and_confirm(email="second@example.be", families=["wordpress"])
    site.signup(client=site.browser(), email="pending@example.be")
    with site.database.session() as session:
        index = directory.load_index(session)
    everyone = Targeting(tier="urgent")
    assert len(index) == 3
    assert index.count(everyone) == {"email": 2, "sms": 0, "newsletter": 0}
    fortinet = Targeting(tier="urgent", families=frozenset({"fortinet-fortigate"}))
    assert index.count(fortinet)["email"] == 1

    with site.database.session() as session:
        suppress(
            session,
            site.service.signer,
            "email",
            "SECOND@example.be",
            "spam-complaint",
            "sendgrid",
            site.clock(),
        )
        index = directory.load_index(session)
    assert index.count(everyone)["email"] == 1
    assert dict(index.recipients(everyone)) == {1: "email"}


def test_rate_limit_windows_expire(site):
    site.signup()
    site.clock.advance(hours=2)
    with site.database.session() as session:
        assert purge_expired(session, site.clock() + timedelta(seconds=1))["rate-limit windows"]


def test_left_subscriptions_are_erased_after_the_retention_period(site):
    preferences = site.subscribe_and_confirm()
    site.submit(f"{preferences}/leave", {"channel": "all"}, page=preferences)
    with site.database.session() as session:
        assert (
            purge_expired(session, site.clock() + timedelta(days=29))["left subscriptions erased"]
            == 0
        )
        assert (
            purge_expired(session, site.clock() + timedelta(days=31))["left subscriptions erased"]
            == 1
        )
    assert "bakkerij" not in " ".join(_every_text_value(site.database)).lower()
