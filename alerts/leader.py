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

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK}
                )
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
) -> threading.Thread:
    """A thread that calls `become_leader` once the lock is ours, retrying until then."""

    def run() -> None:
        while not stopping.is_set():
            try:
                if leadership.try_acquire():
                    log.info("this instance now runs the scheduler")
                    become_leader()
                    return
            except Exception:  # the database is away: try again later
                log.exception("could not try the scheduler lock")
            stopping.wait(retry_seconds)

    thread = threading.Thread(target=run, name="leader", daemon=True)
    thread.start()
    return thread
