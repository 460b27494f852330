"""Staff pages for curation: the queue of scored advisories, alerts made from them, the
editor, previews, and the life-cycle buttons (four-eyes enforced by alerts.curation)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from alerts.compose import PLACEHOLDERS, compose_email, sms_previews
from alerts.compose.content import MissingText
from alerts.curation import drafting, editing, lifecycle, service
from alerts.curation.content import BRUSSELS, alert_content, alert_firms
from alerts.curation.models import STATUSES, Alert
from alerts.delivery.figures import delivery_figures
from alerts.delivery.service import SendRefused, alert_targeting, send_alert
from alerts.staff import audit
from alerts.staff.models import StaffUser
from alerts.staff.web import _form, message, page, staff_user, utcnow
from alerts.templating import LANGUAGES, N_, reader_language
from alerts.web.params import MAX_ROW_ID, RowId
from subscribers import audience_cache, options
from subscribers.audience import AudienceIndex

router = APIRouter(prefix="/staff")
ROW_ID = re.compile(r"[0-9]{1,19}")
INDEX_SECONDS = 60  # the audience index is rebuilt at most once a minute per process
PAGE = 25
EDITOR_BYTES, EDITOR_FIELDS = 256 * 1024, 400  # four languages and every product family


def _catalogue(request: Request):
    return request.app.state.catalogue


def _database(request: Request):
    return request.app.state.database


# --- the queue ---------------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    user = staff_user(request)
    params = request.query_params
    tier = params.get("tier") if params.get("tier") in service.QUEUE_TIERS else "urgent"
    filters = service.QueueFilter(
        tier=tier,
        source=_param(params, "source", 100),
        family=_param(params, "family", 60),
        language=_param(params, "language", 8),
        text=_param(params, "q", 200),
    )
    after = service.Cursor.parse(params.get("after"))
    with _database(request).session() as session:
        rows, following = service.queue(session, filters, after, PAGE)
        counts = service.queue_counts(session)
        others = service.other_sources(session, rows)
        session.expunge_all()
    return page(
        request,
        "queue.html",
        user,
        section="queue",
        items=service.merge_duplicates(rows),
        others=others,
        counts=counts,
        filters=filters,
        following=following.token() if following else "",
        families=_catalogue(request).families,
        now=utcnow(),
    )


def _param(params, name: str, limit: int) -> str | None:
    """A query parameter, trimmed and bounded; None when empty."""
    return (params.get(name) or "").strip()[:limit] or None


def _ids(form) -> list[int]:
    """Chosen advisories; a merged queue item posts its ids joined by commas."""
    values = (part.strip() for value in form.getlist("advisory") for part in str(value).split(","))
    ids = (int(value) for value in values if ROW_ID.fullmatch(value))  # ASCII digits only
    return [row_id for row_id in ids if 0 < row_id <= MAX_ROW_ID][:50]


@router.post("/queue/dismiss", response_class=HTMLResponse)
async def dismiss(request: Request) -> Response:
    user = staff_user(request)
    form = await _form(request)
    try:
        with _database(request).session() as session:
            service.dismiss(session, _ids(form), str(form.get("reason") or ""), user, utcnow())
    except service.CurationError as error:
        return message(request, user, 400, N_("Nothing was changed"), str(error))
    return RedirectResponse(f"/staff/queue?tier={form.get('tier') or 'urgent'}", status_code=303)


@router.post("/queue/alert", response_class=HTMLResponse)
async def create_alert(request: Request) -> Response:
    user = staff_user(request)
    form = await _form(request)
    try:
        with _database(request).session() as session:
            alert = service.create_from_advisories(
                session, _ids(form), user, _catalogue(request), utcnow()
            )
            alert_id = alert.id
    except service.CurationError as error:
        return message(request, user, 400, N_("Nothing was changed"), str(error))
    return RedirectResponse(f"/staff/alerts/{alert_id}/edit", status_code=303)


# --- alerts ------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request) -> Response:
    user = staff_user(request)
    status = request.query_params.get("status")
    with _database(request).session() as session:
        rows = service.list_alerts(session, (status,) if status in STATUSES else None)
        session.expunge_all()
    return page(request, "alerts.html", user, section="alerts", alerts=rows, chosen=status or "")


def _alert(request: Request, alert_id: int) -> Alert | None:
    with _database(request).session() as session:
        alert = session.get(Alert, alert_id)
        if alert is not None:
            session.expunge(alert)
        return alert


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: RowId) -> Response:
    user = staff_user(request)
    alert = _alert(request, alert_id)
    if alert is None:
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    return _detail(request, user, alert)


def _detail(request: Request, user: StaffUser, alert: Alert, status: int = 200, error: str = ""):
    content = alert_content(alert, request.app.state.settings.public_base_url)
    with _database(request).session() as session:
        sources = service.sources_of(session, alert.id)
        trail = audit.trail(session, f"alert:{alert.id}", limit=50)
        figures = delivery_figures(session, alert.id) if alert.fanned_out_at else None
        page_views = service.views(session, alert.id)
        session.expunge_all()
    actor = lifecycle.Actor(user.id, user.role)
    return page(
        request,
        "alert.html",
        user,
        status,
        section="alerts",
        alert=alert,
        sms=_sms(content),
        audience=_audience(request, alert),
        missing=editing.missing_for_submission(alert.texts or {}),
        actions=lifecycle.allowed(alert.status, actor, alert.last_editor_id),
        four_eyes=alert.last_editor_id == user.id,
        sources=sources,
        trail=trail,
        figures=figures,
        page_views=page_views,
        languages=LANGUAGES,
        error=error,
    )


def _sms(content) -> dict[str, Any]:
    try:
        return sms_previews(content)
    except (MissingText, ValueError):
        return {}


def _audience(request: Request, alert: Alert) -> dict[str, dict[str, int]]:
    """Recipients per channel and language for the alert's targeting, from an audience
    index rebuilt at most once a minute (counting itself takes well under a millisecond)."""
    targeting = alert_targeting(alert, _catalogue(request))
    if targeting is None:
        return {}
    return _index(request).count_by_language(targeting)


def _index(request: Request) -> AudienceIndex:
    """The process's index, at once (refreshed in the background; see audience_cache)."""
    state, database = request.app.state, _database(request)
    return audience_cache.shared(state, database, refresh_seconds=INDEX_SECONDS).get()


@router.get("/alerts/{alert_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, alert_id: RowId) -> Response:
    user = staff_user(request)
    alert = _alert(request, alert_id)
    if alert is None:
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    return _editor(request, user, alert, _form_values(alert))


def _form_values(alert: Alert) -> dict[str, Any]:
    values: dict[str, Any] = {"tier": alert.tier}
    for language in drafting.LANGUAGES:
        text = (alert.texts or {}).get(language) or {}
        for name in editing.LIMITS:
            values[f"{name}_{language}"] = text.get(name, "")
        values[f"actions_{language}"] = "\n".join(text.get("actions") or ())
    values["links"] = "\n".join(f"{label} | {url}" for label, url in alert.links or ())
    targeting = alert.targeting or {}
    for name in ("families", "sectors", "regions"):
        values[name] = list(targeting.get(name) or ())
    return values


def _editor(request, user, alert, values, errors=None, status: int = 200, counts=None) -> Response:
    language = reader_language(request)
    return page(
        request,
        "alert_edit.html",
        user,
        status,
        section="alerts",
        alert=alert,
        values=values,
        errors=errors or {},
        counts=counts,
        languages=drafting.LANGUAGES,
        family_groups=options.family_groups(_catalogue(request)),
        sectors=[
            (c.code, options.label("sectors", c.code, language)) for c in options.choices("sectors")
        ],
        regions=[
            (c.code, options.label("regions", c.code, language)) for c in options.choices("regions")
        ],
    )


def _known(request: Request) -> dict[str, frozenset[str]]:
    return {
        "families": frozenset(family.id for family in _catalogue(request).families),
        "sectors": options.codes("sectors"),
        "regions": options.codes("regions"),
    }


@router.post("/alerts/{alert_id}/edit", response_class=HTMLResponse)
async def save_edit(request: Request, alert_id: RowId) -> Response:
    user = staff_user(request)
    form = await _form(request, max_bytes=EDITOR_BYTES, max_fields=EDITOR_FIELDS)
    alert = _alert(request, alert_id)
    if alert is None:
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    fields = {key: form.get(key) for key in form if key not in ("families", "sectors", "regions")}
    lists = {
        name: [str(v) for v in form.getlist(name)] for name in ("families", "sectors", "regions")
    }
    try:
        change = editing.parse(fields, lists, _known(request))
        if form.get("count"):  # "count recipients": the editor again, nothing stored
            counts = _audience(request, Alert(tier=change.tier, targeting=change.targeting))
            return _editor(request, user, alert, fields | lists, counts=counts)
        with _database(request).session() as session:
            stored = session.get(Alert, alert_id)
            service.edit(session, stored, change, user, utcnow())
    except editing.EditErrors as error:
        return _editor(request, user, alert, fields | lists, error.errors, 400)
    except lifecycle.TransitionRefused as error:
        return message(request, user, 409, N_("Nothing was changed"), str(error))
    return RedirectResponse(f"/staff/alerts/{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/{action}", response_class=HTMLResponse)
async def life_cycle(request: Request, alert_id: RowId, action: str) -> Response:
    user = staff_user(request)
    form = await _form(request)
    if action not in lifecycle.ACTIONS or action == lifecycle.EDIT:
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    now = utcnow()
    try:
        with _database(request).session() as session:
            alert = session.get(Alert, alert_id)
            if alert is None:
                return message(request, user, 404, N_("Not found"), N_("There is no such page."))
            if action == lifecycle.SEND:
                service.check_send(session, alert, user, now)
            else:
                service.act(
                    session,
                    alert,
                    action,
                    user,
                    now,
                    reason=str(form.get("reason") or ""),
                    when=_when(str(form.get("when") or "")),
                )
        if action == lifecycle.SEND:
            send_alert(_database(request), _catalogue(request), alert_id, now=now)
    except (lifecycle.TransitionRefused, service.CurationError, SendRefused) as error:
        alert = _alert(request, alert_id)
        return _detail(request, user, alert, 409, str(error))
    return RedirectResponse(f"/staff/alerts/{alert_id}", status_code=303)


def _when(value: str) -> datetime | None:
    """A datetime-local field, read as Brussels time."""
    try:
        moment = datetime.fromisoformat(value[:40])
    except ValueError:
        return None
    return moment.replace(tzinfo=BRUSSELS) if moment.tzinfo is None else moment


@router.get("/alerts/{alert_id}/preview/{language}.{kind}", response_class=HTMLResponse)
def preview(request: Request, alert_id: RowId, language: str, kind: str) -> Response:
    """The email as a subscriber in `language` gets it (HTML page or plain text)."""
    user = staff_user(request)
    alert = _alert(request, alert_id)
    if alert is None or language not in LANGUAGES or kind not in ("html", "txt"):
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    content = alert_content(alert, request.app.state.settings.public_base_url)
    try:
        email = compose_email(content, language, PLACEHOLDERS, alert_firms(alert))
    except MissingText:
        return message(
            request, user, 409, N_("No preview yet"), N_("Write the English text first.")
        )
    if kind == "txt":
        return PlainTextResponse(f"Subject: {email.subject}\n\n{email.text}")
    return HTMLResponse(email.html, headers={"cache-control": "no-store"})
