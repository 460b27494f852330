"""One scheduler among several instances: the lock, its hand-over when the holder goes,
on PostgreSQL (advisory lock) and SQLite (file lock)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from alerts.leader import Leadership, lead_when_possible
from alerts.store import Database


def test_only_one_instance_leads_and_another_takes_over(database_url):
    first, second = Database(database_url), Database(database_url)
    one, two = Leadership(first), Leadership(second)
    try:
        assert one.try_acquire() and one.held
        assert not two.try_acquire() and not two.held
        assert one.try_acquire()  # asking again keeps it
        one.release()  # the holder stops (or dies: its connection closes)
        assert two.try_acquire()
        assert not one.try_acquire()
    finally:
        one.release()
        two.release()
        first.dispose()
        second.dispose()


def test_a_waiting_instance_starts_its_scheduler_once_the_leader_is_gone(database_url):
    first, second = Database(database_url), Database(database_url)
    holder, waiter = Leadership(first), Leadership(second)
    started, stopping = threading.Event(), threading.Event()
    try:
        assert holder.try_acquire()
        thread = lead_when_possible(waiter, started.set, stopping, retry_seconds=0.05)
        assert not started.wait(0.3)  # still waiting
        holder.release()
        assert started.wait(5) and waiter.held
        thread.join(timeout=5)
    finally:
        stopping.set()
        holder.release()
        waiter.release()
        first.dispose()
        second.dispose()


def test_a_leader_that_lost_its_lock_connection_steps_down_and_leads_again(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a file lock on SQLite cannot be lost while its process lives")
    database, admin = Database(database_url), Database(database_url)
    leadership = Leadership(database)
    events: list[str] = []
    led_twice, stopping = threading.Event(), threading.Event()

    def become_leader() -> None:
        events.append("lead")
        if events.count("lead") == 2:
            led_twice.set()

    try:
        lead_when_possible(
            leadership,
            become_leader,
            stopping,
            retry_seconds=0.05,
            step_down=lambda: events.append("step down"),
        )
        deadline = time.monotonic() + 5
        while not leadership.held and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = leadership._connection.connection.dbapi_connection.info.backend_pid
        with admin.session() as session:  # the server drops the holder's connection
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert led_twice.wait(10)
        assert events == ["lead", "step down", "lead"]
    finally:
        stopping.set()
        leadership.release()
        database.dispose()
        admin.dispose()
