"""Settings from the environment (prefix ALERTS_), validated once at start-up.

Every setting is described here once; `alerts config` prints them with secrets masked and
the README's configuration table lists the same fields.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_USER_AGENT = (
    "sme-alerts/0.1 (threat-alert service for SMEs; +https://github.com/sme-alerts/sme-alerts)"
)


class SettingsError(Exception):
    """Start-up configuration is invalid; the message names each variable at fault."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///var/alerts.sqlite3",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    feeds_file: Path = Field(Path("feeds.yaml"), description="The feed registry (YAML)")
    rules_file: Path | None = Field(
        None, description="Relevance rules (YAML); default: alerts/relevance/rules.yaml"
    )
    catalogue_file: Path | None = Field(
        None, description="Product families (YAML); default: alerts/relevance/catalogue.yaml"
    )
    data_dir: Path = Field(Path("var"), description="Working files: SQLite database, outbox")
    host: str = Field("127.0.0.1", description="Address the web app listens on")
    port: int = Field(8000, ge=1, le=65535, description="Port the web app listens on")
    http_timeout: float = Field(20.0, gt=0, le=300, description="Per-request timeout (s)")
    http_total_timeout: float = Field(
        120.0, gt=0, le=3600, description="Deadline for a whole download, slow drips included (s)"
    )
    http_max_bytes: int = Field(
        50_000_000, ge=1024, description="Largest feed body accepted, after decompression"
    )
    http_max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed per fetch")
    http_retries: int = Field(2, ge=0, le=10, description="Retries of a transient fetch failure")
    http_backoff: float = Field(1.0, ge=0, le=60, description="First retry delay (s), doubling")
    user_agent: str = Field(DEFAULT_USER_AGENT, description="User-Agent sent to publishers")
    allow_private_addresses: bool = Field(
        False, description="Fetch from loopback/private addresses (local test servers, demo)"
    )
    poll_workers: int = Field(4, ge=1, le=32, description="Feeds fetched in parallel")
    max_documents_per_poll: int = Field(
        200, ge=0, le=100_000, description="Linked documents (CSAF, CVE) fetched per feed poll"
    )
    max_backoff_seconds: int = Field(
        86_400, ge=60, description="Longest wait before retrying a failing feed (s)"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(False, description="Write logs as JSON lines")
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="Reverse proxies whose X-Forwarded-For gives the client address (comma list)",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Address subscribers reach the web app at (links in messages)",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs links and forms (secret); default: generated once in data_dir",
    )
    mail_from: str = Field(
        "SME threat alerts <alerts@localhost>", description="Sender of every email"
    )
    email_channel: Literal["file", "sendgrid"] = Field(
        "file", description="file (outbox folder in data_dir) or sendgrid"
    )
    sms_channel: Literal["file", "twilio"] = Field(
        "file", description="file (outbox folder in data_dir) or twilio (Twilio-compatible API)"
    )
    sendgrid_api_key: SecretStr | None = Field(None, description="SendGrid API key (secret)")
    sendgrid_host: str = Field("https://api.sendgrid.com", description="SendGrid API base address")
    sendgrid_data_residency: Literal["global", "eu"] = Field(
        "global", description="eu: send through SendGrid's EU API host (api.eu.sendgrid.com)"
    )
    sendgrid_sandbox: bool = Field(
        False, description="SendGrid sandbox mode: requests validated and accepted, nothing sent"
    )
    email_per_second: float = Field(
        2000.0, gt=0, description="Emails handed to the email provider per second, at most"
    )
    sms_per_second: float = Field(
        10.0, gt=0, description="SMS handed to the SMS provider per second"
    )
    delivery_max_attempts: int = Field(
        5, ge=1, le=50, description="Tries of a message failing temporarily, then technical-failure"
    )
    receipt_grace_seconds: int = Field(
        3600,
        ge=1,
        description="Unknown outcome, channel with receipts, none after this long: sent again",
    )
    delivery_lease_seconds: int = Field(
        300, ge=1, description="A claimed message not handed off in this time is claimed again"
    )
    sendgrid_webhook_public_key: str = Field(
        "",
        description="Verification key of SendGrid's Signed Event Webhook (base64, as SendGrid"
        " shows it); empty: /webhooks/sendgrid is off (503)",
    )
    twilio_account_sid: str = Field("", description="Twilio account SID")
    twilio_auth_token: SecretStr | None = Field(None, description="Twilio auth token (secret)")
    twilio_base_url: str = Field("https://api.twilio.com", description="Twilio API base address")
    twilio_messaging_service_sid: str = Field(
        "", description="Twilio messaging service (MG...), used instead of ALERTS_SMS_FROM if set"
    )
    sms_from: str = Field("", description="SMS sender: a phone number or alphanumeric sender id")
    signup_confirm_hours: int = Field(
        48, ge=1, le=720, description="Hours a sign-up waits for its confirmation, then is purged"
    )
    left_retention_days: int = Field(
        30, ge=0, le=3650, description="Days a left subscription is kept (to rejoin), then erased"
    )
    signup_limit_per_ip: int = Field(
        20, ge=1, description="Sign-ups accepted per client address per hour"
    )
    signup_limit_per_address: int = Field(
        3, ge=1, description="Sign-ups accepted per email address per hour"
    )
    staff_idle_minutes: int = Field(
        30, ge=1, le=1440, description="A staff session ends after this many idle minutes"
    )
    staff_session_hours: int = Field(
        12, ge=1, le=168, description="A staff session ends this long after its login, however busy"
    )
    staff_login_limit: int = Field(
        5, ge=1, description="Failed staff logins per account per 15 minutes before it is held"
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _ec_public_key(cls, value: str) -> str:
        """Checked at start-up, not at SendGrid's first post; PEM armour is tolerated."""
        key = "".join(re.sub(r"-----[A-Z ]+-----", "", value).split())
        if key and not _is_ec_public_key(key):
            raise ValueError("must be the base64 ECDSA public key SendGrid shows")
        return key

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    def resolved_database_url(self) -> str:
        """The SQLite default lives in data_dir, created on demand."""
        if self.database_url == "sqlite:///var/alerts.sqlite3":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{self.data_dir / 'alerts.sqlite3'}"
        return self.database_url

    def signing_key(self) -> str:
        """ALERTS_SECRET_KEY, or a random key kept in data_dir/secret_key (created once,
        readable by the owner only) so links stay valid across restarts."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race; use its key
                return path.read_text().strip()
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def sendgrid_api_host(self) -> str:
        """The EU host when EU data residency is chosen and no other host was set."""
        default = type(self).model_fields["sendgrid_host"].default
        if self.sendgrid_data_residency == "eu" and self.sendgrid_host == default:
            return "https://api.eu.sendgrid.com"
        return self.sendgrid_host

    def outbox_dir(self) -> Path:
        """Where the file channels write messages (one folder per channel)."""
        return self.data_dir / "outbox"

    def masked(self) -> dict[str, str]:
        """Every setting as text, secrets and passwords masked: safe to print or log."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "********" if value.get_secret_value() else ""
            elif name == "database_url":
                shown[name] = mask_url(value)
            else:
                shown[name] = "" if value is None else str(value)
        return shown


def _is_ec_public_key(key: str) -> bool:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        loaded = load_der_public_key(base64.b64decode(key, validate=True))
    except (ValueError, UnsupportedAlgorithm):
        return False
    return isinstance(loaded, EllipticCurvePublicKey)


def mask_url(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (and ?password=)"""
    masked = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", masked)


def load_settings(**overrides) -> Settings:
    """Read and validate; raise SettingsError naming every bad ALERTS_* variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"])
            lines.append(f"ALERTS_{field.upper()}: {problem['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
