"""Ingestion of every feed in feeds.yaml from 127.0.0.1 (real snapshots), against
rss2email as a peer measured in the same run.

    python -m bench.peer      (BENCH_RUNS=5; --feeds a,b: only these feeds; --no-peer:
                               no rss2email; --no-process: no `alerts poll` processes)

A feed server in its own process serves, for every feed of feeds.yaml, a real publisher
snapshot from ../shared/data/feeds (the same publisher's file when there is one, else a
real file of the same format: reported as "substituted"). Directory-style feeds (CSAF
changes.csv and ROLIE, CVE List delta, MSRC updates) get a listing generated from the
real local documents, in the shape our parsers read, so the documents are fetched from
127.0.0.1 too. Every answer carries an ETag and a Last-Modified and a matching
conditional request gets 304, so a re-poll is all 304s (checked from the server's log).

Ours: `Poller.poll_feeds` on a fresh, migrated SQLite database per run (fetch, parse,
store, relevance scoring), then the same feeds again (the conditional re-poll), on all
feeds and on the RSS/Atom subset; and the RSS subset as `alerts poll` processes, which is
how rss2email runs (a process per poll, interpreter start included).
Peer: rss2email (PEER_VERSION, from the package index into var/bench-peer-venv, reused
across runs) reading the RSS/Atom subset -- the only feeds it can read -- and mailing each
entry to an SMTP sink on 127.0.0.1: `r2e run` with a fresh data file (every entry is
sent), then `r2e run` again (all 304, nothing sent).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from alerts.feeds import FeedConfig, Registry, load_registry
from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.records import ParseError
from bench.common import ROOT, RUNS, SHARED_FEEDS, emit, progress

PEER_VERSION = "3.14"
PEER_VENV = ROOT / "var" / "bench-peer-venv" / f"rss2email-{PEER_VERSION}"
FEEDS_FILE = ROOT / "feeds.yaml"
PEER_FORMATS = {"rss"}  # RSS 0.9x/1.0/2.0 and Atom: all rss2email (feedparser) can read
BROKEN_PREFIXES = ("MALFORMED_", "INVALID_")  # deliberately broken files of the corpus

# The same publisher's snapshot (a glob under SHARED_FEEDS; the newest name wins).
SNAPSHOTS = {
    "certfr-alertes": "rss/certfr-alertes-feed-*.xml",
    "certfr-avis": "rss/certfr-avis-feed-*.xml",
    "cisa-advisories": "rss/cisa-all-advisories-*.xml",
    "bleepingcomputer": "rss/bleepingcomputer-*.xml",
    "thehackernews": "rss/thehackernews-*.xml",
    "securityweek": "rss/securityweek-*.xml",
    "krebsonsecurity": "rss/krebsonsecurity-*.xml",
    "zataz": "rss/zataz-*.xml",
    "cisa-kev": "kev/cisa-kev-*.json",
    "eu-kev": "kev/enisa-eukev-2026-08-21.json",
    "epss": "epss/*.csv.gz",
    "paloalto-psirt": "vendor/paloalto/advisories-list-page1.json",
}
# Directory-style feeds: the folder of the publisher's real documents their listing names.
DOCUMENTS = {
    "ncsc-nl-csaf": "csaf/ncsc-nl",
    "bsi-wid-csaf": "csaf/bsi-certbund",
    "cisa-csaf-it": "csaf/cisa",
    "redhat-csaf": "csaf/redhat",
    "siemens-productcert": "csaf/siemens",
    "cvelist-delta": "cve",
    "msrc-cvrf": "vendor/microsoft",
}
# A directory-style feed of another publisher: real documents of the same kind.
FALLBACK_DOCUMENTS = {
    "csaf-changes": "csaf/oasis-examples",
    "csaf-rolie": "csaf/oasis-examples",
    "csaf-index": "csaf/oasis-examples",
    "cvelist-delta": "cve",
    "msrc-updates": "vendor/microsoft",
}
CONTENT_TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".rdf": "application/rdf+xml; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".gz": "application/gzip",
    ".txt": "text/plain; charset=utf-8",
}


# =========================================================================== the site


@dataclass
class Resource:
    body: bytes
    content_type: str
    etag: str
    last_modified: str  # HTTP date

    @classmethod
    def of(cls, body: bytes, content_type: str, mtime: float) -> Resource:
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        return cls(body, content_type, etag, formatdate(mtime, usegmt=True))


@dataclass
class FeedPlan:
    """What the server answers for one feed of the registry."""

    name: str
    format: str
    path: str  # the feed's own address on the server
    files: list[str]  # the real files behind it, relative to SHARED_FEEDS
    documents: int = 0  # linked documents listed (directory-style feeds)
    substituted: str | None = None  # why another publisher's file stands in
    note: str | None = None


@dataclass
class Site:
    base: str
    routes: dict[str, Resource] = field(default_factory=dict)
    plans: list[FeedPlan] = field(default_factory=list)


def build_site(registry: Registry, shared: Path, base: str) -> Site:
    """Every feed of the registry, served from real files under `shared`."""
    site = Site(base)
    owned = {
        path
        for name, pattern in SNAPSHOTS.items()
        if (path := _snapshot(shared, pattern)) is not None
    }
    rss_pool = _substitutes(shared, "rss", owned)
    for feed in registry.feeds:
        if feed.format in FALLBACK_DOCUMENTS:
            plan = _directory_feed(site, feed, shared)
        else:
            plan = _plain_feed(site, feed, shared, rss_pool)
        site.plans.append(plan)
    return site


def _snapshot(shared: Path, pattern: str) -> Path | None:
    found = sorted(p for p in shared.glob(pattern) if not p.name.startswith(BROKEN_PREFIXES))
    return found[-1] if found else None


def _valid(path: Path, format: str) -> bool:
    if path.name.startswith(BROKEN_PREFIXES):
        return False
    data = path.read_bytes()
    try:
        if detect_format(data, path.name) != format:
            return False
        parsers.parse(data, format)
    except ParseError:
        return False
    return True


def _substitutes(shared: Path, format: str, owned: set[Path]) -> list[Path]:
    """Valid real files of one format: those no feed owns first, then the others."""
    valid = [p for p in sorted(shared.rglob("*")) if p.is_file() and _valid(p, format)]
    return [p for p in valid if p not in owned] + [p for p in valid if p in owned]


def _plain_feed(site: Site, feed: FeedConfig, shared: Path, rss_pool: list[Path]) -> FeedPlan:
    pattern = SNAPSHOTS.get(feed.name)
    path = _snapshot(shared, pattern) if pattern else None
    substituted = None
    if path is None:
        pool = rss_pool if feed.format == "rss" else _substitutes(shared, feed.format, set())
        if not pool:
            why = f"not served: no real file of format {feed.format} in {shared}"
            return FeedPlan(feed.name, feed.format, "", [], substituted=why)
        used = sum(1 for plan in site.plans if plan.substituted and plan.format == feed.format)
        path = pool[used % len(pool)]
        broken = sorted(p.name for p in shared.rglob(f"*{feed.name}*") if p.is_file())
        substituted = f"no snapshot of {feed.name}" + (
            f" ({', '.join(broken)} is deliberately broken)" if broken else ""
        )
    url_path = f"/feeds/{feed.name}/{path.name}"
    site.routes[url_path] = Resource.of(
        path.read_bytes(), _content_type(path.name), path.stat().st_mtime
    )
    relative = str(path.relative_to(shared))
    return FeedPlan(feed.name, feed.format, url_path, [relative], substituted=substituted)


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


# --------------------------------------------------------------------------- listings


@dataclass
class _Document:
    path: Path
    url_path: str
    item_id: str
    title: str
    published: str
    updated: str


def _directory_feed(site: Site, feed: FeedConfig, shared: Path) -> FeedPlan:
    folder = DOCUMENTS.get(feed.name)
    substituted = None
    if folder is None or not (shared / folder).is_dir():
        folder = FALLBACK_DOCUMENTS[feed.format]
        substituted = f"no documents of {feed.name}; {folder} stands in"
    root = f"/{feed.name}"
    if feed.format == "msrc-updates":
        return _msrc(site, feed, shared, shared / folder, root, substituted)
    if feed.format == "cvelist-delta":
        documents = _cve_documents(shared / folder, root)
    else:
        documents = _csaf_documents(shared / folder, root)
    for document in documents:
        site.routes[document.url_path] = Resource.of(
            document.path.read_bytes(), "application/json", document.path.stat().st_mtime
        )
    body, name = _listing(feed, documents, site.base)
    mtime = max((d.path.stat().st_mtime for d in documents), default=0.0)
    url_path = f"{root}/{name}"
    site.routes[url_path] = Resource.of(body, _content_type(name), mtime)
    return FeedPlan(
        feed.name,
        feed.format,
        url_path,
        [str(d.path.relative_to(shared)) for d in documents],
        documents=len(documents),
        substituted=substituted,
        note=f"listing generated from {len(documents)} real documents in {folder}",
    )


def _csaf_documents(folder: Path, root: str) -> list[_Document]:
    """Real CSAF documents (not ROLIE feeds or indexes), at CSAF directory paths:
    <year of the initial release>/<file name>."""
    documents = []
    for path in sorted(folder.glob("*.json")):
        if not _valid(path, "csaf"):
            continue
        document = json.loads(path.read_bytes())["document"]
        tracking = document["tracking"]
        published = str(tracking.get("initial_release_date") or "")
        updated = str(tracking.get("current_release_date") or published)
        year = published[:4] if published[:4].isdigit() else "0000"
        title = document.get("title") or tracking["id"]
        documents.append(
            _Document(path, f"{root}/{year}/{path.name}", tracking["id"], title, published, updated)
        )
    return sorted(documents, key=lambda d: d.updated, reverse=True)


def _cve_documents(folder: Path, root: str) -> list[_Document]:
    """Real CVE records at cvelistV5 paths: <year>/<thousands>xxx/CVE-....json."""
    documents = []
    for path in sorted(folder.glob("CVE-*.json")):
        if not _valid(path, "cve"):
            continue
        meta = json.loads(path.read_bytes())["cveMetadata"]
        _, year, number = meta["cveId"].split("-")
        url_path = f"{root}/cves/{year}/{int(number) // 1000}xxx/{path.name}"
        updated = str(meta.get("dateUpdated") or meta.get("datePublished") or "")
        documents.append(_Document(path, url_path, meta["cveId"], meta["cveId"], updated, updated))
    return sorted(documents, key=lambda d: d.updated, reverse=True)


def _listing(feed: FeedConfig, documents: list[_Document], base: str) -> tuple[bytes, str]:
    """The listing document in the structure the feed's parser reads."""
    if feed.format in ("csaf-changes", "csaf-index"):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for document in documents:  # paths relative to the listing, as publishers write
            relative = document.url_path.split("/", 2)[2]
            writer.writerow(
                [relative, document.updated] if feed.format == "csaf-changes" else [relative]
            )
        return out.getvalue().encode(), (
            "changes.csv" if feed.format == "csaf-changes" else "index.txt"
        )
    if feed.format == "csaf-rolie":
        return _rolie(feed, documents, base), f"{feed.name}-feed-tlp-white.json"
    delta = {  # cvelist-delta
        "fetchTime": max((d.updated for d in documents), default=""),
        "numberOfChanges": len(documents),
        "new": [
            {
                "cveId": d.item_id,
                "cveOrgLink": f"https://www.cve.org/CVERecord?id={d.item_id}",
                "githubLink": base + d.url_path,
                "dateUpdated": d.updated,
            }
            for d in documents
        ],
        "updated": [],
        "error": [],
    }
    return json.dumps(delta, indent=2).encode(), "delta.json"


def _rolie(feed: FeedConfig, documents: list[_Document], base: str) -> bytes:
    """A CSAF ROLIE feed (CSAF 2.0 section 7.1.20) in the shape CISA publishes."""
    schema = "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json"
    entries = [
        {
            "id": d.item_id,
            "title": d.title,
            "link": [
                {"rel": "self", "href": base + d.url_path},
                {"rel": "hash", "href": base + d.url_path + ".sha512"},
                {"rel": "signature", "href": base + d.url_path + ".asc"},
            ],
            "published": d.published,
            "updated": d.updated,
            "content": {"type": "application/json", "src": base + d.url_path},
            "format": {"schema": schema, "version": "2.0"},
        }
        for d in documents
    ]
    rolie = {
        "feed": {
            "id": f"{feed.name}-feed-tlp-white",
            "title": feed.title,
            "link": [
                {"rel": "self", "href": f"{base}/{feed.name}/{feed.name}-feed-tlp-white.json"}
            ],
            "category": [
                {"scheme": "urn:ietf:params:rolie:category:information-type", "term": "csaf"}
            ],
            "updated": max((d.updated for d in documents), default=""),
            "entry": entries,
        }
    }
    return json.dumps(rolie, indent=2).encode()


def _msrc(
    site: Site, feed: FeedConfig, shared: Path, folder: Path, root: str, substituted
) -> FeedPlan:
    """The real /updates answer, each CvrfUrl pointing at the local copy of that month's
    CVRF; months with no local copy are left out of the listing (said in the note)."""
    updates_path = folder / "msrc-api-updates.json"
    updates = json.loads(updates_path.read_bytes())
    kept, dropped, files = [], [], [str(updates_path.relative_to(shared))]
    for update in updates.get("value", []):
        cvrf = folder / f"msrc-cvrf-{update.get('ID')}.xml"
        if not cvrf.is_file():
            dropped.append(str(update.get("ID")))
            continue
        url_path = f"{root}/cvrf/v3.0/cvrf/{update['ID']}"
        site.routes[url_path] = Resource.of(
            cvrf.read_bytes(), "application/xml; charset=utf-8", cvrf.stat().st_mtime
        )
        kept.append(update | {"CvrfUrl": site.base + url_path})
        files.append(str(cvrf.relative_to(shared)))
    body = json.dumps(updates | {"value": kept}, indent=2).encode()
    url_path = f"{root}/cvrf/v3.0/updates"
    site.routes[url_path] = Resource.of(body, "application/json", updates_path.stat().st_mtime)
    note = f"real /updates listing; CvrfUrl of {', '.join(u['ID'] for u in kept)} -> local CVRF"
    if dropped:
        note += f"; {', '.join(dropped)} left out (no local CVRF)"
    return FeedPlan(
        feed.name, feed.format, url_path, files, len(kept), substituted=substituted, note=note
    )


# =========================================================================== the server


class SnapshotServer(ThreadingHTTPServer):
    """Serves a Site; answers conditional requests; logs (path, status) of every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site: Site | None = None
        self.log: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def take_log(self) -> list[tuple[str, int]]:
        with self.lock:
            log, self.log = self.log, []
        return log


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SnapshotServer

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        path = urlsplit(self.path).path
        resource = self.server.site.routes.get(path) if self.server.site else None
        if resource is None:
            status, headers, payload = 404, {"Content-Type": "text/plain"}, b"not found\n"
        else:
            headers = {
                "Content-Type": resource.content_type,
                "ETag": resource.etag,
                "Last-Modified": resource.last_modified,
                "Cache-Control": "no-cache",
            }
            status = 304 if self._not_modified(resource) else 200
            payload = b"" if status == 304 else resource.body
        with self.server.lock:
            self.server.log.append((path, status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body and payload:
            self.wfile.write(payload)

    def _not_modified(self, resource: Resource) -> bool:
        """If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2)."""
        tags = self.headers.get("If-None-Match")
        if tags is not None:
            listed = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
            return "*" in listed or resource.etag in listed
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(resource.last_modified) <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
        return False


def serve(feeds_file: Path, shared: Path) -> None:
    """The feed server's process (`python -m bench.peer --serve`): build the site, say
    where it is (one JSON line), then answer "log" lines with the log until "stop"."""
    server = SnapshotServer()
    server.site = build_site(load_registry(feeds_file), shared, server.base)
    threading.Thread(target=server.serve_forever, name="feeds", daemon=True).start()
    hello = {"base": server.base, "plans": [asdict(p) for p in server.site.plans]}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        if line.strip() != "log":
            break
        print(json.dumps(server.take_log()), flush=True)
    server.shutdown()
    server.server_close()


class FeedServerProcess:
    """The snapshot server in a process of its own: it never competes with the poller
    being measured for this process's GIL (rss2email, a separate process, never does)."""

    def __init__(self, feeds_file: Path = FEEDS_FILE, shared: Path = SHARED_FEEDS) -> None:
        command = [sys.executable, "-m", "bench.peer", "--serve", str(feeds_file), str(shared)]
        self._process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            raise RuntimeError(f"the feed server did not start (exit {self._process.returncode})")
        hello = json.loads(line)
        self.base: str = hello["base"]
        self.plans = {p["name"]: FeedPlan(**p) for p in hello["plans"]}

    def url(self, name: str) -> str:
        return self.base + self.plans[name].path

    def take_log(self) -> list[tuple[str, int]]:
        """(path, status) of every request since the last call, in arrival order."""
        self._process.stdin.write("log\n")
        self._process.stdin.flush()
        return [tuple(entry) for entry in json.loads(self._process.stdout.readline())]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._process.stdin.write("stop\n")
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()

    def __enter__(self) -> FeedServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# =========================================================================== SMTP sink


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP on 127.0.0.1 to accept and count messages (no storage)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages = 0
        self.bytes = 0
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="smtp", daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def reset(self) -> int:
        with self.lock:
            messages, self.messages, self.bytes = self.messages, 0, 0
        return messages

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpSink

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 bench-sink ESMTP")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self._reply("250 bench-sink")
            elif verb == b"DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                size = self._read_data()
                with self.server.lock:
                    self.server.messages += 1
                    self.server.bytes += size
                self._reply("250 accepted")
            elif verb == b"QUIT":
                self._reply("221 bye")
                return
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self._reply("250 ok")
            else:
                self._reply("502 not implemented")

    def _read_data(self) -> int:
        size = 0
        while line := self.rfile.readline():
            if line in (b".\r\n", b".\n"):
                break
            size += len(line)
        return size


# =========================================================================== ours


@dataclass
class PollRound:
    full_seconds: float
    repoll_seconds: float
    figures: dict


def local_registry(server: FeedServerProcess, names: list[str]) -> Registry:
    """feeds.yaml with every URL on the local server; disabled feeds enabled so that every
    feed is polled (they are named in the JSON line)."""
    return Registry(
        feeds=[
            feed.model_copy(update={"url": server.url(feed.name), "enabled": True})
            for feed in load_registry(FEEDS_FILE).feeds
            if feed.name in names
        ]
    )


def ours_round(server: FeedServerProcess, registry: Registry) -> PollRound:
    """A fresh migrated SQLite database, then (timed) a full poll of every feed and (timed)
    a re-poll; checked: every feed polled without error, then every feed answered 304."""
    from alerts.ingest.poller import Poller
    from alerts.settings import Settings
    from alerts.store import Database

    names = [feed.name for feed in registry.feeds]
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/bench.sqlite3",
            data_dir=Path(folder),
            allow_private_addresses=True,
        )
        database = Database(settings.database_url)  # migrated
        poller = Poller(database, settings, registry)
        try:
            server.take_log()
            start = time.perf_counter()
            full = poller.poll_feeds(names)
            full_seconds = time.perf_counter() - start
            full_log = server.take_log()
            start = time.perf_counter()
            repoll = poller.poll_feeds(names)
            repoll_seconds = time.perf_counter() - start
            repoll_log = server.take_log()
        finally:
            poller.close()
            database.engine.dispose()
    figures = check_polls(server, names, full, full_log, repoll, repoll_log)
    return PollRound(full_seconds, repoll_seconds, figures)


def check_polls(server, names: list[str], full, full_log, repoll, repoll_log) -> dict:
    failed = {s.source: f"{s.status}: {'; '.join(s.errors)}" for s in full if s.status != "ok"}
    if failed or len(full) != len(names):
        raise AssertionError(f"full poll: feeds not polled cleanly: {failed}")
    statuses = _feed_statuses(server, names, full_log)
    if any(got != [200] for got in statuses.values()):
        raise AssertionError(f"full poll: the feeds were not fetched once each: {statuses}")
    not_304 = {s.source: s.status for s in repoll if s.status != "not-modified"}
    statuses = _feed_statuses(server, names, repoll_log)
    not_304 |= {name: got for name, got in statuses.items() if got != [304]}
    if not_304:
        raise AssertionError(f"re-poll: feeds not answered 304 exactly once: {not_304}")
    return {
        "advisories": sum(s.new for s in full),
        "epss_scores": sum(s.epss for s in full),
        "documents": sum(s.documents for s in full),
        "warnings": sum(len(s.warnings) for s in full),
        "requests": len(full_log),
        "requests_not_200": sum(1 for _, status in full_log if status != 200),
        "repoll_requests": len(repoll_log),
        "repoll_304": sum(1 for _, status in repoll_log if status == 304),
    }


def _feed_statuses(server, names: list[str], log) -> dict[str, list[int]]:
    """The statuses each feed's own address answered (linked documents left out)."""
    paths = {server.plans[name].path: name for name in names}
    statuses: dict[str, list[int]] = {name: [] for name in names}
    for path, status in log:
        if path in paths:
            statuses[paths[path]].append(status)
    return statuses


def process_round(server: FeedServerProcess, registry: Registry) -> dict:
    """`alerts poll --feed ...` as a process per poll, as rss2email runs: interpreter
    start, imports, settings and registry included. The database is migrated beforehand
    (as a service's is), fresh for each round."""
    from alerts.store import Database

    alerts = Path(sys.executable).with_name("alerts")
    names = [feed.name for feed in registry.feeds]
    command = [str(alerts), "poll", *(f"--feed={name}" for name in names)]
    result = {}
    with tempfile.TemporaryDirectory(prefix="bench-peer-cli-") as folder:
        feeds_file = Path(folder) / "feeds.yaml"
        dumped = [feed.model_dump(exclude_none=True) for feed in registry.feeds]
        feeds_file.write_text(yaml.safe_dump({"feeds": dumped}, sort_keys=False), "utf-8")
        url = f"sqlite:///{folder}/alerts.sqlite3"
        Database(url).engine.dispose()
        env = os.environ | {
            "ALERTS_FEEDS_FILE": str(feeds_file),
            "ALERTS_DATABASE_URL": url,
            "ALERTS_DATA_DIR": folder,
            "ALERTS_ALLOW_PRIVATE_ADDRESSES": "true",
            "ALERTS_LOG_LEVEL": "WARNING",
            "COLUMNS": "200",
        }
        for phase, expected in (("full", 200), ("repoll", 304)):
            server.take_log()
            seconds, peak, output = run_process(command, env, Path(folder))
            statuses = _feed_statuses(server, names, server.take_log())
            if any(got != [expected] for got in statuses.values()):
                raise AssertionError(f"alerts poll: expected {expected}: {statuses}\n{output}")
            result[phase], result[f"{phase}_rss"] = seconds, peak
    return result


# =========================================================================== the peer


def run_process(command: list[str], env: dict, folder: Path) -> tuple[float, float, str]:
    """Run to the end: (wall seconds, peak RSS MB of that process, its output).

    The peak is the child's own VmHWM, sampled from /proc while it runs: getrusage and
    wait4 would report this (larger) process's peak, inherited through fork."""
    with tempfile.TemporaryFile(dir=folder) as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        sampler = _PeakSampler(process.pid)
        sampler.start()
        process.wait()
        seconds = time.perf_counter() - start
        sampler.join()
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {process.returncode}:\n{text}")
    return seconds, round(sampler.peak_kb / 1024, 1), text


class _PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.peak_kb = 0

    def run(self) -> None:
        while True:
            try:
                text = self.status.read_text()
            except OSError:
                return
            lines = [line for line in text.splitlines() if line.startswith("VmHWM:")]
            if not lines:  # a zombie: its memory is gone
                return
            self.peak_kb = max(self.peak_kb, int(lines[0].split()[1]))
            time.sleep(0.005)


def peer_executable(venv: Path = PEER_VENV, *, install: bool = True) -> Path | None:
    """r2e from a venv of its own (under var/, keyed by version), created once."""
    r2e = venv / "bin" / "r2e"
    if r2e.exists():
        found = subprocess.run([r2e, "--version"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.split()[-1:] == [PEER_VERSION]:
            return r2e
    if not install:
        return None
    progress(f"bench.peer: installing rss2email {PEER_VERSION} into {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    if subprocess.run([*pip, f"rss2email=={PEER_VERSION}"]).returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise SystemExit(
            f"bench.peer: could not install rss2email {PEER_VERSION} (it needs the package "
            "index once); --no-peer measures ours alone"
        )
    return r2e


class Peer:
    """rss2email reading the given feeds and mailing every new entry to an SMTP sink."""

    def __init__(self, r2e: Path, folder: Path, feeds: list[tuple[str, str]], smtp_port: int):
        self.r2e, self.folder = r2e, folder
        self.config, self.data = folder / "rss2email.cfg", folder / "rss2email.json"
        self.env = os.environ | {
            "HOME": str(folder),
            "XDG_CONFIG_HOME": str(folder),
            "XDG_DATA_HOME": str(folder),
        }
        # `r2e add` without --only-new: the first run mails every entry of the feed.
        self.run("new", "bench@example.invalid")
        for name, url in feeds:
            self.run("add", name, url)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.config, encoding="utf-8")
        parser["DEFAULT"].update(
            {
                "email-protocol": "smtp",
                "smtp-server": f"127.0.0.1:{smtp_port}",
                "smtp-auth": "False",
                "smtp-ssl": "False",
                "verbose": "warning",
            }
        )
        with self.config.open("w", encoding="utf-8") as handle:
            parser.write(handle)
        self.pristine = self.data.read_bytes()  # the data file before any run

    def run(self, *arguments: str) -> tuple[float, float, str]:
        command = [str(self.r2e), "-c", str(self.config), "-d", str(self.data), *arguments]
        return run_process(command, self.env, self.folder)

    def fresh(self) -> None:
        self.data.write_bytes(self.pristine)


def peer_round(server, sink: SmtpSink, peer: Peer, names: list[str], entries: int) -> dict:
    """`r2e run` on a fresh data file (every entry mailed), `r2e run` again (all 304,
    nothing mailed); the first run again with --no-send; `r2e list` (process start)."""
    result = {}
    peer.fresh()
    sink.reset()
    server.take_log()
    result["full"], full_rss, output = peer.run("run")
    result["mails"] = sink.reset()
    _check_peer(server, names, server.take_log(), 200, output)
    if result["mails"] != entries:
        raise AssertionError(f"rss2email mailed {result['mails']} of {entries} entries")
    result["repoll"], repoll_rss, output = peer.run("run")
    _check_peer(server, names, server.take_log(), 304, output)
    if sink.reset():
        raise AssertionError("rss2email mailed entries on the re-poll")
    result["peak_rss"] = max(full_rss, repoll_rss)
    peer.fresh()
    result["no_send"] = peer.run("run", "--no-send")[0]
    server.take_log()
    result["start"] = peer.run("list")[0]
    return result


def _check_peer(server, names, log, expected: int, output: str) -> None:
    """Every feed fetched once with the expected status, and nothing logged as an error
    (rss2email logs a feed's failure and goes on; its exit status stays 0)."""
    statuses = _feed_statuses(server, names, log)
    wrong = {name: got for name, got in statuses.items() if got != [expected]}
    if wrong or "[ERROR]" in output or "[CRITICAL]" in output:
        raise AssertionError(f"rss2email: expected {expected} for every feed: {wrong}\n{output}")


def expected_entries(paths: list[Path]) -> int:
    """Entries feedparser finds in the files (rss2email mails each once)."""
    import feedparser

    return sum(len(feedparser.parse(path.read_bytes()).entries) for path in paths)


# =========================================================================== main


def _median(timings: list[float]) -> float:
    return statistics.median(timings)


def _ratio(ours: list[float], peer: list[float]) -> float:
    return round(_median(ours) / _median(peer), 3)


def _less(timings: list[float], overhead: list[float]) -> list[float]:
    return [max(_median(timings) - _median(overhead), 1e-9)]


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--feeds", help="comma-separated feed names (default: all)")
    options.add_argument("--no-peer", action="store_true", help="ours only, no rss2email")
    options.add_argument("--no-process", action="store_true", help="no `alerts poll` lines")
    options.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    arguments = options.parse_args(argv)
    if arguments.serve:
        serve(Path(arguments.serve[0]), Path(arguments.serve[1]))
        return
    if not SHARED_FEEDS.is_dir():
        raise SystemExit(f"bench.peer needs the real snapshots: {SHARED_FEEDS} not found")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FeedServerProcess())
        plans = server.plans
        wanted = arguments.feeds.split(",") if arguments.feeds else list(plans)
        if unknown := [name for name in wanted if name not in plans]:
            raise SystemExit(f"unknown feed(s): {', '.join(unknown)}")
        names = [name for name in wanted if plans[name].path]
        rss_names = [name for name in names if plans[name].format in PEER_FORMATS]
        registry = local_registry(server, names)
        rss_registry = Registry(feeds=[f for f in registry.feeds if f.name in rss_names])
        _describe(server, names)

        peer = sink = None
        entries = 0
        if rss_names and not arguments.no_peer:
            sink = stack.enter_context(SmtpSink())
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-r2e-")))
            peer = Peer(
                peer_executable(), folder, [(n, server.url(n)) for n in rss_names], sink.port
            )
            entries = expected_entries([SHARED_FEEDS / plans[n].files[0] for n in rss_names])
        processes = bool(rss_names) and not arguments.no_process

        # Warm-up (imports, rule files, page cache), then the runs interleaved so that the
        # load of a shared machine weighs on ours and on the peer alike.
        progress("bench.peer: warm-up")
        ours_round(server, registry)
        if peer:
            peer.run("list")
        if processes:
            process_round(server, rss_registry)
        ours, ours_rss, cli, theirs = [], [], [], []
        for run in range(1, RUNS + 1):
            progress(f"bench.peer: run {run}/{RUNS}")
            ours.append(ours_round(server, registry))
            if rss_names:
                ours_rss.append(ours_round(server, rss_registry))
            if processes:
                cli.append(process_round(server, rss_registry))
            if peer:
                theirs.append(peer_round(server, sink, peer, rss_names, entries))
        figures = ours[-1].figures
        progress(
            f"bench.peer: every feed ({len(names)}) polled without error: "
            f"{figures['advisories']} advisories, {figures['documents']} linked documents; "
            f"re-poll: {figures['repoll_304']} of {figures['repoll_requests']} requests "
            "answered 304"
        )
        if theirs:
            progress(f"bench.peer: rss2email mailed {theirs[-1]['mails']} entries; re-poll 304")
    _emit_all(plans, names, rss_names, ours, ours_rss, cli, theirs, entries)


def _describe(server: FeedServerProcess, names: list[str]) -> None:
    progress(f"bench.peer: {len(names)} feeds served from {server.base} ({SHARED_FEEDS})")
    for name in names:
        plan = server.plans[name]
        mark = " [substituted]" if plan.substituted else ""
        progress(f"  {name:<20} {plan.format:<14} {plan.note or plan.files[0]}{mark}")


def _emit_all(plans, names, rss_names, ours, ours_rss, cli, theirs, entries) -> None:
    figures = ours[-1].figures
    full = [r.full_seconds for r in ours]
    registry = load_registry(FEEDS_FILE)
    emit(
        "peer.ours.full",
        len(names),
        full,
        what="Poller.poll_feeds, every feed: fetch, parse, store, relevance scoring; "
        "fresh migrated SQLite",
        **figures,
        advisories_per_second=round(figures["advisories"] / _median(full), 1),
        enabled_for_bench=[f.name for f in registry.feeds if not f.enabled and f.name in names],
        substituted={
            n: f"{plans[n].files[0]}: {plans[n].substituted}" for n in names if plans[n].substituted
        },
        listings={n: plans[n].note for n in names if plans[n].note},
        not_served={n: p.substituted for n, p in plans.items() if not p.path},
        corpus=str(SHARED_FEEDS),
    )
    emit(
        "peer.ours.repoll",
        len(names),
        [r.repoll_seconds for r in ours],
        what="Poller.poll_feeds again: conditional GET, every feed answered 304",
        statuses_304=figures["repoll_304"],
        requests=figures["repoll_requests"],
    )
    if not rss_names:
        return
    subset = "the RSS/Atom subset (the only feeds rss2email reads)"
    peer = {key: [r[key] for r in theirs] for key in ("full", "repoll", "no_send", "start")}
    if theirs:  # rss2email's re-poll less the start of its process (`r2e list`)
        peer["repoll_less_start"] = _less(peer["repoll"], peer["start"])

    def ratio(timings: list[float], key: str, name: str = "ratio") -> dict:
        """ours / peer (medians) when the peer ran."""
        return {name: _ratio(timings, peer[key])} if theirs else {}

    rss_full = [r.full_seconds for r in ours_rss]
    rss_repoll = [r.repoll_seconds for r in ours_rss]
    emit(
        "peer.ours.rss-full",
        len(rss_names),
        rss_full,
        what=f"as peer.ours.full, on {subset}",
        advisories=ours_rss[-1].figures["advisories"],
        **ratio(rss_full, "full"),
        **ratio(rss_full, "no_send", "ratio_no_send"),  # rss2email mailing nothing
        feeds=rss_names,
    )
    emit(
        "peer.ours.rss-repoll",
        len(rss_names),
        rss_repoll,
        what=f"as peer.ours.repoll, on {subset}",
        statuses_304=ours_rss[-1].figures["repoll_304"],
        **ratio(rss_repoll, "repoll"),
        **ratio(rss_repoll, "repoll_less_start", "ratio_peer_start_excluded"),
    )
    if cli:
        for phase, what in (
            ("full", f"`alerts poll --feed ...` as a process (start-up included), on {subset}"),
            ("repoll", "the same command again: every feed answered 304"),
        ):
            timings = [r[phase] for r in cli]
            emit(
                f"peer.ours.rss-{phase}-process",
                len(rss_names),
                timings,
                what=what,
                **ratio(timings, phase),
                peak_rss_mb=max(r[f"{phase}_rss"] for r in cli),
                peak_rss_of="the alerts process",
            )
    if not theirs:
        return
    common = {
        "peer_version": PEER_VERSION,
        "process_start_seconds": round(_median(peer["start"]), 4),
        "peak_rss_mb": max(r["peak_rss"] for r in theirs),
        "peak_rss_of": "the r2e process",
    }
    emit(
        "peer.rss2email.full",
        len(rss_names),
        peer["full"],
        what=f"`r2e run` (a process) with a fresh data file, on {subset}: every entry mailed "
        "to an SMTP sink on 127.0.0.1",
        mails=theirs[-1]["mails"],
        entries=entries,
        no_send_seconds=round(_median(peer["no_send"]), 4),
        **common,
        feeds_not_read=sorted(set(names) - set(rss_names)),
        feeds_not_read_reason="rss2email reads RSS/Atom only",
    )
    emit(
        "peer.rss2email.repoll",
        len(rss_names),
        peer["repoll"],
        what="`r2e run` again: conditional GET (feedparser's etag/modified), every feed 304",
        mails=0,
        statuses_304=len(rss_names),
        **common,
    )


if __name__ == "__main__":
    main()
