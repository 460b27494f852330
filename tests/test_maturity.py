"""The maturity scan: the question set as data, scoring, next steps, answer checks, broken
files, and anonymous statistics that never show a group below the minimum size."""

import random
from collections import Counter
from fractions import Fraction

import pytest

from alerts.maturity.scan import (
    LANGUAGES,
    UNKNOWN,
    AnswerError,
    check_answers,
    families,
    load_scan,
    need,
    parse_scan,
    score,
)
from alerts.maturity.stats import DIMENSIONS, aggregate
from alerts.referrals.models import SPECIALITIES
from alerts.relevance.catalogue import load_catalogue
from alerts.yamlfile import DataFileError

CATALOGUE = load_catalogue()
SCAN = load_scan(catalogue=CATALOGUE)
SINGLE = [q for q in SCAN.questions if q.kind == "single"]
TECHNOLOGY = [q for q in SCAN.questions if q.kind == "technology"]


def best_answers() -> dict[str, str]:
    return {q.id: max(q.answers, key=lambda a: a.points).id for q in SINGLE}


def worst_answers() -> dict[str, str]:
    return {
        q.id: min((a for a in q.answers if not a.unknown), key=lambda a: a.points).id
        for q in SINGLE
    }


# ----------------------------------------------------------------------------- the data


def test_the_question_set_loads_with_every_domain():
    assert SCAN.version
    assert [d.id for d in SCAN.domains] == [
        "inventory", "patching", "backups", "mfa", "email", "remote-access", "exposure",
        "admin-rights", "awareness", "incident-plan", "suppliers",
    ]  # fmt: skip
    assert 24 <= len(SCAN.questions) <= 28
    assert {q.domain for q in SINGLE} == {d.id for d in SCAN.domains}
    assert len(TECHNOLOGY) >= 4


def test_every_text_is_in_all_four_languages_and_translated():
    texts = [SCAN.kmo_note, SCAN.technology_hint]
    texts += [level.name for level in SCAN.levels] + [d.title for d in SCAN.domains]
    for question in SCAN.questions:
        texts.append(question.text)
        texts += [a.text for a in question.answers] + [
            a.advice for a in question.answers if a.advice
        ]
        texts += [o.text for o in question.options if o.text]
        if question.kind == "single":
            assert question.advice is not None, question.id
            texts.append(question.advice)
    for text in texts:
        assert all(text.get(language).strip() for language in LANGUAGES)
    for question in SCAN.questions:  # sentences are translated, not copied
        for language in ("nl", "fr", "de"):
            assert question.text.get(language) != question.text.en, (question.id, language)
            if question.advice:
                assert question.advice.get(language) != question.advice.en, question.id


def test_every_single_question_offers_i_dont_know_scoring_zero():
    for question in SINGLE:
        unknown = question.answer(UNKNOWN)
        assert unknown is not None and unknown.unknown and unknown.points == 0
        assert all(0 <= a.points <= 3 for a in question.answers)
        assert question.best > 0


def test_every_family_exists_in_the_real_catalogue_and_is_offered():
    for question in TECHNOLOGY:
        for option in question.options:
            family = CATALOGUE.get(option.family)
            assert family is not None, option.family
            assert family.exposure != "none", option.family


def test_domain_specialities_are_referral_specialities():
    for domain in SCAN.domains:
        assert set(domain.specialities) <= set(SPECIALITIES)


def test_the_kmo_note_names_both_schemes_in_every_language():
    for language in LANGUAGES:
        note = SCAN.kmo_note.get(language)
        assert "KMO-portefeuille" in note and "chèques-entreprises" in note


# ----------------------------------------------------------------------------- scoring


def test_all_best_answers_give_the_top_level_everywhere():
    result = score(SCAN, best_answers())
    top = len(SCAN.levels) - 1
    assert all(level == top for level in result.levels.values())
    assert result.level == top and result.percent == 100.0
    assert result.steps == () and result.weak_domains == () and result.unknown == ()
    assert set(result.unanswered) == {q.id for q in TECHNOLOGY}


def test_all_worst_answers_give_level_zero_and_three_steps():
    result = score(SCAN, worst_answers(), "nl")
    assert all(level == 0 for level in result.levels.values())
    assert result.level == 0 and result.percent == 0.0
    assert [s.domain for s in result.steps] == ["backups", "mfa", "patching"]
    assert result.steps[0].advice == SCAN.question("backup-automatic").advice.nl
    assert len(result.weak_domains) == len(SCAN.domains)


def test_i_dont_know_scores_zero_and_is_flagged():
    answers = best_answers() | {"backup-offline": UNKNOWN}
    result = score(SCAN, answers)
    backups = result.domain("backups")
    assert backups.points == 6 and backups.unknown == ("backup-offline",)
    assert result.unknown == ("backup-offline",)
    assert result.steps[0].question == "backup-offline" and result.steps[0].answer == UNKNOWN


MIXED = {
    "inventory-devices": "current", "inventory-software": "yes",
    "patch-computers": "most", "patch-devices": "sometimes", "patch-outdated": "no",
    "backup-automatic": "daily", "backup-offline": "connected", "backup-restore": "files",
    "mfa-email": "all", "mfa-accounts": "some", "mfa-passwords": UNKNOWN,
    "email-filter": "yes", "email-domain": "partly",
    "remote-how": "password-only", "remote-leavers": "yes",
    "exposure-open": "checked", "exposure-website": "no-website",
    "admin-daily": "some",
    "awareness-training": "everyone", "awareness-payments": "always",
    "incident-contacts": "written", "incident-continuity": "written",
    "tech-edge": ["fortinet-fortigate"], "tech-web": [],
}  # fmt: skip


def test_a_mixed_set_gives_the_expected_levels_and_steps():
    result = score(SCAN, MIXED, "fr")
    assert result.levels == {
        "inventory": 4, "patching": 2, "backups": 2, "mfa": 1, "email": 2,
        "remote-access": 2, "exposure": 4, "admin-rights": 1, "awareness": 4,
        "incident-plan": 3, "suppliers": 0,
    }  # fmt: skip
    assert result.level == 2 and result.percent == 66.8
    # mfa 5 × 5/9; admin-rights 3 × 2/3 beats suppliers 2 × 1 on weight, and suppliers
    # (unanswered) gives no step; then backups 5 × 1/3.
    assert [(s.domain, s.question, s.answer) for s in result.steps] == [
        ("mfa", "mfa-passwords", UNKNOWN),
        ("admin-rights", "admin-daily", "some"),
        ("backups", "backup-offline", "connected"),
    ]
    assert [s.value for s in result.steps] == [Fraction(25, 9), Fraction(2), Fraction(5, 3)]
    assert result.steps[2].advice == SCAN.question("backup-offline").advice.fr
    # suppliers scores 0 but was skipped entirely: not assessed, so never called weak
    assert result.weak_domains == ("mfa", "admin-rights")
    assert not result.domain("suppliers").assessed and result.domain("mfa").assessed
    assert result.unanswered == ("tech-email", "tech-storage", "tech-remote", "suppliers-access")
    wanted = need(SCAN, result)
    assert wanted.specialities == {"managed-security", "security-audit"}
    assert need(SCAN, score(SCAN, best_answers())) is None


def test_an_answer_may_carry_its_own_advice():
    result = score(SCAN, best_answers() | {"remote-how": "password-only"}, "de")
    [step] = result.steps
    assert step.advice == SCAN.question("remote-how").answer("password-only").advice.de
    assert step.advice != SCAN.question("remote-how").advice.de


def test_ties_are_broken_by_weight_then_file_order_whatever_the_answer_order():
    # patching 4 × 3/9 and remote-access 4 × 2/6: same value, same weight -> file order;
    # in backups two answers miss 2 points each -> the first question in the file.
    answers = best_answers() | {
        "patch-computers": "none",
        "remote-how": "password-only",
        "backup-automatic": "manual",
        "backup-offline": "connected",
    }
    expected = [("backups", "backup-automatic"), ("patching", "patch-computers"),
                ("remote-access", "remote-how")]  # fmt: skip
    for seed in range(5):
        items = list(answers.items())
        random.Random(seed).shuffle(items)
        result = score(SCAN, dict(items))
        assert [(s.domain, s.question) for s in result.steps] == expected


def test_families_come_from_technology_answers_in_option_order():
    answers = {
        "tech-edge": ["draytek", "fortinet-fortigate"],
        "tech-email": ["microsoft-outlook"],
        "tech-storage": [],
        "tech-remote": ("remote-tools",),
        "backup-automatic": "daily",
    }
    assert families(SCAN, answers) == (
        "fortinet-fortigate", "draytek", "microsoft-outlook", "remote-tools",
    )  # fmt: skip
    assert families(SCAN, {}) == ()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"no-such-question": "yes"}, "unknown question 'no-such-question'"),
        ({"backup-offline": "maybe"}, "'maybe' is not one of yes, connected, no-backup, unknown"),
        ({"backup-offline": None}, "question 'backup-offline': no answer given"),
        ({"backup-offline": ""}, "no answer given"),
        ({"backup-offline": ["yes"]}, "expected one answer id"),
        ({"tech-edge": "draytek"}, "expected a list of product family ids"),
        ({"tech-edge": ["wordpress"]}, "'wordpress' not among the options"),
        ({"tech-edge": ["draytek", "draytek"]}, "a family is chosen twice"),
    ],
)
def test_bad_answers_are_refused_with_a_clear_message(answers, message):
    with pytest.raises(AnswerError, match=message.replace("(", r"\(")):
        score(SCAN, answers)


def test_every_problem_is_reported_at_once_and_skipping_is_allowed():
    with pytest.raises(AnswerError) as caught:
        check_answers(SCAN, {"nope": "x", "mfa-email": "perhaps", "admin-daily": "some"})
    assert len(caught.value.problems) == 2
    assert check_answers(SCAN, {"admin-daily": "some"}) == {"admin-daily": "some"}
    with pytest.raises(ValueError, match="language 'es'"):
        score(SCAN, {}, "es")


# ----------------------------------------------------------------------------- broken files

T = "{nl: a, fr: b, en: c, de: d}"
VALID = f"""
version: "1"
levels:
  - {{min: 0, name: {T}}}
  - {{min: 50, name: {T}}}
weak_below: 1
kmo_note: {T}
technology_hint: {T}
unknown: {T}
scales:
  yn:
    - {{id: "yes", points: 3, text: {T}}}
    - {{id: "no", points: 0, text: {T}}}
domains:
  - {{id: backups, weight: 3, specialities: [backup-recovery], title: {T}}}
questions:
  - id: q1
    domain: backups
    kind: single
    scale: yn
    text: {T}
    advice: {T}
  - id: t1
    domain: backups
    kind: technology
    text: {T}
    options:
      - {{family: synology, label: Synology}}
"""


def test_the_small_valid_file_loads():
    scan = parse_scan(VALID, "small.yaml", CATALOGUE)
    assert [q.id for q in scan.questions] == ["q1", "t1"]
    assert score(scan, {"q1": "yes"}).level == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("text: {nl: a, fr: b, en: c, de: d}\n    advice",
         "text: {nl: a, fr: b, en: c}\n    advice",
         "line 21: question 'q1': questions.0.text.de: Field required"),
        ('points: 3', 'points: 4', "scales.yn.0.points: Input should be less than or equal to 3"),
        ("domain: backups\n    kind: single", "domain: backup\n    kind: single",
         "line 18: question 'q1': unknown domain"),
        ("family: synology", "family: no-such-nas", "question 't1': unknown family 'no-such-nas'"),
        ("scale: yn", "scale: abc", "question 'q1': unknown scale 'abc'"),
        ("    advice: {nl: a, fr: b, en: c, de: d}\n", "", "question 'q1': advice is missing"),
        ("id: t1", "id: q1", "question id 'q1' is repeated"),
        ("min: 50", "min: 0", "level thresholds must increase"),
        ("[backup-recovery]", "[plumbing]", "domain 'backups': unknown speciality 'plumbing'"),
        ("kind: single", "kind: multiple", "questions.0.kind: Input should be 'single' or"),
        ("label: Synology", "label: Synology, text: " + T, "either a label or a text"),
        ("weak_below: 1", "weak_below: 2", "weak_below must be below 2"),
        ("version: \"1\"", "version: [", "while parsing"),
    ],
)  # fmt: skip
def test_broken_files_give_clear_errors(old, new, message):
    assert old in VALID
    with pytest.raises(DataFileError) as caught:
        parse_scan(VALID.replace(old, new, 1), "small.yaml", CATALOGUE)
    assert message in str(caught.value)
    assert str(caught.value).startswith("small.yaml")


def test_family_ids_are_checked_only_when_a_catalogue_is_given():
    text = VALID.replace("family: synology", "family: no-such-nas")
    assert parse_scan(text, "small.yaml").questions[1].options[0].family == "no-such-nas"


# ----------------------------------------------------------------------------- statistics


def _pool(rng: random.Random, size: int = 40):
    return [score(SCAN, {q.id: rng.choice(q.answers).id for q in SINGLE}) for _ in range(size)]


def test_small_groups_and_their_complements_are_suppressed():
    results = _pool(random.Random(1), 45)
    sectors = ["retail"] * 30 + ["ict"] * 12 + ["finance"] * 3
    rows = [(s, "2-9", "BE-VAN", r) for s, r in zip(sectors, results, strict=True)]
    stats = aggregate(rows)
    by_sector = {g.group: g.count for g in stats.groups if g.dimension == "sector"}
    # finance (3) is too small; ict would then reveal it by subtraction, so it goes too.
    assert by_sector == {"retail": 30}
    assert stats.total.count == 45
    assert aggregate(rows[:9]).total is None and aggregate(rows[:9]).groups == ()


def test_statistics_never_expose_a_group_below_the_minimum_size():
    rng = random.Random(20261101)
    pool = _pool(rng)
    sectors = ["retail", "ict", "finance", "construction", None]
    sizes = ["1", "2-9", "10-49", "50-249"]
    regions = ["BE-VAN", "BE-WLG", "BE-BRU", "BE-VOV", "other", None]
    for _trial in range(300):
        k = rng.randint(2, 15)
        rows = [
            (rng.choice(sectors[: rng.randint(1, 5)]), rng.choice(sizes),
             rng.choice(regions), rng.choice(pool))
            for _ in range(rng.randint(0, 80))
        ]  # fmt: skip
        stats = aggregate(rows, min_group=k)
        if len(rows) < k:
            assert stats.total is None and stats.groups == ()
            continue
        assert stats.total.count == len(rows)
        for position, dimension in enumerate(DIMENSIONS):
            truth = Counter(row[position] or "unknown" for row in rows)
            shown = [g for g in stats.groups if g.dimension == dimension]
            for group in shown:
                assert group.count >= k and group.count == truth[group.group]
            hidden = len(rows) - sum(g.count for g in shown)
            assert hidden == 0 or hidden >= k


def test_statistics_give_mean_levels_per_domain():
    results = _pool(random.Random(7), 12)
    stats = aggregate([("ict", "1", "BE-BRU", r) for r in results])
    [ict] = [g for g in stats.groups if g.dimension == "sector"]
    expected = round(sum(r.domain("backups").level for r in results) / 12, 1)
    assert dict(ict.domains)["backups"] == expected
    assert ict.level == round(sum(r.level for r in results) / 12, 1)


# --- the product profile from technology answers -------------------------------------------


def test_profile_change_adds_ticked_and_removes_unticked_families_of_answered_questions():
    from alerts.maturity.profile import profile_change

    scan = load_scan()
    edge = next(q for q in scan.questions if q.id == "tech-edge")
    web = next(q for q in scan.questions if q.id == "tech-web")
    first, second = edge.options[0].family, edge.options[1].family
    current = [second, "not-asked-by-the-scan", web.options[0].family]
    change = profile_change(scan, {"tech-edge": [first], "tech-web": []}, current)
    assert change.added == (first,)
    assert change.removed == (second,)  # asked and unticked
    # not asked by the scan, or asked by a question left empty ("don't know"): kept
    assert change.families == ("not-asked-by-the-scan", web.options[0].family, first)
    assert change.changes


def test_profile_change_without_technology_answers_changes_nothing():
    from alerts.maturity.profile import profile_change

    scan = load_scan()
    change = profile_change(scan, {"backup-offline": "yes"}, ["wordpress"])
    assert change.families == ("wordpress",) and not change.changes
