"""Storing records: insert-or-update, revisions, stubs, duplicates, concurrency, CVE links."""

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from alerts.ingest.persist import store_epss, store_records
from alerts.ingest.records import AdvisoryRecord, Cvss, EpssScore
from alerts.models import Advisory, AdvisoryCve, AdvisoryRevision
from alerts.models import EpssScore as EpssRow
from alerts.queries import AdvisoryFilter, list_advisories, list_vulnerabilities, vulnerability

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def record(item_id="ADV-1", **changes) -> AdvisoryRecord:
    values = dict(
        item_id=item_id,
        title=f"Kwetsbaarheid in ExampleVPN ({item_id})",
        summary_text="Een aanvaller kan op afstand code uitvoeren.",
        url=f"https://advisories.example.org/{item_id}",
        published=T0,
        updated=T0,
        language="nl",
        cve_ids=["CVE-2026-10001"],
        cvss=Cvss("3.1", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CRITICAL"),
        vendors=["ExampleSoft"],
        products=["ExampleVPN"],
    )
    values.update(changes)
    return AdvisoryRecord(**values)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_new_then_unchanged(database):
    with database.session() as session:
        first = store_records(session, "ncsc-nl", [record("A"), record("B")])
    with database.session() as session:
        again = store_records(session, "ncsc-nl", [record("A"), record("B")])
        assert count(session, Advisory) == 2
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)


def test_stored_fields_round_trip_in_utc(database):
    with database.session() as session:
        store_records(session, "ncsc-nl", [record()])
    with database.session() as session:
        row = session.scalars(select(Advisory)).one()
        assert row.published == T0 and row.published.tzinfo is not None
        assert row.cvss_score == 9.8 and row.cvss_severity == "CRITICAL"
        assert row.cve_ids == ["CVE-2026-10001"]
        assert row.uid.startswith("ncsc-nl:") and len(row.uid) == len("ncsc-nl:") + 16
        assert row.revision == 1


def test_a_changed_advisory_is_a_revision_not_a_new_item(database):
    with database.session() as session:
        store_records(session, "certfr", [record()])
    changed = record(
        title="[MàJ] Kwetsbaarheid in ExampleVPN",
        updated=T0 + timedelta(days=1),
        cve_ids=["CVE-2026-10001", "CVE-2026-10002"],
    )
    with database.session() as session:
        counts = store_records(session, "certfr", [changed])
    assert counts.updated == 1
    with database.session() as session:
        row = session.scalars(select(Advisory)).one()
        assert row.revision == 2 and row.title.startswith("[MàJ]")
        revision = session.scalars(select(AdvisoryRevision)).one()
        assert revision.revision == 1
        assert revision.snapshot["title"] == "Kwetsbaarheid in ExampleVPN (ADV-1)"
        cves = set(session.scalars(select(AdvisoryCve.cve_id)))
        assert cves == {"CVE-2026-10001", "CVE-2026-10002"}


def test_an_older_copy_never_replaces_a_newer_one(database):
    with database.session() as session:
        store_records(session, "s", [record(updated=T0 + timedelta(days=2), title="new")])
    with database.session() as session:
        counts = store_records(session, "s", [record(updated=T0, title="old")])
    assert counts.unchanged == 1
    with database.session() as session:
        assert session.scalars(select(Advisory.title)).one() == "new"


def test_a_stub_never_replaces_the_full_document(database):
    with database.session() as session:
        store_records(session, "csaf", [record(summary_text="full text")])
    stub = record(summary_text="", facts={"stub": True}, updated=T0 + timedelta(hours=1))
    with database.session() as session:
        assert store_records(session, "csaf", [stub]).unchanged == 1
        assert session.scalars(select(Advisory.summary_text)).one() == "full text"


def test_the_full_document_replaces_its_stub(database):
    with database.session() as session:
        store_records(session, "csaf", [record(summary_text="", facts={"stub": True})])
    with database.session() as session:
        assert store_records(session, "csaf", [record(summary_text="full")]).updated == 1
        row = session.scalars(select(Advisory)).one()
        assert row.is_stub is False and row.summary_text == "full"


def test_repeated_ids_in_one_document_are_stored_once(database):
    with database.session() as session:
        counts = store_records(session, "news", [record("X"), record("X", title="dup")])
        assert count(session, Advisory) == 1
    assert counts.new == 1 and counts.duplicates == 1 and counts.warnings


def test_same_item_in_two_sources_is_two_advisories_linked_by_cve(database):
    with database.session() as session:
        store_records(session, "certfr-avis", [record("CERTFR-2026-AVI-0001")])
        store_records(
            session,
            "cisa-kev",
            [record("CVE-2026-10001", kind="known-exploited", known_exploited=True)],
        )
    with database.session() as session:
        found = vulnerability(session, "cve-2026-10001")
        assert found.sources == ["certfr-avis", "cisa-kev"]
        assert found.known_exploited
        rows = list_vulnerabilities(session)
        assert rows[0].cve_id == "CVE-2026-10001" and rows[0].sources == 2
        filtered = list_advisories(session, AdvisoryFilter(cve="CVE-2026-10001"))
        assert len(filtered) == 2


def test_concurrent_pollers_store_each_item_once(database):
    batch = [record(f"ADV-{i}") for i in range(200)]
    failures = []

    def poll():
        try:
            with database.session() as session:
                store_records(session, "ncsc-nl", batch)
        except Exception as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with database.session() as session:
        assert count(session, Advisory) == 200
        assert count(session, AdvisoryCve) == 200
        assert count(session, AdvisoryRevision) == 0


def test_large_batches_cross_the_batch_boundary(database):
    with database.session() as session:
        counts = store_records(session, "kev", [record(f"CVE-2026-{i:05d}") for i in range(1203)])
    assert counts.new == 1203


def test_epss_upsert_keeps_the_newest_score(database):
    day1, day2 = datetime(2026, 9, 1).date(), datetime(2026, 9, 2).date()
    with database.session() as session:
        store_epss(session, [EpssScore("CVE-2024-3400", 0.9, 0.99, day1)])
    with database.session() as session:
        store_epss(session, [EpssScore("CVE-2024-3400", 0.95, 0.999, day2)])
    with database.session() as session:
        row = session.get(EpssRow, "CVE-2024-3400")
        assert (row.epss, row.scored_on) == (0.95, day2)


def test_a_revision_keeps_the_previous_raw_document_and_stores_the_new_one(database):
    with database.session() as session:
        store_records(session, "csaf", [record(raw={"version": 1}, facts={"stub": True})])
    with database.session() as session:
        store_records(session, "csaf", [record(raw={"version": 2}, summary_text="full")])
    with database.session() as session:
        row = session.scalars(select(Advisory)).one()
        assert row.raw == {"version": 2}
        snapshot = session.scalars(select(AdvisoryRevision.snapshot)).one()
        assert snapshot["raw"] == {"version": 1} and snapshot["is_stub"] is True


def test_concurrent_revisions_of_the_same_items_never_collide(database):
    """Four pollers storing successive versions of the same 100 advisories at once."""
    with database.session() as session:
        store_records(session, "cert", [record(f"ADV-{i}") for i in range(100)])
    failures = []

    def poll(version: int):
        batch = [
            record(f"ADV-{i}", title=f"v{version}", updated=T0 + timedelta(hours=version))
            for i in range(100)
        ]
        try:
            with database.session() as session:
                store_records(session, "cert", batch)
        except Exception as error:  # surfaced below
            failures.append(repr(error))

    for round_start in (1, 5):
        threads = [threading.Thread(target=poll, args=(round_start + n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    with database.session() as session:
        rows = session.scalars(select(Advisory)).all()
        assert {row.title for row in rows} == {"v8"}  # the newest version wins everywhere
        for row in rows:
            numbers = session.scalars(
                select(AdvisoryRevision.revision).where(AdvisoryRevision.advisory_id == row.id)
            ).all()
            assert sorted(numbers) == list(range(1, row.revision))


def test_nul_characters_are_dropped_before_they_reach_the_database(database):
    dirty = record(
        title="Exam\x00pleVPN",
        summary_text="a\x00b",
        raw={"note": "x\x00y"},
        facts={"generator": "tool\x00"},
    )
    with database.session() as session:
        store_records(session, "cert", [dirty])
    with database.session() as session:
        row = session.scalars(select(Advisory)).one()
        assert (row.title, row.summary_text) == ("ExampleVPN", "ab")
        assert row.raw == {"note": "xy"} and row.facts == {"generator": "tool"}


def test_unknown_severities_and_future_dates_are_not_stored(database):
    odd = record(
        cvss=Cvss("3.1", 0.0, None, "INFORMATIONAL"),
        published=datetime.now(UTC) + timedelta(days=3000),
    )
    with database.session() as session:
        store_records(session, "cert", [odd])
    with database.session() as session:
        row = session.scalars(select(Advisory)).one()
        assert row.cvss_severity is None and row.published is None


def test_non_utc_datetimes_are_stored_as_the_same_instant(database):
    from datetime import timezone

    brussels = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with database.session() as session:
        store_records(session, "cert", [record(published=brussels)])
    with database.session() as session:
        stored = session.scalars(select(Advisory.published)).one()
    assert stored == brussels and stored.hour == 10


def test_text_search_folds_accents_case_and_takes_wildcards_literally(database):
    with database.session() as session:
        store_records(
            session,
            "certfr",
            [
                record("A", title="Écran de connexion vulnérable"),
                record("B", title="Remise à 100% des droits"),
                record("C", title="Remise a 1000 droits"),
            ],
        )
    with database.session() as session:
        found = list_advisories(session, AdvisoryFilter(text="écran"))
        assert [a.item_id for a in found] == ["A"]
        assert [a.item_id for a in list_advisories(session, AdvisoryFilter(text="100%"))] == ["B"]
        assert list_advisories(session, AdvisoryFilter(text="a_1")) == []


def test_a_full_document_replaces_a_stub_even_when_the_stub_is_dated_later(database):
    stub = record(summary_text="", facts={"stub": True}, updated=T0 + timedelta(seconds=1))
    with database.session() as session:
        store_records(session, "csaf", [stub])
    with database.session() as session:
        assert store_records(session, "csaf", [record(summary_text="full")]).updated == 1


def test_writers_in_opposite_orders_do_not_deadlock(database):
    """Two pollers storing the same changed items in opposite orders at once."""
    with database.session() as session:
        store_records(session, "cert", [record(f"ADV-{i}") for i in range(300)])
    changed = [
        record(f"ADV-{i}", title="changed", updated=T0 + timedelta(hours=1)) for i in range(300)
    ]
    failures = []

    def store(batch):
        try:
            with database.session() as session:
                store_records(session, "cert", batch)
        except Exception as error:  # surfaced below
            failures.append(repr(error))

    threads = [threading.Thread(target=store, args=(b,)) for b in (changed, changed[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
