"""A fake SendGrid v3 Mail Send API on 127.0.0.1 (port 0), for the real client's HTTP path.

It checks what SendGrid checks first (bearer key, the minimal payload shape) and answers in
SendGrid's shapes: 202 + X-Message-Id, or {"errors": [...]}. Faults are scripted: queue
Reply objects (a status with headers, `hang()`, `reset()`) and the next requests get them.

`ProviderServer`, the scripted-fault machinery, is shared with the Twilio fake.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.local_server import LocalServer, QuietHandler

SEND_PATH = "/v3/mail/send"
MAX_PERSONALIZATIONS = 1000  # SendGrid refuses larger requests with a 400
BAD_KEY = "The provided authorization grant is invalid, expired, or revoked"
NO_CONTENT = "Unless a valid template_id is provided, the content parameter is required."


@dataclass
class Reply:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # sent as JSON when not None
    hang: float = 0.0  # seconds to stay silent, then close (longer than the client timeout)
    reset: bool = False  # close the connection without answering


def hang(seconds: float = 30.0) -> Reply:
    return Reply(hang=seconds)


def reset() -> Reply:
    return Reply(reset=True)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON or form fields
    reference: str  # the id we answered with


class ProviderServer(LocalServer):
    """Serves POSTs: a scripted Reply if one is queued, else `answer()`'s."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.accepted: list[Received] = []
        self.latency = 0.0  # seconds before answering every request (a slow provider)
        self.arrived = 0  # requests received, counted before the latency
        self.hits = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        super().__init__()

    def fail(self, *replies: Reply) -> None:
        """The next requests get these replies, in order, whatever they contain."""
        self.script.extend(replies)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        self._closing.set()  # release hanging handlers
        super().__exit__(*exc)

    def _next(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.hits += 1
            scripted = self.script.pop(0) if self.script else None
        return scripted or self.answer(path, headers, body)

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.arrived += 1
                if server.latency:
                    time.sleep(server.latency)
                reply = server._next(self.path, headers, body)
                if reply.hang or reply.reset:
                    self._drop(reply)
                else:
                    self._send(reply)

            def _drop(self, reply: Reply) -> None:
                server._closing.wait(reply.hang)
                if reply.reset:  # linger 0: close sends RST, not FIN
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.close_connection = True

            def _send(self, reply: Reply) -> None:
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                if reply.body is not None:
                    self.send_header("Content-Type", "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)  # unless the client gave up

        return Handler


class SendGridServer(ProviderServer):
    def __init__(self, api_key: str = "SG.test-key") -> None:
        super().__init__()
        self.api_key = api_key

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path != SEND_PATH:
            return _errors(404, (None, "Not Found"))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(401, (None, BAD_KEY))
        try:
            payload = json.loads(body)
        except ValueError:
            return _errors(400, (None, "Bad Request"))
        problems = check_payload(payload)
        if problems:
            return _errors(400, *problems)
        reference = secrets.token_urlsafe(16)
        self.accepted.append(Received(path, headers, payload, reference))
        return Reply(202, {"X-Message-Id": reference})


def check_payload(payload: Any) -> list[tuple[str, str]]:
    """The minimal v3 shape, as (field, message) pairs in SendGrid's wording."""
    if not isinstance(payload, dict):
        return [("", "Bad Request")]
    problems = _check_personalizations(payload.get("personalizations"))
    sender = payload.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        problems.append(("from.email", "The from email does not contain a valid address."))
    if not payload.get("subject"):
        problems.append(("subject", "The subject is required."))
    problems += _check_content(payload.get("content"))
    for name in ("headers", "custom_args"):
        values = payload.get(name, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            problems.append((name, f"Invalid type. Expected: object of strings, given: {name}"))
    return problems


def _check_personalizations(personalizations: Any) -> list[tuple[str, str]]:
    if not isinstance(personalizations, list) or not personalizations:
        return [("personalizations", "The personalizations field is required.")]
    if len(personalizations) > MAX_PERSONALIZATIONS:
        return [("personalizations", "The personalizations field has too many items.")]
    problems = []
    for index, item in enumerate(personalizations):
        to = item.get("to") if isinstance(item, dict) else None
        if not isinstance(to, list) or not to:
            problems.append((f"personalizations.{index}.to", "The to array is required."))
        elif not all(isinstance(r, dict) and "@" in str(r.get("email", "")) for r in to):
            problems.append((f"personalizations.{index}.to", "Does not contain a valid address."))
    return problems


def _check_content(content: Any) -> list[tuple[str, str]]:
    if not isinstance(content, list) or not content:
        return [("content", NO_CONTENT)]
    types = [part.get("type") if isinstance(part, dict) else None for part in content]
    if not all(isinstance(part, dict) and part.get("value") for part in content):
        return [("content", "The content value must be a string at least one character long.")]
    if "text/plain" in types and types[0] != "text/plain":
        return [("content", "If present, text/plain content must be first.")]
    return []


def _errors(status: int, *problems: tuple[str | None, str]) -> Reply:
    errors = [{"field": f or None, "message": m, "help": None} for f, m in problems]
    return Reply(status, body={"errors": errors})


def recipients(server: ProviderServer) -> list[tuple[str, str]]:
    """(address, outbox id) of every accepted personalization, in order."""
    found = []
    for received in server.accepted:
        for item in received.body.get("personalizations", []):
            reference = (item.get("custom_args") or {}).get("outbox_id", "")
            found.extend((to["email"], reference) for to in item["to"])
    return found


class CountingSendGridServer(SendGridServer):
    """For benchmarks: validates every request like the fake above but keeps only counts
    (a million stored payloads would weigh on the measurement). POST /stats reads them."""

    def __init__(self, api_key: str = "SG.test-key") -> None:
        super().__init__(api_key)
        self.requests = 0
        self.personalizations = 0

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path.endswith("/stats"):
            return Reply(
                200, body={"requests": self.requests, "personalizations": self.personalizations}
            )
        reply = super().answer(path, headers, body)
        if reply.status == 202:
            received = self.accepted.pop()
            with self._lock:
                self.requests += 1
                self.personalizations += len(received.body["personalizations"])
        return reply


def main() -> None:
    """`python -m tests.fakes.sendgrid_server`: a counting fake on 127.0.0.1; prints its
    base address, serves until stdin closes."""
    import sys

    with CountingSendGridServer(sys.argv[1] if len(sys.argv) > 1 else "SG.test-key") as server:
        print(server.base, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
