"""The directory's daily job: a vetting that ends today expires, staff are warned once
about each vetting ending within 30 days, and the job runs at 06:00 Brussels time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select

from alerts.referrals import directory
from alerts.referrals.jobs import expire_and_warn
from alerts.referrals.models import EXPIRED, VETTED, Firm
from alerts.referrals.validation import parse_firm
from alerts.scheduling import Runtime, bind, start_scheduler
from alerts.staff.models import AuditEvent

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 10:00 in Brussels
TODAY = date(2026, 11, 27)
NUMBERS = ("0123.456.749", "0200.065.765", "0202.239.951", "0203.201.340")


def _firm(database, number: int, expires_on: date) -> int:
    values = {
        "name": f"Secure Firm {number}",
        "enterprise_number": NUMBERS[number],
        "website": f"https://firm{number}.example",
        "email": f"help@firm{number}.example",
        "phone": "+3225418111",
        "regions": "BE-VAN",
        "languages": "en",
        "specialities": "incident-response",
        "status": "vetted",
        "vetted_on": (TODAY - timedelta(days=300)).isoformat(),
        "expires_on": expires_on.isoformat(),
    }
    with database.session() as session:
        return directory.add(session, parse_firm(values), None, NOW - timedelta(days=300)).id


def _firm_row(database, firm_id: int) -> Firm:
    with database.session() as session:
        return session.get(Firm, firm_id)


def _events(database, action: str) -> list[AuditEvent]:
    with database.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.scalars(query))


def test_a_vetting_ending_today_expires_and_one_ending_tomorrow_stays(database):
    today = _firm(database, 0, TODAY)
    tomorrow = _firm(database, 1, TODAY + timedelta(days=1))
    run = expire_and_warn(database, NOW)
    assert run.expired == [today]
    assert _firm_row(database, today).status == EXPIRED
    assert _firm_row(database, tomorrow).status == VETTED
    assert [event.subject for event in _events(database, "firm-expired")] == [f"firm:{today}"]
    assert expire_and_warn(database, NOW).expired == []  # nothing expires twice


def test_the_brussels_date_counts_not_the_utc_date(database):
    firm = _firm(database, 0, TODAY + timedelta(days=1))
    late_evening = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # 00:30 on the 28th in Brussels
    assert expire_and_warn(database, late_evening).expired == [firm]


def test_staff_are_warned_once_at_30_days_not_at_31(database):
    at_30 = _firm(database, 0, TODAY + timedelta(days=30))
    at_31 = _firm(database, 1, TODAY + timedelta(days=31))
    run = expire_and_warn(database, NOW)
    assert run.warned == [at_30]
    assert _firm_row(database, at_30).expiry_warned_on == TODAY
    assert _firm_row(database, at_31).expiry_warned_on is None

    assert expire_and_warn(database, NOW + timedelta(hours=2)).warned == []  # not twice
    next_day = expire_and_warn(database, NOW + timedelta(days=1))
    assert next_day.warned == [at_31]  # now 30 days away; the first one is not warned again
    events = _events(database, "firm-expiry-warning")
    assert [(event.subject, event.actor) for event in events] == [
        (f"firm:{at_30}", "system"),
        (f"firm:{at_31}", "system"),
    ]
    assert events[0].detail == {"expires_on": (TODAY + timedelta(days=30)).isoformat()}


def test_a_renewed_vetting_is_warned_about_again(database):
    firm_id = _firm(database, 0, TODAY + timedelta(days=10))
    expire_and_warn(database, NOW)
    with database.session() as session:
        firm = session.get(Firm, firm_id)
        directory.vet(session, firm, TODAY + timedelta(days=20), None, NOW)
    assert expire_and_warn(database, NOW).warned == [firm_id]
    assert len(_events(database, "firm-expiry-warning")) == 2


def test_the_scheduled_job_runs_at_six_in_brussels_and_does_the_work(database, settings):
    due = _firm(database, 0, date.today() - timedelta(days=1))
    poller = SimpleNamespace(database=database, settings=settings, poll_due=lambda **_: None)
    scheduler = start_scheduler(Runtime(poller))
    try:
        job = scheduler.get_job("expire-firms")
        assert str(job.trigger.timezone) == "Europe/Brussels"
        assert job.coalesce and job.max_instances == 1
        next_run = job.next_run_time
        assert (next_run.hour, next_run.minute) == (6, 0)
        assert next_run.utcoffset().total_seconds() in (3600, 7200)
        job.func()  # what the scheduler calls at 06:00
    finally:
        scheduler.shutdown(wait=False)
        bind(None)
    assert _firm_row(database, due).status == EXPIRED
