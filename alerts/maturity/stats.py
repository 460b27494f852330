"""Anonymous statistics of maturity-scan results by sector, size band and region — pure.

Suppression rule (k = the minimum group size, 10 unless told otherwise):
1. Nothing at all is published when fewer than k results are given.
2. Groups are formed along one dimension at a time (sector, or size band, or region);
   never crossed, so no cell is the intersection of two small groups. A missing value
   counts as the group "unknown".
3. A group of fewer than k results is suppressed (primary suppression).
4. Complementary suppression: the published total minus the visible groups of a dimension
   gives the count (and, through the means, the levels) of everything hidden in it. That
   remainder must be 0 or at least k: while it is between 1 and k - 1, the smallest
   visible group (then the first by name) is suppressed too. So subtraction never reveals
   fewer than k results.
Means are rounded to one decimal; a domain's mean is given only where at least k results
answered it. The rule protects one release: `service.Scans` publishes one a month (and one
result per SME), so that two views cannot be subtracted one result at a time. Consecutive
monthly releases can still differ by a single result in a group; that residual risk is
accepted for a staff-only page (every staff member is accountable in the audit trail)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from alerts.maturity.scan import Result

MIN_GROUP = 10
DIMENSIONS = ("sector", "size_band", "region")
# Each dimension's list of codes and labels in subscribers/options.yaml.
OPTION_GROUPS = {"sector": "sectors", "size_band": "size_bands", "region": "regions"}
UNKNOWN_GROUP = "unknown"


@dataclass(frozen=True)
class GroupStats:
    dimension: str  # "all", "sector", "size_band" or "region"
    group: str
    count: int
    level: float  # mean overall level
    # (domain, mean level; None when fewer than the minimum group size answered it)
    domains: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True)
class Statistics:
    min_group: int
    total: GroupStats | None  # None when fewer than min_group results
    groups: tuple[GroupStats, ...]


@dataclass(frozen=True)
class Levels:
    """What the statistics need of a result: a stored row gives this without re-scoring."""

    version: str
    level: int
    levels: dict[str, int]  # domain id -> level, in scan order


Row = tuple[str | None, str | None, str | None, "Result | Levels"]


def aggregate(rows: Iterable[Row], min_group: int = MIN_GROUP) -> Statistics:
    """Counts and mean levels per group of one dimension, small groups suppressed."""
    if min_group < 2:
        raise ValueError("the minimum group size must be at least 2")
    rows = list(rows)
    if len({row[3].version for row in rows}) > 1:
        raise ValueError("results of different question-set versions cannot be pooled")
    if len(rows) < min_group:
        return Statistics(min_group, None, ())
    groups: list[GroupStats] = []
    for position, dimension in enumerate(DIMENSIONS):
        members: dict[str, list[Result | Levels]] = defaultdict(list)
        for row in rows:
            members[row[position] or UNKNOWN_GROUP].append(row[3])
        for name in sorted(_visible({g: len(r) for g, r in members.items()}, min_group)):
            groups.append(_summary(dimension, name, members[name], min_group))
    total = _summary("all", "all", [row[3] for row in rows], min_group)
    return Statistics(min_group, total, tuple(groups))


def _visible(counts: dict[str, int], k: int) -> set[str]:
    """Groups that may be shown: at least k each, and what they leave hidden 0 or >= k."""
    shown = {group for group, count in counts.items() if count >= k}
    hidden = sum(counts.values()) - sum(counts[g] for g in shown)
    while 0 < hidden < k and shown:
        smallest = min(shown, key=lambda g: (counts[g], g))
        shown.remove(smallest)
        hidden += counts[smallest]
    return shown


def _summary(dimension: str, group: str, results: list[Result | Levels], k: int) -> GroupStats:
    """A domain skipped entirely has no level in a result: its mean is over the results
    that answered it, and only when at least k did (no per-domain counts are published)."""
    domain_ids = list(dict.fromkeys(domain for r in results for domain in r.levels))
    means = []
    for domain in domain_ids:
        values = [r.levels[domain] for r in results if domain in r.levels]
        means.append((domain, _mean(values) if len(values) >= k else None))
    return GroupStats(dimension, group, len(results), _mean(r.level for r in results), tuple(means))


def _mean(values: Iterable[int]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 1)
