"""The audience index a web process keeps for counting recipients: stale-while-revalidate.

Reading a million subscribers into an AudienceIndex takes seconds (docs/performance.md,
"Audience"); counting with it takes under a millisecond. So a process keeps one index and
counts with it. Once it is older than the refresh interval, a request still gets it at once
and one background thread reads a fresh one, with its own database session; the new index
replaces the old when it is complete. Only a request that comes before any index exists
waits, and the cache starts that first build (a warm-up) as soon as it is created.

At most one build runs at a time per cache. A failed build is logged and the old index is
kept; the next build starts at the first request one refresh interval after the failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alerts.store import Database
from subscribers.audience import AudienceIndex
from subscribers.directory import load_index

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0
_SHARED = threading.Lock()  # creating the one cache of an app


class AudienceUnavailable(RuntimeError):
    """No index yet, and the build that was to make the first one failed."""


class AudienceCache:
    """One AudienceIndex, rebuilt in the background once it is `refresh_seconds` old.

    `build` returns a fresh index (it is called in a background thread); `clock` gives
    monotonic seconds. Both are there for the tests and the benchmark."""

    def __init__(
        self,
        build: Callable[[], AudienceIndex],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        warm: bool = True,
    ) -> None:
        self.refresh_seconds = refresh_seconds
        self._build = build
        self._clock = clock
        self._changed = threading.Condition()  # guards everything below
        self._index: AudienceIndex | None = None
        self._read_at = 0.0  # clock() when the build of the current index started reading
        self._built_at: datetime | None = None  # the same moment, on the wall clock
        self._retry_at = float("-inf")  # no build starts before this clock() (after a failure)
        self._building: threading.Thread | None = None
        self._finished = 0  # builds ended, successful or not
        self._failure: Exception | None = None  # of the last build, when it failed
        if warm:
            with self._changed:
                self._start()

    @classmethod
    def for_database(cls, database: Database, **options: Any) -> AudienceCache:
        """A cache whose builds read the subscribers table, each in a session of its own."""

        def build() -> AudienceIndex:
            with database.session() as session:
                return load_index(session)

        return cls(build, **options)

    # -------------------------------------------------------------- reading

    def get(self) -> AudienceIndex:
        """The current index, at once; starts a background rebuild when it is stale. Waits
        only while there is no index at all yet."""
        with self._changed:
            if self._index is None:
                return self._first_index()
            if self._stale() and self._building is None and self._clock() >= self._retry_at:
                self._start()
            return self._index

    def age(self) -> float | None:
        """Seconds since the current index started reading the subscribers; None if none."""
        with self._changed:
            return None if self._index is None else self._clock() - self._read_at

    @property
    def built_at(self) -> datetime | None:
        """When (UTC) the current index started reading the subscribers: the counts are as
        of that moment. None while there is no index."""
        return self._built_at

    @property
    def refreshing(self) -> bool:
        """A build is running."""
        return self._building is not None

    def wait_for_build(self, timeout: float | None = None) -> bool:
        """Block until no build is running (False if `timeout` seconds passed first)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._building is None, timeout)

    # -------------------------------------------------------------- building

    def _stale(self) -> bool:
        return self._clock() - self._read_at > self.refresh_seconds

    def _first_index(self) -> AudienceIndex:
        """Wait for the build in progress (or a new one) to end. Lock held."""
        if self._building is None:
            self._start()
        ended = self._finished
        self._changed.wait_for(lambda: self._index is not None or self._finished > ended)
        if self._index is None:
            raise AudienceUnavailable("the audience index could not be built") from self._failure
        return self._index

    def _start(self) -> None:
        """One build in a background thread. Lock held, no build running."""
        self._building = threading.Thread(target=self._run, name="audience-index", daemon=True)
        self._building.start()

    def _run(self) -> None:
        read_at, built_at = self._clock(), datetime.now(UTC)
        index = failure = None
        try:
            index = self._build()
        except Exception as error:  # any failure: keep serving the index we have
            failure = error
            log.exception("audience index: build failed; kept the one as of %s", self._built_at)
        finally:
            with self._changed:
                if index is not None:
                    self._index, self._read_at, self._built_at = index, read_at, built_at
                else:
                    self._retry_at = self._clock() + self.refresh_seconds
                self._failure = failure
                self._building = None
                self._finished += 1
                self._changed.notify_all()


def shared(state: Any, database: Database, **options: Any) -> AudienceCache:
    """The one cache of an app (kept on its `state`), created, and warming up, on first use.
    Calling this when the app is assembled starts the warm-up before any staff request."""
    cache = getattr(state, "audience_cache", None)
    if cache is None:
        with _SHARED:
            cache = getattr(state, "audience_cache", None)
            if cache is None:
                cache = state.audience_cache = AudienceCache.for_database(database, **options)
    return cache
