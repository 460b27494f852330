"""The `alerts` command line (Typer + rich)."""

from __future__ import annotations

import importlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from alerts.feeds import RegistryError, load_registry
from alerts.logs import configure_logging
from alerts.settings import Settings, SettingsError, get_settings
from alerts.store import Database

if TYPE_CHECKING:
    from alerts.ingest.outcome import PollSummary

# Commands kept in other modules, imported only when one of them runs (or for --help): a
# one-shot `alerts poll` from cron does not pay for the delivery, referral and staff code
# (about half its start-up). name -> (module, attribute: a Typer app or a function).
ELSEWHERE = {
    "relevance": ("alerts.relevance.cli", "app"),
    "subscribers": ("subscribers.cli", "app"),
    "outbox": ("alerts.delivery.cli", "outbox_app"),
    "users": ("alerts.staff.cli", "app"),
    "firms": ("alerts.referrals.cli", "app"),
    "send": ("alerts.delivery.cli", "send"),
    "worker": ("alerts.delivery.cli", "worker"),
    "status": ("alerts.status", "status"),
}


class LazyGroup(TyperGroup):
    """The top-level group: this module's commands, then those of ELSEWHERE on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return super().list_commands(ctx) + [n for n in ELSEWHERE if n not in self.commands]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in ELSEWHERE:
            self.commands[name] = _load_command(name)
        return super().get_command(ctx, name)


def _load_command(name: str) -> click.Command:
    module, attribute = ELSEWHERE[name]
    found = getattr(importlib.import_module(module), attribute)
    if isinstance(found, typer.Typer):
        command = typer.main.get_group(found)
    else:
        single = typer.Typer()
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


app = typer.Typer(
    help="Threat-alert service for SMEs: advisories in, curated alerts out.",
    no_args_is_help=True,
    cls=LazyGroup,
)
feeds_app = typer.Typer(help="The feed registry and feed health.", no_args_is_help=True)
advisories_app = typer.Typer(help="Stored advisories.", no_args_is_help=True)
vulns_app = typer.Typer(help="Advisories grouped per CVE.", no_args_is_help=True)
epss_app = typer.Typer(help="EPSS exploit-prediction scores.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(advisories_app, name="advisories")
app.add_typer(vulns_app, name="vulnerabilities")
app.add_typer(epss_app, name="epss")
console = Console()
errors = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = get_settings()
    except SettingsError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return settings


def _database(settings: Settings) -> Database:
    return Database(settings.resolved_database_url())


def _registry(settings: Settings):
    try:
        return load_registry(settings.feeds_file)
    except RegistryError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


# --------------------------------------------------------------------------- service


@app.command()
def run() -> None:
    """Run the service: migrate, then the web app and the feed scheduler in one process."""
    from alerts.service import serve

    settings = _settings()
    serve(settings, _database(settings), _registry(settings))


@app.command()
def migrate() -> None:
    """Apply database migrations (also done automatically on every start)."""
    settings = _settings()
    database = _database(settings)
    console.print(f"[green]schema up to date[/green] ({database.dialect})")


@app.command()
def config(
    markdown: Annotated[bool, typer.Option("--markdown", help="The README table")] = False,
) -> None:
    """Show the effective settings, secrets masked (or the documentation table)."""
    if markdown:
        typer.echo(settings_markdown())
        return
    settings = _settings()
    table = Table("setting", "environment variable", "value")
    for name, value in settings.masked().items():
        table.add_row(name, f"ALERTS_{name.upper()}", value)
    console.print(table)


def settings_markdown() -> str:
    """Every setting with its default and meaning, from the one place they are described."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        lines.append(f"| `ALERTS_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- feeds


@feeds_app.command("check")
def feeds_check(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Validate feeds.yaml (or PATH); report the line at fault."""
    settings = _settings()
    try:
        registry = load_registry(path or settings.feeds_file)
    except RegistryError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    enabled = sum(feed.enabled for feed in registry.feeds)
    console.print(f"[green]ok[/green]: {len(registry.feeds)} feeds, {enabled} enabled")


@feeds_app.command("list")
def feeds_list() -> None:
    """Every feed with its health: last success, last error, failures, next poll."""
    from alerts.feeds import sync_feeds
    from alerts.queries import feed_health

    settings = _settings()
    database, registry = _database(settings), _registry(settings)
    with database.session() as session:
        sync_feeds(session, registry)
        rows = feed_health(session)
        table = Table(
            "feed", "format", "state", "last success", "failures", "next poll", "last error"
        )
        for feed in rows:
            state = (
                "enabled"
                if feed.enabled and not feed.disabled_reason
                else (feed.disabled_reason or "disabled")
            )
            table.add_row(
                feed.name,
                feed.format,
                state,
                _when(feed.last_success_at),
                str(feed.consecutive_failures),
                _when(feed.next_poll_at),
                (feed.last_error or "")[:60],
            )
    console.print(table)


@feeds_app.command("enable")
def feeds_enable(name: Annotated[str, typer.Argument(help="Feed name")]) -> None:
    """Re-enable a feed the publisher marked gone (410) and poll it at the next run."""
    from alerts.feeds import enable_feed, sync_feeds

    settings = _settings()
    database, registry = _database(settings), _registry(settings)
    with database.session() as session:
        sync_feeds(session, registry)
        if not enable_feed(session, name):
            errors.print(f"[red]no feed named {name!r} in {settings.feeds_file}[/red]")
            raise typer.Exit(1)
    console.print(f"[green]{name} enabled[/green]; it is polled at the next run")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


# --------------------------------------------------------------------------- polling


@app.command()
def poll(
    feed: Annotated[list[str] | None, typer.Option("--feed", help="Feed name (repeatable)")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A local document")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Format of --file")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Source name for --file")] = None,
) -> None:
    """Poll all due feeds, the named feeds, or one local file; print a per-feed summary."""
    from alerts.ingest.local import ingest_file
    from alerts.ingest.parsers import FORMATS

    settings = _settings()
    if format and format not in FORMATS:
        errors.print(f"[red]unknown format {format!r}[/red]; known: {', '.join(sorted(FORMATS))}")
        raise typer.Exit(2)
    database = _database(settings)
    if file is not None:
        summaries = [ingest_file(database, file, format=format, source=source)]
    else:
        summaries = _poll_registry(settings, database, feed)
    _print_summaries(summaries)
    if any(s.status == "error" for s in summaries):
        raise typer.Exit(1)


def _poll_registry(settings: Settings, database: Database, names: list[str] | None):
    from alerts.ingest.poller import Poller

    registry = _registry(settings)
    unknown = [n for n in names or [] if n not in {f.name for f in registry.feeds}]
    if unknown:
        errors.print(f"[red]unknown feed(s): {', '.join(unknown)}[/red]")
        raise typer.Exit(2)
    poller = Poller(database, settings, registry)
    try:
        with console.status("polling feeds..."):
            return poller.poll_feeds(names) if names else poller.poll_due()
    finally:
        poller.close()


def _print_summaries(summaries: list[PollSummary]) -> None:
    if not summaries:
        console.print("no feed was due")
        return
    table = Table("source", "status", "new", "updated", "unchanged", "docs", "errors / warnings")
    for s in summaries:
        colour = {"ok": "green", "not-modified": "cyan", "skipped": "yellow"}.get(s.status, "red")
        notes = "; ".join(s.errors + s.warnings)[:160]
        table.add_row(
            s.source,
            f"[{colour}]{s.status}[/{colour}]",
            str(s.new),
            str(s.updated),
            str(s.unchanged),
            str(s.documents),
            notes,
        )
    console.print(table)
    epss = sum(s.epss for s in summaries)
    if epss:
        console.print(f"{epss} EPSS scores stored")


# --------------------------------------------------------------------------- advisories


@advisories_app.command("list")
def advisories_list(
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    since: Annotated[str | None, typer.Option(help="Published on or after (YYYY-MM-DD)")] = None,
    cve: Annotated[str | None, typer.Option(help="Mentioning this CVE")] = None,
    text: Annotated[str | None, typer.Option(help="Text in title or summary")] = None,
    kind: Annotated[str | None, typer.Option(help="advisory, news, known-exploited, ...")] = None,
    exploited: Annotated[bool, typer.Option("--exploited", help="Known exploited only")] = False,
    tier: Annotated[str | None, typer.Option(help="urgent, newsletter or ignore")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """List stored advisories, newest first."""
    from alerts.queries import (
        AdvisoryFilter,
        advisory_json,
        count_advisories,
        list_advisories,
        sources_for_cves,
    )

    settings = _settings()
    since_date = _since(since)
    filters = AdvisoryFilter(
        source=source,
        since=since_date,
        cve=cve,
        text=text,
        kind=kind,
        known_exploited=True if exploited else None,
        tier=tier,
    )
    with _database(settings).session() as session:
        rows = list_advisories(session, filters, limit=limit)
        total = count_advisories(session, filters)
        others = sources_for_cves(session, sorted({c for a in rows for c in a.cve_ids}))
        if as_json:
            for advisory in rows:
                typer.echo(json.dumps(advisory_json(advisory), ensure_ascii=False))
            return
        console.print(_advisory_table(rows, others))
    console.print(f"{len(rows)} of {total} advisories")


def _since(value: str | None) -> datetime | None:
    from alerts.ingest.normalize import parse_date

    if value is None:
        return None
    moment = parse_date(value)
    if moment is None:
        errors.print(f"[red]--since: cannot read {value!r} as a date (use YYYY-MM-DD)[/red]")
        raise typer.Exit(2)
    return moment


def _advisory_table(rows, others: dict[str, list[str]]) -> Table:
    table = Table("id", "published", "source", "tier", "title", "CVEs", "KEV", "also in")
    for a in rows:
        also = sorted({s for c in a.cve_ids for s in others.get(c, [])} - {a.source})
        cves = ", ".join(a.cve_ids[:3]) + (f" +{len(a.cve_ids) - 3}" if len(a.cve_ids) > 3 else "")
        table.add_row(
            a.uid,
            _when(a.published),
            a.source,
            f"{a.tier} {a.score}" if a.tier else "-",
            a.title[:70],
            cves,
            "yes" if a.known_exploited else "",
            ", ".join(also[:3]),
        )
    return table


@advisories_app.command("show")
def advisories_show(key: Annotated[str, typer.Argument(help="Advisory id")]) -> None:
    """One advisory in full, with its revisions."""
    from alerts.queries import advisory_json, find_advisory

    settings = _settings()
    with _database(settings).session() as session:
        advisory = find_advisory(session, key)
        if advisory is None:
            errors.print(f"[red]no advisory {key!r}[/red]")
            raise typer.Exit(1)
        console.print_json(
            json.dumps(
                advisory_json(advisory)
                | {
                    "links": advisory.links,
                    "facts": advisory.facts,
                    "revisions": [
                        {"revision": r.revision, "recorded_at": r.recorded_at.isoformat()}
                        for r in advisory.revisions
                    ],
                }
            )
        )


@vulns_app.command("list")
def vulnerabilities_list(
    min_sources: Annotated[int, typer.Option(min=1, help="Covered by at least N sources")] = 1,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """CVEs with the number of sources that wrote about them."""
    from alerts.queries import list_vulnerabilities

    settings = _settings()
    with _database(settings).session() as session:
        rows = list_vulnerabilities(session, limit=limit, min_sources=min_sources)
    table = Table("CVE", "sources", "latest")
    for cve_id, sources, latest in rows:
        table.add_row(cve_id, str(sources), _when(latest))
    console.print(table)


@vulns_app.command("show")
def vulnerabilities_show(cve: Annotated[str, typer.Argument(help="CVE id")]) -> None:
    """Every advisory about one CVE, from every source: one item, several voices."""
    from alerts.queries import vulnerability

    settings = _settings()
    with _database(settings).session() as session:
        found = vulnerability(session, cve)
        if found is None:
            errors.print(f"[red]no advisory mentions {cve}[/red]")
            raise typer.Exit(1)
        console.print(f"[bold]{found.cve_id}[/bold] {found.title}")
        console.print(
            f"known exploited: {'yes' if found.known_exploited else 'no'}; "
            f"sources: {', '.join(found.sources)}"
        )
        console.print(_advisory_table(found.advisories, {}))


@epss_app.command("load")
def epss_load(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load an EPSS CSV (plain or .gz) from FIRST."""
    from alerts.ingest.local import ingest_file

    settings = _settings()
    summary = ingest_file(_database(settings), path, format="epss-csv", source="epss")
    _print_summaries([summary])
    if summary.status == "error":
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()
