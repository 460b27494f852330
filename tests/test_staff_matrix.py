"""Every staff route, for every role: who may open it, and that every state-changing one
refuses a form without its CSRF token. The routes are read from the app itself, so a new
page is covered the day it is added."""

from __future__ import annotations

import re

import pytest

from alerts.maturity.scan import score
from alerts.maturity.service import Consents
from alerts.referrals import directory
from alerts.referrals.validation import parse_firm
from subscribers.consent import Origin
from tests.subscriber_site import SIGNUP, Site
from tests.test_curation import NOW, _advisory, _login, _post, _user

ADMIN_ONLY = ("/staff/users", "/staff/audit", "/staff/corrections", "/staff/firms/new")
ADMIN_ONLY_ENDINGS = ("/edit", "/link")  # of /staff/firms/{id}/…; alerts are edited by editors
ROLES = ("editor", "approver", "admin")
VALUES = {
    "alert_id": "1",
    "user_id": "1",
    "language": "en",
    "kind": "html",
    "action": "submit",
    "name": "certfr-avis",
    "firm_id": "1",
    "correction_id": "1",
    "result_id": "1",
}


@pytest.fixture
def site(settings, database):
    site = Site(settings, database)
    for role in ROLES:
        _user(database, f"{role}@gov.example", role)
    advisory = _advisory(database, 1, "FortiOS flaw")
    with database.session() as session:
        record = {
            "name": "Secure Firm",
            "enterprise_number": "0123.456.749",
            "website": "https://firm.example",
            "email": "help@firm.example",
            "phone": "+3225418111",
            "regions": "BE-VAN",
            "languages": "nl",
            "specialities": "incident-response",
        }
        directory.add(session, parse_firm(record), None, NOW)
    editor = _login(site, "editor@gov.example")
    _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    _shared_scan_result(site)
    return site


def _shared_scan_result(site: Site) -> None:
    """A maturity-scan result its subscriber lets staff read: /staff/maturity/results/1."""
    scans, origin = site.app.state.scans, Origin("web-form")
    subscriber = site.service.signup(site.service.parse(SIGNUP), origin)
    site.service.confirm(site.last_link().rsplit("/", 1)[1], origin)  # staff read subscribers'
    consents = Consents(keep=True, staff_may_view=True)
    saved = scans.save_for(subscriber, score(scans.scan, {}), {}, consents, origin)
    assert saved.result_id == 1


def _routes(site: Site, method: str) -> list[str]:
    paths = []
    for path, methods in _flatten(site.app.routes):
        if path.startswith("/staff") and method in methods:
            paths.append(re.sub(r"\{(\w+)\}", lambda m: VALUES[m.group(1)], path))
    assert paths
    return paths


def walk_routes(routes, prefix: str = ""):
    """(path, route) of every route, through included routers (FastAPI keeps them as
    objects of their own in recent versions)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from walk_routes(included.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "path"):
            yield prefix + route.path, route


def _flatten(routes, prefix: str = ""):
    """(path, methods) of every route."""
    for path, route in walk_routes(routes, prefix):
        yield path, getattr(route, "methods", None) or set()


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
        admin_only = path.startswith(ADMIN_ONLY) or (
            path.startswith("/staff/firms/") and path.endswith(ADMIN_ONLY_ENDINGS)
        )
        if admin_only and role != "admin":
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
