"""Scoring parsed documents and labelled sets: the I/O edge around the pure engine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from alerts.enrich import (
    Context,
    Enrichment,
    KevEntry,
    Signals,
    Subject,
    add_kev_entry,
    enrich,
)
from alerts.ingest import parsers
from alerts.ingest.detect import detect_format
from alerts.ingest.records import AdvisoryRecord, ParseError
from alerts.relevance.catalogue import Catalogue
from alerts.relevance.engine import Decision, decide
from alerts.relevance.evaluate import BASELINES, Label, metrics
from alerts.relevance.rules import RuleSet


@dataclass(frozen=True)
class Scored:
    file: str
    record: AdvisoryRecord
    facts: Enrichment
    decision: Decision


class Scorer:
    """Rules, catalogue and known-exploited context, ready to score records."""

    def __init__(
        self,
        rules: RuleSet | None = None,
        catalogue: Catalogue | None = None,
        context: Context | None = None,
        signals: Signals | None = None,
    ):
        if rules is None or catalogue is None:
            from alerts.relevance.service import default_catalogue, default_rules

            rules = rules or default_rules().rules
            catalogue = catalogue or default_catalogue()
        self.rules = rules
        self.catalogue = catalogue
        self.signals = signals or self.rules.compiled_signals()
        self.context = context or Context()

    def enrich(self, advisory) -> Enrichment:
        return enrich(Subject.of(advisory), self.catalogue, self.signals, self.context)

    def score(self, advisory) -> tuple[Enrichment, Decision]:
        facts = self.enrich(advisory)
        return facts, decide(facts, self.rules)


def parse_files(paths: Iterable[Path]) -> tuple[dict[Path, list[AdvisoryRecord]], dict]:
    """Every file's records; and the files that could not be read, with the reason."""
    parsed, failed = {}, {}
    for path in paths:
        try:
            data = path.read_bytes()
            parsed[path] = parsers.parse(data, detect_format(data, path.name)).advisories
        except (OSError, ParseError) as error:
            failed[path] = str(error)
    return parsed, failed


def kev_context_of(records: Iterable[AdvisoryRecord]) -> dict[str, KevEntry]:
    """Known-exploited entries found among parsed records (KEV catalogues in the batch)."""
    found: dict[str, KevEntry] = {}
    for record in records:
        if record.kind != "known-exploited":
            continue
        catalogue = "cisa-kev" if "required_action" in record.facts else "eu-kev"
        for cve in record.cve_ids:
            add_kev_entry(found, cve, catalogue, record.facts)
    return found


def score_files(paths: list[Path], scorer: Scorer | None = None) -> tuple[list[Scored], dict]:
    parsed, failed = parse_files(paths)
    if scorer is None:
        records = [r for rs in parsed.values() for r in rs]
        scorer = Scorer(context=Context(kev=kev_context_of(records)))
    scored = []
    for path, records in parsed.items():
        for record in records:
            facts, decision = scorer.score(record)
            scored.append(Scored(str(path), record, facts, decision))
    return scored, failed


def evaluate(labels: list[Label], data_root: Path, scorer: Scorer | None = None) -> dict:
    """The engine and the baselines on the labelled items, side by side."""
    files = sorted({data_root / label.file for label in labels})
    scored, failed = score_files(files, scorer)
    index = {(Path(s.file), s.record.item_id): s for s in scored}
    found = [(label, index.get((data_root / label.file, label.id))) for label in labels]
    present = [(label, item) for label, item in found if item is not None]
    report = metrics(
        [(label.tier, item.decision.tier) for label, item in present],
        missing=len(found) - len(present),
    )
    report["missing_ids"] = [f"{label.file}#{label.id}" for label, item in found if item is None]
    report["unreadable"] = {str(path.relative_to(data_root)): why for path, why in failed.items()}
    report["baselines"] = {
        name: metrics([(label.tier, baseline(item.facts)) for label, item in present])
        for name, baseline in BASELINES.items()
    }
    report["errors"] = [
        {
            "file": label.file,
            "id": label.id,
            "true": label.tier,
            "predicted": item.decision.tier,
            "score": item.decision.score,
            "rules": [r.rule for r in item.decision.reasons],
        }
        for label, item in present
        if label.tier != item.decision.tier
    ]
    return report
