"""`alerts firms ...`: import the directory from a CSV or YAML file, list it, expire it.

An import checks every row with parse_firm and names each error (row, field, message);
only valid rows are stored: a new enterprise number is added, a known one updated. Cells
are read as plain text — nothing in a file is ever evaluated."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.referrals import directory
from alerts.referrals.models import STATUSES, Firm
from alerts.referrals.validation import FirmErrors, FirmRecord, parse_firm

app = typer.Typer(
    help="The directory of security firms: import, list, expire.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
LIST_FIELDS = ("regions", "languages", "specialities", "certifications")
OUTCOMES = ("added", "updated", "unchanged", "refused")


class ImportFileError(ValueError):
    """The file as a whole cannot be read; the message says why."""


@dataclass
class Row:
    number: int  # the line in a CSV file (the header is line 1), the item in a YAML list
    record: FirmRecord | None
    errors: dict[str, str]


def _database():
    from alerts.cli import _database, _settings

    return _database(_settings())


# --- reading the file --------------------------------------------------------------------


def read_file(path: Path) -> list[tuple[int, Any]]:
    """(row number, mapping) per row of a .csv or .yaml/.yml file, bounded in size and rows."""
    if path.stat().st_size > MAX_BYTES:
        raise ImportFileError(f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise ImportFileError("a .csv, .yaml or .yml file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError("not UTF-8 text") from None
    rows = _csv_rows(text) if suffix == ".csv" else _yaml_rows(text)
    if len(rows) > MAX_ROWS:
        raise ImportFileError(f"more than {MAX_ROWS} rows")
    return rows


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    for values in reader:
        if len(rows) > MAX_ROWS:
            break
        if not any((value or "").strip() for value in values.values() if isinstance(value, str)):
            continue  # blank lines
        row = {key.strip(): value for key, value in values.items() if isinstance(key, str)}
        for name in LIST_FIELDS:  # lists are separated by ";" in a CSV cell
            row[name] = [item for item in str(row.get(name) or "").split(";") if item.strip()]
        rows.append((reader.line_num, row))
    return rows


def _yaml_rows(text: str) -> list[tuple[int, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ImportFileError(f"not valid YAML{where}") from None
    if not isinstance(data, list):
        raise ImportFileError("a YAML list of firms, one mapping each")
    return list(enumerate(data[: MAX_ROWS + 1], start=1))


def check_rows(rows: list[tuple[int, Any]]) -> list[Row]:
    """Every row through parse_firm; an enterprise number given twice is refused the second
    time."""
    checked, seen = [], {}
    for number, data in rows:
        if not isinstance(data, dict):
            checked.append(Row(number, None, {"row": "a mapping of field names to values"}))
            continue
        try:
            record = parse_firm(data)
        except FirmErrors as error:
            checked.append(Row(number, None, error.errors))
            continue
        first = seen.setdefault(record.enterprise_number, number)
        if first != number:
            problem = {"enterprise_number": f"the same enterprise number as row {first}"}
            checked.append(Row(number, None, problem))
            continue
        checked.append(Row(number, record, {}))
    return checked


# --- storing -----------------------------------------------------------------------------


def store(session: Session, record: FirmRecord, now: datetime, dry_run: bool) -> str:
    """added, updated or unchanged (in a dry run: what would happen)."""
    firm = session.scalar(select(Firm).where(Firm.enterprise_number == record.enterprise_number))
    if firm is None:
        if not dry_run:
            directory.add(session, record, None, now)
        return "added"
    record = _keep_vetting_date(record, firm)
    if dry_run:
        differs = any(getattr(firm, name) != value for name, value in asdict(record).items())
        return "updated" if differs else "unchanged"
    return "updated" if directory.update(session, firm, record, None, now) else "unchanged"


def _keep_vetting_date(record: FirmRecord, firm: Firm) -> FirmRecord:
    """A file that does not say when a firm was vetted keeps the date already stored."""
    if record.vetted_on is not None or firm.vetted_on is None:
        return record
    if record.expires_on is not None and record.expires_on <= firm.vetted_on:
        return record
    return replace(record, vetted_on=firm.vetted_on)


@app.command("import")
def import_firms(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".csv or .yaml")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check only; store nothing")] = False,
) -> None:
    """Check every row; store the valid ones (new enterprise numbers added, known ones
    updated). Exit code 1 when any row was refused."""
    try:
        rows = check_rows(read_file(path))
    except ImportFileError as error:
        errors.print(f"[red]{escape(path.name)}: {escape(str(error))}[/red]")
        raise typer.Exit(2) from None
    counts = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        for field, text in row.errors.items():
            errors.print(
                f"[yellow]{escape(path.name)}:{row.number}: {field}: {escape(text)}[/yellow]"
            )
        counts["refused"] += bool(row.errors)
    now = datetime.now(UTC)
    with _database().session() as session:
        for row in rows:
            if row.record is not None:
                counts[_store_row(session, row, now, dry_run, path.name)] += 1
    summary = ", ".join(f"{counts[name]} {name}" for name in OUTCOMES)
    console.print(summary + (" (dry run: nothing stored)" if dry_run else ""))
    raise typer.Exit(1 if counts["refused"] else 0)


def _store_row(session: Session, row: Row, now: datetime, dry_run: bool, name: str) -> str:
    try:  # add and update refuse before they change anything
        return store(session, row.record, now, dry_run)
    except directory.DirectoryError as error:
        errors.print(f"[yellow]{escape(name)}:{row.number}: {escape(str(error))}[/yellow]")
        return "refused"


# --- list and expire ---------------------------------------------------------------------


@app.command("list")
def list_firms(
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(STATUSES)}")] = None,
) -> None:
    """Every firm, by name, with its vetting."""
    query = select(Firm).order_by(Firm.name, Firm.id)
    if status:
        query = query.where(Firm.status == status)
    table = Table(
        "id", "name", "enterprise no.", "status", "regions", "languages", "kmo", "expires"
    )
    with _database().session() as session:
        firms = list(session.scalars(query))
        for firm in firms:
            table.add_row(
                str(firm.id),
                escape(firm.name),
                firm.enterprise_number,
                firm.status,
                ", ".join(firm.regions or ()),
                ", ".join(firm.languages or ()),
                "yes" if firm.kmo_portefeuille else "no",
                _day(firm.expires_on),
            )
    console.print(table)
    console.print(f"{len(firms)} firms")


def _day(value: date | None) -> str:
    return value.isoformat() if value else "-"


@app.command("expire")
def expire() -> None:
    """Vetted firms whose vetting ends today or earlier become expired (also a daily job)."""
    with _database().session() as session:
        expired = directory.expire_due(session, datetime.now(UTC))
        for firm_id in expired:
            firm = session.get(Firm, firm_id)
            console.print(f"expired: {firm.id} {escape(firm.name)} (until {_day(firm.expires_on)})")
    console.print(f"{len(expired)} firms expired")
