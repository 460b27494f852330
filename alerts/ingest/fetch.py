"""HTTP fetching: the only networked part of ingestion.

`Fetcher.fetch` answers the questions a poller has: was it modified, where did it move,
is it gone, when may we come back, and what went wrong, in words staff can act on. It never
raises for a network or HTTP problem; it returns a FetchResult with `error` set.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
import socket
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from alerts.settings import Settings

TRANSIENT_STATUSES = {500, 502, 503, 504}
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/json, "
    "application/xml;q=0.9, text/xml;q=0.9, text/csv;q=0.8, text/plain;q=0.7, */*;q=0.5"
)


class BlockedAddress(Exception):
    """The URL points at a private, loopback or link-local address (SSRF guard)."""


class UnresolvableHost(BlockedAddress):
    """DNS gave no answer: refused (never fetched unchecked), reported as a connection error."""


def check_public_address(url: httpx.URL | str) -> None:
    """Refuse hosts that resolve to non-public addresses: a feed or a document it links to
    must never make the service fetch from its own network (cloud metadata, admin ports)."""
    # The ASCII (IDNA-encoded) host is what httpx connects to: check exactly that name.
    host = httpx.URL(str(url)).raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvableHost(f"cannot resolve {host}: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise BlockedAddress(f"{host} resolves to {address}, which is not a public address")


class _Transient(Exception):
    """Raised inside the retry loop for failures worth another attempt."""

    def __init__(self, message: str, kind: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass
class FetchResult:
    url: str  # the URL asked for
    status: int | None = None
    body: bytes | None = None
    final_url: str | None = None  # after redirects
    permanent_url: str | None = None  # set when every redirect was permanent (301/308)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    gone: bool = False
    retry_after: float | None = None  # seconds, from Retry-After
    max_age: float | None = None  # seconds, from Cache-Control / Expires
    content_type: str | None = None
    error: str | None = None
    error_kind: str | None = None  # timeout | connect | http | too-large | redirects | ...
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and (self.not_modified or self.body is not None)


class Fetcher:
    """A shared httpx client with the service's limits; thread-safe."""

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.http_timeout, connect=min(10.0, settings.http_timeout)),
            follow_redirects=True,
            max_redirects=settings.http_max_redirects,
            # Only the encodings _Decoder can inflate with a bound on its output.
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
            transport=transport,
            event_hooks={"request": [] if settings.allow_private_addresses else [self._guard]},
        )

    @staticmethod
    def _guard(request: httpx.Request) -> None:
        check_public_address(request.url)  # runs for every hop of a redirect too

    def close(self) -> None:
        self.client.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None):
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        result = FetchResult(url=url)
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.http_retries + 1),
            wait=wait_exponential(multiplier=self.settings.http_backoff, max=30),
            retry=retry_if_exception_type(_Transient),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    result.attempts += 1
                    self._attempt(url, headers, result)
        except RetryError as error:
            failure = error.last_attempt.exception()
            result.error, result.error_kind = str(failure), failure.kind
            result.status = failure.status
        return result

    def _attempt(self, url: str, headers: dict[str, str], result: FetchResult) -> None:
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                self._read_response(response, result)
        except UnresolvableHost as error:
            raise _Transient(str(error), "connect") from None
        except BlockedAddress as error:
            result.error_kind, result.error = "blocked", str(error)
        except httpx.TooManyRedirects:
            result.error_kind = "redirects"
            result.error = f"more than {self.settings.http_max_redirects} redirects"
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
            result.error_kind, result.error = "invalid-url", f"unusable URL: {error}"
        except httpx.TimeoutException as error:
            raise _Transient(f"timed out ({type(error).__name__})", "timeout") from None
        except httpx.DecodingError as error:
            result.error_kind, result.error = "decoding", f"undecodable response body: {error}"
        except httpx.TransportError as error:
            raise _Transient(f"connection failed: {error}", "connect") from None
        except httpx.HTTPError as error:  # any other protocol-level failure: report, go on
            result.error_kind, result.error = "http", f"{type(error).__name__}: {error}"

    def _read_response(self, response: httpx.Response, result: FetchResult) -> None:
        result.status = response.status_code
        result.final_url = str(response.url)
        result.permanent_url = _permanent_target(response)
        _read_cache_headers(response, result)
        status = response.status_code
        if status == 304:
            result.not_modified = True
        elif status == 410:
            result.gone, result.error_kind = True, "gone"
            result.error = "410 Gone: the publisher removed this feed"
        elif status == 429:
            result.error_kind = "rate-limited"
            result.error = "429 Too Many Requests" + _retry_note(result.retry_after)
        elif status in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {status} {response.reason_phrase}", "http", status)
        elif status >= 400:
            result.error_kind = "http"
            result.error = f"HTTP {status} {response.reason_phrase}"
        else:
            self._read_body(response, result)

    def _read_body(self, response: httpx.Response, result: FetchResult) -> None:
        """Read under the size cap (decompressed bytes count: gzip bombs stop early) and
        under the total deadline (slow drips stop too)."""
        limit = self.settings.http_max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            result.error_kind, result.error = "too-large", _too_large(int(declared), limit)
            return
        deadline = time.monotonic() + self.settings.http_total_timeout
        decoder = _Decoder(response.headers.get("Content-Encoding", ""))
        chunks, size = [], 0
        # Raw bytes, inflated here with a bound on each step's output: httpx would inflate a
        # whole network read at once (a 100 kB read of a gzip bomb is 67 MB).
        for raw in response.iter_raw():
            for chunk in decoder.decode(raw, limit - size + 1):
                size += len(chunk)
                if size > limit:
                    result.error_kind, result.error = "too-large", _too_large(size, limit)
                    return
                chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _Transient(
                    f"download exceeded {self.settings.http_total_timeout:g}s", "timeout"
                )
        result.body = b"".join(chunks)
        result.etag = response.headers.get("ETag")
        result.last_modified = response.headers.get("Last-Modified")
        result.content_type = response.headers.get("Content-Type")


class _Decoder:
    """Content-Encoding gzip/deflate (or none), inflated in slices of at most `room`
    bytes so that the size cap holds before memory is spent."""

    def __init__(self, encoding: str):
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj()
        else:
            raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")

    def decode(self, data: bytes, room: int):
        if self._inflater is None:
            yield data
            return
        try:
            while data:
                piece = self._inflater.decompress(data, max(room, 1))
                room -= len(piece)
                yield piece
                if room <= 0:
                    return  # the caller stops at the cap
                data = self._inflater.unconsumed_tail
        except zlib.error as error:
            raise httpx.DecodingError(f"bad {error}") from None


def _too_large(size: int, limit: int) -> str:
    return f"body larger than the {limit:,} byte limit ({size:,}+ bytes)"


def _retry_note(seconds: float | None) -> str:
    return f"; retry after {seconds:g}s" if seconds is not None else ""


def _permanent_target(response: httpx.Response) -> str | None:
    """The new address when every hop was a permanent redirect (301/308)."""
    if response.history and all(hop.status_code in (301, 308) for hop in response.history):
        return str(response.url)
    return None


def _read_cache_headers(response: httpx.Response, result: FetchResult) -> None:
    result.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    result.max_age = parse_max_age(
        response.headers.get("Cache-Control"), response.headers.get("Expires")
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def parse_max_age(
    cache_control: str | None, expires: str | None, *, now: datetime | None = None
) -> float | None:
    """Freshness lifetime in seconds from Cache-Control max-age (preferred) or Expires."""
    if cache_control:
        match = re.search(r"(?:^|,)\s*max-age\s*=\s*(\d+)", cache_control, re.I)
        if match:
            return float(match.group(1))
    if expires:
        return parse_retry_after(expires, now=now)
    return None
