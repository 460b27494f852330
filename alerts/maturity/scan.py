"""The maturity scan (questions.yaml): schema, loading with the question at fault, and
scoring — pure functions, no database or network.

Scoring, all from the data file:
- a single-choice question gives its answer's points (0-3); "I don't know" and unanswered
  questions give 0 (unanswered ones are reported, never guessed);
- a domain's share is its points over the most it could get; the level is the highest one
  whose `min` the share reaches; the overall share is the mean of the domain shares
  weighted by domain weight, mapped through the same thresholds;
- next steps: each domain is worth weight × (share missing); the three most valuable domains
  (ties: heavier domain, then file order) each give the advice of their answered question
  with the most points missing (ties: file order). Exact fractions keep ties exact;
- technology questions score nothing: `families()` gives the product families selected,
  for the subscriber's product profile when the subscriber agrees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from alerts.referrals.matching import Need
from alerts.referrals.models import SPECIALITIES
from alerts.relevance.catalogue import Catalogue
from alerts.yamlfile import DataFileError, line_of, parse_model_with_nodes

QUESTIONS_FILE = Path(__file__).with_name("questions.yaml")
LANGUAGES = ("nl", "fr", "en", "de")
UNKNOWN = "unknown"  # the id of the "I don't know" answer added to every single question
SHOWN_STEPS = 3
Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,50}$")]
Words = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Text(BaseModel):
    """One text in every language we serve."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    nl: Words
    fr: Words
    en: Words
    de: Words

    def get(self, language: str) -> str:
        return getattr(self, _language(language))


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: int = Field(ge=0, le=100)
    name: Text


class Domain(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    weight: int = Field(ge=1, le=5)
    specialities: tuple[str, ...] = Field(min_length=1)
    title: Text


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    points: int = Field(ge=0, le=3)
    text: Text
    advice: Text | None = None  # instead of the question's advice
    unknown: bool = False  # the "I don't know" answer


class Option(BaseModel):
    """A product family; `label` is a product name (not translated), else `text`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    family: Id
    label: Words | None = None
    text: Text | None = None

    def shown(self, language: str) -> str:
        return self.text.get(language) if self.text else self.label


class QuestionFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    domain: str
    kind: Literal["single", "technology"]
    text: Text
    scale: str | None = None
    answers: tuple[Answer, ...] = ()
    options: tuple[Option, ...] = ()
    advice: Text | None = None


class ScanFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Words
    levels: tuple[Level, ...] = Field(min_length=2)
    weak_below: int = Field(ge=1)
    kmo_note: Text
    technology_hint: Text
    unknown: Text
    scales: dict[Id, tuple[Answer, ...]] = {}
    domains: tuple[Domain, ...] = Field(min_length=1)
    questions: tuple[QuestionFile, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Question:
    """A question as asked: single-choice answers resolved (scale + "I don't know")."""

    id: str
    domain: str
    kind: str
    text: Text
    answers: tuple[Answer, ...]
    options: tuple[Option, ...]
    advice: Text | None

    @property
    def best(self) -> int:
        return max((a.points for a in self.answers), default=0)

    def answer(self, answer_id: str) -> Answer | None:
        return next((a for a in self.answers if a.id == answer_id), None)


@dataclass(frozen=True)
class Scan:
    version: str
    levels: tuple[Level, ...]
    weak_below: int
    kmo_note: Text
    technology_hint: Text
    domains: tuple[Domain, ...]
    questions: tuple[Question, ...]

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def domain(self, domain_id: str) -> Domain:
        return next(d for d in self.domains if d.id == domain_id)

    def level_of(self, share: Fraction) -> int:
        """The highest level whose threshold a share (0..1) reaches."""
        return max(i for i, level in enumerate(self.levels) if share * 100 >= level.min)

    def level_name(self, level: int, language: str) -> str:
        return self.levels[level].name.get(language)


# ----------------------------------------------------------------------------- loading


def load_scan(path: Path = QUESTIONS_FILE, catalogue: Catalogue | None = None) -> Scan:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataFileError(f"{path}: cannot read ({error.strerror})") from None
    return parse_scan(text, str(path), catalogue)


def parse_scan(
    text: str, filename: str = "questions.yaml", catalogue: Catalogue | None = None
) -> Scan:
    """Read and validate; DataFileError names the line and the question at fault.
    Family ids are checked against the catalogue when one is given."""
    raw, root = parse_model_with_nodes(text, ScanFile, filename, named=_named)
    problems = _cross_check(raw, catalogue)
    if problems:
        lines = [f"{filename}: line {line_of(root, where)}: {msg}" for where, msg in problems]
        raise DataFileError("\n".join(lines))
    return _resolve(raw)


def _named(data: dict, location: tuple) -> str:
    """ "question 'backup-offline': " when the location is inside a question or domain."""
    if len(location) < 2 or location[0] not in ("questions", "domains"):
        return ""
    items = data.get(location[0])
    index = location[1]
    if isinstance(items, list) and isinstance(index, int) and index < len(items):
        item = items[index]
        if isinstance(item, dict) and "id" in item:
            return f"{location[0][:-1]} {item['id']!r}: "
    return ""


def _cross_check(raw: ScanFile, catalogue: Catalogue | None) -> list[tuple[tuple, str]]:
    """(location in the file, problem) for what the schema alone cannot see."""
    problems = _check_levels(raw) + _check_domains(raw)
    problems += _repeated([q.id for q in raw.questions], "questions", "question")
    for name, answers in raw.scales.items():
        problems += _repeated([a.id for a in answers], ("scales", name), "answer")
    domains = {d.id for d in raw.domains}
    for index, question in enumerate(raw.questions):
        where = ("questions", index)
        if question.domain not in domains:
            problems.append((where + ("domain",), f"{_q(question)}unknown domain"))
        if question.kind == "single":
            problems += _check_single(raw, question, where)
        else:
            problems += _check_technology(question, where, catalogue)
    scored = {q.domain for q in raw.questions if q.kind == "single"}
    for index, domain in enumerate(raw.domains):
        if domain.id not in scored:
            problems.append((("domains", index), f"domain {domain.id!r} has no scored question"))
    return problems


def _check_levels(raw: ScanFile) -> list[tuple[tuple, str]]:
    problems = []
    if raw.levels[0].min != 0:
        problems.append((("levels", 0, "min"), "the first level must start at 0"))
    for index in range(1, len(raw.levels)):
        if raw.levels[index].min <= raw.levels[index - 1].min:
            problems.append((("levels", index, "min"), "level thresholds must increase"))
    if raw.weak_below >= len(raw.levels):
        problems.append((("weak_below",), f"weak_below must be below {len(raw.levels)}"))
    return problems


def _check_domains(raw: ScanFile) -> list[tuple[tuple, str]]:
    problems = _repeated([d.id for d in raw.domains], "domains", "domain")
    for index, domain in enumerate(raw.domains):
        for position, speciality in enumerate(domain.specialities):
            if speciality not in SPECIALITIES:
                where = ("domains", index, "specialities", position)
                problems.append((where, f"domain {domain.id!r}: unknown speciality {speciality!r}"))
    return problems


def _check_single(raw: ScanFile, question: QuestionFile, where: tuple) -> list:
    if question.options:
        return [(where + ("options",), f"{_q(question)}a single question has no options")]
    if (question.scale is None) == (not question.answers):
        return [(where, f"{_q(question)}give either a scale or answers")]
    if question.scale is not None and question.scale not in raw.scales:
        return [(where + ("scale",), f"{_q(question)}unknown scale {question.scale!r}")]
    problems = []
    if question.advice is None:
        problems.append((where, f"{_q(question)}advice is missing"))
    answers = question.answers or raw.scales[question.scale]
    problems += _repeated([a.id for a in answers] + [UNKNOWN], where + ("answers",), "answer")
    if max(a.points for a in answers) == 0:
        problems.append((where + ("answers",), f"{_q(question)}no answer scores any points"))
    return problems


def _check_technology(question: QuestionFile, where: tuple, catalogue) -> list:
    if question.answers or question.scale or question.advice:
        return [(where, f"{_q(question)}a technology question has options only")]
    if not question.options:
        return [(where, f"{_q(question)}options are missing")]
    problems = _repeated([o.family for o in question.options], where + ("options",), "family")
    for position, option in enumerate(question.options):
        at = where + ("options", position)
        if (option.label is None) == (option.text is None):
            problems.append((at, f"{_q(question)}give an option either a label or a text"))
        if catalogue is not None and catalogue.get(option.family) is None:
            problems.append((at + ("family",), f"{_q(question)}unknown family {option.family!r}"))
    return problems


def _repeated(ids: list[str], where: tuple | str, what: str) -> list[tuple[tuple, str]]:
    where = (where,) if isinstance(where, str) else where
    return [
        (where + (index,), f"{what} id {value!r} is repeated")
        for index, value in enumerate(ids)
        if ids.index(value) != index
    ]


def _q(question: QuestionFile) -> str:
    return f"question {question.id!r}: "


def _resolve(raw: ScanFile) -> Scan:
    unknown = Answer(id=UNKNOWN, points=0, text=raw.unknown, unknown=True)
    questions = tuple(
        Question(
            id=q.id,
            domain=q.domain,
            kind=q.kind,
            text=q.text,
            answers=(q.answers or raw.scales.get(q.scale, ())) + (unknown,)
            if q.kind == "single"
            else (),
            options=q.options,
            advice=q.advice,
        )
        for q in raw.questions
    )
    return Scan(
        raw.version,
        raw.levels,
        raw.weak_below,
        raw.kmo_note,
        raw.technology_hint,
        raw.domains,
        questions,
    )


# ----------------------------------------------------------------------------- answers


class AnswerError(ValueError):
    """The answers do not fit the scan; `problems` lists every one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


Answers = Mapping[str, "str | Sequence[str]"]


def check_answers(scan: Scan, answers: Answers) -> dict[str, str | tuple[str, ...]]:
    """Answers by question id: an answer id (single) or the chosen family ids (technology,
    possibly none). Questions left out are unanswered; anything else wrong is an error."""
    problems: list[str] = []
    checked: dict[str, str | tuple[str, ...]] = {}
    for question_id, given in answers.items():
        question = scan.question(question_id)
        if question is None:
            problems.append(f"unknown question {question_id!r}")
        elif (problem := _answer_problem(question, given)) is not None:
            problems.append(f"question {question_id!r}: {problem}")
        else:
            checked[question_id] = given if question.kind == "single" else tuple(given)
    if problems:
        raise AnswerError(problems)
    return checked


def _answer_problem(question: Question, given) -> str | None:
    if given is None or given == "":
        return "no answer given (leave the question out to skip it)"
    if question.kind == "single":
        if not isinstance(given, str):
            return "expected one answer id"
        if question.answer(given) is None:
            return f"{given!r} is not one of {', '.join(a.id for a in question.answers)}"
        return None
    if isinstance(given, str) or not isinstance(given, Sequence):
        return "expected a list of product family ids"
    allowed = {option.family for option in question.options}
    wrong = [family for family in given if family not in allowed]
    if wrong:
        return f"{', '.join(map(repr, wrong))} not among the options"
    if len(set(given)) != len(given):
        return "a family is chosen twice"
    return None


def families(scan: Scan, answers: Answers) -> tuple[str, ...]:
    """Product family ids chosen in technology questions, in question and option order."""
    checked = check_answers(scan, answers)
    chosen: list[str] = []
    for question in scan.questions:
        if question.kind == "technology" and question.id in checked:
            picked = set(checked[question.id])
            chosen += [o.family for o in question.options if o.family in picked]
    return tuple(dict.fromkeys(chosen))


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class DomainResult:
    domain: str
    points: int
    max_points: int
    level: int
    unknown: tuple[str, ...]  # questions answered "I don't know"
    unanswered: tuple[str, ...]
    answered: int = 0  # scored questions answered ("I don't know" included)

    @property
    def assessed(self) -> bool:
        """False when every question of the domain was skipped: its level is a floor, not
        a finding, so it is never called weak."""
        return self.answered > 0

    @property
    def share(self) -> Fraction:
        return Fraction(self.points, self.max_points)

    @property
    def percent(self) -> float:
        return round(float(self.share * 100), 1)


@dataclass(frozen=True)
class Step:
    """One next step: the advice for the answer that misses most in a valuable domain."""

    domain: str
    question: str
    answer: str
    value: Fraction  # domain weight × share of the domain's points missing
    advice: str  # in the language asked for


@dataclass(frozen=True)
class Result:
    version: str
    language: str
    domains: tuple[DomainResult, ...]
    level: int
    percent: float
    steps: tuple[Step, ...]
    weak_domains: tuple[str, ...]  # most valuable first
    unknown: tuple[str, ...]
    unanswered: tuple[str, ...]

    def domain(self, domain_id: str) -> DomainResult:
        return next(d for d in self.domains if d.domain == domain_id)

    @property
    def levels(self) -> dict[str, int]:
        return {d.domain: d.level for d in self.domains}

    @property
    def assessed_levels(self) -> dict[str, int]:
        """Levels of the domains answered at least in part (what is stored and counted)."""
        return {d.domain: d.level for d in self.domains if d.assessed}


def score(scan: Scan, answers: Answers, language: str = "en") -> Result:
    language = _language(language)
    checked = check_answers(scan, answers)
    domains = tuple(_domain_result(scan, domain, checked) for domain in scan.domains)
    weights = {d.id: d.weight for d in scan.domains}
    overall = sum(weights[d.domain] * d.share for d in domains) / sum(weights.values())
    ranked = sorted(domains, key=lambda d: _rank(scan, weights, d))
    steps = [_step(scan, d, checked, weights, language) for d in ranked]
    steps = [step for step in steps if step is not None][:SHOWN_STEPS]
    return Result(
        version=scan.version,
        language=language,
        domains=domains,
        level=scan.level_of(overall),
        percent=round(float(overall * 100), 1),
        steps=tuple(steps),
        weak_domains=tuple(d.domain for d in ranked if d.level < scan.weak_below and d.assessed),
        unknown=tuple(q for d in domains for q in d.unknown),
        unanswered=tuple(q.id for q in scan.questions if q.id not in checked),
    )


def _domain_result(scan: Scan, domain: Domain, checked: dict) -> DomainResult:
    scored = [q for q in scan.questions if q.domain == domain.id and q.kind == "single"]
    points = sum(q.answer(checked[q.id]).points for q in scored if q.id in checked)
    best = sum(q.best for q in scored)
    share = Fraction(points, best)
    return DomainResult(
        domain=domain.id,
        points=points,
        max_points=best,
        level=scan.level_of(share),
        unknown=tuple(q.id for q in scored if checked.get(q.id) == UNKNOWN),
        unanswered=tuple(q.id for q in scored if q.id not in checked),
        answered=sum(1 for q in scored if q.id in checked),
    )


def _rank(scan: Scan, weights: dict[str, int], result: DomainResult) -> tuple:
    """Most valuable first: weight × missing share, then heavier, then file order."""
    value = weights[result.domain] * (1 - result.share)
    order = [d.id for d in scan.domains].index(result.domain)
    return (-value, -weights[result.domain], order)


def _step(scan, result: DomainResult, checked, weights, language) -> Step | None:
    """The answered question of the domain missing most points (first in the file on a tie)."""
    missing, question, answer = 0, None, None
    for candidate in scan.questions:
        if candidate.domain != result.domain or candidate.id not in checked:
            continue
        if candidate.kind != "single":
            continue
        chosen = candidate.answer(checked[candidate.id])
        if candidate.best - chosen.points > missing:
            missing, question, answer = candidate.best - chosen.points, candidate, chosen
    if question is None:
        return None
    advice = answer.advice or question.advice
    value = weights[result.domain] * (1 - result.share)
    return Step(result.domain, question.id, answer.id, value, advice.get(language))


# ----------------------------------------------------------------------------- referrals


def need(scan: Scan, result: Result) -> Need | None:
    """The specialities the weak domains call for, for referral matching; None when no
    domain is weak."""
    if not result.weak_domains:
        return None
    wanted = [s for d in result.weak_domains for s in scan.domain(d).specialities]
    reasons = tuple(f"the maturity scan found {d} weak" for d in result.weak_domains)
    return Need(frozenset(wanted), reasons)


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return language
