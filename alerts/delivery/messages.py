"""What a channel sends: provider-neutral, immutable, checked once when built.

Messages are frozen and hashable so they can be queued, compared and logged safely; the
`reference` is our own id, carried to the provider so its receipts can be matched later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr

Headers = tuple[tuple[str, str], ...]

# Headers the channels set themselves (or providers refuse in custom headers).
RESERVED_HEADERS = frozenset(
    [
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "received",
        "dkim-signature",
    ]
)
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


@dataclass(frozen=True)
class EmailMessage:
    """One email to one recipient. `headers` may be given as a dict; it is kept as pairs so
    the message stays hashable (e.g. List-Unsubscribe, List-Unsubscribe-Post)."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: Headers = ()
    category: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.headers, Mapping):
            object.__setattr__(self, "headers", tuple(self.headers.items()))
        for name, value in (("To", self.to), ("Subject", self.subject), *self.headers):
            _single_line(name, value)
        if not is_address(self.to):
            raise ValueError("email recipient must be one address, e.g. it@example.com")
        for name, _ in self.headers:
            if name.lower() in RESERVED_HEADERS or not re.fullmatch(r"[!-9;-~]+", name):
                raise ValueError(f"header {name!r} cannot be set as a custom header")


@dataclass(frozen=True)
class SmsMessage:
    """One SMS to one E.164 number (+ and up to 15 digits)."""

    to: str
    body: str
    reference: str = ""

    def __post_init__(self) -> None:
        if not E164.match(self.to):
            raise ValueError("SMS recipient must be an E.164 number such as +33612345678")


def is_address(text: str) -> bool:
    """One address, optionally with a display name: what every channel can deliver to."""
    return "@" in parseaddr(text)[1]


def _single_line(name: str, value: str) -> None:
    """A line break in a header value would let text smuggle in extra headers."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be a single line")
