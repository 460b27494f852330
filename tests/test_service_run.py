"""`alerts run` for real, as a process: it starts, reports ready with its scheduler, prints
the first admin once, stops on SIGTERM; a second instance on the same database serves
without a scheduler of its own (one leader) and takes over when the first is gone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REGISTRY = """
feeds:
  - name: local-only
    title: A feed on a closed local port
    publisher: Test
    url: http://127.0.0.1:9/feed.xml
    format: rss
    language: en
    category: cert
    interval: 30m
"""


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(tmp_path: Path, database_url: str, port: int) -> subprocess.Popen:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(REGISTRY, encoding="utf-8")
    environment = os.environ | {
        "ALERTS_DATABASE_URL": database_url,
        "ALERTS_DATA_DIR": str(tmp_path),
        "ALERTS_FEEDS_FILE": str(feeds),
        "ALERTS_PORT": str(port),
        "ALERTS_ALLOW_PRIVATE_ADDRESSES": "true",
        "ALERTS_SECRET_KEY": "run-test-secret-key-0123456789",
    }
    command = [sys.executable, "-c", "from alerts.cli import app; app()", "run"]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _ready(port: int, scheduler: str | None, deadline: float = 30) -> dict:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
            if answer.get("status") == "ok" and answer.get("scheduler") == scheduler:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"port {port} never became ready with scheduler={scheduler}")


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_run_serves_one_scheduler_and_hands_it_over(database_url, tmp_path):
    first_port, second_port = _port(), _port()
    first = _start(tmp_path, database_url, first_port)
    try:
        _ready(first_port, "running")
        second = _start(tmp_path, database_url, second_port)
        try:
            answer = _ready(second_port, None)  # serving, but not the leader
            assert "scheduler" not in answer
            metrics = httpx.get(f"http://127.0.0.1:{first_port}/metrics", timeout=5).text
            assert "alerts_scheduler_running 1.0" in metrics
            output = _stop(first)
            assert "password (shown once)" in output  # the first admin, on the console
            _ready(second_port, "running", deadline=60)  # took over within its retry time
        finally:
            second_output = _stop(second)
        assert "password (shown once)" not in second_output  # printed once only
    finally:
        if first.poll() is None:
            _stop(first)
