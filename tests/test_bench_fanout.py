"""The fan-out benchmark end to end at a small size: worker processes, the counting fake,
the JSON line it promises (so `make bench` cannot rot unnoticed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

KEYS = {"bench", "n", "seconds", "runs", "peak_rss_mb", "db", "workers", "wire_seconds", "ratio"}


def _run(*arguments: str) -> dict:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.fanout", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_two_workers_deliver_every_message_and_report_the_promised_keys(database_url):
    """On both databases (an empty one from the fixture; the bench migrates it)."""
    line = _run("--n", "2500", "--workers", "2", "--db", database_url)
    db = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    assert line.keys() >= KEYS
    assert (line["bench"], line["n"], line["db"], line["workers"]) == ("fanout", 2500, db, 2)
    assert line["seconds"] > 0 and line["wire_seconds"] > 0
    assert line["ratio"] == pytest.approx(line["seconds"] / line["wire_seconds"], rel=0.02)
