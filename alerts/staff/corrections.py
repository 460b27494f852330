"""Staff pages (administrators) for the directory's correction requests: the open ones,
each marked done or refused (audited), and a firm's self-view link to email to the firm."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from alerts.referrals.links import firm_link
from alerts.referrals.models import CorrectionRequest, Firm
from alerts.staff import audit
from alerts.staff.models import ADMIN
from alerts.staff.web import _form, _text, message, page, staff_user
from alerts.templating import N_
from alerts.web.params import RowId

router = APIRouter(prefix="/staff")
OPEN = "open"
OUTCOMES = {"done": "done", "refuse": "refused"}  # the button's action: the new status
MAX_NOTE = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_requests(session) -> list[tuple[CorrectionRequest, Firm]]:
    """Open requests, oldest first, with their firm."""
    query = (
        select(CorrectionRequest, Firm)
        .join(Firm, Firm.id == CorrectionRequest.firm_id)
        .where(CorrectionRequest.status == OPEN)
        .order_by(CorrectionRequest.created_at, CorrectionRequest.id)
    )
    return [(row[0], row[1]) for row in session.execute(query)]


@router.get("/corrections", response_class=HTMLResponse)
def corrections_page(request: Request) -> Response:
    user = staff_user(request, ADMIN)
    with request.app.state.database.session() as session:
        rows = open_requests(session)
    return page(request, "corrections.html", user, section="corrections", rows=rows)


@router.post("/corrections/{correction_id}/{action}", response_class=HTMLResponse)
async def review(request: Request, correction_id: RowId, action: str) -> Response:
    user = staff_user(request, ADMIN)
    form = await _form(request)
    if action not in OUTCOMES:
        return message(request, user, 404, N_("Not found"), N_("There is no such action."))
    note, now = " ".join(_text(form, "note", MAX_NOTE).split()), utcnow()
    with request.app.state.database.session() as session:
        correction = session.get(CorrectionRequest, correction_id)
        if correction is None or correction.status != OPEN:
            reviewed = False
        else:
            _close(session, correction, OUTCOMES[action], note, user, now)
            reviewed = True
    if not reviewed:
        return message(
            request, user, 409, N_("Already reviewed"), N_("This request is no longer open.")
        )
    return RedirectResponse("/staff/corrections", status_code=303)


def _close(session, correction: CorrectionRequest, status: str, note: str, user, now) -> None:
    correction.status, correction.reviewed_by, correction.reviewed_at = status, user.email, now
    correction.detail = {**(correction.detail or {}), "note": note} if note else correction.detail
    audit.record(
        session,
        now,
        user,
        f"firm-correction-{status}",
        f"firm:{correction.firm_id}",
        correction=correction.id,
        note=note,
    )


@router.get("/firms/{firm_id}/link", response_class=HTMLResponse)
def firm_link_page(request: Request, firm_id: RowId) -> Response:
    user = staff_user(request, ADMIN)
    with request.app.state.database.session() as session:
        firm = session.get(Firm, firm_id)
    if firm is None:
        return message(request, user, 404, N_("Not found"), N_("There is no such firm."))
    settings, signer = request.app.state.settings, request.app.state.subscriptions.signer
    link = firm_link(settings.public_base_url, signer, firm)
    return page(request, "firm_link.html", user, section="firms", firm=firm, link=link)
