import logging

import pytest

from alerts.logs import RedactSecrets
from alerts.settings import SettingsError, load_settings, mask_url


def test_defaults_use_an_embedded_sqlite_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///")
    assert settings.resolved_database_url() == "sqlite:///var/alerts.sqlite3"
    assert (tmp_path / "var").is_dir()


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("ALERTS_PORT", "9001")
    monkeypatch.setenv("ALERTS_DATABASE_URL", "postgresql://alerts@127.0.0.1/alerts")
    settings = load_settings()
    assert settings.port == 9001
    assert settings.database_url == "postgresql+psycopg://alerts@127.0.0.1/alerts"


def test_invalid_values_name_every_variable_at_fault(monkeypatch):
    monkeypatch.setenv("ALERTS_PORT", "eighty")
    monkeypatch.setenv("ALERTS_DATABASE_URL", "mysql://root@localhost/x")
    monkeypatch.setenv("ALERTS_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    for variable in ("ALERTS_PORT", "ALERTS_DATABASE_URL", "ALERTS_LOG_LEVEL"):
        assert variable in message


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("ALERTS_SENDGRID_API_KEY", "SG.very-secret")
    monkeypatch.setenv("ALERTS_DATABASE_URL", "postgresql://alerts:hunter2@db/alerts")
    shown = load_settings().masked()
    assert "SG.very-secret" not in str(shown)
    assert "hunter2" not in str(shown)
    assert shown["sendgrid_api_key"] == "********"
    assert shown["database_url"] == "postgresql+psycopg://alerts:***@db/alerts"


def test_invalid_secret_is_not_echoed(monkeypatch):
    monkeypatch.setenv("ALERTS_HTTP_TIMEOUT", "SG.secret-looking-value")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "SG.secret-looking-value" not in str(caught.value)


def test_mask_url_leaves_passwordless_urls_alone():
    assert mask_url("sqlite:///var/a.sqlite3") == "sqlite:///var/a.sqlite3"
    assert mask_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"


def test_log_filter_redacts_credentials():
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "connecting to %s with api_key=%s",
        ("postgresql://u:pw@h/db", "abc123"),
        None,
    )
    RedactSecrets().filter(record)
    text = record.getMessage()
    assert "pw@" not in text and "abc123" not in text


@pytest.mark.parametrize(
    "logged",
    [
        "{'Authorization': 'Bearer SG.secret-key', 'Content-Type': 'application/json'}",
        "Authorization: Basic QUMxMjM6c2VjcmV0LWtleQ==",
        '{"api_key": "secret-key"}',
    ],
)
def test_log_filter_redacts_client_request_dumps(logged):
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "%s", (logged,), None)
    RedactSecrets().filter(record)
    assert "secret-key" not in record.getMessage() and "QUMx" not in record.getMessage()
