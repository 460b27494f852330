"""`make demo`: the whole flow offline, in minutes, on a fresh clone.

Feeds are served from local files on 127.0.0.1 (the real publisher snapshots in
../shared/data/feeds when present, else our own samples in tests/fixtures/feeds); a demo
data folder (var/demo) gets its own SQLite file, file outbox and feed registry, an editor
and an approver, a dozen confirmed subscribers and four vetted firms. Then one poll, a
short walkthrough on the console, and the real service (`alerts run`)."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from sqlalchemy import insert, select

from alerts.referrals import directory
from alerts.referrals.models import Firm
from alerts.referrals.validation import parse_firm
from alerts.settings import Settings
from alerts.staff import accounts, passwords
from alerts.store import Database
from subscribers import tokens
from subscribers.models import ACTIVE, Subscriber

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FEEDS = ROOT / "tests" / "fixtures" / "feeds"
DEMO_DIR = Path("var/demo")
DEMO_SCANS = 60
EDITOR, APPROVER = "editor@demo.example", "approver@demo.example"


@dataclass(frozen=True)
class DemoFeed:
    name: str
    title: str
    path: str  # relative to the folder the feed server serves
    format: str
    language: str
    category: str


# Real publisher files (see ../shared/data/feeds/MANIFEST.md): two CERT-FR RSS feeds, the
# CISA and EU known-exploited catalogues, and CSAF documents from NCSC-NL, BSI and Fortinet.
SHARED_SET = (
    DemoFeed(
        "certfr-alertes",
        "CERT-FR alertes",
        "rss/certfr-alertes-feed-2026-08-20.xml",
        "rss",
        "fr",
        "cert",
    ),
    DemoFeed(
        "certfr-avis", "CERT-FR avis", "rss/certfr-avis-feed-2026-08-20.xml", "rss", "fr", "cert"
    ),
    DemoFeed(
        "cisa-kev",
        "CISA known exploited vulnerabilities",
        "kev/kev-catalog-subset-dashboard-fixture.json",
        "cisa-kev",
        "en",
        "kev",
    ),
    DemoFeed("eu-kev", "EU KEV", "kev/enisa-eukev-2026-08-21.json", "eu-kev", "en", "kev"),
    DemoFeed(
        "ncsc-nl-csaf",
        "NCSC-NL CSAF advisory",
        "csaf/ncsc-nl/ncsc-2025-0210.json",
        "csaf",
        "nl",
        "cert",
    ),
    DemoFeed(
        "bsi-csaf",
        "BSI CERT-Bund CSAF advisory",
        "csaf/bsi-certbund/wid-sec-w-2025-0001.json",
        "csaf",
        "de",
        "cert",
    ),
    DemoFeed(
        "fortinet-csaf",
        "Fortinet PSIRT CSAF advisory",
        "csaf/fortinet/csaf_authenticated-heap-overflow-in-ssl-vpn-bookmarks.json",
        "csaf",
        "en",
        "vendor",
    ),
)
# Our own samples, for a clone without the shared snapshots.
FIXTURE_SET = (
    DemoFeed("sample-rss", "Sample RSS 2.0 feed", "rss/sample-rss20.xml", "rss", "en", "cert"),
    DemoFeed("sample-atom", "Sample Atom feed", "rss/sample-atom.xml", "rss", "en", "news"),
    DemoFeed("cisa-kev", "CISA KEV (sample)", "kev/cisa-kev-sample.json", "cisa-kev", "en", "kev"),
    DemoFeed("eu-kev", "EU KEV (sample)", "kev/eu-kev-sample.json", "eu-kev", "en", "kev"),
    DemoFeed(
        "sample-csaf",
        "Sample CSAF advisory",
        "csaf/brusselsoft-bsa-2025-0042.json",
        "csaf",
        "en",
        "vendor",
    ),
)

# (organisation, email, phone, language, region, sector, size band, product families)
SUBSCRIBERS = (
    ("Bakkerij Janssens", "delivered@simulator.sme-alerts.invalid", "+447700900001", "nl",
     "BE-VAN", "retail", "2-9", ["fortinet-fortigate", "microsoft-windows"]),
    ("Boulangerie Dupont", "temporary-failure@simulator.sme-alerts.invalid", "+447700900002",
     "fr", "BE-WLG", "retail", "2-9", ["microsoft-exchange", "wordpress"]),
    ("Garage Peeters", "permanent-failure@simulator.sme-alerts.invalid", "+447700900003", "nl",
     "BE-VLI", "services", "10-49", ["qnap", "veeam"]),
    ("Cabinet Lambert", "contact@cabinet-lambert.example", None, "fr", "BE-BRU",
     "professional", "2-9", ["microsoft-office", "microsoft-outlook", "browsers"]),
    ("Brussels Design Studio", "hello@bxl-design.example", None, "en", "BE-BRU", "ict", "1",
     ["apple", "browsers", "document-readers"]),
    ("Hotel Ardennes", "info@hotel-ardennes.example", None, "fr", "BE-WLX", "hospitality",
     "10-49", ["ecommerce", "wordpress", "soho-routers"]),
    ("Eupener Schreinerei", "info@schreinerei-eupen.example", None, "de", "BE-WLG",
     "construction", "2-9", ["microsoft-windows", "archivers"]),
    ("Accountancy Maes", "office@maes-accountancy.example", None, "nl", "BE-VBR", "finance",
     "10-49", ["microsoft-sharepoint", "synology", "remote-tools"]),
    ("Transport Wouters", "planning@wouters-transport.example", None, "nl", "BE-VWV",
     "transport", "50-249", ["cisco-asa", "vmware", "windows-server-roles"]),
    ("Clinique vétérinaire Namur", "accueil@veto-namur.example", None, "fr", "BE-WNA",
     "healthcare", "2-9", ["sonicwall", "microsoft-windows"]),
    ("Ghent ICT Partners", "ops@ghent-ict.example", None, "en", "BE-VOV", "ict", "10-49",
     ["paloalto-panos", "ivanti-connect-secure", "openssh"]),
    ("Hainaut Métal", "it@hainaut-metal.example", None, "fr", "BE-WHT", "manufacturing",
     "50-249", ["citrix-netscaler", "screenconnect", "microsoft-exchange"]),
)  # fmt: skip

FIRMS = (
    {
        "name": "Schelde Security",
        "enterprise_number": "0123.456.749",
        "website": "https://www.schelde-security.example.be",
        "email": "help@schelde-security.example.be",
        "phone": "+32 3 201 11 11",
        "regions": ["BE-VAN", "BE-VOV", "BE-VBR", "BE-VLI", "BE-VWV"],
        "languages": ["nl", "en"],
        "specialities": ["incident-response", "network-firewall", "security-audit"],
        "certifications": ["ISO 27001"],
        "kmo_portefeuille": True,
    },
    {
        "name": "Cyber Wallonie",
        "enterprise_number": "0200.065.765",
        "website": "https://www.cyber-wallonie.example.be",
        "email": "contact@cyber-wallonie.example.be",
        "phone": "+32 4 221 22 22",
        "regions": ["BE-WLG", "BE-WNA", "BE-WHT", "BE-WLX", "BE-WBR"],
        "languages": ["fr", "de"],
        "specialities": ["ransomware-recovery", "backup-recovery", "incident-response"],
        "certifications": [],
        "kmo_portefeuille": False,
    },
    {
        "name": "Brussels Web Shield",
        "enterprise_number": "0202.239.951",
        "website": "https://www.webshield.example.be",
        "email": "info@webshield.example.be",
        "phone": "+32 2 541 81 11",
        "regions": ["BE-BRU", "BE-VBR", "BE-WBR"],
        "languages": ["fr", "nl", "en"],
        "specialities": ["web-cms-security", "security-audit", "awareness-training"],
        "certifications": ["CREST"],
        "kmo_portefeuille": True,
    },
    {
        "name": "Managed SOC Belgium",
        "enterprise_number": "0203.201.340",
        "website": "https://www.soc-belgium.example.be",
        "email": "sales@soc-belgium.example.be",
        "phone": "+32 9 265 33 33",
        "regions": ["BE-BRU", "BE-VOV", "BE-VWV", "BE-WHT"],
        "languages": ["nl", "fr", "en"],
        "specialities": ["managed-security", "incident-response", "network-firewall"],
        "certifications": ["ISO 27001", "SOC 2"],
        "kmo_portefeuille": False,
    },
)


@dataclass(frozen=True)
class DemoAccounts:
    editor: tuple[str, str]  # (email, password)
    approver: tuple[str, str]
    feeds_file: Path
    subscribers_added: int
    firms_added: int
    scans_added: int = 0


# --------------------------------------------------------------------------- feeds


def default_feeds_dir() -> Path:
    """The real snapshots when this machine has them, else our own samples."""
    shared = _shared_data() / "feeds"
    return shared if _complete(shared, SHARED_SET) else FIXTURE_FEEDS


def _shared_data() -> Path:
    try:  # bench/ sits beside alerts/ in a checkout (make demo runs from there)
        from bench.common import find_shared_data
    except ImportError:
        return Path(os.environ.get("ALERTS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return find_shared_data()


def feeds_for(feeds_dir: Path) -> tuple[DemoFeed, ...]:
    return SHARED_SET if _complete(feeds_dir, SHARED_SET) else FIXTURE_SET


def _complete(folder: Path, feeds: tuple[DemoFeed, ...]) -> bool:
    return all((folder / feed.path).is_file() for feed in feeds)


def write_registry(path: Path, feeds: tuple[DemoFeed, ...], base_url: str) -> Path:
    """A feeds.yaml pointing every feed at the local server."""
    entries = [
        {
            "name": feed.name,
            "title": feed.title,
            "url": f"{base_url.rstrip('/')}/{feed.path}",
            "format": feed.format,
            "language": feed.language,
            "category": feed.category,
            "interval": "30m",
            "notes": "demo: a local file served on 127.0.0.1",
        }
        for feed in feeds
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `python -m alerts.demo`: every feed is a local file on 127.0.0.1.\n"
    path.write_text(header + yaml.safe_dump({"feeds": entries}, sort_keys=False), "utf-8")
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


def start_feed_server(feeds_dir: Path) -> ThreadingHTTPServer:
    """Serve feeds_dir on 127.0.0.1 (a free port) in a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(feeds_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="demo-feeds", daemon=True).start()
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


# --------------------------------------------------------------------------- seeding


def prepare(settings: Settings, database: Database, feeds_dir: Path, base_url: str):
    """Everything a newcomer needs, idempotently: running it again adds nothing twice (the
    two staff passwords are new each time, since only their hashes are kept)."""
    now = datetime.now(UTC)
    with database.session() as session:
        editor = _staff(session, EDITOR, "Demo Editor", "editor", now)
        approver = _staff(session, APPROVER, "Demo Approver", "approver", now)
        subscribers_added = _subscribers(session, settings, now)
        firms_added = _firms(session, now)
    scans_added = _scans(database, now)
    feeds_file = write_registry(settings.data_dir / "feeds.yaml", feeds_for(feeds_dir), base_url)
    return DemoAccounts(editor, approver, feeds_file, subscribers_added, firms_added, scans_added)


def _staff(session, email: str, name: str, role: str, now: datetime) -> tuple[str, str]:
    password = passwords.generate()
    if accounts.find(session, email) is None:
        user = accounts.add(session, email, name, role, password, now)
    else:
        user = accounts.reset_password(session, email, password, now)
    user.must_change_password = False  # a demo: no first-login password change
    return user.email, password


def _subscribers(session, settings: Settings, now: datetime) -> int:
    signer = tokens.Signer(settings.signing_key())
    rows = [_subscriber_row(signer, values, now) for values in SUBSCRIBERS]
    known = set(session.scalars(select(Subscriber.email_key)))
    missing = [row for row in rows if row["email_key"] not in known]
    if missing:
        session.execute(insert(Subscriber), missing)
    return len(missing)


def _scans(database: Database, now: datetime) -> int:
    """Made-up anonymous scan results, so the staff statistics have something to show
    (added once: only when no anonymous result exists yet)."""
    import random

    from alerts.maturity.models import MaturityResult
    from alerts.maturity.scan import load_scan, score
    from alerts.maturity.service import Dimensions, Scans, month_start

    with database.session() as session:
        if session.scalar(select(MaturityResult.id).where(MaturityResult.subscriber_id.is_(None))):
            return 0
    # dated last month: the staff statistics are a monthly release
    scans = Scans(database, load_scan(), clock=lambda: month_start(now) - timedelta(days=1))
    draw = random.Random(2017)  # the same sample every run
    places = [values[4:7] for values in SUBSCRIBERS]  # (region, sector, size band)
    for _ in range(DEMO_SCANS):
        answers = {
            q.id: draw.choice(q.answers).id for q in scans.scan.questions if q.kind == "single"
        }
        region, sector, size_band = draw.choice(places)
        result = score(scans.scan, answers, "en")
        scans.save_anonymous(result, Dimensions(sector, size_band, region))
    return DEMO_SCANS


def _subscriber_row(signer: tokens.Signer, values: tuple, now: datetime) -> dict:
    organisation, email, phone, language, region, sector, size_band, families = values
    return {
        "status": ACTIVE,
        "organisation": organisation,
        "email": email,
        "email_key": signer.key("email", email),
        "phone": phone,
        "phone_key": signer.key("sms", phone) if phone else None,
        "phone_confirmed_at": now if phone else None,
        "language": language,
        "region": region,
        "sector": sector,
        "size_band": size_band,
        "families": families,
        "knows_products": True,
        "urgent_email": True,
        "urgent_sms": bool(phone),
        "newsletter": "weekly",
        "source": "import",
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now,
        "link_key": tokens.link_key(),
        "sms_optout_code": tokens.short_code(),
        "sms_code_attempts": 0,
    }


def _firms(session, now: datetime) -> int:
    known = set(session.scalars(select(Firm.enterprise_number)))
    added = 0
    for data in FIRMS:
        record = parse_firm(data | {"status": "vetted", "expires_on": _in_a_year(now)})
        if record.enterprise_number not in known:
            directory.add(session, record, None, now)
            added += 1
    return added


def _in_a_year(now: datetime) -> str:
    return (directory.today(now) + timedelta(days=365)).isoformat()


# --------------------------------------------------------------------------- main


def demo_environment(data_dir: Path, feeds_file: Path) -> dict[str, str]:
    """The settings of the demo: its own database, file outbox and feed registry."""
    return {
        "ALERTS_DATA_DIR": str(data_dir),
        "ALERTS_DATABASE_URL": f"sqlite:///{data_dir / 'alerts.sqlite3'}",
        "ALERTS_FEEDS_FILE": str(feeds_file),
        "ALERTS_ALLOW_PRIVATE_ADDRESSES": "true",
        "ALERTS_EMAIL_CHANNEL": "file",
        "ALERTS_SMS_CHANNEL": "file",
    }


def walkthrough(settings: Settings, demo: DemoAccounts, polled: list) -> str:
    base = f"http://{settings.host}:{settings.port}"
    stored = sum(summary.new + summary.updated for summary in polled)
    failed = [summary.source for summary in polled if summary.status == "error"]
    outbox = settings.outbox_dir()
    lines = [
        "",
        "=" * 78,
        "SME threat alerts - demo (everything stays on this machine)",
        "=" * 78,
        f"Feeds polled: {len(polled)}, advisories new or updated: {stored}"
        + (f", failed: {', '.join(failed)}" if failed else ""),
        f"Subscribers added: {demo.subscribers_added}, firms added: {demo.firms_added}, "
        f"sample scan results added: {demo.scans_added}",
        "",
        f"Open {base}/staff/login and log in with (passwords shown once, new every run):",
        f"  editor    {demo.editor[0]:<26} {demo.editor[1]}",
        f"  approver  {demo.approver[0]:<26} {demo.approver[1]}",
        "",
        "Then try:",
        f"  1. As the editor: {base}/staff/queue - pick an advisory and make an alert.",
        "  2. Edit the texts, look at the previews and SMS cost, then submit it.",
        "  3. Log out, log in as the approver: approve the alert, then send it.",
        f"  4. The messages land in {outbox}/ (.eml files and SMS as JSON);",
        f"     `ALERTS_DATA_DIR={settings.data_dir} .venv/bin/alerts outbox preview` "
        "writes an index page.",
        f"  5. The public pages: {base}/alerts and {base}/firms",
        f"  6. The maturity quick-scan: {base}/scan; its anonymous statistics for staff:",
        f"     {base}/staff/maturity (the {DEMO_SCANS} sample results are made up).",
        "",
        "Ctrl+C stops the demo. `rm -rf var/demo` starts afresh.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from alerts.feeds import load_registry
    from alerts.ingest.poller import Poller
    from alerts.logs import configure_logging
    from alerts.service import serve
    from alerts.settings import load_settings

    feeds_dir = default_feeds_dir()
    server = start_feed_server(feeds_dir)
    data_dir = DEMO_DIR.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(demo_environment(data_dir, data_dir / "feeds.yaml"))
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    database = Database(settings.resolved_database_url())
    demo = prepare(settings, database, feeds_dir, server_url(server))
    registry = load_registry(demo.feeds_file)
    poller = Poller(database, settings, registry)
    try:
        polled = poller.poll_feeds([feed.name for feed in registry.feeds])
    finally:
        poller.close()
    print(walkthrough(settings, demo, polled), flush=True)  # noqa: T201 - the console is the UI
    try:
        serve(settings, database, registry)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
