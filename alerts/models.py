"""SQLAlchemy 2 models: feeds and their health, advisories, revisions, CVE links, EPSS."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)  # SQLite keeps no offset: store the UTC wall time

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class Feed(Base):
    """Run-time state of a feed from feeds.yaml: conditional-GET validators and health."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)  # as configured
    current_url: Mapped[str | None] = mapped_column(Text)  # after a permanent redirect
    format: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)  # e.g. "410 Gone"
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    polling_until: Mapped[datetime | None] = mapped_column(UtcDateTime)  # lease expiry
    lease_owner: Mapped[str | None] = mapped_column(String(32))  # token of the lease holder

    @property
    def fetch_url(self) -> str:
        return self.current_url or self.url


class Advisory(Base):
    """One advisory from one source; (source, item_key) is its identity."""

    __tablename__ = "advisories"
    __table_args__ = (
        UniqueConstraint("source", "item_key", name="uq_advisories_source_item"),
        Index("ix_advisories_published", "published"),
        Index("ix_advisories_source_published", "source", "published"),
        Index("ix_advisories_tier_queued", "tier", "queued_at"),
        # The staff queue: one tier, highest score first, then newest (keyset pages).
        Index("ix_advisories_queue", "tier", "score", "queued_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(80), unique=True)  # stable public id
    source: Mapped[str] = mapped_column(String(100))
    item_id: Mapped[str] = mapped_column(Text)
    item_key: Mapped[str] = mapped_column(String(64))  # sha256 of item_id
    kind: Mapped[str] = mapped_column(String(30), default="advisory")
    title: Mapped[str] = mapped_column(Text)
    summary_text: Mapped[str] = mapped_column(Text, default="")
    summary_html: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    links: Mapped[list[str]] = mapped_column(JsonType, default=list)
    published: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated: Mapped[datetime | None] = mapped_column(UtcDateTime)
    language: Mapped[str | None] = mapped_column(String(8))
    cve_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    cvss_version: Mapped[str | None] = mapped_column(String(8))
    cvss_score: Mapped[float | None] = mapped_column(Float)
    cvss_vector: Mapped[str | None] = mapped_column(Text)
    cvss_severity: Mapped[str | None] = mapped_column(String(10))
    vendors: Mapped[list[str]] = mapped_column(JsonType, default=list)
    products: Mapped[list[str]] = mapped_column(JsonType, default=list)
    known_exploited: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_stub: Mapped[bool] = mapped_column(Boolean, default=False)
    facts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    raw: Mapped[Any] = mapped_column(JsonType, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # SME relevance (alerts.relevance): recomputed on every change and on KEV/EPSS updates.
    tier: Mapped[str | None] = mapped_column(String(12))
    score: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[list | None] = mapped_column(JsonType, nullable=True)
    families: Mapped[list | None] = mapped_column(JsonType, nullable=True)
    exploitation: Mapped[str | None] = mapped_column(String(10))
    ransomware: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    epss: Mapped[float | None] = mapped_column(Float)
    rules_version: Mapped[str | None] = mapped_column(String(40))
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # entered or rose in queue
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)

    cves: Mapped[list[AdvisoryCve]] = relationship(
        back_populates="advisory", cascade="all, delete-orphan"
    )
    revisions: Mapped[list[AdvisoryRevision]] = relationship(
        back_populates="advisory",
        cascade="all, delete-orphan",
        order_by="AdvisoryRevision.revision",
    )


class AdvisoryCve(Base):
    """Links advisories about the same CVE across sources: the vulnerability view."""

    __tablename__ = "advisory_cves"

    advisory_id: Mapped[int] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True
    )
    cve_id: Mapped[str] = mapped_column(String(24), primary_key=True, index=True)
    advisory: Mapped[Advisory] = relationship(back_populates="cves")


class AdvisoryRevision(Base):
    """The previous content of an advisory each time the publisher changed it."""

    __tablename__ = "advisory_revisions"
    __table_args__ = (UniqueConstraint("advisory_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    advisory_id: Mapped[int] = mapped_column(ForeignKey("advisories.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)  # the revision this snapshot was
    content_hash: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonType)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    advisory: Mapped[Advisory] = relationship(back_populates="revisions")


class LinkedDocument(Base):
    """A document a directory-style feed listed (CSAF file, CVE record, CVRF release) and
    what happened when we fetched it: re-fetched only when the listing says it changed."""

    __tablename__ = "linked_documents"
    __table_args__ = (UniqueConstraint("source", "url_key", name="uq_linked_documents_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    url_key: Mapped[str] = mapped_column(String(64))  # sha256 of url
    url: Mapped[str] = mapped_column(Text)
    listed_updated: Mapped[datetime | None] = mapped_column(UtcDateTime)  # date in the listing
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))  # ok | pending | error | failed
    error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # for pending / error


class EpssScore(Base):
    __tablename__ = "epss_scores"

    cve_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    epss: Mapped[float] = mapped_column(Float)
    percentile: Mapped[float | None] = mapped_column(Float)
    scored_on: Mapped[date | None] = mapped_column(Date)


class PollRun(Base):
    """One poll of one feed (or one local file): what happened, for health and metrics."""

    __tablename__ = "poll_runs"
    __table_args__ = (Index("ix_poll_runs_source_started", "source", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))  # ok | not-modified | error | gone
    http_status: Mapped[int | None] = mapped_column(Integer)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
