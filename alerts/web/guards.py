"""Refused at the door: NUL characters. No text we accept has a use for them, and
PostgreSQL refuses them in text columns, so one reaching a query would be a 500 there (and
stored silently on SQLite). The path, the query string and request bodies are checked
before any route runs; a clear 400 answers, and nothing is read or stored."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 2 * 1024 * 1024  # more than any route accepts (webhooks: 1 MB)
ENCODED_NUL = {
    "application/x-www-form-urlencoded": b"%00",
    "application/json": b"\\u0000",
}


class RejectNul:
    """Pure ASGI middleware; the body it read is handed on unchanged (signatures hold)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or _nul_in(scope.get("query_string", b""), b"%00"):
            await _refuse(scope, receive, send, 400, "NUL characters are not accepted")
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body = await _read(receive, self.max_body)
        if body is None:
            await _refuse(scope, receive, send, 413, "request body too large")
            return
        if _nul_in(body, ENCODED_NUL.get(_content_type(scope))):
            await _refuse(scope, receive, send, 400, "NUL characters are not accepted")
            return
        await self.app(scope, _replay(body, receive), send)


def _nul_in(data: bytes, encoded: bytes | None) -> bool:
    return b"\x00" in data or (encoded is not None and encoded in data)


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.split(b";")[0].strip().lower().decode("latin-1")
    return ""


async def _read(receive: Receive, limit: int) -> bytes | None:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the route sees what there was
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for a disconnect, as Starlette does

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    await PlainTextResponse(text, status_code=status)(scope, receive, send)
