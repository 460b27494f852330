"""Staff pages of the maturity scan (issue 11): the anonymous statistics of one question-set
version, and the results SMEs agreed to let staff read.

The statistics page shows only what `stats.aggregate` released: the total and the visible
groups. A hidden group leaves no row, no count and no remainder on the page, and below the
minimum size in total there is nothing but a sentence. Reading one SME's answers is written
to the audit trail before the page is rendered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.compose.views import local_date, number_locale
from alerts.maturity import stats
from alerts.maturity.models import MaturityResult
from alerts.maturity.scan import Scan
from alerts.staff import audit
from alerts.staff.models import StaffUser
from alerts.staff.web import message, page, staff_user, utcnow
from alerts.templating import N_, gettext, reader_language
from alerts.web.params import RowId
from subscribers import options

router = APIRouter(prefix="/staff")
WEAKEST = 3  # domains highlighted as what awareness campaigns should target
SHOWN_VERSION = 40  # characters of an unknown version echoed on the page
T = TypeVar("T")


@dataclass(frozen=True)
class DomainMean:
    domain: str
    title: str
    mean: float | None  # None: too few results answered the domain to show a mean
    weakest: bool


@dataclass(frozen=True)
class GroupRow:
    group: str
    label: str
    count: int
    level: float
    domains: tuple[DomainMean, ...]


@dataclass(frozen=True)
class Overview:
    """What the statistics page shows of one version: nothing a Statistics does not hold."""

    count: int
    level: float
    domains: tuple[DomainMean, ...]  # in the question set's order, the weakest marked
    tables: tuple[tuple[str, tuple[GroupRow, ...]], ...]  # (dimension, visible groups)


@dataclass(frozen=True)
class SharedRow:
    id: int
    organisation: str
    taken_at: datetime
    level: int
    level_name: str  # "" for a result of another question set


@dataclass(frozen=True)
class DomainLine:
    title: str
    level: int
    level_name: str  # "" for a result of another question set
    percent: float | None


@dataclass(frozen=True)
class AnswerLine:
    question: str
    answered: bool
    texts: tuple[str, ...]  # the answer's text, or the product families ticked (maybe none)


# --- the statistics, as shown --------------------------------------------------------------


def overview(statistics: stats.Statistics, scan: Scan, language: str) -> Overview | None:
    """None when the statistics released nothing (fewer than k results)."""
    total = statistics.total
    if total is None:
        return None
    tables = tuple(
        (dimension, _group_rows(statistics, dimension, scan, language))
        for dimension in stats.DIMENSIONS
    )
    return Overview(total.count, total.level, _means(total.domains, scan, language), tables)


def in_scan_order(pairs: Iterable[tuple[str, T]], scan: Scan) -> list[tuple[str, T]]:
    """(domain, value) pairs in the question set's order, domains it lacks last. Stored
    levels do not keep their order: PostgreSQL's JSONB sorts an object's keys."""
    order = [domain.id for domain in scan.domains]
    return sorted(pairs, key=lambda pair: _position(order, pair[0]))


def weakest(
    means: Sequence[tuple[str, float | None]], scan: Scan, count: int = WEAKEST
) -> set[str]:
    """The lowest means (none when all are equal); ties go to the heavier domain, then to
    the first in the scan. Domains without a mean are left out."""
    means = [(domain, mean) for domain, mean in means if mean is not None]
    if len({mean for _, mean in means}) < 2:
        return set()
    weights = {domain.id: domain.weight for domain in scan.domains}
    ranked = sorted(
        enumerate(in_scan_order(means, scan)),
        key=lambda item: (item[1][1], -weights.get(item[1][0], 0), item[0]),
    )
    return {domain for _, (domain, _mean) in ranked[:count]}


def lowest(means: Sequence[tuple[str, float | None]]) -> set[str]:
    """A group's weakest domains: every one at its lowest mean, none when all are equal."""
    means = [(domain, mean) for domain, mean in means if mean is not None]
    values = {mean for _, mean in means}
    return {d for d, mean in means if mean == min(values)} if len(values) > 1 else set()


def _means(means, scan: Scan, language: str, top: bool = True) -> tuple[DomainMean, ...]:
    """Every domain of the question set (None where no mean), so that group tables line up
    with their header."""
    given = dict(means)
    means = [(domain.id, given.pop(domain.id, None)) for domain in scan.domains]
    means += list(given.items())
    low = weakest(means, scan) if top else lowest(means)
    return tuple(DomainMean(d, _title(scan, d, language), m, d in low) for d, m in means)


def _group_rows(statistics, dimension: str, scan: Scan, language: str) -> tuple[GroupRow, ...]:
    """The visible groups of one dimension, in the sign-up form's order, "not given" last."""
    order = [choice.code for choice in options.choices(stats.OPTION_GROUPS[dimension])]
    groups = [g for g in statistics.groups if g.dimension == dimension]
    groups.sort(key=lambda g: (g.group == stats.UNKNOWN_GROUP, _position(order, g.group), g.group))
    return tuple(
        GroupRow(
            g.group,
            _group_label(dimension, g.group, language),
            g.count,
            g.level,
            _means(g.domains, scan, language, top=False),
        )
        for g in groups
    )


def _position(order: list[str], code: str) -> int:
    return order.index(code) if code in order else len(order)


def _group_label(dimension: str, code: str, language: str) -> str:
    if code == stats.UNKNOWN_GROUP:
        return gettext(language, N_("Not given"))
    return options.label(stats.OPTION_GROUPS[dimension], code, language)


def _title(scan: Scan, domain_id: str, language: str) -> str:
    """A domain's title; its id when the current question set no longer has it."""
    domain = next((d for d in scan.domains if d.id == domain_id), None)
    return domain.title.get(language) if domain else domain_id


def _decimal(language: str):
    """One decimal, written the way the reader's language writes it (2,5 in nl/fr/de)."""
    locale = number_locale(language)
    return lambda value: format_decimal(value, "0.0", locale=locale)


# --- one shared result, as shown -----------------------------------------------------------


def _level_name(scan: Scan, row: MaturityResult, level: int, language: str) -> str:
    current = row.version == scan.version and 0 <= level < len(scan.levels)
    return scan.level_name(level, language) if current else ""


def shared_row(row: MaturityResult, organisation: str, scan: Scan, language: str) -> SharedRow:
    name = _level_name(scan, row, row.level, language)
    return SharedRow(row.id, organisation, row.taken_at, row.level, name)


def domain_lines(row: MaturityResult, scan: Scan, language: str) -> tuple[DomainLine, ...]:
    percents = row.percents or {}
    return tuple(
        DomainLine(
            _title(scan, domain, language),
            level,
            _level_name(scan, row, level, language),
            percents.get(domain),
        )
        for domain, level in in_scan_order((row.levels or {}).items(), scan)
    )


def answer_lines(
    row: MaturityResult, scan: Scan, language: str
) -> tuple[tuple[str, tuple[AnswerLine, ...]], ...]:
    """(domain title, its questions with the answers chosen), in the question set's order;
    empty for a result of another question set (its answers would be misread)."""
    if row.version != scan.version:
        return ()
    answers = row.answers or {}
    sections = []
    for domain in scan.domains:
        questions = [q for q in scan.questions if q.domain == domain.id]
        lines = tuple(_answer_line(q, answers.get(q.id), language) for q in questions)
        if lines:
            sections.append((domain.title.get(language), lines))
    return tuple(sections)


def _answer_line(question, given, language: str) -> AnswerLine:
    text = question.text.get(language)
    if given is None:
        return AnswerLine(text, False, ())
    if question.kind == "single":
        answer = question.answer(given) if isinstance(given, str) else None
        return AnswerLine(text, True, (answer.text.get(language) if answer else str(given),))
    chosen = set(given) if isinstance(given, list) else set()
    labels = tuple(o.shown(language) for o in question.options if o.family in chosen)
    unknown = tuple(sorted(f for f in chosen if f not in {o.family for o in question.options}))
    return AnswerLine(text, True, labels + unknown)


# --- the pages -----------------------------------------------------------------------------


def _chosen_version(request: Request, versions: list[tuple[str, int]]) -> str:
    asked = request.query_params.get("version", "")
    return asked or (versions[0][0] if versions else "")


@router.get("/maturity", response_class=HTMLResponse)
def statistics_page(request: Request) -> Response:
    user = staff_user(request)
    if user.must_change_password:
        return RedirectResponse("/staff/password", status_code=303)
    scans, language = request.app.state.scans, reader_language(request)
    versions = scans.versions()
    version = _chosen_version(request, versions)
    known = version in dict(versions)
    statistics = scans.statistics(version) if known else None
    shown = overview(statistics, scans.scan, language) if statistics else None
    shared = [shared_row(r, o, scans.scan, language) for r, o in scans.shared_with_staff()]
    return page(
        request,
        "maturity.html",
        user,
        section="maturity",
        # a version's count is its published total: shown only when it reaches k
        versions=[(v, count if count >= stats.MIN_GROUP else None) for v, count in versions],
        version=version[:SHOWN_VERSION],
        known=known,
        shown=shown,
        min_group=statistics.min_group if statistics else stats.MIN_GROUP,
        levels=[lv.name.get(language) for lv in scans.scan.levels],
        current=version == scans.scan.version,
        top=len(scans.scan.levels) - 1,
        shared=shared,
        released_until=local_date(scans.released_until().date(), language),
        decimal=_decimal(language),
    )


@router.get("/maturity/results/{result_id}", response_class=HTMLResponse)
def result_page(request: Request, result_id: RowId) -> Response:
    """One result its SME agreed to show staff; every view is audited."""
    user = staff_user(request)
    if user.must_change_password:
        return RedirectResponse("/staff/password", status_code=303)
    scans, language = request.app.state.scans, reader_language(request)
    try:
        row, organisation = scans.shared_result(result_id)
    except LookupError:
        return message(request, user, 404, N_("Not found"), N_("There is no such page."))
    with request.app.state.database.session() as session:
        actor = session.get(StaffUser, user.id)
        audit.record(session, utcnow(), actor, "view-maturity-result", f"maturity-result:{row.id}")
    return page(
        request,
        "maturity_result.html",
        user,
        section="maturity",
        result=shared_row(row, organisation, scans.scan, language),
        row=row,
        current=row.version == scans.scan.version,
        scan_version=scans.scan.version,
        domains=domain_lines(row, scans.scan, language),
        sections=answer_lines(row, scans.scan, language),
        decimal=_decimal(language),
    )
