"""Shared helpers for benchmarks: timing medians and one JSON line per measurement."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_shared_data() -> Path:
    """../shared/data next to the checkout (or next to any folder above it), or the
    ALERTS_SHARED_DATA folder. Used by the benchmarks and by the test suite."""
    if "ALERTS_SHARED_DATA" in os.environ:
        return Path(os.environ["ALERTS_SHARED_DATA"])
    for folder in ROOT.parents:
        if (folder / "shared" / "data" / "feeds").is_dir():
            return folder / "shared" / "data"
    return ROOT.parent / "shared" / "data"


SHARED_FEEDS = find_shared_data() / "feeds"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def children_peak_rss_mb() -> float:
    """The largest peak RSS among finished child processes (workers, fake servers)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def time_runs(action: Callable[[], object], runs: int = RUNS) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return timings


def emit(bench: str, n: int, timings: list[float], **extra) -> None:
    median = statistics.median(timings)
    line = {
        "bench": bench,
        "n": n,
        "seconds": round(median, 4),
        "min": round(min(timings), 4),
        "max": round(max(timings), 4),
        "runs": len(timings),
        "per_second": round(n / median, 1) if median else None,
        "peak_rss_mb": peak_rss_mb(),
    } | extra
    print(json.dumps(line), flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
