"""Every staff route, for every role: who may open it, and that every state-changing one
refuses a form without its CSRF token. The routes are read from the app itself, so a new
page is covered the day it is added."""

from __future__ import annotations

import re

import pytest

from tests.subscriber_site import Site
from tests.test_curation import _advisory, _login, _post, _user

ADMIN_ONLY = ("/staff/users", "/staff/audit")
ROLES = ("editor", "approver", "admin")
VALUES = {
    "alert_id": "1",
    "user_id": "1",
    "language": "en",
    "kind": "html",
    "action": "submit",
    "name": "certfr-avis",
}


@pytest.fixture
def site(settings, database):
    site = Site(settings, database)
    for role in ROLES:
        _user(database, f"{role}@gov.example", role)
    advisory = _advisory(database, 1, "FortiOS flaw")
    editor = _login(site, "editor@gov.example")
    _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    return site


def _routes(site: Site, method: str) -> list[str]:
    paths = []
    for path, methods in _flatten(site.app.routes):
        if path.startswith("/staff") and method in methods:
            paths.append(re.sub(r"\{(\w+)\}", lambda m: VALUES[m.group(1)], path))
    assert paths
    return paths


def _flatten(routes, prefix: str = ""):
    """(path, methods) of every route, through included routers (FastAPI keeps them as
    objects of their own in recent versions)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flatten(included.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "path"):
            yield prefix + route.path, getattr(route, "methods", None) or set()


def test_visitors_are_sent_to_the_login_page(site):
    for path in _routes(site, "GET"):
        response = site.browser().get(path)
        if path == "/staff/login":
            assert response.status_code == 200
        else:
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/staff/login"), path


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_exactly_the_pages_it_should(site, role):
    browser = _login(site, f"{role}@gov.example")
    for path in _routes(site, "GET"):
        status = browser.get(path).status_code
        if path.startswith(ADMIN_ONLY) and role != "admin":
            assert status == 403, (role, path)
        elif path != "/staff/login":
            assert status == 200, (role, path, status)


@pytest.mark.parametrize("role", ("editor", "admin"))
def test_every_state_changing_route_refuses_a_form_without_its_token(site, role):
    browser = _login(site, f"{role}@gov.example")
    for path in _routes(site, "POST"):
        for data in ({}, {"csrf_token": "forged"}):
            response = browser.post(path, data=data | {"reason": "x", "advisory": "1"})
            assert response.status_code == 403, (path, data, response.status_code)
    assert browser.get("/staff").status_code == 200  # still logged in: nothing changed
