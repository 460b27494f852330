"""One scheduler among several instances: the lock, its hand-over when the holder goes,
on PostgreSQL (advisory lock) and SQLite (file lock)."""

from __future__ import annotations

import threading

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
