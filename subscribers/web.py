"""Public subscriber pages: sign-up, confirmation, preference centre, unsubscribe.

No accounts: every page after sign-up is reached by a signed link from a message. Forms
carry CSRF tokens; the RFC 8058 one-click POST needs nothing but its link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from alerts.delivery.channels import SendError
from alerts.templating import LANGUAGES, N_, gettext, reader_language, render
from alerts.web import csrf
from subscribers import options
from subscribers.consent import NOTICE_VERSION, Origin, notice_text
from subscribers.service import (
    CodeRejected,
    LinkUsed,
    RateLimited,
    SubscriptionError,
    Subscriptions,
)
from subscribers.tokens import TokenError, TokenExpired
from subscribers.validation import Profile, ProfileErrors, format_enterprise_number

router = APIRouter()
MAX_FORM_FIELDS = 300
MAX_BODY_BYTES = 64 * 1024


def subscriptions(request: Request) -> Subscriptions:
    return request.app.state.subscriptions


def origin_of(request: Request, method: str) -> Origin:
    host = request.client.host if request.client else None
    return Origin(method, host, request.headers.get("user-agent"))


def page(request: Request, template: str, language: str, status: int = 200, **context) -> Response:
    service = subscriptions(request)
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


async def read_form(request: Request) -> FormData:
    """The posted form, bounded; a cross-site or stale form is refused."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise SubscriptionError(N_("This form is too large."))
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    csrf.verify(request, form.get("csrf_token"), subscriptions(request).signer)
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
    language = reader_language(request)
    data = {"language": language, "urgent_email": True, "newsletter": "weekly"}
    return page(request, "signup.html", language, **_form_context(request, data))


@router.post("/subscribe", response_class=HTMLResponse)
async def signup(request: Request) -> Response:
    language = reader_language(request)
    try:
        form = await read_form(request)
        if form.get("notice_version") != NOTICE_VERSION:
            raise SubscriptionError("the privacy notice changed since the form was shown")
        data = _fields(form)
        language = data.get("language") if data.get("language") in LANGUAGES else language
        profile = subscriptions(request).parse(data)
        subscriptions(request).signup(profile, origin_of(request, "web-form"))
    except ProfileErrors as error:
        context = _form_context(request, data, error.errors)
        return page(request, "signup.html", language, 422, **context)
    except RateLimited as error:
        return link_problem(request, language, error)
    except (csrf.CsrfError, SubscriptionError):
        return _stale_form(request, language)
    except SendError as error:
        return link_problem(request, language, error)
    hours = subscriptions(request).settings.signup_confirm_hours
    return page(request, "check_inbox.html", language, 200, email=profile.email, hours=hours)


# --- confirmation links ------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
@router.get("/confirm-email/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> Response:
    """A button, not an automatic confirmation: mail scanners that open links do not
    subscribe anyone."""
    language = reader_language(request)
    notice = notice_text(language) if request.url.path.startswith("/confirm/") else None
    return page(request, "confirm.html", language, action=request.url.path, notice=notice)


@router.post("/confirm/{token}", response_class=HTMLResponse)
async def confirm(request: Request, token: str) -> Response:
    language = reader_language(request)

    def action(token: str, origin: Origin) -> int:
        return subscriptions(request).confirm(token, origin, notice_language=language)

    return await _confirm(request, token, action)


@router.post("/confirm-email/{token}", response_class=HTMLResponse)
async def confirm_email(request: Request, token: str) -> Response:
    return await _confirm(request, token, subscriptions(request).confirm_email_change)


async def _confirm(request: Request, token: str, action) -> Response:
    language = reader_language(request)
    try:
        await read_form(request)
        subscriber_id = action(token, origin_of(request, "email-link"))
    except Exception as error:  # each known failure has its own page
        return link_problem(request, language, error)
    return _to_preferences(request, subscriber_id, "confirmed")


_EXPIRED = N_("This link has expired. Sign up again and we will send you a new one.")
_INVALID = N_("This link is not valid. Copy the whole link from the email, or sign up again.")
_STALE = N_("This form had expired. Please fill it in again.")
_NOT_SENT = N_(
    "Your choices are saved, but we could not send the email just now. "
    "Please try again in a few minutes."
)
# Known failures, most specific first: (type, status, title, text; None = the error's own).
_PROBLEMS = (
    (TokenExpired, 410, N_("This link has expired"), _EXPIRED),
    (LinkUsed, 409, N_("This link was already used"), None),
    (TokenError, 404, N_("This link is not valid"), _INVALID),
    (csrf.CsrfError, 400, N_("Please try again"), _STALE),
    (SendError, 503, N_("We could not send the email"), _NOT_SENT),
    (RateLimited, 429, N_("Please try again later"), None),
    (CodeRejected, 422, N_("Please check the code"), None),
    (SubscriptionError, 409, N_("We could not do that"), None),
)


def link_problem(request: Request, language: str, error: Exception) -> Response:
    for kind, status, title, text in _PROBLEMS:
        if isinstance(error, kind):
            return problem(request, language, status, title, text or str(error))
    raise error


def _stale_form(request: Request, language: str) -> Response:
    return link_problem(request, language, csrf.CsrfError("stale"))


def _to_preferences(request: Request, subscriber_id: int, notice: str) -> Response:
    token = subscriptions(request).preferences_token(subscriber_id)
    return RedirectResponse(f"/preferences/{token}?done={notice}", status_code=303)


# --- preference centre -------------------------------------------------------------------


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(request: Request, token: str) -> Response:
    try:
        subscriber = subscriptions(request).state(subscriptions(request).subscriber_for(token))
    except TokenError as error:
        return link_problem(request, reader_language(request), error)
    return _preferences(request, token, subscriber)


def _preferences(request, token, subscriber, errors=None, data=None, status=200) -> Response:
    language = reader_language(request, subscriber.language)
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
        email_suppressed=subscriptions(request).has_suppressed_email(subscriber.id),
        **context,
    )


def _profile_data(subscriber) -> dict[str, Any]:
    data = {name: getattr(subscriber, name) for name in _PROFILE_VIEW}
    if subscriber.enterprise_number:
        data["enterprise_number"] = format_enterprise_number(subscriber.enterprise_number)
    return data


_PROFILE_VIEW = tuple(Profile.model_fields)  # what the form shows, as the form names it


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(request: Request, token: str) -> Response:
    service = subscriptions(request)
    try:
        subscriber_id = service.subscriber_for(token)
        data = _fields(await read_form(request))
        profile = service.parse(data, require_consent=False)
        service.update(subscriber_id, profile, origin_of(request, "preference-centre"))
    except ProfileErrors as error:
        subscriber = service.state(subscriber_id)
        return _preferences(request, token, subscriber, error.errors, data, 422)
    except Exception as error:
        return link_problem(request, reader_language(request), error)
    return _to_preferences(request, subscriber_id, "saved")


@router.post("/preferences/{token}/{action}", response_class=HTMLResponse)
async def preference_action(request: Request, token: str, action: str) -> Response:
    handler = _ACTIONS.get(action)
    if handler is None:
        return problem(request, reader_language(request), 404, N_("Page not found"), "")
    service = subscriptions(request)
    try:
        subscriber_id = service.subscriber_for(token)
        form = await read_form(request)
        handler(service, subscriber_id, form, origin_of(request, "preference-centre"))
    except Exception as error:
        return link_problem(request, reader_language(request), error)
    return _to_preferences(request, subscriber_id, action)


_ACTIONS = {
    "sms-code": lambda s, i, f, o: s.confirm_sms(i, str(f.get("code") or "")[:12], o),
    "sms-resend": lambda s, i, f, o: s.send_sms_code(i),
    "pause": lambda s, i, f, o: s.pause(i, o),
    "resume": lambda s, i, f, o: s.resume(i, o),
    "leave": lambda s, i, f, o: s.leave(i, str(f.get("channel") or "all"), o),
    "data-link": lambda s, i, f, o: s.send_data_link(i),
}


# --- the subscriber's own data (a fresh link from their inbox) ---------------------------


@router.get("/my-data/{token}", response_class=HTMLResponse)
def data_page(request: Request, token: str) -> Response:
    service = subscriptions(request)
    try:
        subscriber = service.state(service.subscriber_for_data(token))
    except TokenError as error:
        return link_problem(request, reader_language(request), error)
    language = reader_language(request, subscriber.language)
    return page(request, "data.html", language, token=token)


@router.get("/my-data/{token}/export")
def export_data(request: Request, token: str) -> Response:
    service = subscriptions(request)
    try:
        data = service.export(service.subscriber_for_data(token))
    except TokenError as error:
        return link_problem(request, reader_language(request), error)
    headers = {
        "Content-Disposition": 'attachment; filename="my-sme-alerts-data.json"',
        "Cache-Control": "no-store",
    }
    return JSONResponse(data, headers=headers)


@router.post("/my-data/{token}/erase", response_class=HTMLResponse)
async def erase_data(request: Request, token: str) -> Response:
    service = subscriptions(request)
    language = reader_language(request)
    try:
        subscriber_id = service.subscriber_for_data(token)
        form = await read_form(request)
        if not form.get("confirm_erase"):
            raise CodeRejected(N_("Tick the box to confirm that everything should be erased."))
        service.erase(subscriber_id, origin_of(request, "data-link"))
    except Exception as error:
        return link_problem(request, language, error)
    text = N_(
        "We no longer hold any personal data about you. You will not receive any more messages."
    )
    return problem(request, language, 200, N_("Your data has been erased"), text)


# --- unsubscribe -------------------------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> Response:
    return page(request, "unsubscribe.html", reader_language(request), action=request.url.path)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> Response:
    """RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" with no cookie and no
    CSRF token; the signed link is the authority. Browsers post the same form."""
    language = reader_language(request)
    try:
        subscriber_id, channel = subscriptions(request).unsubscribe(
            token, origin_of(request, "one-click")
        )
    except Exception as error:
        return link_problem(request, language, error)
    return _unsubscribed(request, language, subscriber_id, channel)


def _unsubscribed(request: Request, language: str, subscriber_id: int | None, channel: str):
    """Done; with a way back in, unless nothing is left of the subscription."""
    token = subscriptions(request).preferences_token(subscriber_id) if subscriber_id else None
    return page(request, "unsubscribed.html", language, channel=channel, token=token)


@router.get("/s/{code}", response_class=HTMLResponse)
def sms_optout_page(request: Request, code: str) -> Response:
    return page(
        request, "unsubscribe.html", reader_language(request), action=request.url.path, sms=True
    )


@router.post("/s/{code}", response_class=HTMLResponse)
async def sms_optout(request: Request, code: str) -> Response:
    language = reader_language(request)
    try:
        subscriber_id = subscriptions(request).sms_optout(code, origin_of(request, "sms-link"))
    except Exception as error:
        return link_problem(request, language, error)
    return _unsubscribed(request, language, subscriber_id, "sms")
