"""The maturity-scan PDF report: every part of the result in each language, hostile firm
details that never break it, the Helvetica fallback without fonts, the empty directory
sentence, metadata and deterministic bytes. The text is read back with pypdf."""

from datetime import date
from io import BytesIO

import pytest
from pypdf import PdfReader

from alerts.compose import Firm
from alerts.maturity import report
from alerts.maturity.scan import LANGUAGES, UNKNOWN, load_scan, score
from alerts.referrals.labels import speciality_label
from tests.test_maturity import SINGLE, best_answers, worst_answers

SCAN = load_scan()
TAKEN_ON = date(2026, 11, 3)
TITLES = {
    "nl": "Quickscan cyberveiligheid",
    "fr": "Diagnostic rapide de cybersécurité",
    "en": "Cyber maturity quick-scan",
    "de": "Schnellcheck Cybersicherheit",
}
DATES = {"nl": "3 november 2026", "fr": "3 novembre 2026", "en": "3 November 2026"}
DATES["de"] = "3. November 2026"
YES_NO = {"nl": ("ja", "nee"), "fr": ("oui", "non"), "en": ("yes", "no"), "de": ("ja", "nein")}
NO_FIRM = {
    "nl": "Er is nog geen gescreend bedrijf",
    "fr": "Aucun prestataire vérifié ne correspond",
    "en": "No vetted firm matches",
    "de": "Noch passt kein geprüfter Anbieter",
}
FIRMS = (
    Firm(
        name="Veilig & Zeker BV",
        website="https://veilig.example",
        phone="+32 9 123 45 67",
        email="hallo@veilig.example",
        kmo_portefeuille=True,
        specialities=("backup-recovery", "incident-response"),
    ),
    Firm(name="Sécurité Wallonne SRL", website="https://securite.example"),
)
HOSTILE = {
    "rtl": "شركة الأمن السيبراني \u202egnp.exe\u202c עברית",
    "emoji": "Cyber 🔥🛡️👩‍💻 Team \U0001f1e7\U0001f1ea",
    "long": "A" * 5000,
    "long words": " ".join(["Sicherheitsdienstleistungsunternehmen" * 8] * 40),
    "markup": "<script>alert(1)</script> & ) ( \\ %%EOF endobj",
    "control": "Bad\x01\x07\x1b[31m\x7f\u0085\u2028\u2029\u00ad\u200b\ufeffName",
    "surrogate": "Half \ud800 a pair",
    "private": "\ue000\U000f0000 unassigned \U000e0001 \u0378",
    "combining": "Z\u0351\u0358\u035c\u0361a\u0334\u0336lgo" + "\u0301" * 200,
    "blank": "   \t\n  ",
}


def mixed_answers() -> dict[str, str]:
    """Best, worst and "I don't know" in turn; two scored questions left out (and every
    technology question, which scores nothing)."""
    best, worst = best_answers(), worst_answers()
    answers = {}
    for index, question in enumerate(SINGLE):
        answers[question.id] = (best, worst, {question.id: UNKNOWN})[index % 3][question.id]
    del answers[SINGLE[1].id], answers[SINGLE[4].id]
    return answers


def render(language="en", answers=None, firms=FIRMS, **options) -> tuple[bytes, object]:
    result = score(SCAN, mixed_answers() if answers is None else answers, language)
    options.setdefault("taken_on", TAKEN_ON)
    return report.pdf(SCAN, result, firms, **options), result


def text_of(data: bytes) -> str:
    reader = PdfReader(BytesIO(data), strict=True)
    return "\n".join(page.extract_text() for page in reader.pages)


def squeezed(text: str) -> str:
    """Without any whitespace, so wrapped lines compare with the one-line source."""
    return "".join(text.split())


def percent(value: float, language: str) -> str:
    shown = f"{value:g}"
    return (shown if language == "en" else shown.replace(".", ",")) + "%"


def assert_contains(text: str, *expected: str) -> None:
    flat = squeezed(text)
    missing = [item for item in expected if squeezed(item) not in flat]
    assert not missing, missing


# ----------------------------------------------------------------------------- contents


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_report_holds_every_part_of_the_result(language):
    data, result = render(language, organisation="Bakkerij Peeters")
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert len(result.steps) == 3 and result.weak_domains  # the fixture shows every part
    text = text_of(data)
    overall = SCAN.level_name(result.level, language)
    assert_contains(
        text,
        TITLES[language],
        "Bakkerij Peeters",
        DATES[language],
        SCAN.version,
        f"{overall} — {percent(result.percent, language)}",
        SCAN.kmo_note.get(language),
        *(firm.name for firm in FIRMS),
        *(step.advice for step in result.steps),
    )
    for other in set(LANGUAGES) - {language}:
        assert squeezed(TITLES[other]) not in squeezed(text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_domain_has_a_row_with_its_level_and_percent(language):
    data, result = render(language)
    rows = [
        SCAN.domain(d.domain).title.get(language)
        + SCAN.level_name(d.level, language)
        + percent(d.percent, language)
        for d in result.domains
    ]
    assert len({d.percent for d in result.domains}) > 1  # the rows differ
    assert_contains(text_of(data), *rows)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_steps_are_numbered_with_their_domain_title(language):
    data, result = render(language)
    flat = squeezed(text_of(data))
    positions = []
    for number, step in enumerate(result.steps, start=1):
        title = SCAN.domain(step.domain).title.get(language)
        positions.append(flat.index(squeezed(f"{number}. {title}{step.advice}")))
    assert positions == sorted(positions)


@pytest.mark.parametrize("language", LANGUAGES)
def test_firms_show_their_details_with_specialities_labelled(language):
    data, result = render(language)
    yes, no = YES_NO[language]
    text = squeezed(text_of(data))
    veilig = text[text.index(squeezed(FIRMS[0].name)) : text.index(squeezed(FIRMS[1].name))]
    assert_contains(
        veilig,
        FIRMS[0].website,
        FIRMS[0].phone,
        FIRMS[0].email,
        f"KMO-portefeuille:{yes}",
        *(speciality_label(code, language) for code in FIRMS[0].specialities),
    )
    wallonne = text[text.index(squeezed(FIRMS[1].name)) :]
    assert f"KMO-portefeuille:{no}" in wallonne
    if language != "en":  # labels are translated, not the English msgids
        assert squeezed(speciality_label("backup-recovery", "en")) not in text


def test_weak_domains_are_listed_most_valuable_first():
    data, result = render("en", worst_answers())
    text = squeezed(text_of(data))
    start = text.index(squeezed("Areas that need attention"))
    titles = [squeezed(SCAN.domain(d).title.en) for d in result.weak_domains]
    assert len(titles) == len(SCAN.domains)
    positions = [text.index(f"-{title}", start) for title in titles]
    assert positions == sorted(positions)


def test_answers_i_dont_know_and_left_out_are_counted_for_scored_questions_only():
    data, result = render("en")
    unknown = sum(1 for index in range(len(SINGLE)) if index % 3 == 2 and index not in (1, 4))
    assert len(result.unknown) == unknown
    assert len(result.unanswered) > 2  # technology questions are left out too
    assert_contains(
        text_of(data),
        f"Answered “I don't know”: {unknown}",
        "Left unanswered: 2",
        "These questions count as zero points.",
    )


def test_all_best_answers_give_no_step_and_no_weak_domain():
    data, result = render("en", best_answers())
    assert result.steps == () and result.weak_domains == ()
    assert_contains(
        text_of(data),
        f"{SCAN.level_name(len(SCAN.levels) - 1, 'en')} — 100%",
        "there is no next step to suggest",
        f"Every area is at least at the level “{SCAN.level_name(SCAN.weak_below, 'en')}”",
        "Answered “I don't know”: 0",
        "Left unanswered: 0",
    )
    assert "zero points" not in text_of(data)


def test_nothing_answered_asks_for_answers_instead_of_praising():
    data, result = render("en", {})
    assert result.steps == () and result.weak_domains == ()  # nothing assessed, nothing weak
    text = text_of(data)
    assert_contains(
        text, "You answered none of the scored questions", f"Left unanswered: {len(SINGLE)}"
    )
    assert "no next step to suggest" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_empty_firm_list_points_to_the_public_directory(language):
    data, _ = render(language, firms=())
    assert_contains(text_of(data), NO_FIRM[language], "/firms")
    with_firms, _ = render(language)
    assert squeezed(NO_FIRM[language]) not in squeezed(text_of(with_firms))
    assert "/firms" not in text_of(with_firms)


def test_the_directory_address_can_be_absolute():
    data, _ = render("nl", firms=(), directory_url="https://alerts.example.be/firms")
    assert_contains(text_of(data), "https://alerts.example.be/firms")


def test_pages_are_numbered_and_many_firms_flow_over_pages():
    firms = [Firm(name=f"Firm number {n:02d}", website=f"https://f{n}.example") for n in range(60)]
    data, _ = render("en", firms=firms)
    reader = PdfReader(BytesIO(data))
    total = len(reader.pages)
    assert total >= 3
    for number, page in enumerate(reader.pages, start=1):
        assert f"Page {number} of {total}" in page.extract_text()
    assert_contains(text_of(data), *(firm.name for firm in firms))


# ----------------------------------------------------------------------------- hostile text


@pytest.mark.parametrize("fonts", ["dejavu", "none"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_firm_details_never_break_the_pdf(monkeypatch, kind, fonts):
    if fonts == "none":
        monkeypatch.setattr(report, "find_fonts", lambda: None)
    value = HOSTILE[kind]
    firm = Firm(value, value, value, value, True, (value, "backup-recovery"))
    data, _ = render("de", firms=(firm, FIRMS[0]), organisation=value)
    reader = PdfReader(BytesIO(data), strict=True)
    assert data.startswith(b"%PDF-") and len(reader.pages) <= 4
    assert_contains(text_of(data), FIRMS[0].name, "Datensicherung und Wiederherstellung")


def test_hostile_text_is_kept_readable_where_it_can_be():
    data, _ = render("en", firms=(Firm(HOSTILE["markup"], "https://x.example"),))
    assert_contains(text_of(data), "<script>alert(1)</script> & ) ( \\")
    data, _ = render("en", firms=(Firm(HOSTILE["long"], "https://x.example"),))
    text = squeezed(text_of(data))
    assert "A" * 100 in text and "A" * (report.LIMITS["name"] + 1) not in text


def test_plain_drops_control_and_format_characters_and_shortens():
    assert report.plain(HOSTILE["control"]) == "Bad[31m Name"  # U+0085 and U+2028 are line breaks
    assert report.plain("a\u2028b\tc\n\nd") == "a b c d"
    assert report.plain("Half \ud800 a pair") == "Half a pair"
    assert report.plain("word " * 100, 50).endswith("…")
    assert len(report.plain("word " * 100, 50)) <= 50
    assert report.plain(None) == ""


def test_characters_without_a_glyph_become_a_question_mark():
    data, _ = render("en", firms=(Firm("Cyber 🔥 Team", "https://x.example"),))
    assert_contains(text_of(data), "Cyber ? Team")
    assert b"+DejaVuSans" in data and b"/Helvetica" not in data


# ----------------------------------------------------------------------------- without fonts


@pytest.mark.parametrize("language", ["nl", "fr", "de"])
def test_without_dejavu_helvetica_draws_accented_text(monkeypatch, language):
    monkeypatch.setattr(report, "find_fonts", lambda: None)
    data, result = render(language, organisation="Łódź “Zoë” — Müller ✓")
    assert b"/Helvetica" in data and b"DejaVu" not in data
    assert_contains(
        text_of(data),
        TITLES[language],
        'Lódz "Zoë" - Müller ?',
        SCAN.level_name(result.level, language),
        SCAN.kmo_note.get(language),
        *(d.title.get(language) for d in SCAN.domains),
        *(step.advice for step in result.steps),
    )


def test_the_font_lookup_needs_both_faces(monkeypatch, tmp_path):
    regular = tmp_path / "DejaVuSans.ttf"
    monkeypatch.setattr(report, "FONT_FILES", ((str(regular), "DejaVuSans-Bold.ttf"),))
    assert report.find_fonts() is None
    regular.write_bytes(b"")
    assert report.find_fonts() is None
    (tmp_path / "DejaVuSans-Bold.ttf").write_bytes(b"")
    assert report.find_fonts() == (regular, tmp_path / "DejaVuSans-Bold.ttf")


def test_to_latin1_keeps_latin1_and_folds_the_rest():
    assert report.to_latin1("Élémentaire Größe ÿ") == "Élémentaire Größe ÿ"
    assert report.to_latin1("€ 5 … ‘ok’ – œuvre č ő") == "EUR 5 ... 'ok' - oeuvre c o"
    assert report.to_latin1("漢 🔥") == "? ?"


# ----------------------------------------------------------------------------- metadata


def test_metadata_names_title_language_and_date():
    data, _ = render("fr", organisation="Boulangerie Dupont")
    reader = PdfReader(BytesIO(data))
    assert reader.metadata.title == f"{TITLES['fr']} — Boulangerie Dupont"
    assert reader.trailer["/Root"]["/Lang"] == "fr"
    assert reader.metadata["/CreationDate"].startswith("D:20261103")
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.1)  # A4


def test_the_same_inputs_give_the_same_bytes():
    first, _ = render("nl", organisation="Bakkerij Peeters")
    again, _ = render("nl", organisation="Bakkerij Peeters")
    later, _ = render("nl", organisation="Bakkerij Peeters", taken_on=date(2026, 12, 1))
    assert first == again
    assert first != later


def test_a_skipped_domain_is_not_answered_and_not_called_weak():
    answers = {q: a for q, a in best_answers().items() if SCAN.question(q).domain != "suppliers"}
    data, result = render("en", answers)
    text = squeezed(text_of(data))
    title = SCAN.domain("suppliers").title.en
    assert squeezed(f"{title} Not answered") in text
    assert squeezed("Every area you answered about is at least at the level") in text
    assert squeezed("Every area is at least") not in text
    assert result.weak_domains == ()
