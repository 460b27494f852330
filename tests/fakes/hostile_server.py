"""A hostile feed server on 127.0.0.1 (port 0): answers that real publishers' servers get
wrong, or that an attacker would send on purpose.

Each path maps to an Answer: status, headers, and a body that is either bytes or a factory
of chunks (streamed with chunked transfer encoding, so a "50 MB" body never exists in the
server's memory at once). A declared Content-Length may differ from what is sent, chunks may
drip slowly, and a client that gives up (as it should) is not an error here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.fakes.local_server import LocalServer, QuietHandler

Body = bytes | Callable[[], Iterable[bytes]]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/rss+xml; charset=utf-8"}
    )
    body: Body = b""
    # None: len(body) for bytes, chunked transfer encoding for a chunk factory;
    # an int: declared as is, whatever is sent (a lie about the size).
    content_length: int | None = None
    drip: float = 0.0  # seconds to wait before each chunk (slow drips)
    drip_chunk: int = 1024  # bytes per dripped chunk, for a bytes body


class HostileServer(LocalServer):
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}  # body bytes written per path
        super().__init__()

    def add(self, path: str, answer: Answer) -> str:
        self.answers[path] = answer
        return self.url(path)

    def hits(self, path: str) -> int:
        return self.requests.count(path)

    def reset(self) -> None:
        """Forget the requests seen so far (the answers stay)."""
        self.requests.clear()
        self.sent.clear()

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                answer = server.answers.get(self.path) or Answer(
                    status=404, headers={"Content-Type": "text/plain"}, body=b"not found"
                )
                try:
                    self._answer(answer)
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True  # the client gave up, as it should

            def _answer(self, answer: Answer) -> None:
                streamed = not isinstance(answer.body, bytes)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.content_length is not None:
                    self.send_header("Content-Length", str(answer.content_length))
                    self.close_connection = True  # the body may not match: no reuse
                elif streamed:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                chunked = streamed and answer.content_length is None
                server.sent.setdefault(self.path, 0)
                for chunk in self._chunks(answer):
                    if answer.drip:
                        time.sleep(answer.drip)
                    if chunked:
                        self.wfile.write(b"%x\r\n" % len(chunk))
                        self.wfile.write(chunk)
                        self.wfile.write(b"\r\n")
                    else:
                        self.wfile.write(chunk)
                    server.sent[self.path] += len(chunk)
                    if answer.drip:
                        self.wfile.flush()
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

            @staticmethod
            def _chunks(answer: Answer) -> Iterable[bytes]:
                if not isinstance(answer.body, bytes):
                    return (chunk for chunk in answer.body() if chunk)
                if not answer.drip:
                    return [answer.body] if answer.body else []
                size = answer.drip_chunk
                return (answer.body[i : i + size] for i in range(0, len(answer.body), size))

        return Handler
