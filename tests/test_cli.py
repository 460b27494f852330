"""The `alerts` command line, run in-process with Typer's runner."""

import json

import pytest
from typer.testing import CliRunner

from alerts.cli import app
from alerts.settings import get_settings

runner = CliRunner()

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Example CERT</title><link>https://cert.example.be/</link>
<item><title>ExampleVPN actively exploited (CVE-2026-10001)</title>
<link>https://cert.example.be/a/1</link><guid>https://cert.example.be/a/1</guid>
<pubDate>Wed, 01 Jul 2026 09:00:00 +0000</pubDate><description>Patch now.</description></item>
<item><title>ExampleMail update</title><link>https://cert.example.be/a/2</link>
<guid>https://cert.example.be/a/2</guid><pubDate>Tue, 30 Jun 2026 09:00:00 +0000</pubDate>
<description>Fixes CVE-2026-10002.</description></item>
</channel></rss>"""


@pytest.fixture
def env(cli_env):
    return cli_env


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_poll_file_then_list(env):
    path = env / "feed.xml"
    path.write_bytes(RSS)
    result = invoke("poll", "--file", str(path), "--source", "example-cert")
    assert result.exit_code == 0, result.output
    assert "example-cert" in result.output and "ok" in result.output
    listed = invoke("advisories", "list", "--source", "example-cert")
    assert "ExampleVPN" in listed.output and "2 of 2 advisories" in listed.output
    only = invoke("advisories", "list", "--cve", "cve-2026-10002")
    assert "ExampleMail" in only.output and "ExampleVPN" not in only.output
    text = invoke("advisories", "list", "--text", "examplevpn", "--json")
    rows = [json.loads(line) for line in text.output.splitlines()]
    assert rows[0]["cve_ids"] == ["CVE-2026-10001"]
    recent = invoke("advisories", "list", "--since", "2026-07-01")
    assert "ExampleVPN" in recent.output and "ExampleMail" not in recent.output


def test_repoll_of_the_same_file_reports_unchanged(env):
    path = env / "feed.xml"
    path.write_bytes(RSS)
    invoke("poll", "--file", str(path))
    again = invoke("poll", "--file", str(path))
    assert again.exit_code == 0
    assert " 2 " in again.output  # two unchanged


def test_broken_file_exits_non_zero_with_the_reason(env):
    path = env / "broken.json"
    path.write_text("{")
    result = invoke("poll", "--file", str(path))
    assert result.exit_code == 1
    assert "JSON" in result.output


def test_unknown_format_is_refused(env):
    path = env / "feed.xml"
    path.write_bytes(RSS)
    result = invoke("poll", "--file", str(path), "--format", "atom-ish")
    assert result.exit_code == 2


def test_bad_since_date_is_refused(env):
    assert invoke("advisories", "list", "--since", "yesterday-ish").exit_code == 2


def test_vulnerability_view(env):
    path = env / "feed.xml"
    path.write_bytes(RSS)
    invoke("poll", "--file", str(path), "--source", "cert-a")
    invoke("poll", "--file", str(path), "--source", "cert-b")
    shown = invoke("vulnerabilities", "show", "CVE-2026-10001")
    assert shown.exit_code == 0 and "cert-a, cert-b" in shown.output
    listed = invoke("vulnerabilities", "list", "--min-sources", "2")
    assert "CVE-2026-10001" in listed.output


def test_show_one_advisory(env):
    path = env / "feed.xml"
    path.write_bytes(RSS)
    invoke("poll", "--file", str(path), "--source", "cert")
    listed = invoke("advisories", "list", "--json", "--limit", "1")
    uid = json.loads(listed.output.splitlines()[0])["id"]
    shown = invoke("advisories", "show", uid)
    assert shown.exit_code == 0 and '"revisions"' in shown.output
    assert invoke("advisories", "show", "nope").exit_code == 1


def test_invalid_settings_exit_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("ALERTS_PORT", "not-a-port")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "ALERTS_PORT" in result.output


def test_config_masks_secrets(monkeypatch, env):
    monkeypatch.setenv("ALERTS_SENDGRID_API_KEY", "SG.secret")
    get_settings.cache_clear()
    result = invoke("config")
    assert "SG.secret" not in result.output and "********" in result.output


def test_feeds_check_reports_the_line(tmp_path, env):
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - name: x\n")
    result = invoke("feeds", "check", str(bad))
    assert result.exit_code == 1 and "line 2" in result.output
    good = invoke("feeds", "check")
    assert good.exit_code == 0 and "feeds" in good.output


def test_epss_load(env, tmp_path):
    path = tmp_path / "epss.csv"
    path.write_text(
        "#model_version:v2026.01.01,score_date:2026-09-01T00:00:00+0000\n"
        "cve,epss,percentile\nCVE-2026-10001,0.91,0.99\nCVE-2026-10002,0.01,0.2\n"
    )
    result = invoke("epss", "load", str(path))
    assert result.exit_code == 0 and "2 EPSS scores stored" in result.output


def test_list_by_relevance_tier(env):
    path = env / "feed.xml"
    path.write_bytes(RSS)
    invoke("poll", "--file", str(path), "--source", "cert")
    listed = invoke("advisories", "list", "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert all(row["tier"] in {"urgent", "newsletter", "ignore"} for row in rows)
    assert all(row["reasons"] is not None for row in rows)
    tier = rows[0]["tier"]
    only = invoke("advisories", "list", "--tier", tier, "--json").output.splitlines()
    assert only and all(json.loads(line)["tier"] == tier for line in only)


def test_a_poll_does_not_import_the_other_commands():
    """`alerts poll` from cron pays only for ingestion: the delivery, referral, staff and
    subscriber commands are imported when one of them runs."""
    import subprocess
    import sys

    code = (
        "import sys, alerts.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'alerts.delivery', 'alerts.referrals', 'alerts.staff', 'subscribers.cli', "
        "'alerts.status'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
    assert runner.invoke(app, ["users", "--help"]).exit_code == 0  # loaded on demand
