"""GET /metrics reads the database at scrape time; /readyz reports the scheduler; logs can
be JSON lines."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text, update

from alerts.delivery.models import DeliveryEvent, OutboxMessage
from alerts.ingest.persist import store_records
from alerts.ingest.records import AdvisoryRecord
from alerts.logs import configure_logging
from alerts.models import Advisory, Feed, PollRun
from tests.subscriber_site import Site

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _outbox(number: int, channel: str, status: str) -> dict:
    return {
        "key": f"test:{number}:{channel}",
        "channel": channel,
        "kind": "alert",
        "status": status,
        "next_attempt_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _fill(database) -> None:
    with database.session() as session:
        session.add_all(
            [
                Feed(name="good", url="https://good.example/", format="rss", last_success_at=NOW),
                Feed(
                    name="broken",
                    url="https://broken.example/",
                    format="rss",
                    consecutive_failures=3,
                    last_error="HTTP 500",
                ),
            ]
        )
        runs = [("good", "ok")] * 4 + [("good", "not-modified"), ("broken", "error")] * 3
        session.add_all(PollRun(source=s, status=st, started_at=NOW) for s, st in runs)
        records = [AdvisoryRecord(item_id=str(n), title=f"Advisory {n}") for n in range(5)]
        store_records(session, "cert", records)
        session.flush()
        session.execute(
            update(Advisory).where(Advisory.item_id.in_(["0", "1"])).values(tier="urgent")
        )
        session.execute(update(Advisory).where(Advisory.item_id == "2").values(tier="ignore"))
        rows = [_outbox(n, "email", "created") for n in range(3)]
        rows += [_outbox(10, "email", "delivered"), _outbox(11, "sms", "permanent-failure")]
        session.execute(insert(OutboxMessage), rows)
        events = [("sendgrid", "delivered"), ("sendgrid", "delivered"), ("twilio", "failed")]
        session.execute(
            insert(DeliveryEvent),
            [
                {"provider": p, "event_id": f"ev{n}", "event": e, "at": NOW}
                for n, (p, e) in enumerate(events)
            ],
        )


def _samples(text: str) -> dict[tuple, float]:
    """{(name, (label, value), ...): value} of every sample in a scrape."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


def test_metrics_count_what_is_stored(site, database):
    _fill(database)
    response = site.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE alerts_feed_polls_total counter" in response.text
    samples = _samples(response.text)
    expected = {
        ("alerts_feed_polls_total", ("feed", "good"), ("status", "ok")): 4,
        ("alerts_feed_polls_total", ("feed", "good"), ("status", "not-modified")): 3,
        ("alerts_feed_polls_total", ("feed", "broken"), ("status", "error")): 3,
        ("alerts_feed_consecutive_failures", ("feed", "broken")): 3,
        ("alerts_feed_consecutive_failures", ("feed", "good")): 0,
        ("alerts_feed_last_success_timestamp_seconds", ("feed", "good")): NOW.timestamp(),
        ("alerts_advisories", ("tier", "urgent")): 2,
        ("alerts_advisories", ("tier", "ignore")): 1,
        ("alerts_advisories", ("tier", "unscored")): 2,
        ("alerts_outbox_messages", ("channel", "email"), ("status", "created")): 3,
        ("alerts_outbox_messages", ("channel", "email"), ("status", "delivered")): 1,
        ("alerts_outbox_messages", ("channel", "sms"), ("status", "permanent-failure")): 1,
        ("alerts_delivery_events_total", ("event", "delivered"), ("provider", "sendgrid")): 2,
        ("alerts_delivery_events_total", ("event", "failed"), ("provider", "twilio")): 1,
    }
    assert {key: samples.get(key) for key in expected} == expected
    # never succeeded: no timestamp rather than a misleading 0
    assert ("alerts_feed_last_success_timestamp_seconds", ("feed", "broken")) not in samples
    assert not any(key[0] == "alerts_scheduler_running" for key in samples)


def test_metrics_show_each_jobs_next_run(site, database):
    moment = NOW + timedelta(minutes=3)
    with database.session() as session:
        session.execute(
            text("INSERT INTO scheduler_jobs (id, next_run_time, job_state) VALUES (:i, :t, :s)"),
            {"i": "send-scheduled", "t": moment.timestamp(), "s": b"state"},
        )
    samples = _samples(site.client.get("/metrics").text)
    key = ("alerts_scheduler_next_run_timestamp_seconds", ("job", "send-scheduled"))
    assert samples[key] == moment.timestamp()


def test_metrics_follow_the_database_between_scrapes(site, database):
    assert "alerts_outbox_messages{" not in site.client.get("/metrics").text
    with database.session() as session:
        session.execute(insert(OutboxMessage), [_outbox(1, "email", "created")])
    samples = _samples(site.client.get("/metrics").text)
    assert samples[("alerts_outbox_messages", ("channel", "email"), ("status", "created"))] == 1


def test_each_app_has_its_own_registry(settings, database):
    first, second = Site(settings, database), Site(settings, database)
    assert first.app.state.metrics_registry is not second.app.state.metrics_registry
    assert second.client.get("/metrics").status_code == 200


def test_stopped_scheduler_is_not_ready(site, database):
    site.app.state.scheduler = BackgroundScheduler(timezone="UTC")  # never started
    response = site.client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": database.dialect,
        "scheduler": "stopped",
    }
    samples = _samples(site.client.get("/metrics").text)
    assert samples[("alerts_scheduler_running",)] == 0


def test_running_scheduler_is_ready(site, database):
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    try:
        site.app.state.scheduler = scheduler
        response = site.client.get("/readyz")
        samples = _samples(site.client.get("/metrics").text)
    finally:
        scheduler.shutdown(wait=False)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": database.dialect,
        "scheduler": "running",
    }
    assert samples[("alerts_scheduler_running",)] == 1


def test_readiness_without_scheduler_is_the_database(site, database):
    assert site.client.get("/readyz").json() == {"status": "ok", "database": database.dialect}


class _Unreachable:
    def session(self):
        raise ConnectionError("database down")


def test_unreachable_database_fails_the_scrape(site, caplog):
    site.app.state.database = _Unreachable()
    with caplog.at_level(logging.ERROR):
        response = site.client.get("/metrics")
    assert response.status_code == 503
    assert "database down" in caplog.text and "database down" not in response.text


def test_json_log_lines_carry_message_and_exception(capsys):
    configure_logging("INFO", json_lines=True)
    try:
        log = logging.getLogger("alerts.test")
        log.info("polled %s", "certfr-avis")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("poll failed for https://user:hunter2@feeds.example/x")
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines][:1] == ["polled certfr-avis"]
    first, second = lines[0], lines[1]
    assert first["level"] == "info" and first["logger"] == "alerts.test" and "time" in first
    assert "ValueError: boom" in second["exception"]
    assert "hunter2" not in second["message"]
