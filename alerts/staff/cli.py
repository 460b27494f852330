"""`alerts users ...`: staff accounts from the command line (the first admin, resets)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alerts.staff import accounts
from alerts.staff.models import ROLES
from alerts.staff.passwords import generate

app = typer.Typer(help="Staff accounts: add, list, disable, enable, reset.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin")
]


def _database():
    from alerts.cli import _database, _settings

    return _database(_settings())


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated): read from stdin, or generated and shown once."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return generate(), True


def _fail(error: Exception) -> None:
    errors.print(f"[red]{error}[/red]")
    raise typer.Exit(1)


@app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="Their work email address (the login)")],
    name: Annotated[str, typer.Option(help="Their name, as shown in the audit trail")] = "",
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}")] = "editor",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account. Without --password-stdin a password is generated and printed once;
    its owner must change it at the first login."""
    password, generated = _password(password_stdin)
    try:
        with _database().session() as session:
            user = accounts.add(
                session, email, name or email.split("@")[0], role, password, datetime.now(UTC)
            )
            line = f"added {user.email} ({user.role})"
    except accounts.AccountError as error:
        _fail(error)
    console.print(line)
    if generated:
        console.print(f"password (shown once): [bold]{password}[/bold]")


@app.command("list")
def list_users() -> None:
    """Every account, its role and state."""
    with _database().session() as session:
        table = Table("email", "name", "role", "state", "last login")
        for user in accounts.listing(session):
            last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "-"
            table.add_row(
                user.email, user.name, user.role, "active" if user.active else "disabled", last
            )
    console.print(table)


def _set_active(email: str, active: bool) -> None:
    try:
        with _database().session() as session:
            accounts.set_active(session, email, active, datetime.now(UTC))
    except accounts.AccountError as error:
        _fail(error)
    console.print(f"{'enabled' if active else 'disabled'} {email.strip().lower()}")


@app.command("disable")
def disable(email: Annotated[str, typer.Argument()]) -> None:
    """Disable an account: its sessions end at once; the audit trail keeps its name."""
    _set_active(email, False)


@app.command("enable")
def enable(email: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled account again."""
    _set_active(email, True)


@app.command("reset")
def reset(
    email: Annotated[str, typer.Argument()],
    password_stdin: PasswordStdin = False,
) -> None:
    """A new password (generated and printed once unless given on stdin); sessions end and
    the owner must change it at the next login."""
    password, generated = _password(password_stdin)
    try:
        with _database().session() as session:
            accounts.reset_password(session, email, password, datetime.now(UTC))
    except accounts.AccountError as error:
        _fail(error)
    console.print(f"reset {email.strip().lower()}")
    if generated:
        console.print(f"password (shown once): [bold]{password}[/bold]")


@app.command("role")
def role(
    email: Annotated[str, typer.Argument()],
    new_role: Annotated[str, typer.Argument(help=f"One of {', '.join(ROLES)}")],
) -> None:
    """Change an account's role."""
    try:
        with _database().session() as session:
            accounts.set_role(session, email, new_role, datetime.now(UTC))
    except accounts.AccountError as error:
        _fail(error)
    console.print(f"{email.strip().lower()} is now {new_role}")
