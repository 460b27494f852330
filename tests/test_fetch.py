"""The real httpx path against a feed server on 127.0.0.1."""

import gzip
from datetime import UTC, datetime

import pytest

from alerts.ingest.fetch import (
    BlockedAddress,
    Fetcher,
    check_public_address,
    parse_max_age,
    parse_retry_after,
)

BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def fetcher(settings):
    fetcher = Fetcher(settings)
    yield fetcher
    fetcher.close()


def test_conditional_get_with_etag_costs_nothing_the_second_time(feed_server, fetcher):
    url = feed_server.add(
        "/feed", body=BODY, etag='"v1"', last_modified="Wed, 01 Jul 2026 10:00:00 GMT"
    )
    first = fetcher.fetch(url)
    assert first.ok and first.body == BODY and first.etag == '"v1"'
    second = fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert second.ok and second.not_modified and second.body is None
    headers = feed_server.hits("/feed")[1]
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Wed, 01 Jul 2026 10:00:00 GMT"


def test_identifies_itself(feed_server, fetcher, settings):
    fetcher.fetch(feed_server.add("/feed", body=BODY))
    headers = feed_server.hits("/feed")[0]
    assert headers["user-agent"] == settings.user_agent
    assert "gzip" in headers["accept-encoding"]


def test_gzip_bodies_are_decoded(feed_server, fetcher):
    result = fetcher.fetch(feed_server.add("/feed", body=BODY, gzip=True))
    assert result.body == BODY


def test_permanent_redirect_reports_the_new_address(feed_server, fetcher):
    new = feed_server.add("/new", body=BODY)
    old = feed_server.add("/old", status=301, location=new)
    result = fetcher.fetch(old)
    assert result.ok and result.permanent_url == new


def test_temporary_redirect_keeps_the_old_address(feed_server, fetcher):
    new = feed_server.add("/new", body=BODY)
    result = fetcher.fetch(feed_server.add("/old", status=302, location=new))
    assert result.ok and result.permanent_url is None and result.final_url == new


def test_redirect_loop_is_an_error(feed_server, fetcher):
    feed_server.add("/a", status=302, location=feed_server.url("/b"))
    feed_server.add("/b", status=302, location=feed_server.url("/a"))
    result = fetcher.fetch(feed_server.url("/a"))
    assert not result.ok and result.error_kind == "redirects"


def test_gone_feeds_say_so(feed_server, fetcher):
    result = fetcher.fetch(feed_server.add("/feed", status=410))
    assert result.gone and "410" in result.error


def test_rate_limit_reports_retry_after_without_retrying(feed_server, fetcher):
    result = fetcher.fetch(feed_server.add("/feed", status=429, headers={"Retry-After": "120"}))
    assert result.error_kind == "rate-limited" and result.retry_after == 120
    assert len(feed_server.hits("/feed")) == 1


def test_server_errors_are_retried_a_bounded_number_of_times(feed_server, fetcher, settings):
    result = fetcher.fetch(feed_server.add("/feed", status=503))
    assert not result.ok and result.status == 503 and "503" in result.error
    assert len(feed_server.hits("/feed")) == settings.http_retries + 1


def test_not_found_is_not_retried(feed_server, fetcher):
    result = fetcher.fetch(feed_server.url("/missing"))
    assert result.error == "HTTP 404 Not Found"
    assert len(feed_server.hits("/missing")) == 1


def test_timeouts_become_errors(feed_server, settings):
    settings.http_timeout = 0.3
    fetcher = Fetcher(settings)
    try:
        result = fetcher.fetch(feed_server.add("/slow", body=BODY, delay=1.0))
    finally:
        fetcher.close()
    assert not result.ok and result.error_kind == "timeout"
    assert len(feed_server.hits("/slow")) == settings.http_retries + 1


def test_slow_drip_hits_the_total_deadline(feed_server, settings):
    settings.http_total_timeout = 0.5
    fetcher = Fetcher(settings)
    try:
        result = fetcher.fetch(feed_server.add("/drip", body=b"x" * 20_000, drip=0.1))
    finally:
        fetcher.close()
    assert not result.ok and result.error_kind == "timeout"


def test_declared_oversize_body_is_refused(feed_server, settings):
    settings.http_max_bytes = 10_000
    fetcher = Fetcher(settings)
    try:
        result = fetcher.fetch(feed_server.add("/big", body=b"x" * 20_000))
    finally:
        fetcher.close()
    assert result.error_kind == "too-large" and result.body is None


def test_gzip_bomb_stops_at_the_decompressed_cap(feed_server, settings):
    settings.http_max_bytes = 100_000
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 100_000  # small on the wire, huge when decoded
    feed_server.add("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    fetcher = Fetcher(settings)
    try:
        result = fetcher.fetch(feed_server.url("/bomb"))
    finally:
        fetcher.close()
    assert result.error_kind == "too-large"


def test_connection_refused_is_an_error_not_an_exception(fetcher):
    result = fetcher.fetch("http://127.0.0.1:9/feed")
    assert not result.ok and result.error_kind == "connect"


def test_cache_headers():
    assert parse_max_age("public, max-age=3600", None) == 3600
    now = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert parse_max_age(None, "Wed, 01 Jul 2026 11:00:00 GMT", now=now) == 3600
    assert parse_retry_after("Wed, 01 Jul 2026 10:02:00 GMT", now=now) == 120
    assert parse_retry_after("soon") is None


def test_max_age_is_read_from_responses(feed_server, fetcher):
    result = fetcher.fetch(
        feed_server.add("/feed", body=BODY, headers={"Cache-Control": "max-age=7200"})
    )
    assert result.max_age == 7200


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/x",
        "http://[::1]/feed",
        "http://192.168.1.1/feed",
        "http://localhost/feed",
    ],
)
def test_private_addresses_are_refused(url):
    with pytest.raises(BlockedAddress):
        check_public_address(url)


def test_public_addresses_pass_the_guard():
    check_public_address("https://8.8.8.8/feed")  # an IP literal: no DNS lookup happens


def test_the_guard_stops_fetches_by_default(feed_server, settings):
    settings.allow_private_addresses = False
    fetcher = Fetcher(settings)
    try:
        result = fetcher.fetch(feed_server.add("/feed", body=BODY))
    finally:
        fetcher.close()
    assert result.error_kind == "blocked" and "not a public address" in result.error
    assert feed_server.hits("/feed") == []


def test_bad_gzip_is_an_error_not_an_exception(feed_server, fetcher):
    url = feed_server.add("/feed", body=b"plain text", headers={"Content-Encoding": "gzip"})
    result = fetcher.fetch(url)
    assert result.error_kind == "decoding"


def test_unsupported_scheme_is_an_error_not_an_exception(fetcher):
    result = fetcher.fetch("ftp://127.0.0.1/feed")
    assert result.error_kind == "invalid-url"


def test_unresolvable_hosts_are_refused_before_any_request():
    from alerts.ingest.fetch import UnresolvableHost

    with pytest.raises(UnresolvableHost):
        check_public_address("https://no-such-host.invalid/feed")
