"""Shared test fixtures: real publisher snapshots (read in place) and our own samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("ALERTS_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_FEEDS = SHARED_DATA / "feeds"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_shared() -> Path:
    """The real snapshot folder; skip (or fail under CI) when this clone has none."""
    if SHARED_FEEDS.is_dir():
        return SHARED_FEEDS
    message = (
        f"real advisory snapshots not found at {SHARED_FEEDS} "
        "(they live in ../shared/data/feeds on the team machines; set ALERTS_SHARED_DATA)"
    )
    if IN_CI:
        pytest.fail(message + " - they must be present under CI=true")
    pytest.skip(message)


@pytest.fixture
def shared_feeds() -> Path:
    return require_shared()


@pytest.fixture
def read_shared(shared_feeds):
    """read_shared("rss/certfr-avis-feed-2026-08-20.xml") -> bytes."""

    def read(relative: str) -> bytes:
        return (shared_feeds / relative).read_bytes()

    return read


@pytest.fixture
def read_fixture():
    """read_fixture("feeds/rss/sample.xml") -> bytes, from tests/fixtures (our own files)."""

    def read(relative: str) -> bytes:
        return (FIXTURES / relative).read_bytes()

    return read
