"""`alerts firms ...`: import from CSV and YAML (per-row errors, dry run, re-import updates),
list and expire, run in-process against both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from alerts.cli import app
from alerts.referrals import directory
from alerts.referrals.models import Firm
from alerts.referrals.validation import parse_firm
from alerts.staff.models import AuditEvent
from alerts.store import Database

runner = CliRunner()
HEADER = (
    "name,enterprise_number,website,email,phone,regions,languages,specialities,"
    "certifications,kmo_portefeuille,status,vetted_on,expires_on,notes"
)
CSV = "\n".join(
    [
        HEADER,
        "Cyber Hulp,0123.456.749,https://www.cyberhulp.be,info@cyberhulp.be,02 511 22 33,"
        'BE-VAN;BE-BRU,nl;fr,incident-response,"ISO 27001, annex A;CyFun",yes,vetted,'
        "2026-01-10,2099-01-10,",
        "Broken Firm,0123.456.789,http://broken.be,broken,12,BE-XXX,nl,hacking,,no,pending,,,",
        '=HYPERLINK("x"),0000.000.097,https://formula.be,a@formula.be,+32 9 234 56 78,'
        "BE-VOV,nl,security-audit,,no,pending,,,=1+1",
        "Twice,0123.456.749,https://twice.be,a@twice.be,+32 9 234 56 78,BE-VOV,nl,"
        "security-audit,,no,pending,,,",
        "",
    ]
)
YAML = """
- name: Sécurité Liège
  enterprise_number: "0000000097"
  website: https://www.securite-liege.be
  email: contact@securite-liege.be
  phone: "+32 4 222 33 44"
  regions: [BE-WLG]
  languages: [fr, de]
  specialities: [security-audit, awareness-training]
  kmo_portefeuille: true
  status: vetted
  expires_on: 2099-05-01
- name: ""
  enterprise_number: "12"
  website: https://x.be
  email: x@x.be
  phone: "+32 4 222 33 44"
  regions: [BE-WLG]
  languages: [fr]
  specialities: [security-audit]
  status: vetted
- just a string
"""


@pytest.fixture
def env(cli_env):
    return cli_env


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def firms(database_url) -> list[Firm]:
    database = Database(database_url)
    try:
        with database.session() as session:
            rows = list(session.scalars(select(Firm).order_by(Firm.enterprise_number)))
            session.expunge_all()
            return rows
    finally:
        database.dispose()


def write(env, name: str, text: str):
    path = env / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_import_names_bad_rows_and_stores_the_good(env, database_url):
    result = invoke("firms", "import", str(write(env, "firms.csv", CSV)))
    assert result.exit_code == 1
    output = result.output
    assert "firms.csv:3: enterprise_number:" in output
    assert "firms.csv:3: website: an https:// address" in output
    assert "firms.csv:3: email:" in output
    assert "firms.csv:3: phone:" in output
    assert "firms.csv:3: regions: unknown: BE-XXX" in output
    assert "firms.csv:3: specialities: unknown: hacking" in output
    assert "firms.csv:5: enterprise_number: the same enterprise number as row 2" in output
    assert "2 added, 0 updated, 0 unchanged, 2 refused" in output
    stored = firms(database_url)
    assert [firm.name for firm in stored] == ['=HYPERLINK("x")', "Cyber Hulp"]
    formula, hulp = stored
    assert formula.notes == "=1+1"  # kept as text, never evaluated
    assert hulp.regions == ["BE-VAN", "BE-BRU"]
    assert hulp.certifications == ["ISO 27001, annex A", "CyFun"]  # lists split on ";" only
    assert (hulp.status, hulp.vetted_by, hulp.kmo_portefeuille) == ("vetted", "system", True)


def test_yaml_import(env, database_url):
    result = invoke("firms", "import", str(write(env, "firms.yaml", YAML)))
    assert result.exit_code == 1
    assert "firms.yaml:2: name: required" in result.output
    assert "firms.yaml:2: enterprise_number:" in result.output
    assert "firms.yaml:3: row: a mapping" in result.output
    assert "1 added, 0 updated, 0 unchanged, 2 refused" in result.output
    (firm,) = firms(database_url)
    assert (firm.name, firm.expires_on, firm.languages) == (
        "Sécurité Liège",
        date(2099, 5, 1),
        ["fr", "de"],
    )


def test_dry_run_stores_nothing(env, database_url):
    result = invoke("firms", "import", str(write(env, "firms.csv", CSV)), "--dry-run")
    assert result.exit_code == 1
    assert "2 added, 0 updated, 0 unchanged, 2 refused (dry run: nothing stored)" in result.output
    assert firms(database_url) == []


def test_a_clean_file_exits_0_and_reimport_updates(env, database_url):
    path = write(env, "firms.yaml", YAML.split('- name: ""')[0])
    assert invoke("firms", "import", str(path)).exit_code == 0
    again = invoke("firms", "import", str(path))
    assert again.exit_code == 0
    assert "0 added, 0 updated, 1 unchanged, 0 refused" in again.output
    write(env, "firms.yaml", path.read_text().replace("Sécurité Liège", "Sécurité Liège SA"))
    dry = invoke("firms", "import", str(path), "--dry-run")
    assert "0 added, 1 updated, 0 unchanged" in dry.output
    assert firms(database_url)[0].name == "Sécurité Liège"
    changed = invoke("firms", "import", str(path))
    assert "0 added, 1 updated, 0 unchanged, 0 refused" in changed.output
    (firm,) = firms(database_url)
    assert firm.name == "Sécurité Liège SA"
    database = Database(database_url)
    with database.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject == f"firm:{firm.id}")
        ).all()
    database.dispose()
    assert sorted(actions) == ["firm-added", "firm-changed"]


def test_file_checks(env, monkeypatch):
    import alerts.referrals.cli as firms_cli

    result = invoke("firms", "import", str(write(env, "firms.txt", "x")))
    assert result.exit_code == 2 and "a .csv, .yaml or .yml file" in result.output
    result = invoke("firms", "import", str(write(env, "firms.yaml", "a: [")))
    assert result.exit_code == 2 and "not valid YAML" in result.output
    result = invoke("firms", "import", str(write(env, "firms.yml", "name: x")))
    assert result.exit_code == 2 and "a YAML list" in result.output
    monkeypatch.setattr(firms_cli, "MAX_ROWS", 2)
    result = invoke("firms", "import", str(write(env, "firms.csv", CSV)))
    assert result.exit_code == 2 and "more than 2 rows" in result.output
    monkeypatch.setattr(firms_cli, "MAX_BYTES", 10)
    result = invoke("firms", "import", str(write(env, "firms.csv", CSV)))
    assert result.exit_code == 2 and "larger than" in result.output


def test_list_and_expire(env, database_url):
    invoke("firms", "import", str(write(env, "firms.csv", CSV)))
    listed = invoke("firms", "list")
    assert listed.exit_code == 0
    assert "Cyber Hulp" in listed.output and "0123456749" in listed.output
    assert "2 firms" in listed.output
    assert "Cyber Hulp" not in invoke("firms", "list", "--status", "pending").output

    today = directory.today(datetime.now(UTC))
    database = Database(database_url)
    with database.session() as session:
        record = parse_firm(
            {
                "name": "Ends Today",
                "enterprise_number": "0000.000.196",
                "website": "https://ends.be",
                "email": "a@ends.be",
                "phone": "+32 9 234 56 78",
                "regions": "BE-VOV",
                "languages": "nl",
                "specialities": "security-audit",
                "status": "vetted",
                "vetted_on": (today - timedelta(days=365)).isoformat(),
                "expires_on": today.isoformat(),
            }
        )
        directory.add(session, record, None, datetime.now(UTC))
    database.dispose()
    result = invoke("firms", "expire")
    assert result.exit_code == 0
    assert "expired:" in result.output and "Ends Today" in result.output
    assert "1 firms expired" in result.output
    assert "0 firms expired" in invoke("firms", "expire").output
    statuses = {firm.name: firm.status for firm in firms(database_url)}
    assert statuses["Ends Today"] == "expired" and statuses["Cyber Hulp"] == "vetted"
