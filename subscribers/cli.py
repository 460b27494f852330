"""`alerts subscribers ...`: bulk import, list, show, export, erase, purge, suppress."""

from __future__ import annotations

import csv
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import func, select

from alerts.delivery.channels import SendError
from subscribers.consent import Origin
from subscribers.importer import ImportFileError, Row, decode, read_rows
from subscribers.models import STATUSES, Subscriber
from subscribers.privacy import EXPORTED_FIELDS, erase, export, purge_expired
from subscribers.service import RateLimited, Subscriptions
from subscribers.suppressions import REASONS, suppress

app = typer.Typer(help="Subscribers: import, list, show, export, erase.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
STAFF = Origin("staff-cli")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _context():
    from alerts.cli import _database, _settings

    settings = _settings()
    database = _database(settings)
    return settings, database, Subscriptions.from_settings(database, settings)


@app.command("import")
def import_csv(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check only; store nothing")] = False,
    language: Annotated[str, typer.Option(help="Language when the file has none")] = "",
    region: Annotated[str, typer.Option(help="Region code when the file has none")] = "",
    sector: Annotated[str, typer.Option(help="Sector code when the file has none")] = "",
    size_band: Annotated[str, typer.Option(help="Size band when the file has none")] = "",
) -> None:
    """Validate every row, then send each new address a confirmation email (nobody is
    subscribed until they confirm). Rows with errors are listed and skipped."""
    _, _, service = _context()
    defaults = {"language": language, "region": region, "sector": sector, "size_band": size_band}
    try:
        rows = list(read_rows(decode(path.read_bytes()), service.offered, defaults))
    except ImportFileError as error:
        errors.print(f"[red]{path}: {error}[/red]")
        raise typer.Exit(2) from None
    bad = [row for row in rows if row.errors]
    for row in bad:
        for problem in row.errors:
            errors.print(f"[yellow]{path.name}:{row.number}: {problem}[/yellow]")
    good = [row for row in rows if row.profile is not None]
    if dry_run:
        console.print(f"{len(good)} valid rows, {len(bad)} with errors (dry run: nothing stored)")
        raise typer.Exit(1 if bad else 0)
    counts = _import(service, good, path.name)
    console.print(
        f"{counts['invited']} invited, {counts['existing']} already subscribed (skipped), "
        f"{counts['failed']} not sent, {len(bad)} rows with errors"
    )
    raise typer.Exit(1 if bad or counts["failed"] else 0)


def _import(service: Subscriptions, rows: list[Row], name: str) -> dict[str, int]:
    counts = {"invited": 0, "existing": 0, "failed": 0}
    with _progress() as progress:
        task = progress.add_task("Importing", total=len(rows))
        for row in rows:
            outcome = _import_row(service, row, name)
            counts[outcome] += 1
            progress.advance(task)
    return counts


def _import_row(service: Subscriptions, row: Row, name: str) -> str:
    if service.is_subscribed(row.profile.email):
        return "existing"
    try:
        service.signup(row.profile, Origin("import"), source="import")
    except (SendError, RateLimited) as error:
        errors.print(f"[yellow]{name}:{row.number}: confirmation not sent: {error}[/yellow]")
        return "failed"
    return "invited"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors
    )


@app.command("list")
def list_subscribers(
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(STATUSES)}")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The newest subscribers, with their channels."""
    _, database, _ = _context()
    query = select(Subscriber).order_by(Subscriber.id.desc()).limit(limit)
    if status:
        query = query.where(Subscriber.status == status)
    table = Table("id", "status", "organisation", "email", "lang", "region", "channels")
    with database.session() as session:
        total = session.scalar(select(func.count()).select_from(Subscriber))
        for row in session.scalars(query):
            table.add_row(
                str(row.id),
                row.status,
                row.organisation,
                row.email,
                row.language,
                row.region,
                _channels(row),
            )
    console.print(table)
    console.print(f"{total} subscribers in all")


def _channels(row: Subscriber) -> str:
    parts = []
    if row.urgent_email:
        parts.append("email")
    if row.urgent_sms:
        parts.append("sms" if row.phone_confirmed_at else "sms (unconfirmed)")
    if row.newsletter != "none":
        parts.append(f"newsletter {row.newsletter}")
    return ", ".join(parts) or "-"


@app.command("show")
def show(who: Annotated[str, typer.Argument(help="Subscriber id or email address")]) -> None:
    """Everything held about one subscriber (the same JSON as their own export)."""
    _, database, service = _context()
    with database.session() as session:
        data = export(session, _resolve(session, service, who))
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command("export")
def export_all(
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
) -> None:
    """Every subscriber, streamed (for staff reporting; handle as personal data)."""
    if fmt not in ("csv", "jsonl"):
        errors.print("[red]--format must be csv or jsonl[/red]")
        raise typer.Exit(2)
    _, database, _ = _context()
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        with database.session() as session:
            _write(session, handle, fmt)
    finally:
        if output:
            handle.close()


def _write(session, handle, fmt: str) -> None:
    writer = csv.DictWriter(handle, fieldnames=EXPORTED_FIELDS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    for row in session.scalars(query):
        record = {name: _cell(getattr(row, name), bool(writer)) for name in EXPORTED_FIELDS}
        if writer:
            writer.writerow(record)
        else:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _cell(value, for_spreadsheet: bool):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if for_spreadsheet and isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value  # a spreadsheet must not run "=HYPERLINK(...)" from a name
    return value


@app.command("erase")
def erase_one(
    who: Annotated[str, typer.Argument(help="Subscriber id or email address")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Erase a subscriber and their personal data (a GDPR request made to staff)."""
    _, database, service = _context()
    if not yes:
        typer.confirm(f"Erase {who} and all their personal data?", abort=True)
    with database.session() as session:
        erase(session, _resolve(session, service, who), STAFF, service.clock())
    console.print("erased")


@app.command("purge")
def purge() -> None:
    """Forget sign-ups never confirmed and subscriptions left long ago (hourly in `run`)."""
    settings, database, service = _context()
    keep_left = timedelta(days=settings.left_retention_days)
    with database.session() as session:
        counts = purge_expired(session, service.clock(), keep_left)
    console.print(", ".join(f"{name}: {count}" for name, count in counts.items()))


@app.command("suppress")
def suppress_address(
    address: Annotated[str, typer.Argument(help="Email address or E.164 number")],
    channel: Annotated[str, typer.Option(help="email or sms")] = "email",
    reason: Annotated[str, typer.Option(help=f"One of {', '.join(REASONS)}")] = "staff",
) -> None:
    """Stop all sending to an address (stored as a keyed hash)."""
    _, database, service = _context()
    if channel not in ("email", "sms") or reason not in REASONS:
        errors.print("[red]--channel must be email or sms; --reason one of the listed[/red]")
        raise typer.Exit(2)
    with database.session() as session:
        new = suppress(session, service.signer, channel, address, reason, "staff", service.clock())
    console.print("suppressed" if new else "already suppressed")


def _resolve(session, service: Subscriptions, who: str) -> int:
    if who.isdigit():
        found = session.get(Subscriber, int(who))
    else:
        key = service.signer.key("email", who)
        found = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
    if found is None:
        errors.print(f"[red]no subscriber {who}[/red]")
        raise typer.Exit(1)
    return found.id
