"""The maturity scan's stored side: saving results (only with consent), a subscriber's
history, the product-profile update, the firms for weak domains and the anonymous
statistics. Scoring and the suppression rule stay in the pure modules."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select

from alerts.maturity import stats
from alerts.maturity.models import MaturityResult
from alerts.maturity.profile import ProfileChange, profile_change
from alerts.maturity.scan import Result, Scan, need
from alerts.referrals import directory, matching
from alerts.referrals.models import Firm
from alerts.referrals.selection import candidate
from alerts.store import Database
from subscribers import consent, ratelimit
from subscribers.consent import Origin
from subscribers.models import ACTIVE, PAUSED, Subscriber

SHOWN_FIRMS = 3
STATS_BATCH = 2_000
VISITOR_STATS_PER_DAY = 1
DAY = timedelta(days=1)
# Staff may read shared answers only while the SME is subscribed; leaving ends it.
STILL_SUBSCRIBED = (ACTIVE, PAUSED)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Consents:
    """What the person agreed to, each on its own: nothing is stored without one of them."""

    keep: bool = False  # keep it in the subscriber's history
    share_stats: bool = False  # count it, anonymously, in the statistics
    staff_may_view: bool = False  # staff may read the answers (subscribers only)
    update_profile: bool = False  # the technology answers update the product profile


@dataclass(frozen=True)
class Dimensions:
    sector: str | None = None
    size_band: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Saved:
    result_id: int | None  # None when nothing was stored
    profile: ProfileChange | None  # None when the profile was left alone


class Scans:
    def __init__(self, database: Database, scan: Scan, clock: Callable[[], datetime] = utcnow):
        self.database, self.scan, self.clock = database, scan, clock

    # --- saving -------------------------------------------------------------------------

    def save_anonymous(
        self, result: Result, dimensions: Dimensions, client_key: str | None = None
    ) -> int | None:
        """A visitor agreed to be counted: levels and the three dimensions, dated by month
        only, no answers and nothing that identifies anyone. One statistic per client key
        (a keyed hash of the address) per day, so that one visitor cannot fill a group
        alone; None when that limit is reached."""
        now = self.clock()
        with self.database.session() as session:
            if client_key and not ratelimit.allow(
                session, f"scan-stat:{client_key}", VISITOR_STATS_PER_DAY, DAY, now
            ):
                return None
            row = self._row(result, None, dimensions, month_start(now))
            row.share_stats = True
            session.add(row)
            session.flush()
            return row.id

    def save_for(
        self,
        subscriber_id: int,
        result: Result,
        checked: Mapping[str, str | Sequence[str]],
        consents: Consents,
        origin: Origin,
    ) -> Saved:
        """A subscriber's scan: stored when they keep it or share it, the profile updated
        when they asked for it (recorded in the consent ledger)."""
        now = self.clock()
        with self.database.session() as session:
            subscriber = _subscriber(session, subscriber_id, lock=True)
            change = None
            if consents.update_profile:
                change = profile_change(self.scan, checked, subscriber.families or ())
                self._apply(session, subscriber, change, origin, now)
            if not consents.keep:  # sharing and staff access need a kept result: it is
                return Saved(None, change)  # where they are seen and withdrawn
            row = self._row(result, subscriber, None, now)
            row.answers = {key: _plain(value) for key, value in checked.items()}
            row.staff_may_view = consents.staff_may_view
            row.share_stats = consents.share_stats
            row.families_applied = change is not None
            session.add(row)
            session.flush()
            return Saved(row.id, change)

    def _row(self, result, subscriber, dimensions, now) -> MaturityResult:
        row = MaturityResult(
            version=result.version,
            language=result.language,
            level=result.level,
            percent=result.percent,
            # a domain whose questions were all skipped has no level to count or compare
            levels=result.assessed_levels,
            percents={d.domain: d.percent for d in result.domains if d.assessed},
            share_stats=False,
            staff_may_view=False,
            families_applied=False,
            taken_at=now,
        )
        if subscriber is not None:
            row.subscriber_id = subscriber.id
            dimensions = _subscriber_dimensions(subscriber)
        _dimensions_of(row, dimensions or Dimensions())
        return row

    def _apply(self, session, subscriber: Subscriber, change: ProfileChange, origin, now):
        if not change.changes:
            return
        subscriber.families = list(change.families)
        subscriber.knows_products = bool(change.families)
        subscriber.updated_at = now
        consent.record(session, subscriber, "preferences", origin, now)

    # --- a subscriber's own results -----------------------------------------------------

    def history(self, subscriber_id: int) -> list[MaturityResult]:
        """Oldest first, detached."""
        query = (
            select(MaturityResult)
            .where(MaturityResult.subscriber_id == subscriber_id)
            .order_by(MaturityResult.taken_at, MaturityResult.id)
        )
        with self.database.session() as session:
            rows = list(session.scalars(query))
            session.expunge_all()
        return rows

    def result_of(self, subscriber_id: int, result_id: int) -> MaturityResult:
        """One of the subscriber's results (LookupError for anyone else's)."""
        with self.database.session() as session:
            row = _owned(session, subscriber_id, result_id)
            session.expunge(row)
        return row

    def set_consents(self, subscriber_id: int, result_id: int, share: bool, staff: bool) -> None:
        with self.database.session() as session:
            row = _owned(session, subscriber_id, result_id)
            row.share_stats, row.staff_may_view = share, staff

    def forget(self, subscriber_id: int, result_id: int) -> None:
        with self.database.session() as session:
            session.execute(
                delete(MaturityResult).where(
                    MaturityResult.id == result_id, MaturityResult.subscriber_id == subscriber_id
                )
            )

    def latest_answers(self, subscriber_id: int) -> dict | None:
        """The answers of the newest kept result of the current question set, to start a
        retake from."""
        query = (
            select(MaturityResult.answers)
            .where(
                MaturityResult.subscriber_id == subscriber_id,
                MaturityResult.version == self.scan.version,
            )
            .order_by(MaturityResult.taken_at.desc(), MaturityResult.id.desc())
            .limit(1)
        )
        with self.database.session() as session:
            return session.scalar(query)

    # --- firms --------------------------------------------------------------------------

    def firms_for(
        self, result: Result, region: str | None, language: str, seed: int | None = None
    ) -> list[Firm]:
        """Up to three vetted firms offering what the weak domains need, serving the region
        and speaking the language. The seed rotates them fairly (a subscriber's id keeps
        their choice stable; visitors get a random one)."""
        wanted = need(self.scan, result)
        if wanted is None or not region:
            return []
        with self.database.session() as session:
            firms = {firm.id: firm for firm in directory.shown(session, self.clock())}
            session.expunge_all()
        candidates = [candidate(firm) for firm in firms.values()]
        today = directory.today(self.clock())
        matches = matching.eligible(candidates, wanted, region, language, today)
        seed = self.seed() if seed is None else seed
        return [firms[m.firm_id] for m in matching.choose(matches, 0, seed, SHOWN_FIRMS)]

    @staticmethod
    def seed() -> int:
        """A visitor's draw for the firm rotation (the PDF repeats it from the page)."""
        return secrets.randbelow(2**31)

    # --- statistics ---------------------------------------------------------------------

    def released_until(self) -> datetime:
        """The statistics are a monthly release: results taken before the first day of
        this month. Recomputed on every page, they would let two views a minute apart be
        subtracted to read the one result that arrived in between."""
        return month_start(self.clock())

    def versions(self) -> list[tuple[str, int]]:
        """Question-set versions with released results, newest first, and their counts."""
        counted = self._released().subquery()
        query = (
            select(counted.c.version, func.count())
            .group_by(counted.c.version)
            .order_by(counted.c.version.desc())
        )
        with self.database.session() as session:
            return [(version, count) for version, count in session.execute(query)]

    def statistics(self, version: str, min_group: int = stats.MIN_GROUP) -> stats.Statistics:
        """The anonymous statistics of one question set (results of different sets score
        differently and are never pooled)."""
        return stats.aggregate(self._stat_rows(version), min_group)

    def _released(self, version: str | None = None):
        """Shared results of the release: taken before this month, and of a subscriber
        only the newest shared one (retakes must not count one SME several times)."""
        until = self.released_until()
        shared = [MaturityResult.share_stats.is_(True), MaturityResult.taken_at < until]
        if version is not None:
            shared.append(MaturityResult.version == version)
        newest = (
            select(func.max(MaturityResult.id))
            .where(MaturityResult.subscriber_id.is_not(None), *shared)
            .group_by(MaturityResult.subscriber_id)
        )
        one_each = or_(MaturityResult.subscriber_id.is_(None), MaturityResult.id.in_(newest))
        return select(
            MaturityResult.version,
            MaturityResult.sector,
            MaturityResult.size_band,
            MaturityResult.region,
            MaturityResult.level,
            MaturityResult.levels,
        ).where(*shared, one_each)

    def _stat_rows(self, version: str) -> Iterator[stats.Row]:
        """Domains come back in any order (PostgreSQL's JSONB sorts keys): the pages put
        them in the question set's order."""
        query = self._released(version).execution_options(yield_per=STATS_BATCH)
        with self.database.session() as session:
            for _version, sector, size_band, region, level, levels in session.execute(query):
                yield sector, size_band, region, stats.Levels(version, level, levels)

    def shared_with_staff(self) -> list[tuple[MaturityResult, str]]:
        """Each consenting subscriber's newest result that staff may read, with the
        organisation's name."""
        newest = (
            select(func.max(MaturityResult.id))
            .where(MaturityResult.staff_may_view.is_(True))
            .group_by(MaturityResult.subscriber_id)
        )
        query = (
            select(MaturityResult, Subscriber.organisation)
            .join(Subscriber, Subscriber.id == MaturityResult.subscriber_id)
            .where(MaturityResult.id.in_(newest), Subscriber.status.in_(STILL_SUBSCRIBED))
            .order_by(Subscriber.organisation, MaturityResult.id)
        )
        with self.database.session() as session:
            rows = [(row, organisation) for row, organisation in session.execute(query)]
            session.expunge_all()
        return rows

    def shared_result(self, result_id: int) -> tuple[MaturityResult, str]:
        """One result staff may read (LookupError unless its subscriber agreed)."""
        query = (
            select(MaturityResult, Subscriber.organisation)
            .join(Subscriber, Subscriber.id == MaturityResult.subscriber_id)
            .where(
                MaturityResult.id == result_id,
                MaturityResult.staff_may_view.is_(True),
                Subscriber.status.in_(STILL_SUBSCRIBED),
            )
        )
        with self.database.session() as session:
            found = session.execute(query).first()
            if found is None:
                raise LookupError(f"result {result_id} is not shared with staff")
            session.expunge_all()
        return found[0], found[1]


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _owned(session, subscriber_id: int, result_id: int) -> MaturityResult:
    """One of the subscriber's results (LookupError for anyone else's)."""
    row = session.get(MaturityResult, result_id)
    if row is None or row.subscriber_id != subscriber_id:
        raise LookupError(f"no result {result_id} for this subscriber")
    return row


def _subscriber(session, subscriber_id: int, lock: bool = False) -> Subscriber:
    """The subscriber row (locked until commit when it is about to change: a preference
    save at the same time must not be lost)."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=lock)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    return subscriber


def _subscriber_dimensions(subscriber: Subscriber) -> Dimensions:
    return Dimensions(subscriber.sector, subscriber.size_band, subscriber.region)


def _dimensions_of(row: MaturityResult, dimensions: Dimensions) -> None:
    row.sector, row.size_band = dimensions.sector, dimensions.size_band
    row.region = dimensions.region


def _plain(value: str | Sequence[str]) -> str | list[str]:
    return value if isinstance(value, str) else list(value)
