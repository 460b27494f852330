"""A test harness for the public subscriber pages: a browser-like client that keeps
cookies and CSRF tokens, a movable clock, and readers for the file outbox."""

from __future__ import annotations

import email
import json
import re
from datetime import UTC, datetime, timedelta
from email.message import Message

from fastapi.testclient import TestClient

from alerts.delivery.channels import FileEmailChannel, FileSmsChannel
from alerts.relevance.service import default_catalogue
from alerts.web.app import create_app
from subscribers.notify import Notifier
from subscribers.service import Subscriptions

SIGNUP = {
    "organisation": "Bakkerij Jansens",
    "enterprise_number": "0123.456.749",
    "email": "Info@Bakkerij-Jansens.be",
    "phone": "0470 12 34 56",
    "language": "en",
    "region": "BE-VAN",
    "sector": "retail",
    "size_band": "2-9",
    "families": ["fortinet-fortigate", "microsoft-exchange"],
    "urgent_email": "1",
    "urgent_sms": "1",
    "newsletter": "weekly",
    "consent": "1",
    "notice_version": "privacy-v1",  # the hidden field of the form
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Site:
    def __init__(self, settings, database):
        self.settings = settings
        self.database = database
        self.clock = Clock()
        self.outbox = settings.outbox_dir()
        notifier = Notifier(FileEmailChannel(self.outbox), FileSmsChannel(self.outbox))
        self.service = Subscriptions(
            database, settings, default_catalogue(), notifier, clock=self.clock
        )
        self.app = create_app(settings, database, self.service)
        self.app.state.scans.clock = self.clock
        self.client = self.browser()

    def browser(self, ip: str = "192.0.2.10", **headers: str) -> TestClient:
        """A new browser (no cookies); English pages unless told otherwise."""
        headers = {"accept-language": "en"} | headers
        return TestClient(self.app, headers=headers, follow_redirects=False, client=(ip, 50000))

    def submit(
        self, path: str, data: dict | None = None, client: TestClient | None = None, page=None
    ):
        """GET the page the form lives on (for its CSRF token), then POST the form."""
        client = client or self.client
        form_page = client.get(page or path)
        token = CSRF.search(form_page.text)
        fields = dict(data or {})
        if token:
            fields["csrf_token"] = token.group(1)
        return client.post(path, data=fields)

    def signup(self, client: TestClient | None = None, **changes):
        return self.submit("/subscribe", SIGNUP | changes, client)

    # --- the outbox ---------------------------------------------------------------------

    def emails(self) -> list[Message]:
        files = sorted((self.outbox / "email").glob("*.eml"))
        return [email.message_from_bytes(path.read_bytes()) for path in files]

    def sms(self) -> list[dict]:
        files = sorted((self.outbox / "sms").glob("*.json"))
        return [json.loads(path.read_text()) for path in files]

    def last_link(self, kind: str = "confirm") -> str:
        """The path of the newest /confirm... link in the outbox."""
        text = text_part(self.emails()[-1])
        return re.search(rf"https?://[^/\s]+(/{kind}/\S+)", text).group(1)

    def last_sms_code(self) -> str:
        return re.search(r"\b(\d{6})\b", self.sms()[-1]["body"]).group(1)

    def confirm(self, path: str | None = None):
        return self.submit(path or self.last_link())

    def subscribe_and_confirm(self, **changes) -> str:
        """A confirmed subscriber; returns the path of their preference centre."""
        assert self.signup(**changes).status_code == 200
        answer = self.confirm()
        assert answer.status_code == 303, answer.text
        return answer.headers["location"].split("?")[0]


def text_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")
