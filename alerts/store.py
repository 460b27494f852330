"""Engine, sessions and automatic Alembic migrations, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import fcntl
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, Engine, any_, bindparam, cast, create_engine, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    json = {"json_serializer": to_json, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **json)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8, **json)


def to_json(value: Any) -> str:
    """JSON columns accept dates (as ISO text) so callers need no defensive copies.

    orjson: JSON encoding of raw documents was the largest cost of storing advisories."""
    text = orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode("utf-8")
    if "\\u0000" in text:  # PostgreSQL's JSONB refuses NUL; it carries no meaning in feeds
        text = _JSON_NUL.sub(r"\1", text)
    return text


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
# An escaped NUL, not an escaped backslash followed by "u0000".
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def among(column, ids: list[int], dialect: str):
    """`column IN ids` with the ids as one parameter (a PostgreSQL array, a JSON list on
    SQLite), not one placeholder each: with thousands of ids per statement, rendering and
    converting the placeholders cost more than the statement itself."""
    if dialect == "postgresql":
        return column == any_(
            cast(bindparam(None, list(ids), ARRAY(BigInteger)), ARRAY(BigInteger))
        )
    listed = func.json_each(bindparam(None, orjson.dumps(list(ids)).decode())).table_valued("value")
    return column.in_(select(listed.c.value))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (the web app) work while a poller writes; foreign keys for cascades.
    # SQLite's own lower() folds ASCII only; advisories are in French, Dutch and German.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x5E1E7A  # an arbitrary, fixed PostgreSQL advisory-lock key


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; runs on every start).

    On PostgreSQL several processes may start at once: an advisory lock lets one migrate
    while the others wait, then find nothing left to do."""
    with _MIGRATING:  # Alembic's context is process-global: one migration per process
        if engine.dialect.name != "postgresql":
            with _file_lock(engine):
                command.upgrade(alembic_config(engine), "head")
            return
        with engine.connect() as lock:
            lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            try:
                command.upgrade(alembic_config(engine), "head")
            finally:
                lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                lock.commit()


_MIGRATING = threading.Lock()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """Processes sharing one SQLite file migrate one after another (a lock file beside it)."""
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Database:
    """One engine and its session factory; the only way code reaches the database."""

    def __init__(self, url: str, *, auto_migrate: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if auto_migrate:
            migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
