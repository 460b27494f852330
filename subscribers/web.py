"""Public subscriber pages: sign-up, confirmation, preference centre, unsubscribe.

No accounts: every page after sign-up is reached by a signed link from a message. Forms
carry CSRF tokens; the RFC 8058 one-click POST needs nothing but its link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from alerts.delivery.channels import SendError
from alerts.templating import LANGUAGES, N_, gettext, negotiate, render
from alerts.web import csrf
from subscribers import options
from subscribers.consent import NOTICE_VERSION, Origin, notice_text
from subscribers.privacy import erase, export
from subscribers.service import LinkUsed, RateLimited, SubscriptionError, Subscriptions
from subscribers.tokens import TokenError, TokenExpired
from subscribers.validation import ProfileErrors, format_enterprise_number

router = APIRouter()
MAX_FORM_FIELDS = 300
MAX_BODY_BYTES = 64 * 1024


def _service(request: Request) -> Subscriptions:
    return request.app.state.subscriptions


def _language(request: Request, preferred: str | None = None) -> str:
    asked = request.query_params.get("lang") or request.cookies.get("lang")
    if asked in LANGUAGES:
        return asked
    return preferred or negotiate(request.headers.get("accept-language"))


def _origin(request: Request, method: str) -> Origin:
    host = request.client.host if request.client else None
    return Origin(method, host, request.headers.get("user-agent"))


def page(request: Request, template: str, language: str, status: int = 200, **context) -> Response:
    service = _service(request)
    body = render(
        f"web/subscribe/{template}",
        language,
        request=request,
        csrf_token=csrf.form_token(request, service.signer),
        options=options,
        tr=lambda message, **params: gettext(language, message, **params),
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    secure = service.settings.public_base_url.startswith("https://")
    csrf.set_cookie(request, response, secure)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", language, max_age=365 * 86400, samesite="lax", secure=secure)
    return response


def problem(request: Request, language: str, status: int, title: str, text: str) -> Response:
    return page(request, "message.html", language, status, title=title, text=text)


async def _form(request: Request) -> FormData:
    """The posted form, bounded; a cross-site or stale form is refused."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise SubscriptionError(N_("This form is too large."))
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    csrf.verify(request, form.get("csrf_token"), _service(request).signer)
    return form


def _fields(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {key: form.get(key) for key in form if key != "families"}
    data["families"] = form.getlist("families")
    for flag in ("urgent_email", "urgent_sms", "consent"):
        data.setdefault(flag, False)
    data["knows_products"] = not form.get("dont_know")
    return data


def _form_context(request: Request, data: dict[str, Any], errors: dict | None = None) -> dict:
    catalogue = request.app.state.catalogue
    return {
        "data": data,
        "errors": errors or {},
        "family_groups": options.family_groups(catalogue),
        "notice": notice_text(_notice_language(data.get("language"))),
        "notice_version": NOTICE_VERSION,
    }


def _notice_language(language: Any) -> str:
    return language if language in LANGUAGES else "en"


# --- sign-up -----------------------------------------------------------------------------


@router.get("/subscribe", response_class=HTMLResponse)
def signup_page(request: Request) -> Response:
    language = _language(request)
    data = {"language": language, "urgent_email": True, "newsletter": "weekly"}
    return page(request, "signup.html", language, **_form_context(request, data))


@router.post("/subscribe", response_class=HTMLResponse)
async def signup(request: Request) -> Response:
    language = _language(request)
    try:
        data = _fields(await _form(request))
        language = data.get("language") if data.get("language") in LANGUAGES else language
        profile = _service(request).parse(data)
        _service(request).signup(profile, _origin(request, "web-form"))
    except ProfileErrors as error:
        context = _form_context(request, data, error.errors)
        return page(request, "signup.html", language, 422, **context)
    except RateLimited as error:
        return problem(request, language, 429, N_("Please wait a moment"), str(error))
    except (csrf.CsrfError, SubscriptionError):
        return _stale_form(request, language)
    except SendError:
        return _send_failed(request, language)
    hours = _service(request).settings.signup_confirm_hours
    return page(request, "check_inbox.html", language, 200, email=profile.email, hours=hours)


def _stale_form(request: Request, language: str) -> Response:
    text = N_("This form had expired. Please fill it in again.")
    return problem(request, language, 400, N_("Please try again"), text)


def _send_failed(request: Request, language: str) -> Response:
    text = N_(
        "Your choices are saved, but we could not send the email just now. "
        "Please try again in a few minutes."
    )
    return problem(request, language, 503, N_("We could not send the email"), text)


# --- confirmation links ------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
@router.get("/confirm-email/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> Response:
    """A button, not an automatic confirmation: mail scanners that open links do not
    subscribe anyone."""
    return page(request, "confirm.html", _language(request), action=request.url.path)


@router.post("/confirm/{token}", response_class=HTMLResponse)
async def confirm(request: Request, token: str) -> Response:
    return await _confirm(request, token, _service(request).confirm)


@router.post("/confirm-email/{token}", response_class=HTMLResponse)
async def confirm_email(request: Request, token: str) -> Response:
    return await _confirm(request, token, _service(request).confirm_email_change)


async def _confirm(request: Request, token: str, action) -> Response:
    language = _language(request)
    try:
        await _form(request)
        subscriber_id = action(token, _origin(request, "email-link"))
    except Exception as error:  # each known failure has its own page
        return _link_problem(request, language, error)
    return _to_preferences(request, subscriber_id, "confirmed")


def _link_problem(request: Request, language: str, error: Exception) -> Response:
    if isinstance(error, TokenExpired):
        text = N_("This link has expired. Sign up again and we will send you a new one.")
        return problem(request, language, 410, N_("This link has expired"), text)
    if isinstance(error, LinkUsed):
        return problem(request, language, 409, N_("This link was already used"), str(error))
    if isinstance(error, TokenError):
        text = N_("This link is not valid. Copy the whole link from the email, or sign up again.")
        return problem(request, language, 404, N_("This link is not valid"), text)
    if isinstance(error, csrf.CsrfError):
        return _stale_form(request, language)
    if isinstance(error, SendError):
        return _send_failed(request, language)
    if isinstance(error, SubscriptionError):
        return problem(request, language, 409, N_("We could not do that"), str(error))
    raise error


def _to_preferences(request: Request, subscriber_id: int, notice: str) -> Response:
    token = _service(request).links.preferences_token(subscriber_id)
    return RedirectResponse(f"/preferences/{token}?done={notice}", status_code=303)


# --- preference centre -------------------------------------------------------------------


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(request: Request, token: str) -> Response:
    try:
        subscriber = _service(request).state(_service(request).subscriber_for(token))
    except TokenError as error:
        return _link_problem(request, _language(request), error)
    return _preferences(request, token, subscriber)


def _preferences(request, token, subscriber, errors=None, data=None, status=200) -> Response:
    language = _language(request, subscriber.language)
    data = data or _profile_data(subscriber)
    context = _form_context(request, data, errors)
    return page(
        request,
        "preferences.html",
        language,
        status,
        token=token,
        subscriber=subscriber,
        done=request.query_params.get("done", "")[:20],
        email_suppressed=_service(request).has_suppressed_email(subscriber.id),
        **context,
    )


def _profile_data(subscriber) -> dict[str, Any]:
    data = {name: getattr(subscriber, name) for name in _PROFILE_VIEW}
    if subscriber.enterprise_number:
        data["enterprise_number"] = format_enterprise_number(subscriber.enterprise_number)
    return data


_PROFILE_VIEW = (
    "organisation",
    "enterprise_number",
    "email",
    "phone",
    "language",
    "region",
    "sector",
    "size_band",
    "families",
    "knows_products",
    "urgent_email",
    "urgent_sms",
    "newsletter",
)


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(request: Request, token: str) -> Response:
    service = _service(request)
    try:
        subscriber_id = service.subscriber_for(token)
        data = _fields(await _form(request))
        profile = service.parse(data, require_consent=False)
        service.update(subscriber_id, profile, _origin(request, "preference-centre"))
    except ProfileErrors as error:
        subscriber = service.state(subscriber_id)
        return _preferences(request, token, subscriber, error.errors, data, 422)
    except Exception as error:
        return _link_problem(request, _language(request), error)
    return _to_preferences(request, subscriber_id, "saved")


@router.post("/preferences/{token}/{action}", response_class=HTMLResponse)
async def preference_action(request: Request, token: str, action: str) -> Response:
    service = _service(request)
    try:
        subscriber_id = service.subscriber_for(token)
        form = await _form(request)
        origin = _origin(request, "preference-centre")
        result = _ACTIONS[action](service, subscriber_id, form, origin)
    except KeyError:
        return problem(request, _language(request), 404, N_("Page not found"), "")
    except Exception as error:
        return _link_problem(request, _language(request), error)
    if action == "erase":
        return problem(request, _language(request), 200, N_("Your data has been erased"), result)
    return _to_preferences(request, subscriber_id, action)


def _erase(service: Subscriptions, subscriber_id: int, form: FormData, origin: Origin) -> str:
    if not form.get("confirm_erase"):
        raise SubscriptionError(N_("Tick the box to confirm that everything should be erased."))
    with service.database.session() as session:
        erase(session, subscriber_id, origin, service.clock())
    return N_(
        "We no longer hold any personal data about you. You will not receive any more messages."
    )


_ACTIONS = {
    "sms-code": lambda s, i, f, o: s.confirm_sms(i, str(f.get("code") or "")[:12], o),
    "sms-resend": lambda s, i, f, o: s.send_sms_code(i),
    "pause": lambda s, i, f, o: s.pause(i, o),
    "resume": lambda s, i, f, o: s.resume(i, o),
    "leave": lambda s, i, f, o: s.leave(i, str(f.get("channel") or "all"), o),
    "erase": _erase,
}


@router.get("/preferences/{token}/export")
def export_data(request: Request, token: str) -> Response:
    service = _service(request)
    try:
        subscriber_id = service.subscriber_for(token)
        with service.database.session() as session:
            data = export(session, subscriber_id)
    except (TokenError, LookupError) as error:
        return _link_problem(request, _language(request), TokenError(str(error)))
    headers = {"Content-Disposition": 'attachment; filename="my-sme-alerts-data.json"'}
    return JSONResponse(data, headers=headers | {"Cache-Control": "no-store"})


# --- unsubscribe -------------------------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> Response:
    return page(request, "unsubscribe.html", _language(request), action=request.url.path)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> Response:
    """RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" with no cookie and no
    CSRF token; the signed link is the authority. Browsers post the same form."""
    language = _language(request)
    try:
        subscriber_id, channel = _service(request).unsubscribe(token, _origin(request, "one-click"))
    except Exception as error:
        return _link_problem(request, language, error)
    token_for_prefs = _service(request).links.preferences_token(subscriber_id)
    return page(request, "unsubscribed.html", language, channel=channel, token=token_for_prefs)


@router.get("/s/{code}", response_class=HTMLResponse)
def sms_optout_page(request: Request, code: str) -> Response:
    return page(request, "unsubscribe.html", _language(request), action=request.url.path, sms=True)


@router.post("/s/{code}", response_class=HTMLResponse)
async def sms_optout(request: Request, code: str) -> Response:
    language = _language(request)
    try:
        subscriber_id = _service(request).sms_optout(code, _origin(request, "sms-link"))
    except Exception as error:
        return _link_problem(request, language, error)
    token = _service(request).links.preferences_token(subscriber_id)
    return page(request, "unsubscribed.html", language, channel="sms", token=token)
