"""A fake Twilio Messages API on 127.0.0.1 (port 0), for the real httpx path.

It checks the account in the path and the basic-auth pair, reads the form like Twilio and
answers in Twilio's shapes: 201 with a message resource, or {"code", "message", "status"}.
+15005550001 is refused as invalid (21211), as with Twilio's test credentials. Faults are
scripted as with the SendGrid fake.
"""

from __future__ import annotations

import base64
import re
import secrets
from email.utils import formatdate
from urllib.parse import parse_qs

from tests.fakes.sendgrid_server import ProviderServer, Received, Reply, hang, reset

__all__ = ["Reply", "SmsServer", "hang", "reset"]

INVALID_NUMBER = "+15005550001"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class SmsServer(ProviderServer):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-token"):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token

    @property
    def path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path != self.path:
            return _error(404, 20404, "The requested resource was not found")
        if headers.get("authorization") != self._expected_auth():
            reply = _error(401, 20003, "Authenticate")
            reply.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return reply
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        refusal = check_form(form)
        if refusal:
            return refusal
        sid = "SM" + secrets.token_hex(16)
        self.accepted.append(Received(path, headers, form, sid))
        return Reply(201, body=self._resource(sid, form))

    def _expected_auth(self) -> str:
        pair = f"{self.account_sid}:{self.auth_token}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _resource(self, sid: str, form: dict[str, str]) -> dict:
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


def check_form(form: dict[str, str]) -> Reply | None:
    """Twilio's refusals for a message it will not queue, or None."""
    to = form.get("To", "")
    if not to:
        return _error(400, 21604, "A 'To' phone number is required.")
    if not E164.match(to) or to == INVALID_NUMBER:
        return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not form.get("From"):
        return _error(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(400, 21602, "Message body is required.")
    return None


def _error(status: int, code: int, message: str) -> Reply:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return Reply(status, body=body)
