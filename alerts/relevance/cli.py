"""`alerts relevance ...`: score files, evaluate against labels, check rules, re-score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alerts.yamlfile import DataFileError

app = typer.Typer(help="SME relevance: score, evaluate, check rules.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


@app.command("score")
def score(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item")] = False,
) -> None:
    """Parse the files and print, per item: file, item id, tier, score and reasons."""
    from alerts.relevance.scoring import score_files

    scored, failed = score_files(list(files))
    for path, problem in failed.items():
        errors.print(f"[red]{path}: {problem}[/red]")
    if as_json:
        for item in scored:
            typer.echo(
                json.dumps(
                    {
                        "file": item.file,
                        "id": item.record.item_id,
                        "title": item.record.title,
                        **item.decision.as_dict(),
                    },
                    ensure_ascii=False,
                )
            )
    else:
        _score_table(scored)
    if failed:
        raise typer.Exit(1)


def _score_table(scored) -> None:
    table = Table("file", "id", "tier", "score", "reasons")
    colours = {"urgent": "red", "newsletter": "yellow", "ignore": "dim"}
    for item in scored:
        tier = item.decision.tier
        reasons = "; ".join(f"{r.text()} ({r.weight:+d})" for r in item.decision.reasons)
        table.add_row(
            Path(item.file).name,
            item.record.item_id[-60:],
            f"[{colours[tier]}]{tier}[/{colours[tier]}]",
            str(item.decision.score),
            reasons,
        )
    console.print(table)


@app.command("eval")
def evaluate_labels(
    labels: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="file,id,tier CSV")],
    data_root: Annotated[Path, typer.Option("--data-root", exists=True, file_okay=False)],
    split: Annotated[str | None, typer.Option(help="Only rows whose split column is this")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
    show_errors: Annotated[bool, typer.Option("--errors", help="List each disagreement")] = False,
) -> None:
    """Confusion matrix, per-tier precision/recall and "relevant" precision/recall."""
    from alerts.relevance.evaluate import LabelError, load_labels
    from alerts.relevance.scoring import evaluate

    try:
        rows = load_labels(labels, split=split)
    except LabelError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    report = evaluate(rows, data_root)
    if as_json:
        keys = (
            "n",
            "missing",
            "confusion",
            "per_tier",
            "relevant",
            "urgent_recall",
            "missing_ids",
            "unreadable",
            "baselines",
        )
        typer.echo(json.dumps({key: report[key] for key in keys}))
        return
    _print_report(report, show_errors)


def _print_report(report: dict, show_errors: bool) -> None:
    from alerts.relevance.evaluate import TIERS

    console.print(f"{report['n']} labelled items scored, {report['missing']} not found")
    matrix = Table("true \\ predicted", *TIERS)
    for true in TIERS:
        matrix.add_row(true, *(str(report["confusion"][true][p]) for p in TIERS))
    console.print(matrix)
    table = Table("", "precision", "recall", "support")
    for name, values in [*report["per_tier"].items(), ("relevant", report["relevant"])]:
        table.add_row(
            name, _num(values["precision"]), _num(values["recall"]), str(values["support"])
        )
    console.print(table)
    for name, baseline in report["baselines"].items():
        relevant = baseline["relevant"]
        console.print(
            f"baseline {name}: relevant precision {_num(relevant['precision'])}, "
            f"recall {_num(relevant['recall'])}, urgent recall "
            f"{_num(baseline['urgent_recall'])}"
        )
    for missing in report["missing_ids"]:
        console.print(f"[yellow]not found: {missing}[/yellow]")
    if show_errors:
        for error in report["errors"]:
            console.print(
                f"{error['true']} -> {error['predicted']} ({error['score']}) "
                f"{error['file']} {error['id']}: {', '.join(error['rules'])}"
            )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("check")
def check(
    rules_file: Annotated[Path | None, typer.Argument(help="Default: the rules in use")] = None,
    catalogue_file: Annotated[Path | None, typer.Option("--catalogue")] = None,
) -> None:
    """Validate a rule file (and the product catalogue); errors name the line."""
    from alerts.relevance.catalogue import CATALOGUE_FILE, load_catalogue
    from alerts.relevance.rules import RULES_FILE, load_rules

    try:
        rules = load_rules(rules_file or RULES_FILE)
        catalogue = load_catalogue(catalogue_file or CATALOGUE_FILE)
    except DataFileError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"[green]ok[/green]: rules {rules.version} ({len(rules.rules)} rules), "
        f"{len(catalogue.families)} product families"
    )


@app.command("rescore")
def rescore(
    unscored: Annotated[bool, typer.Option("--unscored", help="Only never-scored ones")] = False,
) -> None:
    """Re-score stored advisories (after a rule change), a batch per transaction."""
    from alerts.cli import _database, _settings
    from alerts.relevance.service import sweep, tier_counts

    database = _database(_settings())
    with console.status("scoring..."):
        raised = sweep(database, everything=not unscored)
    counts = tier_counts(database)
    console.print(
        f"{raised} advisories rose a tier; now: "
        + ", ".join(f"{tier} {n}" for tier, n in sorted(counts.items()))
    )
