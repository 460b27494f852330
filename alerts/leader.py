"""Only one instance runs the scheduler: the leader.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own;
when the process dies, its connection closes and the server releases the lock, so another
instance takes over at its next try. On SQLite (one machine) an exclusive file lock beside
the database file does the same. Delivery workers need no leader: they share the outbox."""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from alerts.store import Database

log = logging.getLogger(__name__)
SCHEDULER_LOCK = 0x5C4ED  # an arbitrary, fixed advisory-lock key (migrations use another)
RETRY_SECONDS = 15.0


class Leadership:
    """Try to become the leader; keep the lock until release() (or the process ends)."""

    def __init__(self, database: Database):
        self.database = database
        self._connection = None
        self._file = None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.database.dialect == "postgresql":
            return self._try_postgresql()
        return self._try_file()

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def alive(self) -> bool:
        """Is the lock still ours? On PostgreSQL the lock lives on its connection: when the
        server or the network dropped it, the server has released the lock already and
        another instance may hold it now."""
        if self._connection is None:
            return self._file is not None
        try:
            self._connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK}
                )
            except Exception:  # the connection is gone, and the lock with it
                log.warning("scheduler lock connection was already closed")
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _try_postgresql(self) -> bool:
        connection = self.database.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK}
        ).scalar()
        if taken:
            self._connection = connection  # held open: the lock lives as long as it does
        else:
            connection.close()
        return bool(taken)

    def _try_file(self) -> bool:
        database = self.database.engine.url.database
        if not database or database == ":memory:":
            self._file = open("/dev/null", "rb")  # noqa: SIM115 - one process, nothing to share
            return True
        handle = open(f"{Path(database)}.scheduler-lock", "a+b")  # noqa: SIM115 - kept open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True


def lead_when_possible(
    leadership: Leadership,
    become_leader: Callable[[], None],
    stopping: threading.Event,
    retry_seconds: float = RETRY_SECONDS,
    step_down: Callable[[], None] | None = None,
) -> threading.Thread:
    """A thread that calls `become_leader` once the lock is ours, retrying until then, and
    afterwards checks the lock every `retry_seconds`: when it was lost (the database dropped
    its connection), `step_down` stops the scheduler and the instance waits to lead again —
    so two schedulers never run on for long."""

    def run() -> None:
        while not stopping.is_set():
            try:
                if not leadership.held and leadership.try_acquire():
                    log.info("this instance now runs the scheduler")
                    become_leader()
                elif leadership.held and not leadership.alive():
                    log.error("lost the scheduler lock with its connection; stepping down")
                    leadership.release()
                    if step_down is not None:
                        step_down()
            except Exception:  # the database is away: try again later
                log.exception("could not try the scheduler lock")
            stopping.wait(retry_seconds)

    thread = threading.Thread(target=run, name="leader", daemon=True)
    thread.start()
    return thread
