"""Relevance scoring speed: enrich + decide over every advisory in the shared corpus (or our
samples), and the same records through the two baselines, in one run.

    python -m bench.relevance
"""

from __future__ import annotations

from alerts.relevance.evaluate import BASELINES
from alerts.relevance.scoring import Scorer, kev_context_of, parse_files
from bench.common import emit, progress, time_runs
from bench.ingest import corpus


def main() -> None:
    root, files = corpus()
    parsed, _failed = parse_files(files)
    records = [record for batch in parsed.values() for record in batch]
    progress(f"bench.relevance: {len(records)} advisories from {root}")
    from alerts.enrich import Context

    scorer = Scorer(context=Context(kev=kev_context_of(records)))
    enriched = [scorer.enrich(record) for record in records]
    emit("relevance-score", len(records), time_runs(lambda: [scorer.score(r) for r in records]))
    emit("relevance-enrich", len(records), time_runs(lambda: [scorer.enrich(r) for r in records]))
    baseline = BASELINES["vendor-keyword"]
    emit(
        "relevance-baseline-keyword",
        len(records),
        time_runs(lambda: [baseline(facts) for facts in enriched]),
    )


if __name__ == "__main__":
    main()
