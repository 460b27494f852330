"""Security headers on every page type, HSTS, and the flags of every cookie (issue 10).

Already covered elsewhere, not repeated here: tests/test_web.py checks four public paths
(frame-ancestors, no script-src, nosniff, no-referrer) and tests/test_staff.py the staff
session cookie's HttpOnly / SameSite=strict / Path=/staff, with Secure exactly when
ALERTS_PUBLIC_BASE_URL is https.

Here: every GET route of the app (read from the app: a new page fails
`test_every_get_route_is_in_the_table` until it is listed), as the user who would open it
(staff pages logged in as an administrator), plus the error answers (404, 405, 422, 403,
400, 303, 500); HSTS decided by the scheme the app sees (https directly, or X-Forwarded-Proto
from a trusted proxy, which is how `alerts run` starts uvicorn: proxy_headers=True,
forwarded_allow_ips=ALERTS_TRUSTED_PROXIES); and the CSRF, language and logout cookies.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from alerts.web.app import create_app
from tests.subscriber_site import CSRF
from tests.test_fuzz_forms import (
    ADMIN,
    build_world,
    cheap_password_hashing,  # noqa: F401 - an autouse fixture: cheap argon2 in this module
)
from tests.test_staff_matrix import _flatten

HTTPS_URL = "https://alerts.example"
YEAR = 365 * 24 * 3600
SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin"}
UNSAFE_SCRIPT_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("headers")
    world = build_world(f"sqlite:///{folder / 'headers.sqlite3'}", folder)
    yield world
    world.watch.close()
    world.database.dispose()


# --------------------------------------------------------------------------- the checks


def csp(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), words[1:])
    return directives


def header_problems(response) -> list[str]:
    """What is missing or weak in a response's security headers (empty: all good)."""
    headers, problems = response.headers, []
    policy = csp(headers.get("content-security-policy", ""))
    if not policy:
        problems.append("no Content-Security-Policy")
    script = policy.get("script-src-elem") or policy.get("script-src") or policy.get("default-src")
    if script is None:
        problems.append("CSP allows any script (no script-src nor default-src)")
    elif set(script) & UNSAFE_SCRIPT_SOURCES:
        problems.append(f"CSP script sources too wide: {script}")
    objects = policy.get("object-src") or policy.get("default-src") or []
    if objects != ["'none'"]:
        problems.append(f"CSP object-src is not 'none': {objects}")
    if policy.get("base-uri") not in (["'none'"], ["'self'"]):
        problems.append("CSP base-uri not restricted")
    framing = headers.get("x-frame-options", "").upper() == "DENY"
    if not framing and policy.get("frame-ancestors") != ["'none'"]:
        problems.append("page can be framed (no X-Frame-Options DENY, no frame-ancestors 'none')")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("referrer-policy", "").lower() not in SAFE_REFERRER_POLICIES:
        problems.append(f"Referrer-Policy {headers.get('referrer-policy')!r}")
    return problems


GOOD_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class _Answer:
    def __init__(self, headers: dict[str, str]):
        self.headers = headers


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"content-security-policy": "default-src 'self'; script-src 'unsafe-inline'"}, "wide"),
        ({"content-security-policy": "style-src 'self'; base-uri 'none'"}, "any script"),
        ({"content-security-policy": "default-src 'none'; base-uri 'none'"}, "framed"),
        ({"x-content-type-options": ""}, "nosniff"),
        ({"referrer-policy": "unsafe-url"}, "Referrer-Policy"),
    ],
)
def test_the_checker_itself_finds_weak_headers(change, problem):
    assert header_problems(_Answer(GOOD_HEADERS)) == []
    assert problem in " ".join(header_problems(_Answer(GOOD_HEADERS | change)))


# --------------------------------------------------------------------------- every page

# Every GET route: who opens it and with which values (None: a value that names nothing,
# so the page's "not found" answer is checked).
PAGES: dict[str, tuple[str, dict]] = {
    "/": ("public", {}),
    "/advisories": ("public", {}),
    "/api/advisories": ("public", {}),
    "/healthz": ("public", {}),
    "/readyz": ("public", {}),
    "/metrics": ("public", {}),
    "/subscribe": ("public", {}),
    "/confirm/{token}": ("public", {"token": None}),
    "/confirm-email/{token}": ("public", {"token": None}),
    "/preferences/{token}": ("public", {"token": "preferences"}),
    "/scan": ("public", {}),
    "/preferences/{token}/scan": ("public", {"token": "preferences"}),
    "/preferences/{token}/scan/results": ("public", {"token": "preferences"}),
    "/preferences/{token}/scan/results/{result_id}": (
        "public",
        {"token": "preferences", "result_id": None},
    ),
    "/preferences/{token}/scan/results/{result_id}/report.pdf": (
        "public",
        {"token": "preferences", "result_id": None},
    ),
    "/my-data/{token}": ("public", {"token": "data"}),
    "/my-data/{token}/export": ("public", {"token": "data"}),
    "/unsubscribe/{token}": ("public", {"token": "unsubscribe"}),
    "/s/{code}": ("public", {"code": "optout"}),
    "/alerts": ("public", {}),
    "/alerts/feed.atom": ("public", {}),
    "/alerts/feed.rss": ("public", {}),
    "/alerts/feed.json": ("public", {}),
    "/alerts/{alert_id}": ("public", {"alert_id": None}),  # a draft: not public, 404
    "/firms": ("public", {}),
    "/r/{token}": ("public", {"token": None}),
    "/firm/{token}": ("public", {"token": "firm_token"}),
    "/staff/login": ("public", {}),
    "/staff": ("staff", {}),
    "/staff/password": ("staff", {}),
    "/staff/users": ("staff", {}),
    "/staff/audit": ("staff", {}),
    "/staff/queue": ("staff", {}),
    "/staff/alerts": ("staff", {}),
    "/staff/alerts/{alert_id}": ("staff", {"alert_id": "alert"}),
    "/staff/alerts/{alert_id}/edit": ("staff", {"alert_id": "alert"}),
    "/staff/alerts/{alert_id}/preview/{language}.{kind}": (
        "staff",
        {"alert_id": "alert", "language": "en", "kind": "html"},
    ),
    "/staff/feeds": ("staff", {}),
    "/staff/corrections": ("staff", {}),
    "/staff/firms": ("staff", {}),
    "/staff/firms/new": ("staff", {}),
    "/staff/firms/{firm_id}": ("staff", {"firm_id": "firm"}),
    "/staff/firms/{firm_id}/edit": ("staff", {"firm_id": "firm"}),
    "/staff/firms/{firm_id}/link": ("staff", {"firm_id": "firm"}),
    "/staff/maturity": ("staff", {}),
    "/staff/maturity/results/{result_id}": ("staff", {"result_id": None}),
}


def _path(world, template: str, values: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        given = values[name]
        if given is None:
            return "99999" if name.endswith("_id") else "not-a-real-link"
        return str(getattr(world, given, given))

    return re.sub(r"\{(\w+)\}", value, template)


def _client(world, who: str) -> TestClient:
    return world.staff if who == "staff" else world.public


def test_every_get_route_is_in_the_table(world):
    routes = {path for path, methods in _flatten(world.site.app.routes) if "GET" in methods}
    assert routes == set(PAGES)


@pytest.mark.parametrize("route", list(PAGES))
def test_every_page_carries_the_security_headers(world, route):
    who, values = PAGES[route]
    response = _client(world, who).get(_path(world, route, values))
    assert response.status_code < 500, response.status_code
    assert header_problems(response) == [], (route, response.status_code)


# (who, method, path, expected status): the error answers and refusals.
ERRORS = {
    "unknown path": ("public", "GET", "/no-such-page", 404),
    "staff page, logged out": ("public", "GET", "/staff/queue", 303),
    "staff page, not found": ("staff", "GET", "/staff/alerts/99999", 404),
    "method not allowed": ("public", "POST", "/healthz", 405),
    "bad query parameter": ("public", "GET", "/api/advisories?page=0", 422),
    "staff form without token": ("staff", "POST", "/staff/logout", 403),
    "public form without token": ("public", "POST", "/subscribe", 400),
    "unsigned webhook": ("public", "POST", "/webhooks/twilio", 403),
    "bad link": ("public", "POST", "/unsubscribe/not-a-real-link", 404),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error_answers_carry_the_security_headers(world, case):
    who, method, path, status = ERRORS[case]
    client = _client(world, who)
    response = client.get(path) if method == "GET" else client.post(path, data={"x": "1"})
    assert response.status_code == status
    assert header_problems(response) == []


def test_a_server_error_carries_the_security_headers(world):
    app = create_app(world.site.settings, world.database, world.site.service)

    def broken() -> None:
        raise RuntimeError("a bug somewhere")

    app.add_api_route("/broken-for-this-test", broken)
    response = TestClient(app, raise_server_exceptions=False).get("/broken-for-this-test")
    assert response.status_code == 500
    assert header_problems(response) == []


# --------------------------------------------------------------------------- HSTS


@pytest.mark.parametrize(
    ("client_address", "base_url", "forwarded_proto", "expected"),
    [
        pytest.param("127.0.0.1", "http://testserver", None, False, id="plain-http"),
        pytest.param("127.0.0.1", "https://testserver", None, True, id="https"),
        pytest.param("127.0.0.1", "http://testserver", "https", True, id="trusted-proxy"),
        pytest.param("127.0.0.1", "http://testserver", "http", False, id="trusted-proxy-http"),
        pytest.param("203.0.113.9", "http://testserver", "https", False, id="untrusted-proxy"),
    ],
)
def test_hsts_only_when_the_request_came_over_https(
    world, client_address, base_url, forwarded_proto, expected
):
    """The app behind the same proxy-header handling `alerts run` gives it (uvicorn's, with
    ALERTS_TRUSTED_PROXIES, 127.0.0.1 by default)."""
    trusted = world.site.settings.trusted_proxies
    app = ProxyHeadersMiddleware(world.site.app, trusted_hosts=trusted)
    client = TestClient(app, base_url=base_url, client=(client_address, 50000))
    headers = {"x-forwarded-proto": forwarded_proto} if forwarded_proto else {}
    for path in ("/subscribe", "/staff/login", "/no-such-page"):
        hsts = client.get(path, headers=headers).headers.get("strict-transport-security")
        if not expected:
            assert hsts is None, (path, hsts)
        else:
            assert hsts is not None, path
            age = re.search(r"max-age=(\d+)", hsts)
            assert age and int(age.group(1)) >= YEAR, hsts


# --------------------------------------------------------------------------- cookies


def _cookies(response) -> dict[str, dict[str, str | bool]]:
    """Set-Cookie headers as {name: {attribute (lower case): value or True}}."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name_value, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = name_value.partition("=")
        flags: dict[str, str | bool] = {"value": value}
        for attribute in attributes:
            key, sep, setting = attribute.partition("=")
            flags[key.lower()] = setting if sep else True
        found[name] = flags
    return found


def _app(world, scheme: str):
    if scheme == "http":
        return world.site.app
    settings = world.site.settings.model_copy(update={"public_base_url": HTTPS_URL})
    return create_app(settings, world.database)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    "page", ["/subscribe", "/staff/login", "/firm/{firm_token}", "/preferences/{preferences}"]
)
def test_the_csrf_cookie_is_http_only_lax_and_secure_over_https(world, scheme, page):
    client = TestClient(_app(world, scheme), base_url=f"{scheme}://testserver")
    response = client.get(page.format(firm_token=world.firm_token, preferences=world.preferences))
    cookie = _cookies(response)["csrf"]
    assert cookie.get("httponly") is True
    assert str(cookie.get("samesite")).lower() in ("lax", "strict")
    assert cookie.get("path") == "/" and "domain" not in cookie
    assert int(cookie["max-age"]) <= 12 * 3600  # as long as a form token is accepted
    assert (cookie.get("secure") is True) == (scheme == "https")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_language_cookie_is_lax_and_secure_over_https(world, scheme):
    client = TestClient(_app(world, scheme), base_url=f"{scheme}://testserver")
    cookie = _cookies(client.get("/subscribe?lang=fr"))["lang"]
    assert cookie["value"] == "fr" and str(cookie.get("samesite")).lower() == "lax"
    assert (cookie.get("secure") is True) == (scheme == "https")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_staff_session_cookie_lives_no_longer_than_a_session_and_dies_at_logout(world, scheme):
    """Complements tests/test_staff.py: Max-Age, host-only, and the logout deletion, which
    only works in the browser with the same Path=/staff (and Secure) as the cookie."""
    from tests.test_curation import GOOD

    client = TestClient(
        _app(world, scheme), base_url=f"{scheme}://testserver", follow_redirects=False
    )
    token = CSRF.search(client.get("/staff/login").text).group(1)
    login = client.post(
        "/staff/login", data={"csrf_token": token, "email": ADMIN, "password": GOOD}
    )
    assert login.status_code == 303
    cookie = _cookies(login)["staff_session"]
    hours = world.site.settings.staff_session_hours
    assert int(cookie["max-age"]) == hours * 3600 and "domain" not in cookie
    assert cookie.get("httponly") is True and str(cookie["samesite"]).lower() == "strict"
    token = CSRF.search(client.get("/staff").text).group(1)
    logout = client.post("/staff/logout", data={"csrf_token": token})
    assert logout.status_code == 303
    gone = _cookies(logout)["staff_session"]
    assert gone.get("path") == "/staff" and int(gone.get("max-age", "1")) <= 0
    assert gone["value"] in ("", '""')
