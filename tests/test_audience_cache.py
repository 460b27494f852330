"""The audience index cache of the staff pages: stale-while-revalidate, one build at a time,
failures keep the old index, a warm-up at creation, and the "Count recipients" button seeing
a new subscriber once the index is refreshed (both databases)."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest

from subscribers.audience import AudienceIndex, Member
from subscribers.audience_cache import AudienceCache, AudienceUnavailable, shared
from tests.delivery_setup import add_subscribers
from tests.subscriber_site import Site
from tests.test_curation import _advisory, _edit_form, _login, _post, _user

WAIT = 10  # seconds: a bound for the waits below, never reached when the code is right


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


class Builder:
    """Build number k returns an index of k members; `hold()` makes the next builds wait
    for `release()`, `fail` makes them raise."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.fail = False
        self.started = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._lock = threading.Lock()

    def hold(self) -> None:
        self._gate.clear()
        self.started.clear()

    def release(self) -> None:
        self._gate.set()

    def __call__(self) -> AudienceIndex:
        with self._lock:
            self.calls += 1
            number = self.calls
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.set()
        try:
            assert self._gate.wait(WAIT)
            if self.fail:
                raise RuntimeError("database unreachable")
            return _index(number)
        finally:
            with self._lock:
                self.running -= 1


def _index(size: int) -> AudienceIndex:
    """An index of `size` members, so that its length tells which build made it."""
    return AudienceIndex.build(
        Member(
            id=number,
            families=frozenset({"fortinet-fortigate"}),
            knows_products=True,
            sector="retail",
            region="BE-VAN",
            language="en",
            urgent_email=True,
            urgent_sms=False,
            newsletter="weekly",
            email_suppressed=False,
            sms_suppressed=False,
            active=True,
        )
        for number in range(size)
    )


def _cache(builder: Builder, clock: Clock, warm: bool = False) -> AudienceCache:
    return AudienceCache(builder, refresh_seconds=60, clock=clock, warm=warm)


def test_a_stale_index_is_served_at_once_while_one_rebuild_runs():
    builder, clock = Builder(), Clock()
    cache = _cache(builder, clock)
    assert len(cache.get()) == 1 and cache.age() == 0 and cache.built_at is not None
    clock.advance(30)
    assert len(cache.get()) == 1 and builder.calls == 1  # fresh enough: no rebuild
    clock.advance(31)
    builder.hold()
    assert len(cache.get()) == 1  # returned while the rebuild is held: nobody waited for it
    assert builder.started.wait(WAIT) and cache.refreshing
    assert cache.age() == 61
    builder.release()
    assert cache.wait_for_build(WAIT)
    assert len(cache.get()) == 2 and cache.age() == 0 and not cache.refreshing


def test_only_one_rebuild_runs_however_many_requests_come():
    builder, clock = Builder(), Clock()
    cache = _cache(builder, clock)
    cache.get()
    clock.advance(61)
    builder.hold()
    sizes: list[int] = []
    requests = [threading.Thread(target=lambda: sizes.append(len(cache.get()))) for _ in range(20)]
    for request in requests:
        request.start()
    for request in requests:
        request.join(WAIT)
    assert sizes == [1] * 20  # all served the stale index while the rebuild is held
    assert builder.calls == 2 and builder.most_at_once == 1
    builder.release()
    assert cache.wait_for_build(WAIT)
    assert len(cache.get()) == 2 and builder.calls == 2  # the new index is fresh


def test_a_failing_rebuild_keeps_the_old_index_and_is_retried_an_interval_later(caplog):
    builder, clock = Builder(), Clock()
    cache = _cache(builder, clock)
    cache.get()
    clock.advance(61)
    builder.fail = True
    with caplog.at_level(logging.ERROR, logger="subscribers.audience_cache"):
        assert len(cache.get()) == 1
        assert cache.wait_for_build(WAIT)
    assert "build failed" in caplog.text and "database unreachable" in caplog.text
    assert len(cache.get()) == 1 and cache.age() == 61  # the old one, still counted as old
    clock.advance(59)
    assert len(cache.get()) == 1 and not cache.refreshing and builder.calls == 2  # not yet
    builder.fail = False
    clock.advance(2)  # an interval after the failure
    assert len(cache.get()) == 1
    assert cache.wait_for_build(WAIT)
    assert builder.calls == 3 and len(cache.get()) == 3


def test_the_warm_up_starts_at_creation_and_the_first_request_waits_for_it():
    builder, clock = Builder(), Clock()
    builder.hold()
    cache = _cache(builder, clock, warm=True)
    assert builder.started.wait(WAIT)  # no request yet
    sizes: list[int] = []
    request = threading.Thread(target=lambda: sizes.append(len(cache.get())))
    request.start()
    request.join(0.2)
    assert request.is_alive() and sizes == []  # nothing to serve before the first build
    builder.release()
    request.join(WAIT)
    assert sizes == [1] and builder.calls == 1  # the request did not start a second build


def test_without_any_index_a_failed_build_is_an_error_and_the_next_request_tries_again():
    builder, clock = Builder(), Clock()
    builder.fail = True
    cache = _cache(builder, clock)
    with pytest.raises(AudienceUnavailable) as raised:
        cache.get()
    assert isinstance(raised.value.__cause__, RuntimeError)
    builder.fail = False
    assert len(cache.get()) == 2 and cache.age() == 0


def test_an_app_gets_one_cache_created_on_first_use(database):
    state = SimpleNamespace()
    caches: list[AudienceCache] = []
    callers = [
        threading.Thread(target=lambda: caches.append(shared(state, database))) for _ in range(8)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(WAIT)
    assert len(caches) == 8 and all(cache is state.audience_cache for cache in caches)
    assert state.audience_cache.wait_for_build(WAIT)
    assert len(state.audience_cache.get()) == 0


# --- the staff page, end to end ----------------------------------------------------------


def test_a_new_subscriber_shows_in_the_count_after_the_refresh(settings, database):
    site, clock = Site(settings, database), Clock()
    _user(database, "ed@gov.example", "editor")
    add_subscribers(database, settings, 4)  # FortiGate, English, urgent email
    cache = AudienceCache.for_database(database, refresh_seconds=60, clock=clock)  # warms up
    site.app.state.audience_cache = cache  # the one the pages find, on a clock we move
    editor = _login(site, "ed@gov.example")
    advisory = _advisory(database, 1, "FortiOS flaw")
    location = _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    alert_id = int(location.headers["location"].split("/")[3])
    page = f"/staff/alerts/{alert_id}/edit"
    form = _edit_form(editor.get(page).text)

    def emails() -> str:
        counted = _post(editor, page, form | {"count": "1"}, page=page)
        assert counted.status_code == 200
        return counted.text.split('<th scope="row">email</th>', 1)[1].split("</tr>", 1)[0]

    assert emails() == "<td>0</td><td>0</td><td>4</td><td>0</td><td>4</td>"
    add_subscribers(database, settings, 1, start=10)
    clock.advance(30)
    assert emails().endswith("<td>4</td>")  # within the minute: the index we have
    clock.advance(31)
    assert emails().endswith("<td>4</td>")  # stale: served at once, rebuilt behind
    assert cache.wait_for_build(WAIT)
    assert emails() == "<td>0</td><td>0</td><td>5</td><td>0</td><td>5</td>"
    assert cache.age() < 1
