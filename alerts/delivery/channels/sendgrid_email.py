"""Email through SendGrid's v3 Mail Send API, using the official `sendgrid` client.

Two things the client does not do for us: it has no timeout of its own (we pass one on every
call), and at DEBUG level its HTTP layer logs request headers, API key included, and the
payload, so that logger is held at INFO.
"""

from __future__ import annotations

import http.client
import json
import logging
from email.utils import parseaddr

import sendgrid
from python_http_client.exceptions import HTTPError
from sendgrid.helpers.mail import Category, CustomArg, Header, Mail

from alerts.delivery.channels.base import (
    BatchRecipient,
    check_mail_from,
    http_failure,
    network_failure,
    require,
    secret,
)
from alerts.delivery.channels.files import DEFAULT_MAIL_FROM
from alerts.delivery.messages import EmailMessage
from alerts.settings import Settings

logging.getLogger("python_http_client").setLevel(logging.INFO)

HINTS = {401: "API key rejected", 403: "API key not allowed to send mail"}


class SendGridChannel:
    name = "sendgrid"
    batch_size = 1000  # SendGrid's limit of personalizations per request

    def __init__(
        self,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        mail_from: str = DEFAULT_MAIL_FROM,
        timeout: float = 20.0,
        sandbox: bool = False,
    ) -> None:
        # An empty key would make the client fall back to $SENDGRID_API_KEY silently.
        key = require(api_key, "ALERTS_SENDGRID_API_KEY", "sendgrid email")
        self._client = sendgrid.SendGridAPIClient(api_key=key, host=host.rstrip("/"))
        self.mail_from = check_mail_from(mail_from)
        self.timeout = timeout
        self.sandbox = sandbox  # SendGrid validates and accepts, but delivers nothing

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridChannel:
        key = secret(settings.sendgrid_api_key)
        host = settings.sendgrid_api_host()
        timeout, sandbox = settings.http_timeout, settings.sendgrid_sandbox
        return cls(key, host, settings.mail_from, timeout, sandbox)

    def send(self, message: EmailMessage) -> str:
        """Returns SendGrid's X-Message-Id ('' if an accepted answer lacked one)."""
        body = to_mail(message, self.mail_from).get()
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return self._post(body)

    def send_batch(self, message: EmailMessage, recipients: list[BatchRecipient]) -> str:
        """Up to 1,000 recipients in one request: one content, and per personalization the
        recipient's links (substitutions), headers and our outbox id (custom_args)."""
        if not 0 < len(recipients) <= self.batch_size:
            raise ValueError(f"a batch holds 1 to {self.batch_size} recipients")
        return self._post(batch_payload(message, recipients, self.mail_from, self.sandbox))

    def _post(self, body: dict) -> str:
        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self.timeout)
        except HTTPError as error:
            detail = HINTS.get(error.status_code) or _error_fields(error.body)
            retry_after = error.headers.get("Retry-After") if error.headers else None
            raise http_failure("sendgrid", error.status_code, retry_after, detail) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            raise network_failure("sendgrid", error) from None
        return response.headers.get("X-Message-Id") or ""


def batch_payload(
    message: EmailMessage, recipients: list[BatchRecipient], mail_from: str, sandbox: bool
) -> dict:
    """The v3 JSON built directly: the helper classes cost more than the HTTP request at a
    thousand personalizations."""
    name, address = parseaddr(mail_from)
    body = {
        "personalizations": [_personalization(recipient) for recipient in recipients],
        "from": {"email": address, **({"name": name} if name else {})},
        "subject": message.subject,
        "content": [{"type": "text/plain", "value": message.text}]
        + ([{"type": "text/html", "value": message.html}] if message.html else []),
    }
    if message.category:
        body["categories"] = [message.category]
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def _personalization(recipient: BatchRecipient) -> dict:
    entry: dict = {"to": [{"email": recipient.to}]}
    if recipient.substitutions:
        entry["substitutions"] = recipient.substitutions
    if recipient.headers:
        entry["headers"] = recipient.headers
    if recipient.reference:
        entry["custom_args"] = {"outbox_id": recipient.reference}
    return entry


def to_mail(message: EmailMessage, mail_from: str) -> Mail:
    """The v3 payload: custom headers go in the message-wide "headers" object, the reference
    in custom_args so SendGrid's event webhook echoes it."""
    mail = Mail(
        from_email=mail_from,
        to_emails=message.to,
        subject=message.subject,
        plain_text_content=message.text,
        html_content=message.html,
    )
    for name, value in message.headers:
        mail.add_header(Header(name, value))  # a dict here would crash the helper
    if message.category:
        mail.add_category(Category(message.category))
    if message.reference:
        mail.add_custom_arg(CustomArg("reference", message.reference))
    return mail


def _error_fields(body: bytes | None) -> str:
    """The fields SendGrid objected to; its messages may quote the addresses, so not those."""
    try:
        errors = json.loads(body or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        return ""
    fields = sorted({str(error.get("field")) for error in errors if error.get("field")})
    return "fields: " + ", ".join(fields) if fields else ""
