"""Engine set-up and migrations on both databases."""

import threading

from sqlalchemy import inspect, text

from alerts.feeds import parse_registry, sync_feeds
from alerts.store import Database, migrate
from tests.test_feeds_registry import GOOD

REGISTRY = parse_registry(GOOD)


def test_migrations_create_every_table(database):
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "advisories",
        "advisory_cves",
        "advisory_revisions",
        "feeds",
        "linked_documents",
        "epss_scores",
        "poll_runs",
        "alembic_version",
    } <= tables


def test_migrating_again_is_harmless(database):
    migrate(database.engine)
    with database.session() as session:
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == _head()


def _head() -> str:
    from alembic.script import ScriptDirectory

    from alerts.store import alembic_config

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def test_several_processes_starting_at_once(database_url):
    """Migrations and feed sync from four starters at the same moment: no errors."""
    failures = []

    def start():
        try:
            db = Database(database_url)
            with db.session() as session:
                sync_feeds(session, REGISTRY)
            db.dispose()
        except Exception as error:  # surfaced below
            failures.append(repr(error))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
