"""Store normalized records: insert-or-update keyed on (source, item), with revisions.

Safe under concurrent pollers: new rows go in with INSERT ... ON CONFLICT DO NOTHING, and
changed rows are updated under a row lock, so two pollers storing the same item end with
one row and, at most, one extra revision.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

    def add(self, other: StoreCounts) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.warnings.extend(other.warnings)


def item_key(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def advisory_uid(source: str, item_id: str) -> str:
    """Stable public id: readable source name plus a short hash of the item id."""
    return f"{source[:60]}:{item_key(item_id)[:16]}"


def row_values(record: AdvisoryRecord) -> dict[str, Any]:
    """The content columns of a record, exactly as they are stored."""
    cvss = record.cvss
    return {
        "kind": record.kind,
        "title": record.title[:2000],
        "summary_text": record.summary_text,
        "summary_html": record.summary_html,
        "url": record.url,
        "links": list(record.links),
        "published": record.published,
        "updated": record.updated,
        "language": (record.language or None) and record.language[:8],
        "cve_ids": list(record.cve_ids),
        "cvss_version": cvss.version if cvss else None,
        "cvss_score": cvss.score if cvss else None,
        "cvss_vector": cvss.vector if cvss else None,
        "cvss_severity": cvss.severity if cvss else None,
        "vendors": list(record.vendors),
        "products": list(record.products),
        "known_exploited": bool(record.known_exploited),
        "is_stub": bool(record.facts.get("stub")),
        "facts": record.facts,
    }


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
    unique_records = _dedupe(records, counts)
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
    prepared = {item_key(r.item_id): (r, row_values(r)) for r in records}
    existing = _existing_hashes(session, source, list(prepared))
    fresh = {k: v for k, v in prepared.items() if k not in existing}
    inserted = _insert_new(session, source, fresh, now)
    counts.new += len(inserted)
    untouched: list[str] = []
    for key, (_record, values) in prepared.items():
        if key in inserted:
            continue
        if existing.get(key) == content_hash(values):
            untouched.append(key)  # the common re-poll case: one UPDATE for all of them
            continue
        outcome = _update_existing(session, source, key, values, now)
        counts.updated += outcome == "updated"
        counts.unchanged += outcome == "unchanged"
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
) -> set[str]:
    """Bulk insert; rows another poller inserted meanwhile are skipped, not duplicated."""
    if not fresh:
        return set()
    rows = []
    for key, (record, values) in fresh.items():
        rows.append(
            values
            | {
                "uid": advisory_uid(source, record.item_id),
                "source": source,
                "item_id": record.item_id,
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
    return {key for _, key in inserted}


def _link_cves(session: Session, pairs: list[tuple[int, list[str]]]) -> None:
    links = [
        {"advisory_id": advisory_id, "cve_id": cve}
        for advisory_id, cves in pairs
        for cve in dict.fromkeys(cves)
    ]
    if links:
        session.execute(AdvisoryCve.__table__.insert(), links)


def _update_existing(
    session: Session, source: str, key: str, values: dict[str, Any], now: datetime
) -> str:
    """'updated' when the content changed (a revision is recorded), else 'unchanged'."""
    row = session.execute(
        select(Advisory)
        .where(Advisory.source == source, Advisory.item_key == key)
        .with_for_update()
    ).scalar_one()
    row.last_seen_at = now
    new_hash = content_hash(values)
    if row.content_hash == new_hash or _is_stale(row, values):
        return "unchanged"
    session.add(
        AdvisoryRevision(
            advisory_id=row.id,
            revision=row.revision,
            content_hash=row.content_hash,
            snapshot=_snapshot(row),
            recorded_at=now,
        )
    )
    for name, value in values.items():
        setattr(row, name, value)
    row.content_hash = new_hash
    row.revision += 1
    if set(row.cve_ids) != {c.cve_id for c in row.cves}:
        session.execute(delete(AdvisoryCve).where(AdvisoryCve.advisory_id == row.id))
        _link_cves(session, [(row.id, values["cve_ids"])])
        session.expire(row, ["cves"])
    return "updated"


def _is_stale(row: Advisory, values: dict[str, Any]) -> bool:
    """A stub (ROLIE entry) never replaces a full document; an older copy never replaces a
    newer one."""
    if values["is_stub"] and not row.is_stub:
        return True
    incoming, stored = values["updated"], row.updated
    return bool(incoming and stored and incoming < stored)


def _snapshot(row: Advisory) -> dict[str, Any]:
    return _jsonable({name: getattr(row, name) for name in CONTENT_FIELDS})


def _jsonable(value: Any) -> Any:
    """JSON-safe copy (datetimes as ISO strings) for JSON columns."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def store_epss(session: Session, scores: Iterable[EpssScore]) -> int:
    """Upsert EPSS scores; a newer file replaces older scores for the same CVE."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    total = 0
    batch: list[dict[str, Any]] = []
    for score in scores:
        batch.append(
            {
                "cve_id": score.cve_id,
                "epss": score.epss,
                "percentile": score.percentile,
                "scored_on": score.scored_on,
            }
        )
        if len(batch) >= 5000:
            total += _upsert_epss(session, insert, batch)
            batch = []
    return total + (_upsert_epss(session, insert, batch) if batch else 0)


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
