"""Staff pages: log in and out, change one's password, and (admins) manage accounts and
read the audit trail. Every form carries a CSRF token; every page checks the session and
the role on the server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from alerts.curation.content import BRUSSELS
from alerts.staff import accounts, audit, sessions
from alerts.staff.models import ADMIN, APPROVER, EDITOR, RANK, StaffUser
from alerts.staff.passwords import generate
from alerts.templating import LANGUAGES, N_, gettext, reader_language, render
from alerts.web import csrf
from alerts.web.params import RowId

router = APIRouter(prefix="/staff")
COOKIE = "staff_session"
MAX_BODY_BYTES = 16 * 1024
ROLE_NAMES = {EDITOR: N_("editor"), APPROVER: N_("approver"), ADMIN: N_("administrator")}
ABILITIES = {
    EDITOR: (N_("Draft alerts from advisories, edit them and submit them for approval."),),
    APPROVER: (N_("Approve, schedule and send alerts that someone else edited last."),),
    ADMIN: (N_("Manage staff accounts, feeds, rules and security firms."),),
}


class NotLoggedIn(Exception):
    """No valid session: pages send the browser to the login page."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_time(moment: datetime | None) -> str:
    """Brussels wall time with its zone, '2026-11-27 10:00 CET' ('—' for none)."""
    return moment.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


# --- sessions and roles --------------------------------------------------------------------


def _settings(request: Request):
    return request.app.state.settings


def _signer(request: Request):
    return request.app.state.subscriptions.signer


def _secure(request: Request) -> bool:
    return _settings(request).public_base_url.startswith("https://")


def staff_user(request: Request, minimum: str = EDITOR) -> StaffUser:
    """The logged-in user, if their role reaches `minimum`; raises NotLoggedIn/Forbidden."""
    settings = _settings(request)
    with request.app.state.database.session() as session:
        user = sessions.current(
            session,
            request.cookies.get(COOKIE),
            utcnow(),
            timedelta(minutes=settings.staff_idle_minutes),
            timedelta(hours=settings.staff_session_hours),
        )
        if user is not None:
            session.expunge(user)
    if user is None:
        raise NotLoggedIn()
    if RANK[user.role] < RANK[minimum]:
        raise Forbidden()
    request.state.staff_user = user
    return user


def page(
    request: Request,
    template: str,
    user: StaffUser | None,
    status: int = 200,
    **context: Any,
) -> Response:
    language = reader_language(request)
    body = render(
        f"web/staff/{template}",
        language,
        request=request,
        user=user,
        csrf_token=csrf.form_token(request, _signer(request)),
        role_names={code: gettext(language, name) for code, name in ROLE_NAMES.items()},
        local_time=local_time,
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    response.headers["cache-control"] = "no-store"  # staff pages are never cached
    csrf.set_cookie(request, response, _secure(request))
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            "lang", language, max_age=365 * 86400, samesite="lax", secure=_secure(request)
        )
    return response


def message(request: Request, user: StaffUser | None, status: int, title: str, text: str):
    language = reader_language(request)
    return page(
        request,
        "message.html",
        user,
        status,
        title=gettext(language, title),
        text=gettext(language, text),
    )


async def _form(
    request: Request, max_bytes: int = MAX_BODY_BYTES, max_fields: int = 60
) -> FormData:
    """The posted form, bounded, and only from one of our own pages."""
    if int(request.headers.get("content-length") or 0) > max_bytes:
        raise csrf.CsrfError("form too large")
    form = await request.form(max_files=0, max_fields=max_fields)
    csrf.verify(request, form.get("csrf_token"), _signer(request))
    return form


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _local_next(value: str) -> str:
    """Only our own staff pages: never an open redirect."""
    if value.startswith("/staff") and not value.startswith("//") and "\\" not in value:
        return value
    return "/staff"


# --- log in and out ----------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    next_page = _local_next(request.query_params.get("next", ""))
    return page(request, "login.html", None, next=next_page, email="", error="")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await _form(request)
    email, next_page = _text(form, "email", 320), _local_next(_text(form, "next", 300))
    settings, now = _settings(request), utcnow()
    client = request.client.host if request.client else "unknown"
    language = reader_language(request)
    # The refusal is caught inside the transaction: failed attempts must be counted and
    # audited, not rolled back with the error.
    with request.app.state.database.session() as session:
        try:
            user = accounts.authenticate(
                session,
                _signer(request),
                email,
                _text(form, "password", 1000),
                client,
                now,
                settings.staff_login_limit,
            )
        except accounts.LoginRefused as refused:
            held = refused.held
        else:
            held = None
            sessions.close(session, request.cookies.get(COOKIE))  # never keep a prior token
            token = sessions.open_session(session, user, now)
            change_first = user.must_change_password
    if held is not None:
        text = (
            N_("Too many attempts. Wait 15 minutes, or ask an administrator.")
            if held
            else N_("The address or the password is not correct.")
        )
        error = gettext(language, text)
        return page(request, "login.html", None, 401, next=next_page, email=email, error=error)
    target = "/staff/password" if change_first else next_page
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.staff_session_hours * 3600,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
        path="/staff",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    with request.app.state.database.session() as session:
        user = sessions.owner(session, request.cookies.get(COOKIE))
        sessions.close(session, request.cookies.get(COOKIE))
        if user is not None:
            audit.record(session, utcnow(), user, "logout", f"user:{user.id}")
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(COOKIE, path="/staff")
    return response


# --- pages for every role ------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = staff_user(request)
    if user.must_change_password:
        return RedirectResponse("/staff/password", status_code=303)
    language = reader_language(request)
    abilities = [
        gettext(language, text)
        for role, texts in ABILITIES.items()
        if RANK[role] <= RANK[user.role]
        for text in texts
    ]
    return page(request, "home.html", user, section="home", abilities=abilities)


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request) -> Response:
    user = staff_user(request)
    return page(request, "password.html", user, section="password", done=False, error="")


@router.post("/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    user = staff_user(request)
    form = await _form(request)
    try:
        with request.app.state.database.session() as session:
            account = session.get(StaffUser, user.id)
            accounts.change_password(
                session, account, _text(form, "current", 1000), _text(form, "new", 1000), utcnow()
            )
            session.flush()
            session.expunge(account)
    except accounts.AccountError as error:
        return page(
            request, "password.html", user, 400, section="password", done=False, error=str(error)
        )
    return page(request, "password.html", account, section="password", done=True, error="")


# --- administrators ------------------------------------------------------------------------


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    user = staff_user(request, ADMIN)
    return _users(request, user)


def _users(request: Request, user: StaffUser, status: int = 200, **context: Any) -> Response:
    with request.app.state.database.session() as session:
        listed = accounts.listing(session)
        session.expunge_all()
    context = {"created": "", "secret": "", "error": ""} | context
    return page(request, "users.html", user, status, section="users", accounts=listed, **context)


@router.post("/users", response_class=HTMLResponse)
async def add_user(request: Request) -> Response:
    user = staff_user(request, ADMIN)
    form = await _form(request)
    secret = generate()
    try:
        with request.app.state.database.session() as session:
            added = accounts.add(
                session,
                _text(form, "email", 320),
                _text(form, "name", 120),
                _text(form, "role", 10),
                secret,
                utcnow(),
                actor=session.get(StaffUser, user.id),
            )
            email = added.email
    except accounts.AccountError as error:
        return _users(request, user, 400, error=str(error))
    return _users(request, user, created=email, secret=secret)


@router.post("/users/{user_id}/{action}", response_class=HTMLResponse)
async def change_user(request: Request, user_id: RowId, action: str) -> Response:
    user = staff_user(request, ADMIN)
    await _form(request)
    if action not in ("disable", "enable", "reset"):
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    secret, now = generate(), utcnow()
    try:
        with request.app.state.database.session() as session:
            target, actor = session.get(StaffUser, user_id), session.get(StaffUser, user.id)
            if target is None:
                raise accounts.AccountError("no such account")
            if action == "reset":
                accounts.reset_password(session, target.email, secret, now, actor=actor)
            else:
                accounts.set_active(session, target.email, action == "enable", now, actor=actor)
            email = target.email
    except accounts.AccountError as error:
        return _users(request, user, 400, error=str(error))
    if action == "reset":
        return _users(request, user, created=email, secret=secret)
    return RedirectResponse("/staff/users", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    user = staff_user(request, ADMIN)
    with request.app.state.database.session() as session:
        events = audit.trail(session)
        session.expunge_all()
    return page(request, "audit.html", user, section="audit", events=events)


def install(app) -> None:
    """The routers and what turns NotLoggedIn / Forbidden / a bad form into pages."""
    from alerts.staff import curation_pages  # it builds on this module's helpers

    app.include_router(router)
    app.include_router(curation_pages.router)

    @app.exception_handler(NotLoggedIn)
    def _not_logged_in(request: Request, _error: NotLoggedIn) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/staff/login?next={request.url.path}", status_code=303)
        return message(
            request, None, 401, N_("You are not logged in"), N_("Log in again, then retry.")
        )

    @app.exception_handler(csrf.CsrfError)
    def _stale_form(request: Request, _error: csrf.CsrfError) -> Response:
        user = getattr(request.state, "staff_user", None)
        return message(
            request,
            user,
            403,
            N_("Please try again"),
            N_("This form was too old or did not come from this site. Reload the page and retry."),
        )

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, _error: Forbidden) -> Response:
        user = getattr(request.state, "staff_user", None)
        return message(
            request,
            user,
            403,
            N_("Not allowed"),
            N_("Your role does not allow this. Ask an administrator if you need it."),
        )
