"""The feed registry (feeds.yaml): schema, validation with the line at fault, and sync of
its entries into the database's run-time feed state."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from alerts.ingest.parsers import FORMATS
from alerts.models import Feed
from alerts.yamlfile import line_of, parse_with_nodes

Category = Literal["cert", "kev", "vendor", "news", "vulnerability-db", "enrichment"]
_DURATION_RE = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RegistryError(Exception):
    """feeds.yaml is invalid; the message names the file, line and field."""


def parse_duration(value: str | int) -> int:
    """'30m', '6h', '1d' or seconds -> seconds."""
    if isinstance(value, int):
        return value
    match = _DURATION_RE.match(str(value).strip())
    if not match:
        raise ValueError("use a duration like 15m, 2h or 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


class FeedConfig(BaseModel):
    """One feed as configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    title: str = Field(min_length=1, max_length=200)
    url: str = Field(pattern=r"^https?://\S+$")
    format: str
    language: str = Field(pattern=r"^(en|nl|fr|de|ja|mul)$")
    category: Category
    interval: int = Field(ge=300, le=7 * 86400, description="seconds between polls")
    enabled: bool = True
    publisher: str | None = None
    notes: str | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"unknown format; use one of {', '.join(sorted(FORMATS))}")
        return value

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, value: str | int) -> int:
        return parse_duration(value)

    @property
    def interval_delta(self) -> timedelta:
        return timedelta(seconds=self.interval)


class Registry(BaseModel):
    feeds: list[FeedConfig]

    def by_name(self, name: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise KeyError(name)


def load_registry(path: Path) -> Registry:
    """Read and validate feeds.yaml; RegistryError says which line is wrong and why."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(f"{path}: cannot read the feed registry ({error.strerror})") from None
    return parse_registry(text, str(path))


def parse_registry(text: str, filename: str = "feeds.yaml") -> Registry:
    try:
        node, data = parse_with_nodes(text)
    except yaml.YAMLError as error:
        raise RegistryError(f"{filename}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("feeds"), list):
        raise RegistryError(f"{filename}: line 1: expected a mapping with a 'feeds' list")
    try:
        registry = Registry.model_validate(data)
    except ValidationError as error:
        raise RegistryError(_describe(error, node, filename)) from None
    _check_unique(registry, node, filename)
    return registry


def _describe(error: ValidationError, root: yaml.Node, filename: str) -> str:
    lines = []
    for problem in error.errors():
        location = problem["loc"]
        line = line_of(root, location)
        field = ".".join(str(part) for part in location[2:]) or "entry"
        lines.append(f"{filename}: line {line}: feed #{location[1] + 1} {field}: {problem['msg']}")
    return "\n".join(lines)


def _check_unique(registry: Registry, root: yaml.Node, filename: str) -> None:
    seen: set[str] = set()
    for index, feed in enumerate(registry.feeds):
        if feed.name in seen:
            line = line_of(root, ("feeds", index, "name"))
            raise RegistryError(f"{filename}: line {line}: feed name {feed.name!r} is repeated")
        seen.add(feed.name)


def sync_feeds(session: Session, registry: Registry) -> dict[str, Feed]:
    """Create or update the run-time row of every configured feed.

    A new URL or format in feeds.yaml starts afresh (no redirect target, validators or 410
    mark from the old one); otherwise a feed the publisher marked gone stays disabled until
    `alerts feeds enable`. Safe when several processes start at once."""
    _insert_missing(session, registry)
    rows = {feed.name: feed for feed in session.scalars(select(Feed))}
    for config in registry.feeds:
        row = rows[config.name]
        if (row.url, row.format) != (config.url, config.format):
            row.url, row.format = config.url, config.format
            row.current_url = row.etag = row.last_modified = row.disabled_reason = None
        row.enabled = config.enabled
    session.flush()
    return rows


def _insert_missing(session: Session, registry: Registry) -> None:
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {
            "name": c.name,
            "url": c.url,
            "format": c.format,
            "enabled": c.enabled,
            "consecutive_failures": 0,
        }
        for c in registry.feeds
    ]
    if rows:
        session.execute(insert(Feed).on_conflict_do_nothing(index_elements=["name"]), rows)


def enable_feed(session: Session, name: str) -> bool:
    """Clear a 410 mark and the failure count, and poll the feed at the next opportunity."""
    feed = session.scalars(select(Feed).where(Feed.name == name)).first()
    if feed is None:
        return False
    feed.disabled_reason = None
    feed.consecutive_failures = 0
    feed.next_poll_at = None
    return True
