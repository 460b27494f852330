"""`alerts subscribers ...`: CSV import (dry run, per-row errors, confirmation emails), list,
show, export, erase, purge and suppress, run in-process against both databases."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from alerts.cli import app

runner = CliRunner()

CHAMBER_LIST = "\n".join(
    [
        "organisation;email;enterprise_number;phone;language;region;sector;size_band;families",
        "Garage Peeters;info@garage-peeters.be;0123.456.749;;nl;BE-VLI;services;2-9;"
        "microsoft-windows|fortinet-fortigate",
        "Boulangerie Dubois;contact@dubois.be;;+32 470 11 22 33;fr;BE-WLG;retail;1;",
        "Broken Row;not-an-address;0123.456.789;;nl;BE-VAN;retail;1;",
        "Duplicate;INFO@garage-peeters.be;;;nl;BE-VLI;services;2-9;",
        "Unknown Sector;hello@example.be;;;nl;BE-VAN;mining;1;",
        "",
    ]
)


@pytest.fixture
def env(cli_env):
    return cli_env


def invoke(*args, input=None):
    return runner.invoke(app, list(args), catch_exceptions=False, input=input)


def _outbox(env):
    return sorted((env / "outbox" / "email").glob("*.eml"))


def test_import_dry_run_reports_rows_and_stores_nothing(env):
    path = env / "list.csv"
    path.write_text(CHAMBER_LIST, encoding="utf-8")
    result = invoke("subscribers", "import", str(path), "--dry-run")
    assert result.exit_code == 1
    assert "2 valid rows, 3 with errors" in result.output
    assert "list.csv:4: email:" in result.output
    assert "list.csv:4: enterprise_number:" in result.output
    assert "list.csv:5: email: the same address as row 2" in result.output
    assert "list.csv:6: sector:" in result.output
    assert "0 subscribers in all" in invoke("subscribers", "list").output
    assert _outbox(env) == []


def test_import_invites_and_nobody_is_subscribed_before_confirming(env):
    path = env / "list.csv"
    path.write_text(CHAMBER_LIST, encoding="utf-8")
    result = invoke("subscribers", "import", str(path))
    assert "2 invited, 0 already subscribed (skipped), 0 not sent, 3 rows with errors" in (
        result.output
    )
    assert len(_outbox(env)) == 2
    listed = invoke("subscribers", "list", "--status", "pending").output
    assert "Garage Peeters" in listed and "Boulangerie Dubois" in listed
    assert invoke("subscribers", "list", "--status", "active").output.count("Garage") == 0
    shown = json.loads(invoke("subscribers", "show", "contact@dubois.be").output)
    assert shown["subscription"]["source"] == "import"
    assert shown["subscription"]["knows_products"] is False  # the list named no products
    assert shown["consent_events"][0]["method"] == "import"
    again = invoke("subscribers", "import", str(path))
    assert "2 invited" in again.output  # still unconfirmed: a new link, not a new row
    assert "2 subscribers in all" in invoke("subscribers", "list").output


def test_import_uses_defaults_for_missing_columns(env):
    path = env / "short.csv"
    path.write_text("organisation,email\nShop,shop@example.be\n", encoding="utf-8")
    missing = invoke("subscribers", "import", str(path), "--dry-run")
    assert "region:" in missing.output and "0 valid rows" in missing.output
    result = invoke(
        "subscribers",
        "import",
        str(path),
        "--language",
        "de",
        "--region",
        "BE-WLG",
        "--sector",
        "retail",
        "--size-band",
        "1",
    )
    assert result.exit_code == 0 and "1 invited" in result.output


def test_import_refuses_a_file_without_the_required_header(env):
    path = env / "bad.csv"
    path.write_text("name,mail\nx,y\n", encoding="utf-8")
    result = invoke("subscribers", "import", str(path))
    assert result.exit_code == 2 and "lacks: email, organisation" in result.output


def test_import_reads_windows_1252(env):
    path = env / "excel.csv"
    text = (
        "organisation;email;language;region;sector;size_band\n"
        "Café Élise;cafe@example.be;fr;BE-WNA;hospitality;2-9\n"
    )
    path.write_bytes(text.encode("cp1252"))
    assert "1 invited" in invoke("subscribers", "import", str(path)).output
    assert "Café Élise" in invoke("subscribers", "list").output


def test_export_erase_purge_and_suppress(env):
    path = env / "list.csv"
    path.write_text(CHAMBER_LIST, encoding="utf-8")
    invoke("subscribers", "import", str(path))
    exported = invoke("subscribers", "export", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {row["email"] for row in rows} == {"info@garage-peeters.be", "contact@dubois.be"}
    jsonl = invoke("subscribers", "export", "--format", "jsonl").output.splitlines()
    assert len(jsonl) == 2 and json.loads(jsonl[0])["organisation"]

    assert invoke("subscribers", "erase", "contact@dubois.be", "--yes").exit_code == 0
    assert invoke("subscribers", "show", "contact@dubois.be").exit_code == 1
    assert "sign-ups purged: 0" in invoke("subscribers", "purge").output
    assert "suppressed" in invoke("subscribers", "suppress", "x@example.be").output
    assert "already suppressed" in invoke("subscribers", "suppress", "X@example.be").output
    assert invoke("subscribers", "suppress", "x@example.be", "--reason", "whim").exit_code == 2


def test_csv_export_defuses_spreadsheet_formulas(env):
    path = env / "formula.csv"
    path.write_text(
        "organisation,email,language,region,sector,size_band\n"
        '"=HYPERLINK(""http://x.example"")",f@example.be,nl,BE-VAN,retail,1\n',
        encoding="utf-8",
    )
    invoke("subscribers", "import", str(path))
    rows = list(csv.DictReader(io.StringIO(invoke("subscribers", "export").output)))
    assert rows[0]["organisation"].startswith("'=HYPERLINK")
    jsonl = json.loads(invoke("subscribers", "export", "--format", "jsonl").output)
    assert jsonl["organisation"].startswith("=HYPERLINK")  # JSON is data, not a sheet
