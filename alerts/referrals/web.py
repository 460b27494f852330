"""Public pages of the directory: the referral redirect behind every "who can help" link,
and a firm's own view of its listing, with its numbers and a form to ask for a correction.

The redirect goes only to the website the firm registered — nothing in the request can
change the target — and counts one click for the firm, the alert and the day: no address,
no browser, no cookie. Both pages are reached by signed links (alerts.referrals.links)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.curation.models import Alert
from alerts.referrals import directory, links
from alerts.referrals.models import PENDING, VETTED, CorrectionRequest, Firm, ReferralCount
from alerts.staff import audit
from alerts.templating import N_, gettext, reader_language, render
from alerts.web import csrf
from subscribers.tokens import TokenError
from subscribers.validation import format_enterprise_number

router = APIRouter()
HISTORY = timedelta(days=90)  # the per-alert numbers on a firm's own page
MIN_TEXT, MAX_TEXT = 10, 2000  # characters of a correction request
MAX_OPEN = 5  # open correction requests per firm: more wait until staff answered
MAX_BODY_BYTES = 16 * 1024
NO_STORE = {"cache-control": "no-store"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _signer(request: Request):
    return request.app.state.subscriptions.signer


def _database(request: Request):
    return request.app.state.database


def _page(request: Request, template: str, language: str, status: int = 200, **context):
    body = render(
        f"web/{template}",
        language,
        request=request,
        tr=lambda message, **params: gettext(language, message, **params),
        **context,
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)


def _not_found(request: Request, language: str) -> Response:
    return _page(request, "referral_gone.html", language, 404, gone=False)


def listed(firm: Firm, now: datetime) -> bool:
    """The same test as directory.shown, for one firm."""
    return (
        firm.status == VETTED
        and firm.expires_on is not None
        and firm.expires_on > directory.today(now)
    )


# --- the referral redirect -------------------------------------------------------------------


@router.get("/r/{token}", response_class=HTMLResponse)
def referral(request: Request, token: str) -> Response:
    language = reader_language(request)
    try:
        alert_id, firm_id = links.read_referral(_signer(request), token)
    except TokenError:
        return _not_found(request, language)
    with _database(request).session() as session:
        target = _click(session, alert_id, firm_id, utcnow())
    if target == 404:
        return _not_found(request, language)
    if target == 410:
        return _page(request, "referral_gone.html", language, 410, gone=True)
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


def _click(session: Session, alert_id: int, firm_id: int, now: datetime) -> str | int:
    """The firm's registered website, with one click counted; or the status to answer."""
    firm = session.get(Firm, firm_id)
    if firm is None or firm.status == PENDING or session.get(Alert, alert_id) is None:
        return 404
    if not listed(firm, now):
        return 410
    directory.count(session, alert_id, now, clicks={firm.id: 1})
    return firm.website


# --- the firm's own page ---------------------------------------------------------------------


@dataclass(frozen=True)
class AlertNumbers:
    alert_id: int
    title: str
    last_day: str
    shown: int
    shown_first: int
    clicks: int


def own_firm(session: Session, request: Request, token: str) -> Firm | None:
    """The firm a self-view link names, if the link is genuine and still current."""
    try:
        firm_id, key = links.read_firm_view(_signer(request), token)
    except TokenError:
        return None
    firm = session.get(Firm, firm_id)
    if firm is None or not hmac.compare_digest(firm.link_key.encode(), key.encode()):
        return None
    return firm


def history(session: Session, firm_id: int, now: datetime, language: str) -> list[AlertNumbers]:
    """Per alert, what the last 90 days brought: newest first."""
    since = (directory.today(now) - HISTORY).isoformat()
    last_day = func.max(ReferralCount.day)
    rows = session.execute(
        select(
            ReferralCount.alert_id,
            last_day,
            func.sum(ReferralCount.shown),
            func.sum(ReferralCount.shown_first),
            func.sum(ReferralCount.clicks),
        )
        .where(ReferralCount.firm_id == firm_id, ReferralCount.day >= since)
        .group_by(ReferralCount.alert_id)
        .order_by(last_day.desc(), ReferralCount.alert_id.desc())
    ).all()
    ids = [row[0] for row in rows]
    alerts = session.scalars(select(Alert).where(Alert.id.in_(ids))) if ids else []
    titles = {alert.id: _title(alert, language) for alert in alerts}
    return [AlertNumbers(row[0], titles.get(row[0], ""), *row[1:]) for row in rows]


def _title(alert: Alert, language: str) -> str:
    texts = alert.texts or {}
    text = texts.get(language) or texts.get("en") or next(iter(texts.values()), {})
    return str(text.get("title", "")) if isinstance(text, dict) else ""


def _firm_page(
    request: Request, session: Session, firm: Firm, language: str, status: int = 200, **extra
) -> Response:
    now = utcnow()
    response = _page(
        request,
        "firm_view.html",
        language,
        status,
        firm=firm,
        token=request.path_params["token"],
        number=format_enterprise_number(firm.enterprise_number),
        listed=listed(firm, now),
        totals=directory.totals(session, firm.id),
        rows=history(session, firm.id, now, language),
        csrf_token=csrf.form_token(request, _signer(request)),
        limits={"minimum": MIN_TEXT, "maximum": MAX_TEXT},
        **({"text": "", "error": None, "thanked": False} | extra),
    )
    secure = request.app.state.settings.public_base_url.startswith("https://")
    csrf.set_cookie(request, response, secure)
    return response


@router.get("/firm/{token}", response_class=HTMLResponse)
def firm_view(request: Request, token: str) -> Response:
    language = reader_language(request)
    with _database(request).session() as session:
        firm = own_firm(session, request, token)
        if firm is None:
            return _not_found(request, language)
        return _firm_page(request, session, firm, language)


@router.post("/firm/{token}/correction", response_class=HTMLResponse)
async def request_correction(request: Request, token: str) -> Response:
    language = reader_language(request)
    try:
        text = await _posted_text(request)
    except csrf.CsrfError:
        return _page(request, "referral_gone.html", language, 403, stale=True)
    with _database(request).session() as session:
        firm = own_firm(session, request, token)
        if firm is None:
            return _not_found(request, language)
        error = correction_error(text) or _too_many(session, firm.id)
        if error:
            return _firm_page(request, session, firm, language, 422, text=text, error=error)
        store_correction(session, firm, text, utcnow())
        return _firm_page(request, session, firm, language, thanked=True)


async def _posted_text(request: Request) -> str:
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise csrf.CsrfError("form too large")
    form = await request.form(max_files=0, max_fields=10)
    csrf.verify(request, form.get("csrf_token"), _signer(request))
    text = form.get("text")
    return text.strip() if isinstance(text, str) else ""


def correction_error(text: str) -> tuple[str, dict] | None:
    """Why a correction text is refused (a message to translate and its values), or None."""
    if len(text) < MIN_TEXT:
        return N_("Please write at least {minimum} characters."), {"minimum": MIN_TEXT}
    if len(text) > MAX_TEXT:
        return N_("Please write at most {maximum} characters."), {"maximum": MAX_TEXT}
    return None


def _too_many(session: Session, firm_id: int) -> tuple[str, dict] | None:
    query = select(func.count()).where(
        CorrectionRequest.firm_id == firm_id, CorrectionRequest.status == "open"
    )
    if session.scalar(query) >= MAX_OPEN:
        return N_("You have {count} requests waiting; we answer those first."), {"count": MAX_OPEN}
    return None


def store_correction(session: Session, firm: Firm, text: str, now: datetime) -> CorrectionRequest:
    correction = CorrectionRequest(firm_id=firm.id, text=text, status="open", created_at=now)
    session.add(correction)
    session.flush()
    audit.record(
        session,
        now,
        None,
        "firm-correction-requested",
        f"firm:{firm.id}",
        correction=correction.id,
    )
    return correction
