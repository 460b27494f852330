"""`alerts send`, `alerts outbox status|preview` through the command line, with the file
channel (the embedded default), on both databases."""

import pytest
from typer.testing import CliRunner

from alerts.cli import app
from alerts.settings import get_settings
from tests.delivery_setup import add_alert, add_subscribers

runner = CliRunner()


@pytest.fixture
def env(cli_env, monkeypatch, database):
    monkeypatch.setenv("ALERTS_SECRET_KEY", "cli-delivery-signing-key-0123456789")
    get_settings.cache_clear()
    add_subscribers(database, get_settings(), 3)
    return cli_env, database, add_alert(database)


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_dry_run_counts_and_queues_nothing(env):
    _, _, alert_id = env
    result = invoke("send", str(alert_id), "--dry-run")
    assert result.exit_code == 0 and "3 by email" in result.output
    assert "queued" not in result.output


def test_send_and_wait_delivers_through_the_file_channel(env):
    folder, _, alert_id = env
    result = invoke("send", str(alert_id), "--wait")
    assert result.exit_code == 0 and "3 messages queued" in result.output
    assert len(list((folder / "outbox" / "email").glob("*.eml"))) == 3
    status = invoke("outbox", "status", "--alert", str(alert_id))
    assert "delivered" in status.output and "outcome unknown" in status.output
    preview = invoke("outbox", "preview")
    assert preview.exit_code == 0 and (folder / "outbox" / "index.html").exists()
    again = invoke("send", str(alert_id))
    assert again.exit_code == 1 and "sent already" in again.output


def test_unknown_or_unapproved_alerts_are_refused(env):
    _, database, _ = env
    assert invoke("send", "999").exit_code == 1
    draft = add_alert(database, status="draft")
    result = invoke("send", str(draft))
    assert result.exit_code == 1 and "only approved" in result.output
