"""Shared test fixtures: real publisher snapshots (read in place) and our own samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.common import find_shared_data

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


SHARED_DATA = find_shared_data()
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


# --------------------------------------------------------------------------- databases

POSTGRES_ADMIN_URL = os.environ.get(
    "ALERTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _postgres_wanted() -> bool:
    return IN_CI or "ALERTS_TEST_POSTGRES_URL" in os.environ


def _create_postgres_database() -> tuple[str, str]:
    """A fresh, uniquely named database; returns (sqlalchemy url, name)."""
    import uuid

    import psycopg

    name = f"alerts_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}".strip()
        if _postgres_wanted():
            pytest.fail(message + " (required under CI=true or ALERTS_TEST_POSTGRES_URL)")
        pytest.skip(message + " (set CI=true to require it)")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}", name


def _drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each database test runs on SQLite and on PostgreSQL (its own throwaway database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
        return
    url, name = _create_postgres_database()
    try:
        yield url
    finally:
        _drop_postgres_database(name)


@pytest.fixture
def database(database_url):
    from alerts.store import Database

    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def settings(tmp_path):
    from alerts.settings import load_settings

    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'settings.sqlite3'}",
        data_dir=tmp_path,
        http_timeout=2.0,
        http_total_timeout=5.0,
        http_retries=1,
        http_backoff=0.0,
        max_documents_per_poll=50,
        allow_private_addresses=True,  # the fake servers listen on 127.0.0.1
    )


@pytest.fixture
def feed_server():
    from tests.fakes.feed_server import FeedServer

    with FeedServer() as server:
        yield server


@pytest.fixture
def cli_env(monkeypatch, tmp_path, database_url):
    """The environment `alerts ...` reads, pointed at this test's database and folder."""
    from alerts.settings import get_settings

    monkeypatch.setenv("ALERTS_DATABASE_URL", database_url)
    monkeypatch.setenv("ALERTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
