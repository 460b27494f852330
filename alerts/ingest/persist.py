"""Store normalized records: insert-or-update keyed on (source, item), with revisions.

Safe under concurrent pollers: new rows go in with INSERT ... ON CONFLICT DO NOTHING, and
changed rows are updated under a row lock, so two pollers storing the same item end with
one row and, at most, one extra revision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from alerts.ingest.records import AdvisoryRecord, EpssScore
from alerts.models import Advisory, AdvisoryCve, AdvisoryRevision
from alerts.models import EpssScore as EpssRow

BATCH = 500
# Fields whose change makes a new revision (raw and timestamps of our own do not).
CONTENT_FIELDS = (
    "kind",
    "title",
    "summary_text",
    "summary_html",
    "url",
    "links",
    "published",
    "updated",
    "language",
    "cve_ids",
    "cvss_version",
    "cvss_score",
    "cvss_vector",
    "cvss_severity",
    "vendors",
    "products",
    "known_exploited",
    "is_stub",
    "facts",
)


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # repeated ids inside the same document
    warnings: list[str] = field(default_factory=list)
    changed_ids: list[int] = field(default_factory=list)  # new and revised advisories

    def add(self, other: StoreCounts) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.warnings.extend(other.warnings)
        self.changed_ids.extend(other.changed_ids)


def item_key(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def advisory_uid(source: str, item_id: str) -> str:
    """Stable public id: readable source name plus a short hash of the item id."""
    return f"{source[:60]}:{item_key(item_id)[:16]}"


def row_values(record: AdvisoryRecord, now: datetime) -> dict[str, Any]:
    """The content columns of a record, exactly as they are stored.

    Text is cleaned of NUL characters (PostgreSQL refuses them), the severity is one of the
    CVSS ratings, and dates in the future (beyond a day of clock skew) are dropped: a
    publisher's typo must not pin an advisory to the top of every list."""
    cvss = record.cvss
    return {
        "kind": record.kind,
        "title": _text(record.title)[:2000],
        "summary_text": _text(record.summary_text),
        "summary_html": _text(record.summary_html),
        "url": _text(record.url) or None,
        "links": [_text(link) for link in record.links],
        "published": _plausible(record.published, now),
        "updated": _plausible(record.updated, now),
        "language": _text(record.language)[:8] or None,
        "cve_ids": list(record.cve_ids),
        "cvss_version": cvss.version if cvss else None,
        "cvss_score": cvss.score if cvss else None,
        "cvss_vector": (_text(cvss.vector) or None) if cvss else None,
        "cvss_severity": cvss.severity if cvss and cvss.severity in SEVERITIES else None,
        "vendors": list(record.vendors),
        "products": list(record.products),
        "known_exploited": bool(record.known_exploited),
        "is_stub": bool(record.facts.get("stub")),
        "facts": record.facts,
    }


SEVERITIES = {"NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
CLOCK_SKEW = timedelta(days=1)


def _text(value: str | None) -> str:
    return value.replace("\x00", "") if value else ""


def _plausible(moment: datetime | None, now: datetime) -> datetime | None:
    return moment if moment is None or moment <= now + CLOCK_SKEW else None


def content_hash(values: dict[str, Any]) -> str:
    content = {k: values[k] for k in CONTENT_FIELDS}
    encoded = orjson.dumps(
        content, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    )
    return hashlib.sha256(encoded).hexdigest()


def store_records(
    session: Session, source: str, records: Iterable[AdvisoryRecord], *, now: datetime | None = None
) -> StoreCounts:
    """Insert new advisories, revise changed ones, touch unchanged ones."""
    now = now or datetime.now(UTC)
    counts = StoreCounts()
    # Sorted by key: concurrent writers then lock rows in the same order (no deadlocks).
    unique_records = sorted(_dedupe(records, counts), key=lambda r: item_key(r.item_id))
    for start in range(0, len(unique_records), BATCH):
        counts.add(_store_batch(session, source, unique_records[start : start + BATCH], now))
    return counts


def _dedupe(records: Iterable[AdvisoryRecord], counts: StoreCounts) -> list[AdvisoryRecord]:
    """The first record wins when a document repeats an id (duplicate GUIDs happen)."""
    seen: dict[str, AdvisoryRecord] = {}
    for record in records:
        if record.item_id in seen:
            counts.duplicates += 1
            continue
        seen[record.item_id] = record
    if counts.duplicates:
        counts.warnings.append(f"{counts.duplicates} repeated item ids ignored")
    return list(seen.values())


def _store_batch(
    session: Session, source: str, records: Sequence[AdvisoryRecord], now: datetime
) -> StoreCounts:
    counts = StoreCounts()
    prepared = {item_key(r.item_id): (r, row_values(r, now)) for r in records}
    existing = _existing_hashes(session, source, list(prepared))
    fresh = {k: v for k, v in prepared.items() if k not in existing}
    inserted = _insert_new(session, source, fresh, now)
    counts.new += len(inserted)
    counts.changed_ids.extend(inserted.values())
    untouched: list[str] = []
    for key, (record, values) in prepared.items():
        if key in inserted:
            continue
        if existing.get(key) == content_hash(values):
            untouched.append(key)  # the common re-poll case: one UPDATE for all of them
            continue
        outcome, row_id = _update_existing(session, source, key, record, values, now)
        counts.updated += outcome == "updated"
        counts.unchanged += outcome == "unchanged"
        if outcome == "updated":
            counts.changed_ids.append(row_id)
    _touch(session, source, untouched, now)
    counts.unchanged += len(untouched)
    return counts


def _touch(session: Session, source: str, keys: list[str], now: datetime) -> None:
    if keys:
        session.execute(
            update(Advisory)
            .where(Advisory.source == source, Advisory.item_key.in_(keys))
            .values(last_seen_at=now)
        )


def _existing_hashes(session: Session, source: str, keys: list[str]) -> dict[str, str]:
    rows = session.execute(
        select(Advisory.item_key, Advisory.content_hash).where(
            Advisory.source == source, Advisory.item_key.in_(keys)
        )
    )
    return dict(rows.all())


def _insert_new(
    session: Session, source: str, fresh: dict[str, tuple[AdvisoryRecord, dict]], now: datetime
) -> dict[str, int]:
    """Bulk insert; rows another poller inserted meanwhile are skipped, not duplicated.
    Returns item key -> id of the rows this call inserted."""
    if not fresh:
        return {}
    rows = []
    for key, (record, values) in fresh.items():
        rows.append(
            values
            | {
                "uid": advisory_uid(source, record.item_id),
                "source": source,
                "item_id": _text(record.item_id),
                "item_key": key,
                "raw": record.raw,
                "content_hash": content_hash(values),
                "revision": 1,
                "first_seen_at": now,
                "last_seen_at": now,
            }
        )
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Advisory.__table__)  # Core, not ORM: bulk inserts without per-row ORM work
        .on_conflict_do_nothing(index_elements=["source", "item_key"])
        .returning(Advisory.__table__.c.id, Advisory.__table__.c.item_key)
    )
    inserted = session.execute(statement, rows).all()
    _link_cves(session, [(row_id, fresh[key][1]["cve_ids"]) for row_id, key in inserted])
    return {key: row_id for row_id, key in inserted}


def _link_cves(session: Session, pairs: list[tuple[int, list[str]]]) -> None:
    links = [
        {"advisory_id": advisory_id, "cve_id": cve}
        for advisory_id, cves in pairs
        for cve in dict.fromkeys(cves)
    ]
    if links:
        session.execute(AdvisoryCve.__table__.insert(), links)


def _update_existing(
    session: Session,
    source: str,
    key: str,
    record: AdvisoryRecord,
    values: dict[str, Any],
    now: datetime,
) -> tuple[str, int]:
    """('updated', id) when the content changed (a revision is recorded), else
    ('unchanged', id).

    The update is a compare-and-set on the revision number, so two pollers revising the
    same advisory at once cannot both record the same revision: the loser re-reads and
    finds the content already stored. (SQLite has no SELECT ... FOR UPDATE.)"""
    new_hash = content_hash(values)
    for _attempt in range(MAX_CAS_ATTEMPTS):
        row = _current_row(session, source, key)
        if row.content_hash == new_hash or _is_stale(row, values):
            _touch_ids(session, [row.id], now)
            return "unchanged", row.id
        if _compare_and_set(session, row, values, record.raw, new_hash, now):
            _record_revision(session, row, now)
            if set(row.cve_ids) != set(values["cve_ids"]):
                session.execute(
                    delete(ADVISORIES_CVES).where(ADVISORIES_CVES.c.advisory_id == row.id)
                )
                _link_cves(session, [(row.id, values["cve_ids"])])
            return "updated", row.id
    raise RuntimeError(f"advisory {source}/{key[:12]} kept changing under concurrent writers")


MAX_CAS_ATTEMPTS = 5
ADVISORIES = Advisory.__table__
ADVISORIES_CVES = AdvisoryCve.__table__


def _current_row(session: Session, source: str, key: str):
    query = select(ADVISORIES).where(ADVISORIES.c.source == source, ADVISORIES.c.item_key == key)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()  # serialise writers early where the database can
    return session.execute(query).one()


def _compare_and_set(session, row, values, raw, new_hash, now) -> bool:
    changed = session.execute(
        update(ADVISORIES)
        .where(ADVISORIES.c.id == row.id, ADVISORIES.c.revision == row.revision)
        .values(
            **values, raw=raw, content_hash=new_hash, revision=row.revision + 1, last_seen_at=now
        )
    )
    return changed.rowcount == 1


def _record_revision(session: Session, row, now: datetime) -> None:
    """Keep what the advisory said before this change, raw document included."""
    snapshot = {name: getattr(row, name) for name in CONTENT_FIELDS} | {"raw": row.raw}
    session.execute(
        AdvisoryRevision.__table__.insert().values(
            advisory_id=row.id,
            revision=row.revision,
            content_hash=row.content_hash,
            snapshot=snapshot,
            recorded_at=now,
        )
    )


def _touch_ids(session: Session, ids: list[int], now: datetime) -> None:
    session.execute(update(ADVISORIES).where(ADVISORIES.c.id.in_(ids)).values(last_seen_at=now))


def _is_stale(row, values: dict[str, Any]) -> bool:
    """A stub (ROLIE entry) never replaces a full document; an older copy never replaces a
    newer one."""
    if values["is_stub"] and not row.is_stub:
        return True
    if row.is_stub and not values["is_stub"]:
        return False  # the full document always replaces its feed-entry stub
    incoming, stored = values["updated"], row.updated
    return bool(incoming and stored and incoming < stored)


def store_epss(
    session: Session, scores: Iterable[EpssScore], *, watch: float | None = None
) -> tuple[int, list[str]]:
    """Upsert EPSS scores; a newer file replaces older scores for the same CVE.

    Returns the count and the CVEs whose score crossed `watch` (either way): only those can
    change a relevance decision, so only those need re-scoring."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    total, crossed = 0, []
    ordered = sorted(scores, key=lambda s: s.cve_id)  # one lock order for all writers
    for start in range(0, len(ordered), 5000):
        batch = ordered[start : start + 5000]
        if watch is not None:
            crossed.extend(_crossings(session, batch, watch))
        rows = [
            {
                "cve_id": s.cve_id,
                "epss": s.epss,
                "percentile": s.percentile,
                "scored_on": s.scored_on,
            }
            for s in batch
        ]
        total += _upsert_epss(session, insert, rows)
    return total, crossed


def _crossings(session: Session, batch: list[EpssScore], watch: float) -> list[str]:
    old = dict(
        session.execute(
            select(EpssRow.cve_id, EpssRow.epss).where(
                EpssRow.cve_id.in_([s.cve_id for s in batch])
            )
        ).all()
    )
    return [s.cve_id for s in batch if (s.epss >= watch) != ((old.get(s.cve_id) or 0.0) >= watch)]


def _upsert_epss(session: Session, insert, batch: list[dict[str, Any]]) -> int:
    statement = insert(EpssRow)
    statement = statement.on_conflict_do_update(
        index_elements=["cve_id"],
        set_={
            "epss": statement.excluded.epss,
            "percentile": statement.excluded.percentile,
            "scored_on": statement.excluded.scored_on,
        },
    )
    session.execute(statement, batch)
    return len(batch)
