"""Real-browser tests: the app served by uvicorn on 127.0.0.1 and Debian's chromium driven
by Playwright. Skipped with the reason when chromium or Playwright is missing, except
under CI=true (`make test` installs both)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser():
    """The Playwright module, or a skip (a failure under CI=true)."""
    reason = None
    if CHROMIUM is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run under CI: {reason}")
    if reason:
        pytest.skip(reason)
    return sync_playwright


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve the app on a free 127.0.0.1 port in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian chromium, reachable only on 127.0.0.1 (no other traffic)."""
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"],
        )
        try:
            yield browser
        finally:
            browser.close()
