"""`alerts send`, `alerts worker` and `alerts outbox ...` for staff and operators."""

from __future__ import annotations

import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alerts.delivery.models import STATUSES

outbox_app = typer.Typer(help="The outbox: what was sent, what waits, what failed.")
console = Console()
errors = Console(stderr=True)


def _context():
    from alerts.cli import _database, _settings

    settings = _settings()
    return settings, _database(settings)


def send(
    alert_id: Annotated[int, typer.Argument(help="An approved alert")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count recipients only")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Also send now, in this process")] = False,
) -> None:
    """Fan an approved alert out to the outbox (repeating it is harmless); workers send."""
    from alerts.delivery.dispatch import Dispatcher
    from alerts.delivery.service import SendRefused, send_alert
    from alerts.relevance.service import default_catalogue

    settings, database = _context()
    try:
        fan_out = send_alert(database, default_catalogue(), alert_id, dry_run=dry_run)
    except SendRefused as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    audience = ", ".join(f"{n} by {channel}" for channel, n in fan_out.audience.items())
    console.print(f"alert {alert_id}: {audience or 'nobody matches'}")
    if dry_run:
        return
    console.print(f"{fan_out.written} messages queued")
    if wait:
        sent = Dispatcher.from_settings(database, settings).drain()
        console.print(f"{sent} messages handed to the channels")
        _print_status(database, alert_id)


def worker() -> None:
    """A delivery worker: sends queued messages until SIGTERM/SIGINT (then finishes the
    batch in flight and gives back what it had not handed off)."""
    from alerts.delivery.dispatch import Dispatcher

    settings, database = _context()
    dispatcher = Dispatcher.from_settings(database, settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: dispatcher.stop())
    console.print(f"delivery worker {dispatcher.worker} running")
    dispatcher.run()
    console.print("delivery worker stopped")


@outbox_app.command("status")
def status(alert: Annotated[int | None, typer.Option(help="One alert only")] = None) -> None:
    """Messages per channel and status (outcome-unknown ones counted apart)."""
    _, database = _context()
    _print_status(database, alert)


def _print_status(database, alert_id: int | None) -> None:
    from sqlalchemy import func, select

    from alerts.delivery import outbox
    from alerts.delivery.models import OutboxMessage

    with database.session() as session:
        counts = outbox.counts(session, alert_id)
        query = select(func.count()).where(OutboxMessage.outcome_unknown.is_(True))
        if alert_id is not None:
            query = query.where(OutboxMessage.alert_id == alert_id)
        unknown = session.scalar(query)
    table = Table("channel", *STATUSES)
    for channel in sorted({channel for channel, _ in counts}):
        table.add_row(channel, *(str(counts.get((channel, s), 0)) for s in STATUSES))
    console.print(table)
    console.print(f"outcome unknown (provider may have sent them; not resent): {unknown}")


@outbox_app.command("preview")
def preview(limit: Annotated[int, typer.Option(min=1, max=100_000)] = 500) -> None:
    """Write outbox/index.html: the newest file-channel messages (email previews and SMS),
    to open in a browser."""
    from alerts.delivery.channels.files import write_index

    settings, _ = _context()
    path = write_index(settings.outbox_dir(), limit)
    console.print(f"file://{path.resolve()}")
