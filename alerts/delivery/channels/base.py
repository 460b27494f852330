"""What every channel shares: the error a send raises and how HTTP outcomes map onto it.

A caller only needs two answers from a failed send: may I retry, and when. Providers'
own error vocabularies stop here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from alerts.delivery.messages import EmailMessage, SmsMessage, is_address
from alerts.ingest.fetch import parse_retry_after

# Worth retrying: the provider timed out, throttled us or failed on its side.
TEMPORARY_STATUSES = frozenset({408, 425, 429})


class SendError(Exception):
    """A send failed. `permanent` means retrying the same message cannot help; otherwise
    `retry_after` (seconds) is the provider's hint, if it gave one. The message names the
    provider and status only: no secrets, no recipient."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after

    def __repr__(self) -> str:
        kind = "permanent" if self.permanent else "temporary"
        return f"SendError({str(self)!r}, {kind}, retry_after={self.retry_after})"


class EmailChannel(Protocol):
    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: Any) -> EmailChannel: ...

    def send(self, message: EmailMessage) -> str: ...


class SmsChannel(Protocol):
    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: Any) -> SmsChannel: ...

    def send(self, message: SmsMessage) -> str: ...


def http_failure(
    provider: str, status: int, retry_after: str | None = None, detail: str = ""
) -> SendError:
    """429 and 5xx may pass on a later try; any other refusal will repeat itself."""
    temporary = status in TEMPORARY_STATUSES or status >= 500
    text = f"{provider}: HTTP {status}" + (f", {detail}" if detail else "")
    delay = parse_retry_after(retry_after) if temporary else None
    return SendError(text, permanent=not temporary, retry_after=delay)


def network_failure(provider: str, error: BaseException) -> SendError:
    """No answer (refused, reset, timed out): the message may be retried. Only the error's
    class is shown, as library texts can carry URLs with account ids."""
    return SendError(f"{provider}: no answer ({type(error).__name__})", permanent=False)


def require(value: str | None, variable: str, channel: str) -> str:
    """A missing credential is a configuration error, reported by its variable name."""
    if not value:
        raise ValueError(f"the {channel} channel needs {variable} to be set")
    return value


def check_mail_from(mail_from: str) -> str:
    """Caught at start-up: the sendgrid helper would only fail (KeyError) at the first send."""
    if not is_address(mail_from):
        raise ValueError("ALERTS_MAIL_FROM must be one address, e.g. Alerts <alerts@example.com>")
    return mail_from


def secret(value: Any) -> str:
    """The text of a pydantic SecretStr (or plain str); '' when unset."""
    if value is None:
        return ""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
