"""The peer benchmark (bench.peer) at a small size: the snapshot server and its
conditional answers, the generated listings, ours on two feeds with the JSON lines it
promises, the SMTP sink, and rss2email when its venv is already there (no network here)."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
from email.message import EmailMessage

import httpx
import pytest

from alerts.ingest import parsers
from alerts.ingest.linked import LINKED_FORMAT
from bench.peer import (
    FEEDS_FILE,
    PEER_VENV,
    PEER_VERSION,
    FeedServerProcess,
    SmtpSink,
    build_site,
    load_registry,
    peer_executable,
)
from tests.conftest import ROOT, require_shared

KEYS = {"bench", "n", "seconds", "min", "max", "runs", "per_second", "peak_rss_mb"}


def _bench(*arguments: str) -> dict[str, dict]:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.peer", *arguments],
        cwd=ROOT,
        env=os.environ | {"BENCH_RUNS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = [json.loads(line) for line in finished.stdout.splitlines()]
    return {line["bench"]: line for line in lines}


def test_the_smtp_sink_counts_what_it_is_sent():
    with SmtpSink() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            for number in (1, 2):
                message = EmailMessage()
                message["From"], message["To"] = "a@example.invalid", "b@example.invalid"
                message["Subject"] = f"message {number}"
                message.set_content(".a line starting with a dot\n\nbody")
                client.send_message(message)
            client.noop()
            client.rset()
        assert sink.reset() == 2
        assert sink.reset() == 0


def test_every_listing_is_read_by_our_parser_and_links_to_served_documents():
    shared = require_shared()
    base = "http://127.0.0.1:9"
    site = build_site(load_registry(FEEDS_FILE), shared, base)
    assert [plan.name for plan in site.plans] == [f.name for f in load_registry(FEEDS_FILE).feeds]
    directories = [plan for plan in site.plans if plan.format in LINKED_FORMAT]
    assert directories
    for plan in directories:
        result = parsers.parse(site.routes[plan.path].body, plan.format, base + plan.path)
        assert len(result.links) == plan.documents > 0, plan.name
        for link in result.links:
            assert link.url.removeprefix(base) in site.routes, (plan.name, link.url)
    for plan in site.plans:  # no feed left out, no broken file served
        assert plan.path in site.routes, plan.name
        assert not any(name.split("/")[-1].startswith("MALFORMED_") for name in plan.files)


def test_the_server_answers_conditional_requests_with_304():
    require_shared()
    with FeedServerProcess() as server:
        url = server.url("certfr-avis")
        first = httpx.get(url)
        assert first.status_code == 200 and first.headers["ETag"]
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert httpx.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        changed = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert httpx.get(url, headers=changed).status_code == 200  # the ETag wins
        assert httpx.get(server.base + "/nothing-here").status_code == 404
        path = server.plans["certfr-avis"].path
        assert server.take_log() == [(path, 200), (path, 304), (path, 304), (path, 200)] + [
            ("/nothing-here", 404)
        ]


def test_ours_on_two_feeds_full_poll_then_all_304():
    require_shared()
    lines = _bench("--feeds", "certfr-avis,ncsc-nl-csaf", "--no-peer", "--no-process")
    assert set(lines) == {
        "peer.ours.full",
        "peer.ours.repoll",
        "peer.ours.rss-full",
        "peer.ours.rss-repoll",
    }
    full, repoll = lines["peer.ours.full"], lines["peer.ours.repoll"]
    assert full.keys() >= KEYS | {"advisories", "documents", "substituted", "enabled_for_bench"}
    assert (full["n"], full["runs"], full["requests_not_200"]) == (2, 1, 0)
    assert full["advisories"] > 40 and full["documents"] == 1  # the CSAF document, linked
    assert full["substituted"] == {} and full["not_served"] == {}
    assert (repoll["n"], repoll["statuses_304"], repoll["requests"]) == (2, 2, 2)
    assert lines["peer.ours.rss-full"]["feeds"] == ["certfr-avis"]
    assert lines["peer.ours.rss-repoll"]["statuses_304"] == 1
    assert "ratio" not in lines["peer.ours.rss-full"]  # no peer, no ratio


def test_rss2email_mails_every_entry_then_gets_304():
    require_shared()
    if peer_executable(install=False) is None:
        pytest.skip(
            f"rss2email {PEER_VERSION} is not installed in {PEER_VENV}; `python -m bench.peer` "
            "creates it once from the package index (the tests never use the network)"
        )
    lines = _bench("--feeds", "certfr-avis,bleepingcomputer,eu-kev", "--no-process")
    full, repoll = lines["peer.rss2email.full"], lines["peer.rss2email.repoll"]
    assert full["mails"] == full["entries"] == 43  # 40 CERT-FR entries, 3 BleepingComputer
    assert full["feeds_not_read"] == ["eu-kev"] and full["peer_version"] == PEER_VERSION
    assert (repoll["mails"], repoll["statuses_304"]) == (0, 2)
    assert lines["peer.ours.rss-full"]["advisories"] == 43
    assert lines["peer.ours.rss-full"]["ratio_no_send"] > 0
    assert lines["peer.ours.rss-repoll"]["ratio_peer_start_excluded"] > 0
    for name in ("peer.ours.rss-full", "peer.ours.rss-repoll"):
        ours, peer = lines[name], lines[name.replace("ours.rss-", "rss2email.")]
        assert ours["ratio"] == pytest.approx(ours["seconds"] / peer["seconds"], rel=0.02)
