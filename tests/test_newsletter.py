"""Newsletter issues: the published alerts since each subscriber's last issue that concern
them, on their cadence; never an empty one; urgent alerts for those without urgent email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.curation.models import Alert
from alerts.delivery.dispatch import Dispatcher
from alerts.delivery.models import OutboxMessage
from alerts.delivery.newsletter import queue_newsletters
from alerts.relevance.service import default_catalogue
from subscribers.models import Subscriber
from tests.delivery_setup import add_alert, add_subscribers, provider_settings
from tests.fakes.sendgrid_server import SendGridServer, recipients


@pytest.fixture
def world(settings, database):
    with SendGridServer() as sendgrid:
        configured = provider_settings(settings, sendgrid)
        now = datetime.now(UTC)
        add_subscribers(database, configured, 1, start=1, email="fortinet@shop.example")
        add_subscribers(
            database, configured, 1, start=2, email="wordpress@shop.example", families=["wordpress"]
        )
        add_subscribers(
            database, configured, 1, start=3, email="daily@shop.example", newsletter="daily"
        )
        add_subscribers(
            database, configured, 1, start=4, email="no-urgent@shop.example", urgent_email=False
        )
        alerts = {
            "fortinet-news": add_alert(database, tier="newsletter"),
            "wordpress-old": add_alert(
                database, tier="newsletter", targeting={"families": ["wordpress"]}
            ),
            "fortinet-urgent": add_alert(database),
        }
        _approved(database, alerts["fortinet-news"], now - timedelta(hours=20))
        _approved(database, alerts["wordpress-old"], now - timedelta(days=10))
        _approved(database, alerts["fortinet-urgent"], now - timedelta(hours=2))
        yield database, configured, sendgrid, alerts, now


def _approved(database, alert_id, when):
    with database.session() as session:
        session.get(Alert, alert_id).approved_at = when


def _issues(database) -> dict[str, list[int]]:
    with database.session() as session:
        query = (
            select(Subscriber.email, OutboxMessage.payload)
            .join(Subscriber, Subscriber.id == OutboxMessage.subscriber_id)
            .where(OutboxMessage.kind == "newsletter")
        )
        return {email: payload["alerts"] for email, payload in session.execute(query)}


def test_weekly_issue_holds_what_concerns_each_subscriber(world):
    database, settings, sendgrid, alerts, now = world
    counts = queue_newsletters(database, default_catalogue(), "weekly", now)
    assert counts == {"issues": 2, "nothing to send": 1}  # wordpress: only an old alert
    assert _issues(database) == {
        "fortinet@shop.example": [alerts["fortinet-news"]],
        "no-urgent@shop.example": [alerts["fortinet-news"], alerts["fortinet-urgent"]],
    }


def test_issues_are_sent_and_not_repeated(world):
    database, settings, sendgrid, alerts, now = world
    queue_newsletters(database, default_catalogue(), "weekly", now)
    dispatcher = Dispatcher.from_settings(database, settings)
    dispatcher.clock = lambda: now + timedelta(minutes=1)
    assert dispatcher.drain() == 2
    sent = {address for address, _ in recipients(sendgrid)}
    assert sent == {"fortinet@shop.example", "no-urgent@shop.example"}
    subjects = [received.body["subject"] for received in sendgrid.accepted]
    assert all(subject for subject in subjects)
    later = now + timedelta(days=7)
    assert queue_newsletters(database, default_catalogue(), "weekly", later)["issues"] == 0


def test_daily_subscribers_have_their_own_cadence(world):
    database, settings, sendgrid, alerts, now = world
    counts = queue_newsletters(database, default_catalogue(), "daily", now)
    assert counts["issues"] == 1
    assert _issues(database) == {"daily@shop.example": [alerts["fortinet-news"]]}


def test_queuing_twice_in_an_hour_loses_nothing(world):
    database, settings, sendgrid, alerts, now = world
    first = now.replace(minute=1, second=0, microsecond=0) + timedelta(hours=1)  # same hour
    queue_newsletters(database, default_catalogue(), "weekly", first)
    late = add_alert(database, tier="newsletter")
    _approved(database, late, first + timedelta(minutes=5))
    again = queue_newsletters(
        database, default_catalogue(), "weekly", first + timedelta(minutes=10)
    )
    assert again["issues"] == 0  # this hour's issue exists already
    next_week = queue_newsletters(
        database, default_catalogue(), "weekly", first + timedelta(days=7)
    )
    assert next_week["issues"] == 2  # the late alert waited for the next issue
