"""Staff pages for the directory of security firms: the list (with the firms whose vetting
runs out soon), one firm with its figures and audit trail, and — administrators only — the
record form, vetting and suspending. The rules live in alerts.referrals; these pages only
read forms and show what came of them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from alerts.referrals import directory
from alerts.referrals.labels import speciality_label
from alerts.referrals.models import SPECIALITIES, STATUSES, Firm
from alerts.referrals.validation import FirmErrors, parse_firm
from alerts.staff import audit
from alerts.staff.models import ADMIN, StaffUser
from alerts.staff.web import _form, message, page, staff_user, utcnow
from alerts.templating import LANGUAGES, N_, reader_language
from alerts.web.params import RowId
from subscribers import options

router = APIRouter(prefix="/staff")
TEXT_FIELDS = ("name", "enterprise_number", "website", "email", "phone", "status")
DATE_FIELDS = ("vetted_on", "expires_on")
CHOICE_FIELDS = ("regions", "languages", "specialities")
VETTING_DAYS = 365  # the vetting form's default expiry: one year from today
LIMITS = {"name": 200, "website": 300, "email": 320, "notes": 2000}


def _database(request: Request):
    return request.app.state.database


def _not_found(request: Request, user: StaffUser) -> Response:
    return message(request, user, 404, N_("Not found"), N_("There is no such page."))


def _firm(request: Request, firm_id: int) -> Firm | None:
    with _database(request).session() as session:
        firm = session.get(Firm, firm_id)
        if firm is not None:
            session.expunge(firm)
        return firm


def _choices(language: str) -> dict[str, list[tuple[str, str]]]:
    """The codes of the form's checkboxes with their labels in the staff member's language."""
    return {
        "regions": [
            (c.code, options.label("regions", c.code, language)) for c in options.choices("regions")
        ],
        "languages": [(code, code.upper()) for code in LANGUAGES],
        "specialities": [(code, speciality_label(code, language)) for code in SPECIALITIES],
    }


def _names(group: str, language: str):
    """For the templates: a list of codes as their labels, joined by commas."""
    if group == "specialities":
        return lambda codes: ", ".join(speciality_label(code, language) for code in codes or ())
    return lambda codes: ", ".join(options.label(group, code, language) for code in codes or ())


# --- the list and one firm ---------------------------------------------------------------


@router.get("/firms", response_class=HTMLResponse)
def firms_page(request: Request) -> Response:
    user = staff_user(request)
    status = request.query_params.get("status", "")
    status = status if status in STATUSES else ""
    query = select(Firm).order_by(Firm.name, Firm.id)
    if status:
        query = query.where(Firm.status == status)
    with _database(request).session() as session:
        firms = list(session.scalars(query))
        expiring = directory.expiring_soon(session, utcnow())
        session.expunge_all()
    return page(
        request,
        "firms.html",
        user,
        section="firms",
        firms=firms,
        expiring=expiring,
        statuses=STATUSES,
        chosen=status,
        region_names=_names("regions", reader_language(request)),
    )


@router.get("/firms/new", response_class=HTMLResponse)
def new_page(request: Request) -> Response:
    user = staff_user(request, ADMIN)
    return _editor(request, user, None, {"status": "pending", "kmo_portefeuille": False})


@router.get("/firms/{firm_id}", response_class=HTMLResponse)
def firm_page(request: Request, firm_id: RowId) -> Response:
    user = staff_user(request)
    firm = _firm(request, firm_id)
    if firm is None:
        return _not_found(request, user)
    return _detail(request, user, firm)


def _detail(request: Request, user: StaffUser, firm: Firm, status: int = 200, error: str = ""):
    language = reader_language(request)
    with _database(request).session() as session:
        totals = directory.totals(session, firm.id)
        trail = audit.trail(session, f"firm:{firm.id}", limit=50)
        session.expunge_all()
    today = directory.today(utcnow())
    return page(
        request,
        "firm.html",
        user,
        status,
        section="firms",
        firm=firm,
        totals=totals,
        trail=trail,
        error=error,
        default_expiry=(today + timedelta(days=VETTING_DAYS)).isoformat(),
        region_names=_names("regions", language),
        speciality_names=_names("specialities", language),
    )


# --- the record form (administrators) ------------------------------------------------------


@router.get("/firms/{firm_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, firm_id: RowId) -> Response:
    user = staff_user(request, ADMIN)
    firm = _firm(request, firm_id)
    if firm is None:
        return _not_found(request, user)
    return _editor(request, user, firm, _values(firm))


def _values(firm: Firm) -> dict[str, Any]:
    """A stored firm as the form shows it."""
    values: dict[str, Any] = {name: getattr(firm, name) or "" for name in TEXT_FIELDS}
    values |= {name: list(getattr(firm, name) or ()) for name in CHOICE_FIELDS}
    values |= {
        name: (getattr(firm, name) or "") and getattr(firm, name).isoformat()
        for name in DATE_FIELDS
    }
    values["certifications"] = "; ".join(firm.certifications or ())
    values["kmo_portefeuille"] = bool(firm.kmo_portefeuille)
    values["notes"] = firm.notes or ""
    return values


def _posted(form: FormData) -> dict[str, Any]:
    """The form as parse_firm reads it: text bounded, checkbox lists as lists."""
    values: dict[str, Any] = {
        name: str(form.get(name) or "")[: LIMITS.get(name, 100)]
        for name in (*TEXT_FIELDS, *DATE_FIELDS, "notes")
    }
    values |= {name: [str(v)[:40] for v in form.getlist(name)][:40] for name in CHOICE_FIELDS}
    values["certifications"] = str(form.get("certifications") or "")[:2000]
    values["kmo_portefeuille"] = bool(form.get("kmo_portefeuille"))
    return values


def _editor(
    request: Request,
    user: StaffUser,
    firm: Firm | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    changes = []
    if firm is not None:
        with _database(request).session() as session:
            trail = audit.trail(session, f"firm:{firm.id}", limit=20)
            changes = [event for event in trail if event.action == "firm-changed"][:5]
            session.expunge_all()
    return page(
        request,
        "firm_edit.html",
        user,
        status,
        section="firms",
        firm=firm,
        values=values,
        errors=errors or {},
        choices=_choices(reader_language(request)),
        statuses=STATUSES,
        changes=changes,
    )


@router.post("/firms/new", response_class=HTMLResponse)
async def add_firm(request: Request) -> Response:
    user = staff_user(request, ADMIN)
    values = _posted(await _form(request))
    try:
        record = parse_firm(values)
        with _database(request).session() as session:
            firm = directory.add(session, record, session.get(StaffUser, user.id), utcnow())
            firm_id = firm.id
    except FirmErrors as error:
        return _editor(request, user, None, values, error.errors, 400)
    except directory.DirectoryError as error:
        return _editor(request, user, None, values, {"enterprise_number": str(error)}, 400)
    return RedirectResponse(f"/staff/firms/{firm_id}", status_code=303)


@router.post("/firms/{firm_id}/edit", response_class=HTMLResponse)
async def save_firm(request: Request, firm_id: RowId) -> Response:
    user = staff_user(request, ADMIN)
    values = _posted(await _form(request))
    firm = _firm(request, firm_id)
    if firm is None:
        return _not_found(request, user)
    try:
        record = parse_firm(values)
        with _database(request).session() as session:
            stored = session.get(Firm, firm_id)
            directory.update(session, stored, record, session.get(StaffUser, user.id), utcnow())
    except FirmErrors as error:
        return _editor(request, user, firm, values, error.errors, 400)
    except directory.DirectoryError as error:
        return _editor(request, user, firm, values, {"enterprise_number": str(error)}, 400)
    return RedirectResponse(f"/staff/firms/{firm_id}", status_code=303)


# --- vetting and suspending (administrators) ----------------------------------------------


@router.post("/firms/{firm_id}/vet", response_class=HTMLResponse)
async def vet_firm(request: Request, firm_id: RowId) -> Response:
    user = staff_user(request, ADMIN)
    form = await _form(request)
    try:
        expires_on = date.fromisoformat(str(form.get("expires_on") or "")[:10])
    except ValueError:
        return _refused(request, user, firm_id, "a date as YYYY-MM-DD")
    return _change(request, user, firm_id, directory.vet, expires_on)


@router.post("/firms/{firm_id}/suspend", response_class=HTMLResponse)
async def suspend_firm(request: Request, firm_id: RowId) -> Response:
    user = staff_user(request, ADMIN)
    form = await _form(request)
    return _change(request, user, firm_id, directory.suspend, str(form.get("reason") or "")[:1000])


def _change(request: Request, user: StaffUser, firm_id: int, action, argument) -> Response:
    """Vet or suspend: the firm's page again, with the reason when it was refused."""
    try:
        with _database(request).session() as session:
            firm = session.get(Firm, firm_id)
            if firm is None:
                return _not_found(request, user)
            action(session, firm, argument, session.get(StaffUser, user.id), utcnow())
    except directory.DirectoryError as error:
        return _refused(request, user, firm_id, str(error))
    return RedirectResponse(f"/staff/firms/{firm_id}", status_code=303)


def _refused(request: Request, user: StaffUser, firm_id: int, error: str) -> Response:
    firm = _firm(request, firm_id)
    if firm is None:
        return _not_found(request, user)
    return _detail(request, user, firm, 400, error)
