"""Audience matching speed: build the index from N synthetic members streamed from a
generator, then count, count by language and list recipients for representative targetings.

    python -m bench.audience --n 1000000 --runs 5

Members are drawn from a seeded pool of random profiles (families weighted by the catalogue's
sme_weight, ~20% "I don't know", population-weighted Belgian regions with their languages),
so generating them costs little next to indexing them; the build line reports both.
`audience.load_sqlite` reads the index from a real subscribers table (--db-n rows);
`audience.recipients_sql` lists the email and SMS recipients from that table in SQL instead.
`audience.count_request` is "Count recipients" on the staff editor at N rows (SQLite file):
the cached index warm, then stale (served at once while the background rebuild runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from itertools import cycle
from types import SimpleNamespace

from sqlalchemy import insert

from alerts.curation.models import Alert
from alerts.relevance.catalogue import load_catalogue
from alerts.staff import curation_pages
from alerts.store import Database
from bench.common import RUNS, emit, progress, time_runs
from subscribers import audience_sql
from subscribers.audience import AudienceIndex, Member, Targeting, recipients, targeting_for
from subscribers.audience_cache import AudienceCache
from subscribers.directory import load_index
from subscribers.models import Subscriber

CATALOGUE = load_catalogue()
# Province / Brussels codes, weighted by population (millions), with their languages.
REGIONS = {
    "BE-VAN": 1.9,
    "BE-VOV": 1.55,
    "BE-VWV": 1.2,
    "BE-VBR": 1.16,
    "BE-VLI": 0.88,
    "BE-BRU": 1.24,
    "BE-WHT": 1.35,
    "BE-WLG": 1.11,
    "BE-WNA": 0.5,
    "BE-WBR": 0.41,
    "BE-WLX": 0.29,
}
LANGUAGES = {  # region prefix -> language weights (nl, fr, en, de)
    "BE-V": (0.93, 0.02, 0.05, 0.0),
    "BE-B": (0.2, 0.6, 0.2, 0.0),
    "BE-W": (0.02, 0.93, 0.03, 0.02),
}
SECTORS = {
    "retail": 0.18,
    "hospitality": 0.1,
    "construction": 0.14,
    "professional": 0.16,
    "healthcare": 0.07,
    "manufacturing": 0.08,
    "transport": 0.06,
    "ict": 0.08,
    "agriculture": 0.05,
    "nonprofit": 0.08,
}
PROFILES = 50_000  # distinct random profiles; members pick one each, with their own id


def random_profile(rng: random.Random) -> tuple:
    """Every Member field but the id, drawn from rough real-world proportions."""
    knows = rng.random() >= 0.2
    region = rng.choices(list(REGIONS), weights=list(REGIONS.values()))[0]
    weights = LANGUAGES[region[:4]]
    return (
        _families(rng) if knows else frozenset(),
        knows,
        rng.choices(list(SECTORS), weights=list(SECTORS.values()))[0],
        region,
        rng.choices(("nl", "fr", "en", "de"), weights=weights)[0],
        rng.random() < 0.75,  # urgent_email
        rng.random() < 0.25,  # urgent_sms (phone confirmed)
        rng.choices(("none", "daily", "weekly"), weights=(0.25, 0.15, 0.6))[0],
        rng.random() < 0.02,  # email_suppressed
        rng.random() < 0.01,  # sms_suppressed
        rng.random() < 0.9,  # active
    )


def _families(rng: random.Random) -> frozenset[str]:
    """1 to 8 catalogue families, the ones most SMEs run much more often."""
    ids = [family.id for family in CATALOGUE.families]
    weights = [family.sme_weight + 0.02 for family in CATALOGUE.families]
    return frozenset(rng.choices(ids, weights=weights, k=rng.randint(1, 8)))


@cache
def profile_pool(size: int, seed: int) -> tuple[tuple, ...]:
    """Drawn once per run, so the timings measure streaming members, not drawing profiles."""
    rng = random.Random(seed)
    return tuple(random_profile(rng) for _ in range(size))


def synthetic_members(n: int, seed: int = 1) -> Iterator[Member]:
    """N members, the same for the same seed, made one at a time."""
    pool = profile_pool(min(n, PROFILES), seed)
    rng = random.Random(seed + 1)
    for start in range(0, n, 10_000):
        for offset, profile in enumerate(rng.choices(pool, k=min(10_000, n - start))):
            yield Member(start + offset, *profile)


def targetings() -> dict[str, Targeting]:
    """Representative questions: one family, several, everyone, a narrow sector + region."""
    several = ["qnap", "synology", "veeam", "wordpress", "mikrotik"]
    return {
        "one-family": targeting_for("urgent", ["fortinet-fortigate"], CATALOGUE),
        "several-families": targeting_for("urgent", several, CATALOGUE),
        "everyone": Targeting("urgent"),
        "sector+region": targeting_for(
            "urgent",
            ["microsoft-exchange"],
            CATALOGUE,
            sectors=["healthcare", "professional"],
            regions=["BE-BRU", "BE-VBR", "BE-WBR"],
        ),
        "newsletter": targeting_for("newsletter", ["wordpress", "ecommerce"], CATALOGUE),
    }


def timed_build(n: int, seed: int) -> tuple[AudienceIndex, float, float]:
    """The index, the seconds spent adding (generation included) and freezing."""
    start = time.perf_counter()
    index = AudienceIndex()
    for member in synthetic_members(n, seed):
        index.add(member)
    added = time.perf_counter()
    index.freeze()
    return index, added - start, time.perf_counter() - added


def bench_build(n: int, runs: int, seed: int) -> AudienceIndex:
    profile_pool(min(n, PROFILES), seed)
    start = time.perf_counter()
    for _ in synthetic_members(n, seed):
        pass
    generate = time.perf_counter() - start
    timings, freezes, index = [], [], None
    for _ in range(runs):
        index = None  # let the previous one go before building the next
        index, adding, freezing = timed_build(n, seed)
        timings.append(adding + freezing)
        freezes.append(freezing)
    extra = {"generate_seconds": round(generate, 4), "profiles": min(n, PROFILES)}
    emit("audience.build", n, timings, freeze_seconds=round(statistics.median(freezes), 4), **extra)
    return index


def bench_queries(index: AudienceIndex, n: int, runs: int) -> None:
    questions = targetings()
    for name, query in (("count", index.count), ("count_by_language", index.count_by_language)):
        timings, extra = _pooled(questions, query, runs)
        emit(f"audience.{name}", n, timings, **extra)
    several = questions["several-families"]
    listed = []
    timings = time_runs(lambda: listed.append(sum(1 for _ in index.recipients(several))), runs)
    emit("audience.recipients", n, timings, targeting="several-families", recipients=listed[-1])


def _pooled(questions: dict[str, Targeting], query: Callable, runs: int) -> tuple[list, dict]:
    """Every targeting `runs` times: all timings, plus per-targeting median ms and answers."""
    timings, per_targeting, answers = [], {}, {}
    for name, targeting in questions.items():
        own = time_runs(lambda t=targeting: query(t), runs)
        answers[name] = query(targeting)
        timings += own
        per_targeting[name] = round(statistics.median(own) * 1000, 3)
    median_ms = round(statistics.median(timings) * 1000, 3)  # "seconds" rounds to 0.0
    return timings, {"ms": median_ms, "per_targeting_ms": per_targeting, "counts": answers}


def check(index: AudienceIndex, n: int, seed: int) -> None:
    """The index agrees with the reference on one targeting (one more pass of members)."""
    targeting = targetings()["sector+region"]
    expected = Counter(channel for _, channel in recipients(targeting, synthetic_members(n, seed)))
    got = index.count(targeting)
    if {c: v for c, v in got.items() if v} != dict(expected):
        raise SystemExit(f"bench.audience: index {got} != reference {dict(expected)}")
    progress(f"bench.audience: index agrees with the reference on sector+region: {got}")


def bench_database(n: int, runs: int, seed: int) -> None:
    """The index read from a subscribers table (SQLite file): what the service does."""
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{folder}/bench.sqlite3")
        _fill(database, n, seed)
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            with database.session() as session:
                index = load_index(session)
            timings.append(time.perf_counter() - start)
        emit("audience.load_sqlite", n, timings, members=len(index))
        bench_sql_recipients(database, index, n, runs)
        database.dispose()


def bench_sql_recipients(database: Database, index: AudienceIndex, n: int, runs: int) -> None:
    """The fan-out's listing done by the database (audience_sql.recipients, email and SMS)
    on the same table: the alternative to load_sqlite + index.recipients. Checked against
    the index's counts, so a fast wrong answer cannot pass for a result."""
    targeting = targetings()["several-families"]
    counts, timings = Counter(), []
    for _ in range(runs):
        start = time.perf_counter()
        with database.session() as session:
            counts = Counter(
                channel for _, channel, _ in audience_sql.recipients(session, targeting)
            )
        timings.append(time.perf_counter() - start)
    expected = {c: v for c, v in index.count(targeting).items() if c in audience_sql.IMMEDIATE}
    if dict(counts) != {c: v for c, v in expected.items() if v}:
        raise SystemExit(f"bench.audience: SQL listing {dict(counts)} != index {expected}")
    emit(
        "audience.recipients_sql",
        n,
        timings,
        targeting="several-families",
        recipients=sum(counts.values()),
    )


REQUEST_PAUSE = 0.05  # seconds between two staff requests while a rebuild runs


def bench_count_request(n: int, runs: int, seed: int) -> None:
    """What "Count recipients" costs a staff request (curation_pages._audience: targeting,
    cached index, count by language) with N subscribers in a SQLite file. Warm: the index
    is fresh. Stale: it is past its refresh interval, so each request is answered from it
    while one background thread rebuilds it, `runs` rebuilds long; a request comes every
    REQUEST_PAUSE seconds meanwhile (far more than staff make), each competing with the
    rebuild for the GIL. Times in ms: median, 99th percentile; seconds: the JSON keys."""
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{folder}/bench.sqlite3")
        start = time.perf_counter()
        _fill(database, n, seed)
        fill = time.perf_counter() - start
        progress(f"bench.audience: {n} subscriber rows written in {fill:.1f} s")
        clock, builds = _SkippingClock(), []

        def build() -> AudienceIndex:
            began = time.perf_counter()
            with database.session() as session:
                index = load_index(session)
            builds.append(time.perf_counter() - began)
            return index

        cache = AudienceCache(build, refresh_seconds=60, clock=clock, warm=False)
        state = SimpleNamespace(catalogue=CATALOGUE, database=database, audience_cache=cache)
        request = SimpleNamespace(app=SimpleNamespace(state=state))
        alerts = [_alert(targeting) for targeting in targetings().values()]
        cold = time_runs(lambda: curation_pages._audience(request, alerts[0]), 1)[0]
        warm = []
        for _ in range(runs):
            warm += [_timed(curation_pages._audience, request, alert) for alert in alerts]
        emit(
            "audience.count_request",
            n,
            warm,
            cache="warm",
            **_ms(warm),
            first_request_seconds=round(cold, 2),
            fill_seconds=round(fill, 1),
            rows_per_second_written=round(n / fill),
        )
        stale = []
        for _ in range(runs):
            clock.skip(cache.refresh_seconds + 1)
            stale.append(_timed(curation_pages._audience, request, alerts[0]))  # starts it
            for alert in cycle(alerts):
                if not cache.refreshing:  # only requests answered while the rebuild runs
                    break
                stale.append(_timed(curation_pages._audience, request, alert))
                time.sleep(REQUEST_PAUSE)
            cache.wait_for_build()
        rebuilds = builds[1:]
        if len(rebuilds) != runs:
            raise SystemExit(f"bench.audience: {len(rebuilds)} rebuilds, expected {runs}")
        emit(
            "audience.count_request",
            n,
            stale,
            cache="stale",
            **_ms(stale),
            rebuilds=len(rebuilds),
            rebuild_seconds=round(statistics.median(rebuilds), 2),
            rebuild_min=round(min(rebuilds), 2),
            rebuild_max=round(max(rebuilds), 2),
            first_build_seconds=round(builds[0], 2),
        )
        database.dispose()


class _SkippingClock:
    """time.monotonic, plus the jumps asked for: makes the cached index stale on demand."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


def _alert(targeting: Targeting) -> Alert:
    """An unsaved alert with this targeting, as the editor's count button makes one."""
    wanted = {
        "families": sorted(targeting.families),
        "sectors": sorted(targeting.sectors),
        "regions": sorted(targeting.regions),
    }
    return Alert(tier=targeting.tier, targeting=wanted)


def _ms(timings: list[float]) -> dict[str, float]:
    ranked = sorted(timings)
    p99 = ranked[min(len(ranked) - 1, int(len(ranked) * 0.99))]
    return {"ms": round(statistics.median(ranked) * 1000, 3), "p99_ms": round(p99 * 1000, 3)}


def _timed(action: Callable, *args) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def _fill(database: Database, n: int, seed: int) -> None:
    """N subscriber rows (personal fields synthetic), inserted in batches."""
    now = datetime.now(UTC)
    rows = []
    with database.session() as session:
        for member in synthetic_members(n, seed):
            rows.append(_row(member, now))
            if len(rows) == 10_000:
                session.execute(insert(Subscriber), rows)
                rows = []
        if rows:
            session.execute(insert(Subscriber), rows)


def _row(member: Member, now: datetime) -> dict:
    number = member.id
    return {
        "status": "active" if member.active else "paused",
        "organisation": f"Business {number}",
        "email": f"owner{number}@example.be",
        "email_key": f"e{number}",
        "phone_key": f"p{number}" if member.urgent_sms else None,
        "phone_confirmed_at": now if member.urgent_sms else None,
        "language": member.language,
        "region": member.region,
        "sector": member.sector,
        "size_band": "2-9",
        "families": sorted(member.families),
        "knows_products": member.knows_products,
        "urgent_email": member.urgent_email,
        "urgent_sms": member.urgent_sms,
        "newsletter": member.newsletter,
        "created_at": now,
        "updated_at": now,
        "link_key": f"k{number}",
        "sms_optout_code": f"s{number}",
        "sms_code_attempts": 0,
        "source": "import",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="members (default 1000000)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs (default {RUNS})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--db-n", type=int, default=100_000, help="rows for the SQLite load (default 100000)"
    )
    parser.add_argument(
        "--no-requests", action="store_true", help="skip audience.count_request (writes N rows)"
    )
    args = parser.parse_args()
    progress(f"bench.audience: {args.n} synthetic members, {args.runs} runs")
    index = bench_build(args.n, args.runs, args.seed)
    bench_queries(index, args.n, args.runs)
    check(index, args.n, args.seed)
    if args.db_n:
        bench_database(args.db_n, min(args.runs, 3), args.seed)
    if not args.no_requests:
        bench_count_request(args.n, min(args.runs, 3), args.seed)


if __name__ == "__main__":
    main()
