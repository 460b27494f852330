"""CSRF protection for forms: a random value in a cookie, and the same value signed in a
hidden field (double submit). A forged form from another site has neither."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from subscribers.tokens import CSRF, Signer, TokenError

COOKIE = "csrf"
MAX_AGE = 12 * 3600


class CsrfError(Exception):
    """The form did not come from one of our pages (or the page is too old)."""


def cookie_value(request: Request) -> str:
    """The browser's CSRF cookie value, or a new one (remembered on the request)."""
    value = request.cookies.get(COOKIE) or getattr(request.state, "csrf_cookie", None)
    if not value or len(value) > 64:
        value = secrets.token_urlsafe(24)
        request.state.csrf_cookie = value
    return value


def form_token(request: Request, signer: Signer) -> str:
    return signer.dumps(CSRF, cookie_value(request))


def set_cookie(request: Request, response: Response, secure: bool) -> None:
    new = getattr(request.state, "csrf_cookie", None)
    if new:
        response.set_cookie(
            COOKIE, new, max_age=MAX_AGE, httponly=True, secure=secure, samesite="lax"
        )


def verify(request: Request, token: str | None, signer: Signer) -> None:
    cookie = request.cookies.get(COOKIE)
    if not token or not cookie:
        raise CsrfError("missing form token")
    try:
        value = signer.loads(CSRF, token, max_age=MAX_AGE)
    except TokenError:
        raise CsrfError("invalid form token") from None
    if not isinstance(value, str) or not hmac.compare_digest(value, cookie):
        raise CsrfError("form token does not match")
