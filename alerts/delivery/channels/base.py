"""What every channel shares: the error a send raises and how HTTP outcomes map onto it.

A caller only needs two answers from a failed send: may I retry, and when. Providers'
own error vocabularies stop here.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from alerts.delivery.messages import EmailMessage, SmsMessage, is_address
from alerts.ingest.fetch import parse_retry_after

# Worth retrying: the provider timed out, throttled us or failed on its side.
TEMPORARY_STATUSES = frozenset({408, 425, 429})


class SendError(Exception):
    """A send failed. `permanent` means retrying the same message cannot help; otherwise
    `retry_after` (seconds) is the provider's hint, if it gave one. The message names the
    provider and status only: no secrets, no recipient."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        # The request may have reached the provider (timeout, reset after sending): sending
        # it again could deliver it twice.
        self.outcome_unknown = outcome_unknown

    def __repr__(self) -> str:
        kind = "permanent" if self.permanent else "temporary"
        return f"SendError({str(self)!r}, {kind}, retry_after={self.retry_after})"


@dataclass(slots=True)  # not frozen: a frozen init costs 1.5 µs more, per recipient
class BatchRecipient:
    """One recipient of a batch: the same content, their own links and headers."""

    to: str
    substitutions: dict[str, str] = field(default_factory=dict)  # placeholder -> value
    headers: dict[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe
    reference: str = ""  # our outbox id, echoed back by receipts


class EmailChannel(Protocol):
    name: ClassVar[str]
    batch_size: ClassVar[int]  # recipients per send_batch call

    @classmethod
    def from_settings(cls, settings: Any) -> EmailChannel: ...

    def send(self, message: EmailMessage) -> str: ...

    def send_batch(self, message: EmailMessage, recipients: list[BatchRecipient]) -> str:
        """One content to many recipients; `message.to` is ignored. Returns the provider's
        reference for the request, or raises SendError for the whole batch."""
        ...


def substitute(text: str, substitutions: dict[str, str]) -> str:
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    return text


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
    """No answer. Refused or unresolvable: the request never left, so it may be retried. Timed
    out or cut off: the provider may have acted on it, so the outcome is unknown. Only the
    error's class is shown, as library texts can carry URLs with account ids."""
    unknown = not _never_sent(error)
    text = f"{provider}: no answer ({type(error).__name__})"
    return SendError(text, permanent=False, outcome_unknown=unknown)


def _never_sent(error: BaseException) -> bool:
    reason = getattr(error, "reason", None)  # urllib's URLError wraps the socket error
    cause = reason if isinstance(reason, BaseException) else error
    refused = (ConnectionRefusedError, socket.gaierror)
    return isinstance(cause, refused) or type(error).__name__ in ("ConnectError", "ConnectTimeout")


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
