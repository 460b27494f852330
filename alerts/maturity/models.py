"""The stored maturity-scan results.

A result is stored only when someone asks for it: a subscriber saving it to follow their
progress, or anyone agreeing to count it in the anonymous statistics. Anonymous rows hold
no identity at all (no subscriber, no address, no IP); a subscriber's rows go with the
subscriber when their data is erased. Levels are stored as scored at the time, so a later
question set never re-scores old answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

import subscribers.models  # noqa: F401  (the subscribers table the results name)
from alerts.models import Base, JsonType, UtcDateTime


class MaturityResult(Base):
    __tablename__ = "maturity_results"
    __table_args__ = (
        Index("ix_maturity_results_subscriber", "subscriber_id", "taken_at"),
        Index("ix_maturity_results_stats", "version", "share_stats"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    version: Mapped[str] = mapped_column(String(40))  # of the question set
    language: Mapped[str] = mapped_column(String(2))
    # question id -> answer id, or a list of product family ids; None for anonymous rows
    answers: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    level: Mapped[int] = mapped_column(Integer)
    percent: Mapped[float] = mapped_column(Float)
    levels: Mapped[dict[str, int]] = mapped_column(JsonType)  # domain id -> level, scan order
    percents: Mapped[dict[str, float]] = mapped_column(JsonType)
    # The statistics' dimensions (subscriber's profile, or what an anonymous visitor chose).
    sector: Mapped[str | None] = mapped_column(String(40))
    size_band: Mapped[str | None] = mapped_column(String(10))
    region: Mapped[str | None] = mapped_column(String(8))
    share_stats: Mapped[bool] = mapped_column(Boolean, default=False)  # counted anonymously
    staff_may_view: Mapped[bool] = mapped_column(Boolean, default=False)  # answers shown to staff
    families_applied: Mapped[bool] = mapped_column(Boolean, default=False)  # profile updated
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)
