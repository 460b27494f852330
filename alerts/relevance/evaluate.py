"""Measuring the engine against labelled items: confusion matrix, precision and recall,
and two simple baselines to beat. Pure: labels and predictions in, numbers out."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from alerts.enrich import Enrichment

TIERS = ("urgent", "newsletter", "ignore")
RELEVANT = {"urgent", "newsletter"}


class LabelError(Exception):
    """The labels file is unusable; the message names the row."""


@dataclass(frozen=True)
class Label:
    file: str
    id: str
    tier: str
    split: str = ""


def load_labels(path: Path, *, split: str | None = None) -> list[Label]:
    """Rows of `file,id,tier` (extra columns allowed, e.g. `split` and `note`)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "id", "tier"} - set(reader.fieldnames or [])
        if missing:
            raise LabelError(f"{path}: header lacks {', '.join(sorted(missing))}")
        labels = [_label(row, path, number) for number, row in enumerate(reader, start=2)]
    return [label for label in labels if split is None or label.split == split]


def _label(row: dict, path: Path, number: int) -> Label:
    tier = (row.get("tier") or "").strip().lower()
    if tier not in TIERS:
        raise LabelError(f"{path}: row {number}: tier {tier!r} is not one of {', '.join(TIERS)}")
    return Label(row["file"].strip(), row["id"].strip(), tier, (row.get("split") or "").strip())


def metrics(pairs: Iterable[tuple[str, str]], *, missing: int = 0) -> dict:
    """pairs of (true tier, predicted tier) -> the report `alerts relevance eval` prints."""
    pairs = list(pairs)
    confusion = {t: {p: 0 for p in TIERS} for t in TIERS}
    for true, predicted in pairs:
        confusion[true][predicted] += 1
    per_tier = {tier: _precision_recall(pairs, {tier}) for tier in TIERS}
    return {
        "n": len(pairs),
        "missing": missing,
        "confusion": confusion,
        "per_tier": per_tier,
        "relevant": _precision_recall(pairs, RELEVANT),
        "urgent_recall": per_tier["urgent"]["recall"],
    }


def _precision_recall(pairs: list[tuple[str, str]], positive: set[str]) -> dict:
    true_positive = sum(t in positive and p in positive for t, p in pairs)
    predicted = sum(p in positive for _, p in pairs)
    actual = sum(t in positive for t, _ in pairs)
    return {
        "precision": round(true_positive / predicted, 3) if predicted else None,
        "recall": round(true_positive / actual, 3) if actual else None,
        "support": actual,
    }


# ----------------------------------------------------------------------------- baselines


def baseline_cvss_or_kev(facts: Enrichment) -> str:
    """ "CVSS >= 7 or known-exploited": exploited -> urgent, CVSS >= 7 -> newsletter."""
    if facts.known_exploited:
        return "urgent"
    if facts.cvss is not None and facts.cvss >= 7:
        return "newsletter"
    return "ignore"


def baseline_vendor_keyword(facts: Enrichment) -> str:
    """ "Vendor keyword match": a product family SMEs commonly run named anywhere ->
    newsletter; also exploited -> urgent."""
    sme = [hit for hit in facts.families if hit.family.sme_weight >= 0.3]
    if not sme:
        return "ignore"
    return "urgent" if facts.exploitation == "active" else "newsletter"


BASELINES = {"cvss>=7-or-kev": baseline_cvss_or_kev, "vendor-keyword": baseline_vendor_keyword}
