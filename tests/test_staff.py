"""Staff accounts: argon2 hashes, the `alerts users` commands, log in and out, sessions
(fixation, idle time, disabling), throttling, roles, CSRF, no open redirect, the audit trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from alerts.cli import app as cli
from alerts.staff import accounts, passwords
from alerts.staff.models import AuditEvent, StaffSession, StaffUser
from tests.subscriber_site import CSRF, Site

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
GOOD = "correct horse battery staple"


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


def _add(database, email: str, role: str, password: str = GOOD, must_change=False) -> int:
    with database.session() as session:
        user = accounts.add(session, email, email.split("@")[0].title(), role, password, NOW)
        user.must_change_password = must_change
        return user.id


def _login(site: Site, email: str, password: str = GOOD, client=None, next_page: str = ""):
    client = client or site.client
    path = "/staff/login" + (f"?next={next_page}" if next_page else "")
    token = CSRF.search(client.get(path).text).group(1)
    data = {"csrf_token": token, "email": email, "password": password, "next": next_page}
    return client.post("/staff/login", data=data)


def _post(site: Site, path: str, data: dict | None = None, client=None, page="/staff"):
    client = client or site.client
    token = CSRF.search(client.get(page).text).group(1)
    return client.post(path, data={"csrf_token": token} | (data or {}))


def _actions(database) -> list[tuple[str, str]]:
    with database.session() as session:
        return [
            (e.actor, e.action) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


# --- passwords ---------------------------------------------------------------------------


def test_passwords_are_argon2id_hashes_and_verify_only_the_right_one():
    stored = passwords.hash_password(GOOD)
    assert stored.startswith("$argon2id$") and GOOD not in stored
    assert passwords.verify(stored, GOOD)
    assert not passwords.verify(stored, GOOD + "!")
    assert not passwords.verify(stored, "x" * 10_000)  # refused before hashing
    assert not passwords.verify("not a hash", GOOD)


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least 12"), ("aaaaaaaaaaaaaa", "different"), ("x" * 201, "at most")],
)
def test_weak_passwords_are_refused_with_the_reason(password, problem):
    with pytest.raises(passwords.WeakPassword, match=problem):
        passwords.check(password)


def test_a_password_containing_the_address_is_refused(database):
    with database.session() as session, pytest.raises(accounts.AccountError, match="address"):
        accounts.add(session, "marie@gov.example", "Marie", "editor", "marie-2026-secret", NOW)


# --- the command line ----------------------------------------------------------------------


def test_users_add_prints_a_generated_password_once_and_it_works(cli_env, database):
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "Lies@Gov.Example", "--role", "approver"])
    assert added.exit_code == 0, added.output
    password = re.search(r"password \(shown once\): (\S+)", added.output).group(1)
    with database.session() as session:
        user = accounts.find(session, "lies@gov.example")
        assert user.role == "approver" and user.must_change_password
        assert passwords.verify(user.password_hash, password)
    again = runner.invoke(cli, ["users", "add", "lies@gov.example"])
    assert again.exit_code == 1 and "has an account already" in again.output
    listed = runner.invoke(cli, ["users", "list"])
    assert "lies@gov.example" in listed.output and "approver" in listed.output


def test_users_disable_reset_and_role_from_the_command_line(cli_env, database):
    runner = CliRunner()
    _add(database, "jan@gov.example", "editor")
    assert runner.invoke(cli, ["users", "role", "jan@gov.example", "approver"]).exit_code == 0
    assert runner.invoke(cli, ["users", "role", "jan@gov.example", "king"]).exit_code == 1
    reset = runner.invoke(cli, ["users", "reset", "jan@gov.example"], input="")
    new = re.search(r"password \(shown once\): (\S+)", reset.output).group(1)
    assert runner.invoke(cli, ["users", "disable", "jan@gov.example"]).exit_code == 0
    with database.session() as session:
        user = accounts.find(session, "jan@gov.example")
        assert (user.role, user.active, user.must_change_password) == ("approver", False, True)
        assert passwords.verify(user.password_hash, new)
    chosen = runner.invoke(
        cli, ["users", "reset", "jan@gov.example", "--password-stdin"], input="short\n"
    )
    assert chosen.exit_code == 1 and "at least 12" in chosen.output
    missing = runner.invoke(cli, ["users", "disable", "nobody@gov.example"])
    assert missing.exit_code == 1 and "no account" in missing.output
    assert ("system", "role-changed") in _actions(database)
    assert ("system", "user-disabled") in _actions(database)


def test_the_first_admin_is_created_once(database):
    with database.session() as session:
        email, password = accounts.first_admin(session, NOW)
        assert accounts.first_admin(session, NOW) is None
        user = accounts.find(session, email)
        assert user.role == "admin" and passwords.verify(user.password_hash, password)


# --- logging in ----------------------------------------------------------------------------


def test_login_sets_a_strict_http_only_session_cookie_and_lands_on_the_overview(site, database):
    _add(database, "ann@gov.example", "editor")
    response = _login(site, "Ann@Gov.Example")
    assert response.status_code == 303 and response.headers["location"] == "/staff"
    cookie = response.headers["set-cookie"]
    assert "staff_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/staff" in cookie and "Secure" not in cookie
    home = site.client.get("/staff")
    assert home.status_code == 200 and "Welcome, Ann" in home.text
    assert home.headers["cache-control"] == "no-store"
    with database.session() as session:
        stored = session.scalars(select(StaffSession.token_hash)).all()
    token = site.client.cookies.get("staff_session")
    assert len(stored) == 1 and token not in stored  # only a hash of the token is kept


def test_session_cookie_is_secure_when_the_service_is_served_over_https(settings, database):
    secure = Site(
        settings.model_copy(update={"public_base_url": "https://alerts.example"}), database
    )
    _add(database, "ann@gov.example", "editor")
    assert "Secure" in _login(secure, "ann@gov.example").headers["set-cookie"]


def test_wrong_password_and_unknown_address_get_the_same_answer(site, database):
    _add(database, "ann@gov.example", "editor")
    wrong, unknown = (
        _login(site, "ann@gov.example", "wrong password!!"),
        _login(site, "x@gov.example"),
    )
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert "The address or the password is not correct." in response.text
        assert "staff_session" not in response.headers.get("set-cookie", "")
    assert _actions(database).count(("system", "login-failed")) == 2


def test_an_account_is_held_after_five_failures_even_with_the_right_password(site, database):
    _add(database, "ann@gov.example", "editor")
    for _ in range(5):
        assert _login(site, "ann@gov.example", "not the password").status_code == 401
    held = _login(site, "ann@gov.example")
    assert held.status_code == 401 and "Too many attempts" in held.text
    other = _login(site, "ann@gov.example", client=site.browser(ip="198.51.100.7"))
    assert other.status_code == 401  # held per account, whichever address asks
    assert ("system", "login-held") in _actions(database)


def test_login_issues_a_new_session_and_drops_the_one_the_browser_had(site, database):
    _add(database, "ann@gov.example", "editor")
    _login(site, "ann@gov.example")
    first = site.client.cookies.get("staff_session")
    _login(site, "ann@gov.example")
    second = site.client.cookies.get("staff_session")
    assert first != second
    planted = site.browser()
    planted.cookies.set("staff_session", first, path="/staff")
    assert planted.get("/staff").status_code == 303  # the old token opens nothing


def test_disabled_accounts_cannot_log_in_and_lose_their_sessions(site, database):
    _add(database, "ann@gov.example", "editor")
    _login(site, "ann@gov.example")
    with database.session() as session:
        accounts.set_active(session, "ann@gov.example", False, NOW)
    assert site.client.get("/staff").status_code == 303
    assert _login(site, "ann@gov.example").status_code == 401


def test_sessions_end_after_the_idle_time(site, database):
    _add(database, "ann@gov.example", "editor")
    _login(site, "ann@gov.example")
    idle = timedelta(minutes=site.settings.staff_idle_minutes + 1)
    with database.session() as session:
        session.execute(update(StaffSession).values(last_seen_at=datetime.now(UTC) - idle))
    response = site.client.get("/staff/password")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login?next=/staff/password"


def test_logout_ends_the_session_on_the_server(site, database):
    _add(database, "ann@gov.example", "editor")
    _login(site, "ann@gov.example")
    token = site.client.cookies.get("staff_session")
    assert _post(site, "/staff/logout").status_code == 303
    replay = site.browser()
    replay.cookies.set("staff_session", token, path="/staff")
    assert replay.get("/staff").status_code == 303
    assert ("ann@gov.example", "logout") in _actions(database)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/subscribe"])
def test_login_never_redirects_off_the_staff_pages(site, database, target):
    _add(database, "ann@gov.example", "editor")
    assert _login(site, "ann@gov.example", next_page=target).headers["location"] == "/staff"


def test_login_returns_to_the_staff_page_asked_for(site, database):
    _add(database, "ann@gov.example", "admin")
    response = _login(site, "ann@gov.example", next_page="/staff/audit")
    assert response.headers["location"] == "/staff/audit"


# --- passwords chosen by someone else ------------------------------------------------------


def test_a_password_set_by_someone_else_must_be_changed_first(site, database):
    _add(database, "ann@gov.example", "editor", must_change=True)
    assert _login(site, "ann@gov.example").headers["location"] == "/staff/password"
    assert site.client.get("/staff").headers["location"] == "/staff/password"
    wrong = _post(
        site,
        "/staff/password",
        {"current": "nope", "new": "another long phrase"},
        page="/staff/password",
    )
    assert wrong.status_code == 400 and "not correct" in wrong.text
    changed = _post(
        site,
        "/staff/password",
        {"current": GOOD, "new": "another long phrase"},
        page="/staff/password",
    )
    assert changed.status_code == 200 and "Your password has been changed." in changed.text
    assert site.client.get("/staff").status_code == 200
    with database.session() as session:
        user = accounts.find(session, "ann@gov.example")
        assert passwords.verify(user.password_hash, "another long phrase")
        assert not user.must_change_password


# --- roles and CSRF ----------------------------------------------------------------------


@pytest.mark.parametrize(("role", "expected"), [("editor", 403), ("approver", 403), ("admin", 200)])
@pytest.mark.parametrize("path", ["/staff/users", "/staff/audit"])
def test_only_admins_reach_the_account_and_audit_pages(site, database, role, expected, path):
    _add(database, f"{role}@gov.example", role)
    _login(site, f"{role}@gov.example")
    assert site.client.get(path).status_code == expected


@pytest.mark.parametrize("path", ["/staff", "/staff/password", "/staff/users", "/staff/audit"])
def test_staff_pages_send_visitors_to_the_login(site, path):
    response = site.client.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/login")


@pytest.mark.parametrize(
    "path",
    ["/staff/login", "/staff/logout", "/staff/password", "/staff/users", "/staff/users/1/disable"],
)
@pytest.mark.parametrize("token", [None, "forged"])
def test_every_staff_form_refuses_a_missing_or_wrong_csrf_token(site, database, path, token):
    _add(database, "boss@gov.example", "admin")
    _login(site, "boss@gov.example")
    data = {"email": "x@gov.example", "name": "X", "role": "editor", "password": GOOD}
    if token:
        data["csrf_token"] = token
    before = _actions(database)
    response = site.client.post(path, data=data)
    assert response.status_code == 403 and "Please try again" in response.text
    assert _actions(database) == before  # nothing happened


def test_an_admin_adds_disables_and_resets_accounts_on_the_web(site, database):
    _add(database, "boss@gov.example", "admin")
    _login(site, "boss@gov.example")
    added = _post(
        site,
        "/staff/users",
        {"name": "Eva", "email": "eva@gov.example", "role": "approver"},
        page="/staff/users",
    )
    secret = re.search(r'class="secret">([^<]+)<', added.text).group(1)
    eva = site.browser()
    assert _login(site, "eva@gov.example", secret, client=eva).status_code == 303
    with database.session() as session:
        eva_id = accounts.find(session, "eva@gov.example").id
    bad = _post(
        site,
        "/staff/users",
        {"name": "X", "email": "not-an-address", "role": "editor"},
        page="/staff/users",
    )
    assert bad.status_code == 400 and "not a valid address" in bad.text
    assert _post(site, f"/staff/users/{eva_id}/disable", page="/staff/users").status_code == 303
    assert eva.get("/staff/password").status_code == 303  # her session ended
    reset = _post(site, f"/staff/users/{eva_id}/reset", page="/staff/users")
    assert 'class="secret"' in reset.text
    actions = _actions(database)
    for action in ("user-added", "user-disabled", "password-reset"):
        assert ("boss@gov.example", action) in actions
    audit_page = site.client.get("/staff/audit")
    assert "user-disabled" in audit_page.text and f"user:{eva_id}" in audit_page.text


def test_an_admin_cannot_disable_their_own_account(site, database):
    boss = _add(database, "boss@gov.example", "admin")
    _login(site, "boss@gov.example")
    response = _post(site, f"/staff/users/{boss}/disable", page="/staff/users")
    assert response.status_code == 400 and "your own account" in response.text


def test_staff_pages_render_in_each_language(site, database):
    _add(database, "ann@gov.example", "admin")
    _login(site, "ann@gov.example")
    expected = {"nl": "Overzicht", "fr": "Aperçu", "de": "Übersicht", "en": "Overview"}
    for language, word in expected.items():
        page = site.client.get(f"/staff?lang={language}")
        assert f'<html lang="{language}">' in page.text and word in page.text


def test_names_from_the_database_are_escaped(site, database):
    with database.session() as session:
        accounts.add(session, "x@gov.example", "<script>alert(1)</script>", "admin", GOOD, NOW)
        session.execute(update(StaffUser).values(must_change_password=False))
    _login(site, "x@gov.example")
    page = site.client.get("/staff/users").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
