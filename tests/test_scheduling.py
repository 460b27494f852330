"""The scheduler, on a controllable clock: each job calls its stage with the clock's time,
jobs fire when they should (Brussels wall-clock times, summer and winter), the schedules
are kept in the database across restarts (a newsletter missed while the service was down
goes out once), and a changed or dropped schedule is brought in line at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select

from alerts import scheduling
from alerts.delivery.models import OutboxMessage
from alerts.scheduling import Runtime, Schedule, reconcile, schedules, start_scheduler
from tests.delivery_setup import add_alert, add_subscribers
from tests.test_newsletter import _approved

BRUSSELS = ZoneInfo("Europe/Brussels")
MONDAY_WINTER = datetime(2026, 11, 30, 5, 58, tzinfo=BRUSSELS)  # UTC+1
MONDAY_SUMMER = datetime(2026, 6, 29, 5, 58, tzinfo=BRUSSELS)  # UTC+2
STAGES = (
    "sweep",
    "purge_subscribers",
    "purge_staff_sessions",
    "send_scheduled",
    "expire_and_warn",
    "queue_newsletters",
)


class SteppedScheduler(BaseScheduler):
    """Processes due jobs only when step() is called, running them in the calling thread:
    with time-machine's clock the test decides what time it is."""

    def __init__(self):
        super().__init__(timezone=UTC, executors={"default": DebugExecutor()})
        self.failures: list = []
        self.add_listener(self.failures.append, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def wakeup(self):
        pass  # nothing runs between steps

    def shutdown(self, wait=True):
        super().shutdown(wait)

    def step(self) -> None:
        self._process_jobs()


class Recorder:
    """Stands in for the stage functions: which ran, with what, at what time."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, tuple, datetime]] = []
        for name in STAGES:
            monkeypatch.setattr(scheduling, name, self._stage(name))

    def _stage(self, name):
        def stage(*args):
            self.calls.append((name, args, datetime.now(UTC)))
            return {} if name != "send_scheduled" else []

        return stage

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@pytest.fixture
def runtime(database, settings):
    polls: list[datetime] = []
    poller = SimpleNamespace(
        database=database,
        settings=settings,
        poll_due=lambda now, wait: polls.append(now),
        polls=polls,
    )
    yield Runtime(poller)
    scheduling.bind(None)


def _walk(scheduler: SteppedScheduler, traveller, start: datetime, minutes: int) -> None:
    for minute in range(minutes + 1):
        traveller.move_to(start + timedelta(minutes=minute))
        scheduler.step()


def test_each_job_calls_its_stage_with_the_clock(runtime, monkeypatch):
    recorder = Recorder(monkeypatch)
    moment = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    runtime.clock = lambda: moment
    scheduling.bind(runtime)
    expected = {
        "poll-due": None,
        "score-sweep": "sweep",
        "purge-unconfirmed": "purge_subscribers",
        "purge-staff-sessions": "purge_staff_sessions",
        "send-scheduled": "send_scheduled",
        "expire-firms": "expire_and_warn",
        "newsletter-daily": "queue_newsletters",
        "newsletter-weekly": "queue_newsletters",
    }
    assert {schedule.id for schedule in schedules()} == set(expected)
    for schedule in schedules():
        recorder.calls.clear()
        schedule.func(*schedule.args)
        if expected[schedule.id] is None:
            continue
        [(name, args, _)] = recorder.calls
        assert name == expected[schedule.id]
        assert args[0] is runtime.database
        if name not in ("sweep",):
            assert moment in args  # the runtime's clock, not the wall clock
    assert runtime.poller.polls == [moment]
    newsletter = [s for s in schedules() if s.id == "newsletter-weekly"][0]
    recorder.calls.clear()
    newsletter.func(*newsletter.args)
    assert recorder.calls[0][1][2] == "weekly"


@pytest.mark.parametrize("monday", [MONDAY_WINTER, MONDAY_SUMMER], ids=["winter", "summer"])
def test_jobs_fire_at_their_times(runtime, monkeypatch, monday):
    recorder = Recorder(monkeypatch)
    with time_machine.travel(monday, tick=False) as traveller:
        scheduler = start_scheduler(runtime, SteppedScheduler())
        try:
            _walk(scheduler, traveller, monday, 70)  # 05:58 .. 07:08 Brussels time
            tuesday = monday + timedelta(days=1)
            traveller.move_to(tuesday)
            scheduler.step()  # the day's missed minute jobs coalesce into one run each
            recorder.calls.clear()
            _walk(scheduler, traveller, tuesday, 70)
        finally:
            scheduler.shutdown()
    assert not scheduler.failures
    on_tuesday = recorder.calls
    assert [args[2] for name, args, _ in on_tuesday if name == "queue_newsletters"] == ["daily"]
    [(_, _, expiry)] = [call for call in on_tuesday if call[0] == "expire_and_warn"]
    assert expiry.astimezone(BRUSSELS).time().isoformat() == "06:00:00"
    [(_, _, issue)] = [call for call in on_tuesday if call[0] == "queue_newsletters"]
    assert issue.astimezone(BRUSSELS).time().isoformat() == "07:00:00"
    # every minute: scheduled alerts; every 30 s (stepped each minute): feed polls
    assert sum(1 for name in recorder.names() if name == "send_scheduled") >= 70
    assert len(runtime.poller.polls) >= 140
    assert 1 <= recorder.names().count("purge_subscribers") <= 2  # hourly


def test_monday_brings_both_newsletters(runtime, monkeypatch):
    recorder = Recorder(monkeypatch)
    with time_machine.travel(MONDAY_WINTER, tick=False) as traveller:
        scheduler = start_scheduler(runtime, SteppedScheduler())
        try:
            _walk(scheduler, traveller, MONDAY_WINTER, 70)
        finally:
            scheduler.shutdown()
    issued = sorted(args[2] for name, args, _ in recorder.calls if name == "queue_newsletters")
    assert issued == ["daily", "weekly"]


def test_a_restart_keeps_schedules_and_runs_a_missed_newsletter_once(runtime, database, settings):
    """Down from 06:30 to 08:15: the 07:00 newsletter goes out once at start, with the real
    stage; a job store in memory would have forgotten it until the next day."""
    add_subscribers(database, settings, 1, newsletter="daily")
    alert = add_alert(database, tier="newsletter")
    morning = MONDAY_WINTER + timedelta(minutes=32)  # 06:30
    _approved(database, alert, morning - timedelta(hours=3))
    with time_machine.travel(morning, tick=False) as traveller:
        first = start_scheduler(runtime, SteppedScheduler())
        first.step()
        kept = {job.id: job.next_run_time for job in first.get_jobs()}
        first.shutdown()
        assert _issues(database) == 0

        traveller.move_to(MONDAY_WINTER + timedelta(hours=2, minutes=17))  # 08:15
        second = start_scheduler(runtime, SteppedScheduler())
        try:
            assert {job.id: job.next_run_time for job in second.get_jobs()} == kept
            second.step()
            assert _issues(database) == 1
            second.step()
            traveller.shift(timedelta(minutes=5))
            second.step()
        finally:
            second.shutdown()
    assert _issues(database) == 1  # once, not once per step
    assert not second.failures


def test_start_replaces_changed_jobs_and_drops_unknown_ones(runtime, monkeypatch):
    Recorder(monkeypatch)
    with time_machine.travel(MONDAY_WINTER, tick=False):
        scheduler = start_scheduler(runtime, SteppedScheduler())
        scheduler.add_job(scheduling.score_unscored, "interval", minutes=5, id="retired-job")
        unchanged = scheduler.get_job("newsletter-daily").next_run_time
        changed = [
            Schedule("score-sweep", scheduling.score_unscored, IntervalTrigger(minutes=3), 180),
            *[schedule for schedule in schedules() if schedule.id != "score-sweep"],
        ]
        reconcile(scheduler, changed)
        assert scheduler.get_job("retired-job") is None
        assert str(scheduler.get_job("score-sweep").trigger) == "interval[0:03:00]"
        assert scheduler.get_job("newsletter-daily").next_run_time == unchanged
        scheduler.shutdown()


def test_jobs_refuse_to_run_without_a_runtime():
    scheduling.bind(None)
    with pytest.raises(RuntimeError, match="runtime"):
        scheduling.score_unscored()


def _issues(database) -> int:
    with database.session() as session:
        query = select(func.count()).where(OutboxMessage.kind == "newsletter")
        return session.scalar(query)
