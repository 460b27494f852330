"""The public alert page every message links to: the alert as staff wrote it, in the
reader's language (English when that text is missing), with the referral block."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from alerts.compose.content import MissingText, pick_text
from alerts.compose.views import alert_view, firm_view
from alerts.curation.content import alert_content, alert_firms
from alerts.curation.models import SENDING, SENT, Alert
from alerts.templating import LANGUAGES, negotiate, render

router = APIRouter()
PUBLISHED = (SENDING, SENT)  # approved or scheduled alerts stay private until they go out


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: int) -> Response:
    language = request.query_params.get("lang")
    if language not in LANGUAGES:
        language = negotiate(request.headers.get("accept-language"))
    with request.app.state.database.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status not in PUBLISHED or not alert.texts:
            return HTMLResponse(render("web/alert_missing.html", language), status_code=404)
        content = alert_content(alert, request.app.state.settings.public_base_url)
        firms = [firm_view(firm) for firm in alert_firms(alert)]
    try:
        used, text, fallback = pick_text(content, language)
    except MissingText:  # neither their language nor English: show what there is
        used = next(iter(content.texts), language)
        text, fallback = content.texts[used], True
    view = alert_view(content, used, text, fallback)
    page = render("web/alert.html", used if not fallback else language, alert=view, firms=firms)
    return HTMLResponse(page)
