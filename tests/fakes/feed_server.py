"""A feed server on 127.0.0.1 (port 0) that speaks real HTTP, for the real httpx path.

Routes are data: each path maps to a Route saying what to answer. Conditional GET is real:
a route with an etag answers 304 to a matching If-None-Match.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field

from tests.fakes.local_server import LocalServer, QuietHandler


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before answering (timeouts)
    drip: float = 0.0  # seconds between 1 KiB chunks (slow drips)
    gzip: bool = False
    location: str | None = None  # for 3xx


class FeedServer(LocalServer):
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__()

    def add(self, path: str, route: Route | None = None, **kwargs) -> str:
        self.routes[path] = route or Route(**kwargs)
        return self.url(path)

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                time.sleep(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._send(304, b"", None, route)
                    return
                self._send(route.status, route.body, route.content_type, route)

            def _send(self, status, body, content_type, route: Route | None = None) -> None:
                route = route or Route()
                if route.gzip and body:
                    body = gzip.compress(body)
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                if route.gzip and body:
                    self.send_header("Content-Encoding", "gzip")
                if route.location:
                    self.send_header("Location", route.location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self._write(body, route.drip)

            def _write(self, body: bytes, drip: float) -> None:
                try:
                    if not drip:
                        self.wfile.write(body)
                        return
                    for start in range(0, len(body), 1024):
                        self.wfile.write(body[start : start + 1024])
                        self.wfile.flush()
                        time.sleep(drip)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should on a slow drip

        return Handler
