"""The maturity scan's public pages: the questions, the result with next steps and firms,
the PDF report, and — through a subscriber's preference link — saving, the product
profile, progress over retakes and the consents.

Nothing is stored unless asked: a visitor's result lives in the page (its answers ride in
hidden fields so the PDF can be made from them), and is stored only as an anonymous
statistic when the visitor ticks that box."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from alerts.maturity.models import MaturityResult
from alerts.maturity.scan import AnswerError, Result, Scan, check_answers, score
from alerts.maturity.service import Consents, Dimensions, Scans
from alerts.maturity.stats import OPTION_GROUPS
from alerts.referrals.labels import speciality_label
from alerts.referrals.models import Firm
from alerts.referrals.selection import entry
from alerts.templating import N_, gettext, reader_language
from alerts.web import csrf
from alerts.web.firms import FirmQuery, listing
from alerts.web.params import RowId
from subscribers import options
from subscribers.service import SubscriptionError
from subscribers.tokens import TokenError
from subscribers.web import link_problem as subscriber_problem
from subscribers.web import origin_of, page, problem, read_form, subscriptions

router = APIRouter()
YES = ("1", "on", "yes", "true")
_NO_ANSWER = N_("Answer at least one question so we can score your scan.")


def _scans(request: Request) -> Scans:
    return request.app.state.scans


# --- reading the form -----------------------------------------------------------------------


def answers_from(scan: Scan, form: FormData) -> dict[str, Any]:
    """The answers as posted: a radio per single question, checkboxes per technology one.
    Empty fields are unanswered; anything else goes through `check_answers`."""
    answers: dict[str, Any] = {}
    for question in scan.questions:
        field = f"q-{question.id}"
        if question.kind == "technology":
            answers[question.id] = [value for value in form.getlist(field) if value]
        elif form.get(field):
            answers[question.id] = form.get(field)
    return answers


def _dimensions(form: FormData) -> Dimensions:
    """What a visitor told about their business: only known codes, the rest left out."""

    def known(name: str) -> str | None:
        value = str(form.get(name) or "")
        return value if value in options.codes(OPTION_GROUPS[name]) else None

    return Dimensions(known("sector"), known("size_band"), known("region"))


def _scored(scan: Scan, answers: dict[str, Any], language: str) -> tuple[dict, Result]:
    """The checked answers and their result. Raises AnswerError (its problems in words for
    the reader) for answers that do not fit, or when nothing scored was given."""
    wrong = [q for q, given in answers.items() if not _fits(scan, q, given)]
    if wrong:
        problem = N_("“{question}”: choose one of the answers shown.")
        texts = [scan.question(q).text.get(language) for q in wrong]
        raise AnswerError([gettext(language, problem, question=text) for text in texts])
    checked = check_answers(scan, answers)
    if not any(scan.question(q).kind == "single" for q in checked):
        raise AnswerError([gettext(language, _NO_ANSWER)])
    return checked, score(scan, checked, language)


def _fits(scan: Scan, question_id: str, given: Any) -> bool:
    try:
        check_answers(scan, {question_id: given})
    except AnswerError:
        return False
    return True


# --- pages ----------------------------------------------------------------------------------


def _form_page(request, language, *, answers, status=200, errors=(), **context) -> Response:
    scan = _scans(request).scan
    context.setdefault("consents", Consents())
    return page(
        request,
        "scan_form.html",
        language,
        status,
        scan=scan,
        answers=answers,
        errors=list(errors),
        dimension_choices=_dimension_choices(language),
        **context,
    )


def _dimension_choices(language: str) -> dict[str, list[tuple[str, str]]]:
    return {
        name: [(choice.code, choice.label(language)) for choice in options.choices(group)]
        for name, group in OPTION_GROUPS.items()
    }


def _result_page(
    request, language, result: Result, firms: list[Firm], region: str | None, **context
) -> Response:
    scan = _scans(request).scan
    query = FirmQuery(region=region or "", language=language)
    return page(
        request,
        "scan_result.html",
        language,
        scan=scan,
        result=result,
        firms=[listing(firm, language) for firm in firms],
        directory_link=query.link(language),
        weak_specialities=_weak_specialities(scan, result, language),
        **context,
    )


def _weak_specialities(scan: Scan, result: Result, language: str) -> list[str]:
    codes = dict.fromkeys(s for d in result.weak_domains for s in scan.domain(d).specialities)
    return [speciality_label(code, language) for code in codes]


@router.get("/scan", response_class=HTMLResponse)
def scan_page(request: Request) -> Response:
    return _form_page(request, reader_language(request), answers={}, dimensions=Dimensions())


@router.post("/scan", response_class=HTMLResponse)
async def take_scan(request: Request) -> Response:
    language = reader_language(request)
    scan = _scans(request).scan
    try:
        form = await read_form(request)
    except (csrf.CsrfError, SubscriptionError) as error:
        return link_problem(request, error)
    answers, dimensions = answers_from(scan, form), _dimensions(form)
    try:
        _checked, result = _scored(scan, answers, language)
    except AnswerError as error:
        return _form_page(
            request,
            language,
            answers=answers,
            status=422,
            errors=error.problems,
            dimensions=dimensions,
            consents=_consents(form),
        )
    shared = form.get("share_stats") in YES
    if shared:
        address = request.client.host if request.client else ""
        client = subscriptions(request).client_key("scan-stat", address)
        shared = _scans(request).save_anonymous(result, dimensions, client) is not None
    seed = _scans(request).seed()
    firms = _scans(request).firms_for(result, dimensions.region, language, seed)
    return _result_page(
        request,
        language,
        result,
        firms,
        dimensions.region,
        answers=answers,
        dimensions=dimensions,
        seed=seed,
        shared=shared,
        not_counted=form.get("share_stats") in YES and not shared,
        report_action=f"/scan/report.pdf?lang={language}",
    )


@router.post("/scan/report.pdf")
async def visitor_report(request: Request) -> Response:
    """The PDF of a visitor's result, made again from the answers the page carries."""
    language = reader_language(request)
    scan = _scans(request).scan
    try:
        form = await read_form(request)
        _checked, result = _scored(scan, answers_from(scan, form), language)
    except AnswerError:
        return problem(request, language, 422, N_("We could not make the report"), _NO_ANSWER)
    except (csrf.CsrfError, SubscriptionError) as error:
        return link_problem(request, error)
    seed = _seed(form.get("seed"))
    firms = _scans(request).firms_for(result, _dimensions(form).region, language, seed)
    return _pdf(request, result, firms, _scans(request).clock().date(), None)


# --- a subscriber's scans --------------------------------------------------------------------


def _subscriber(request: Request, token: str):
    service = subscriptions(request)
    return service.state(service.subscriber_for(token))


@router.get("/preferences/{token}/scan", response_class=HTMLResponse)
def subscriber_scan_page(request: Request, token: str) -> Response:
    try:
        subscriber = _subscriber(request, token)
    except TokenError as error:
        return link_problem(request, error)
    language = reader_language(request, subscriber.language)
    previous = _scans(request).latest_answers(subscriber.id)
    scan = _scans(request).scan
    return _form_page(
        request,
        language,
        answers=previous or _from_profile(scan, subscriber.families or ()),
        token=token,
        subscriber=subscriber,
        retake=previous is not None,
        dimensions=Dimensions(),
    )


@router.post("/preferences/{token}/scan", response_class=HTMLResponse)
async def subscriber_take_scan(request: Request, token: str) -> Response:
    scans = _scans(request)
    try:
        subscriber = _subscriber(request, token)
        form = await read_form(request)
    except Exception as error:
        return link_problem(request, error)
    language = reader_language(request, subscriber.language)
    answers = answers_from(scans.scan, form)
    try:
        checked, result = _scored(scans.scan, answers, language)
    except AnswerError as error:
        return _form_page(
            request,
            language,
            answers=answers,
            status=422,
            errors=error.problems,
            token=token,
            subscriber=subscriber,
            dimensions=Dimensions(),
            consents=_consents(form),
        )
    consents = _consents(form)
    saved = scans.save_for(
        subscriber.id, result, checked, consents, origin_of(request, "maturity-scan")
    )
    if saved.result_id is not None and consents.keep:
        done = "profile" if saved.profile and saved.profile.changes else "saved"
        return RedirectResponse(
            f"/preferences/{token}/scan/results/{saved.result_id}?done={done}", status_code=303
        )
    firms = scans.firms_for(result, subscriber.region, language, subscriber.id)
    return _result_page(
        request,
        language,
        result,
        firms,
        subscriber.region,
        answers=answers,
        seed=subscriber.id,
        token=token,
        profile=saved.profile,
        shared=False,  # counted only with a kept result
        unsaved=True,
        report_action=f"/preferences/{token}/scan/report.pdf?lang={language}",
    )


@router.post("/preferences/{token}/scan/report.pdf")
async def subscriber_unsaved_report(request: Request, token: str) -> Response:
    scans = _scans(request)
    try:
        subscriber = _subscriber(request, token)
        form = await read_form(request)
    except Exception as error:
        return link_problem(request, error)
    language = reader_language(request, subscriber.language)
    try:
        _checked, result = _scored(scans.scan, answers_from(scans.scan, form), language)
    except AnswerError:
        return problem(request, language, 422, N_("We could not make the report"), _NO_ANSWER)
    firms = scans.firms_for(result, subscriber.region, language, subscriber.id)
    return _pdf(request, result, firms, scans.clock().date(), subscriber.organisation)


@router.get("/preferences/{token}/scan/results/{result_id}", response_class=HTMLResponse)
def subscriber_result(request: Request, token: str, result_id: RowId) -> Response:
    scans = _scans(request)
    try:
        subscriber = _subscriber(request, token)
        row = scans.result_of(subscriber.id, result_id)
    except (TokenError, LookupError) as error:
        return link_problem(request, error)
    language = reader_language(request, subscriber.language)
    history = scans.history(subscriber.id)
    result = _rescored(scans.scan, row, language)
    firms = scans.firms_for(result, subscriber.region, language, subscriber.id) if result else []
    return page(
        request,
        "scan_saved.html",
        language,
        scan=scans.scan,
        row=row,
        result=result,
        history=history,
        progress=_progress(scans.scan, history, row),
        firms=[listing(firm, language) for firm in firms],
        directory_link=FirmQuery(region=subscriber.region, language=language).link(language),
        weak_specialities=_weak_specialities(scans.scan, result, language) if result else [],
        token=token,
        subscriber=subscriber,
        done=request.query_params.get("done", "")[:20],
        profile_names=_family_names(request, subscriber.families or ()),
    )


def _family_names(request: Request, families) -> list[str]:
    catalogue = request.app.state.catalogue
    return [getattr(catalogue.get(family), "name", family) for family in families]


@router.get("/preferences/{token}/scan/results/{result_id}/report.pdf")
def subscriber_saved_report(request: Request, token: str, result_id: RowId) -> Response:
    scans = _scans(request)
    try:
        subscriber = _subscriber(request, token)
        row = scans.result_of(subscriber.id, result_id)
    except (TokenError, LookupError) as error:
        return link_problem(request, error)
    language = reader_language(request, subscriber.language)
    result = _rescored(scans.scan, row, language)
    if result is None:
        text = N_("This result was made with an earlier set of questions. Take the scan again.")
        return problem(request, language, 410, N_("We could not make the report"), text)
    firms = scans.firms_for(result, subscriber.region, language, subscriber.id)
    return _pdf(request, result, firms, row.taken_at.date(), subscriber.organisation)


@router.post("/preferences/{token}/scan/results/{result_id}/{action}", response_class=HTMLResponse)
async def subscriber_result_action(
    request: Request, token: str, result_id: RowId, action: str
) -> Response:
    scans = _scans(request)
    if action not in ("consents", "forget"):
        return problem(request, reader_language(request), 404, N_("Page not found"), "")
    try:
        subscriber = _subscriber(request, token)
        form = await read_form(request)
        if action == "forget":
            scans.forget(subscriber.id, result_id)
            return RedirectResponse(f"/preferences/{token}/scan/results?done=forgotten", 303)
        share, staff = form.get("share_stats") in YES, form.get("staff_may_view") in YES
        scans.set_consents(subscriber.id, result_id, share, staff)
    except Exception as error:
        return link_problem(request, error)
    return RedirectResponse(
        f"/preferences/{token}/scan/results/{result_id}?done=consents", status_code=303
    )


@router.get("/preferences/{token}/scan/results", response_class=HTMLResponse)
def subscriber_history(request: Request, token: str) -> Response:
    scans = _scans(request)
    try:
        subscriber = _subscriber(request, token)
    except TokenError as error:
        return link_problem(request, error)
    language = reader_language(request, subscriber.language)
    history = scans.history(subscriber.id)
    return page(
        request,
        "scan_history.html",
        language,
        scan=scans.scan,
        history=history,
        token=token,
        subscriber=subscriber,
        done=request.query_params.get("done", "")[:20],
    )


# --- helpers --------------------------------------------------------------------------------


def _consents(form: FormData) -> Consents:
    """As ticked; the service stores sharing and staff access only with a kept result."""
    return Consents(
        keep=form.get("keep") in YES,
        share_stats=form.get("share_stats") in YES,
        staff_may_view=form.get("staff_may_view") in YES,
        update_profile=form.get("update_profile") in YES,
    )


def _from_profile(scan: Scan, families) -> dict[str, list[str]]:
    """A first scan starts with the product profile ticked in the technology questions."""
    return {
        q.id: [o.family for o in q.options if o.family in families]
        for q in scan.questions
        if q.kind == "technology"
    }


def _rescored(scan: Scan, row: MaturityResult, language: str) -> Result | None:
    """The full result (steps, weak domains) for a row of the current question set."""
    if row.version != scan.version or not row.answers:
        return None
    try:
        return score(scan, row.answers, language)
    except AnswerError:
        return None


def _progress(scan: Scan, history: list[MaturityResult], row: MaturityResult) -> list[dict]:
    """Per domain: this result's level against the one before it (same question set)."""
    earlier = [
        r
        for r in history
        if r.version == row.version and (r.taken_at, r.id) < (row.taken_at, row.id)
    ]
    before = earlier[-1] if earlier else None
    rows = []
    for domain in scan.domains if row.version == scan.version else ():
        now = row.levels.get(domain.id)
        then = before.levels.get(domain.id) if before else None
        change = None if then is None or now is None else now - then
        rows.append({"domain": domain, "level": now, "before": then, "change": change})
    return rows


def _seed(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _pdf(request, result: Result, firms: list[Firm], taken_on: date, organisation) -> Response:
    from alerts.maturity import report  # fpdf2 and Pillow: 0.2 s, only when a PDF is asked

    base_url = request.app.state.settings.public_base_url.rstrip("/")
    body = report.pdf(
        _scans(request).scan,
        result,
        [entry(firm) for firm in firms],
        taken_on=taken_on,
        organisation=organisation,
        directory_url=f"{base_url}/firms?lang={result.language}",
    )
    name = f"cyber-maturity-scan-{taken_on.isoformat()}.pdf"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(body, media_type="application/pdf", headers=headers)


def link_problem(request: Request, error: Exception) -> Response:
    language = reader_language(request)
    if isinstance(error, LookupError):
        return problem(request, language, 404, N_("Page not found"), "")
    return subscriber_problem(request, language, error)
