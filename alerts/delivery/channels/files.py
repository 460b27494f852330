"""File channels: messages land in the outbox folder instead of a provider.

For development, demos and tests: every email is a real RFC 5322 .eml (open it in any mail
client) with an .html preview beside it; every SMS is a small JSON file. Names sort by time
and files appear whole (written to a temporary name, then renamed).
"""

from __future__ import annotations

import html
import json
import os
import secrets
import tempfile
import time
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from alerts.delivery.channels.base import BatchRecipient, check_mail_from, substitute
from alerts.delivery.messages import EmailMessage, SmsMessage
from alerts.settings import Settings

DEFAULT_MAIL_FROM: str = Settings.model_fields["mail_from"].default


class FileEmailChannel:
    name = "file"
    batch_size = 500  # files are written one by one; the batch only bounds a claim

    def __init__(self, outbox_dir: Path, mail_from: str = DEFAULT_MAIL_FROM) -> None:
        self.folder = Path(outbox_dir) / "email"
        self.mail_from = check_mail_from(mail_from)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileEmailChannel:
        return cls(settings.outbox_dir(), settings.mail_from)

    def send(self, message: EmailMessage) -> str:
        """Write the preview first, so an .eml never appears without it; returns the .eml
        file name."""
        stem = unique_stem()
        preview = message.html if message.html is not None else _pre(message.text)
        write_atomic(self.folder / f"{stem}.html", preview.encode())
        mime = to_mime(message, self.mail_from)
        write_atomic(self.folder / f"{stem}.eml", mime.as_bytes(policy=SMTP))
        return f"{stem}.eml"

    def send_batch(self, message: EmailMessage, recipients: list[BatchRecipient]) -> str:
        """One .eml per recipient, links substituted as the provider would."""
        for recipient in recipients:
            self.send(personalised(message, recipient))
        return f"{len(recipients)} files"


class FileSmsChannel:
    name = "file"

    def __init__(self, outbox_dir: Path, sender: str = "") -> None:
        self.folder = Path(outbox_dir) / "sms"
        self.sender = sender

    @classmethod
    def from_settings(cls, settings: Settings) -> FileSmsChannel:
        return cls(settings.outbox_dir(), settings.sms_from)

    def send(self, message: SmsMessage) -> str:
        stem = unique_stem()
        record = {
            "to": message.to,
            "from": self.sender,
            "body": message.body,
            "reference": message.reference,
            "created_at": formatdate(usegmt=True),
        }
        data = json.dumps(record, ensure_ascii=False, indent=2).encode()
        write_atomic(self.folder / f"{stem}.json", data)
        return f"{stem}.json"


def to_mime(message: EmailMessage, mail_from: str) -> MimeMessage:
    """The email as it would leave an SMTP server: text first, HTML as the alternative."""
    mime = MimeMessage()
    mime["From"] = mail_from
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(usegmt=True)
    # An explicit domain: make_msgid would otherwise look up this host's name.
    mime["Message-ID"] = make_msgid(domain=parseaddr(mail_from)[1].rpartition("@")[2] or None)
    for name, value in message.headers:
        mime[name] = value
    if message.category:
        mime["X-Alerts-Category"] = message.category
    if message.reference:
        mime["X-Alerts-Reference"] = message.reference
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def unique_stem() -> str:
    """UTC time to the nanosecond plus a random tail: unique, and sorts by time."""
    now = time.time_ns()
    seconds, nanos = divmod(now, 1_000_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
    return f"{stamp}.{nanos:09d}Z-{secrets.token_hex(4)}"


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _pre(text: str) -> str:
    return f"<!doctype html>\n<meta charset=utf-8>\n<pre>{html.escape(text)}</pre>\n"


def personalised(message: EmailMessage, recipient: BatchRecipient) -> EmailMessage:
    """The message one batch recipient receives."""
    values = recipient.substitutions
    return EmailMessage(
        to=recipient.to,
        subject=substitute(message.subject, values),
        text=substitute(message.text, values),
        html=substitute(message.html, values) if message.html is not None else None,
        headers=tuple(message.headers) + tuple(recipient.headers.items()),
        category=message.category,
        reference=recipient.reference,
    )


def write_index(outbox_dir: Path, limit: int = 500) -> Path:
    """An index page of the newest messages the file channels wrote (escaped, local only)."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    folder = Path(outbox_dir)
    items = []
    for eml in sorted((folder / "email").glob("*.eml"), reverse=True)[:limit]:
        message = message_from_bytes(eml.read_bytes())
        subject = str(make_header(decode_header(message.get("Subject", ""))))
        items.append(
            f'<li><a href="email/{html.escape(eml.stem)}.html">{html.escape(subject)}</a> '
            f"→ {html.escape(message.get('To', ''))} <small>({html.escape(eml.stem)})</small></li>"
        )
    for sms in sorted((folder / "sms").glob("*.json"), reverse=True)[:limit]:
        data = json.loads(sms.read_text())
        items.append(
            f"<li>SMS → {html.escape(data.get('to', ''))}: {html.escape(data.get('body', ''))}</li>"
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>Outbox</title>"
        "<h1>Outbox</h1><ul>" + "\n".join(items) + "</ul>"
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "index.html", page.encode())
    return folder / "index.html"
