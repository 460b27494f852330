"""The maturity-scan result as a printable A4 PDF, in the result's language — a pure
function, no database or network.

Every text that reaches the page is plain text: firm details come from firms, the rest from
the data file and the labels below. Control and format characters are dropped, long values
shortened, and characters the font cannot draw replaced, so no input can break the PDF.
DejaVu Sans is used when installed (full Unicode); otherwise the core Helvetica font, with
text folded to Latin-1. Given the same inputs the bytes are the same (the creation date is
the day the scan was taken)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_decimal
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from alerts.compose import Firm
from alerts.compose.content import shorten
from alerts.compose.views import number_locale
from alerts.maturity.scan import Result, Scan
from alerts.referrals.labels import speciality_label

DIRECTORY = "/firms"
FONT_FILES = (  # (regular, bold): the usual places of DejaVu Sans
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/local/share/fonts/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/Library/Fonts/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
)
LIMITS = {"name": 150, "line": 250, "paragraph": 2000}  # characters kept of untrusted text
LATIN1 = {  # close equivalents for the core font, before accents are stripped
    "‘": "'", "’": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"',
    "‹": "<", "›": ">", "–": "-", "—": "-", "‒": "-", "―": "-", "‐": "-", "‑": "-",
    "−": "-", "…": "...", "•": "-", "€": "EUR", "™": "TM", "œ": "oe", "Œ": "OE",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "\u2009": " ", "\u202f": " ",
}  # fmt: skip

LABELS = {
    "nl": {
        "sep": ": ",
        "title": "Quickscan cyberveiligheid",
        "organisation": "Organisatie",
        "taken_on": "Ingevuld op",
        "version": "Vragenlijst, versie",
        "overall": "Uw algemeen niveau",
        "domains": "Resultaat per onderdeel",
        "domain": "Onderdeel",
        "level": "Niveau",
        "score": "Score",
        "steps": "Uw volgende stappen",
        "no_answers": "U beantwoordde geen enkele vraag die punten telt, "
        "dus we hebben nog geen advies.",
        "no_steps": "Op elke vraag die u beantwoordde, gaf u het beste antwoord. "
        "We hebben dus geen volgende stap voor u.",
        "weak": "Onderdelen die aandacht vragen",
        "weak_intro": "Deze onderdelen halen het niveau „{level}” nog niet:",
        "weak_none": "Alle onderdelen halen minstens het niveau „{level}”.",
        "weak_none_answered": "Alle onderdelen die u beantwoordde, halen minstens het niveau "
        "„{level}”.",
        "not_answered": "Niet beantwoord",
        "firms": "Wie kan u helpen?",
        "firms_intro": "Gescreende bedrijven uit onze lijst die u hierbij kunnen helpen:",
        "no_firms": "Er is nog geen gescreend bedrijf dat hierbij past. Alle gescreende "
        "bedrijven vindt u in onze openbare lijst: {url}",
        "website": "Website",
        "phone": "Telefoon",
        "email": "E-mail",
        "kmo": "KMO-portefeuille",
        "specialities": "Specialiteiten",
        "yes": "ja",
        "no": "nee",
        "subsidy": "Subsidie",
        "answers": "Over uw antwoorden",
        "unknown": "Beantwoord met „Weet ik niet”: {count}",
        "unanswered": "Niet beantwoord: {count}",
        "zero_note": "Die vragen tellen voor nul punten. Vraag het antwoord na, bijvoorbeeld "
        "bij uw IT-leverancier, en doe de scan opnieuw voor een juister beeld.",
        "percent": "{value} %",
        "page": "Pagina {page} van {total}",
    },
    "fr": {
        "sep": " : ",
        "title": "Diagnostic rapide de cybersécurité",
        "organisation": "Organisation",
        "taken_on": "Complété le",
        "version": "Questionnaire, version",
        "overall": "Votre niveau global",
        "domains": "Résultat par domaine",
        "domain": "Domaine",
        "level": "Niveau",
        "score": "Score",
        "steps": "Vos prochaines étapes",
        "no_answers": "Vous n'avez répondu à aucune question notée : "
        "nous n'avons donc pas encore de conseil.",
        "no_steps": "Vous avez donné la meilleure réponse à chaque question répondue. "
        "Nous n'avons donc pas d'étape suivante à vous proposer.",
        "weak": "Domaines à renforcer",
        "weak_intro": "Ces domaines n'atteignent pas encore le niveau « {level} » :",
        "weak_none": "Tous les domaines atteignent au moins le niveau « {level} ».",
        "weak_none_answered": "Tous les domaines auxquels vous avez répondu atteignent au "
        "moins le niveau « {level} ».",
        "not_answered": "Sans réponse",
        "firms": "Qui peut vous aider ?",
        "firms_intro": "Des prestataires vérifiés de notre répertoire qui peuvent vous aider :",
        "no_firms": "Aucun prestataire vérifié ne correspond encore à ces besoins. Vous "
        "trouverez tous les prestataires vérifiés dans notre répertoire public : {url}",
        "website": "Site web",
        "phone": "Téléphone",
        "email": "E-mail",
        "kmo": "KMO-portefeuille",
        "specialities": "Spécialités",
        "yes": "oui",
        "no": "non",
        "subsidy": "Aide financière",
        "answers": "À propos de vos réponses",
        "unknown": "Réponses « Je ne sais pas » : {count}",
        "unanswered": "Questions sans réponse : {count}",
        "zero_note": "Ces questions comptent pour zéro point. Renseignez-vous, par exemple "
        "auprès de votre prestataire informatique, puis refaites le diagnostic pour une "
        "image plus juste.",
        "percent": "{value} %",
        "page": "Page {page} sur {total}",
    },
    "en": {
        "sep": ": ",
        "title": "Cyber maturity quick-scan",
        "organisation": "Organisation",
        "taken_on": "Taken on",
        "version": "Question set, version",
        "overall": "Your overall level",
        "domains": "Result per area",
        "domain": "Area",
        "level": "Level",
        "score": "Score",
        "steps": "Your next steps",
        "no_answers": "You answered none of the scored questions, so there is no advice yet.",
        "no_steps": "You gave the best answer to every question you answered, "
        "so there is no next step to suggest.",
        "weak": "Areas that need attention",
        "weak_intro": "These areas are not yet at the level “{level}”:",
        "weak_none": "Every area is at least at the level “{level}”.",
        "weak_none_answered": "Every area you answered about is at least at the level “{level}”.",
        "not_answered": "Not answered",
        "firms": "Who can help?",
        "firms_intro": "Vetted firms from our directory that can help you with this:",
        "no_firms": "No vetted firm matches these needs yet. You can look through every "
        "vetted firm in our public directory: {url}",
        "website": "Website",
        "phone": "Phone",
        "email": "Email",
        "kmo": "KMO-portefeuille",
        "specialities": "Specialities",
        "yes": "yes",
        "no": "no",
        "subsidy": "Financial support",
        "answers": "About your answers",
        "unknown": "Answered “I don't know”: {count}",
        "unanswered": "Left unanswered: {count}",
        "zero_note": "These questions count as zero points. Find out the answer, for "
        "instance from your IT provider, and take the scan again for a truer picture.",
        "percent": "{value}%",
        "page": "Page {page} of {total}",
    },
    "de": {
        "sep": ": ",
        "title": "Schnellcheck Cybersicherheit",
        "organisation": "Organisation",
        "taken_on": "Ausgefüllt am",
        "version": "Fragenkatalog, Version",
        "overall": "Ihr Gesamtniveau",
        "domains": "Ergebnis pro Bereich",
        "domain": "Bereich",
        "level": "Stufe",
        "score": "Ergebnis",
        "steps": "Ihre nächsten Schritte",
        "no_answers": "Sie haben keine der bewerteten Fragen beantwortet, "
        "daher gibt es noch keinen Rat.",
        "no_steps": "Sie haben jede beantwortete Frage mit der besten Antwort beantwortet. "
        "Wir haben daher keinen nächsten Schritt vorzuschlagen.",
        "weak": "Bereiche mit Handlungsbedarf",
        "weak_intro": "Diese Bereiche erreichen die Stufe „{level}“ noch nicht:",
        "weak_none": "Alle Bereiche erreichen mindestens die Stufe „{level}“.",
        "weak_none_answered": "Alle Bereiche, zu denen Sie geantwortet haben, erreichen "
        "mindestens die Stufe „{level}“.",
        "not_answered": "Nicht beantwortet",
        "firms": "Wer kann Ihnen helfen?",
        "firms_intro": "Geprüfte Anbieter aus unserem Verzeichnis, die Ihnen dabei helfen können:",
        "no_firms": "Noch passt kein geprüfter Anbieter zu diesem Bedarf. Alle geprüften "
        "Anbieter finden Sie in unserem öffentlichen Verzeichnis: {url}",
        "website": "Website",
        "phone": "Telefon",
        "email": "E-Mail",
        "kmo": "KMO-portefeuille",
        "specialities": "Fachgebiete",
        "yes": "ja",
        "no": "nein",
        "subsidy": "Finanzielle Unterstützung",
        "answers": "Zu Ihren Antworten",
        "unknown": "Beantwortet mit „Weiß ich nicht“: {count}",
        "unanswered": "Nicht beantwortet: {count}",
        "zero_note": "Diese Fragen zählen null Punkte. Klären Sie die Antwort, etwa mit Ihrem "
        "IT-Dienstleister, und machen Sie den Check erneut für ein genaueres Bild.",
        "percent": "{value} %",
        "page": "Seite {page} von {total}",
    },
}

WIDTHS = (78, 40, 20, 42)  # mm: area, level, score, bar (180 mm between the margins)
LINE = 5.5  # mm per line of body text


def pdf(
    scan: Scan,
    result: Result,
    firms: Sequence[Firm],
    *,
    taken_on: date,
    organisation: str | None = None,
    directory_url: str = DIRECTORY,
) -> bytes:
    """The report of one scan result as PDF bytes, in `result.language`.
    `directory_url` is printed when no firm is given (an absolute address reads better on
    paper than the default path)."""
    labels = LABELS[result.language]
    doc = _Document(labels, find_fonts())
    _metadata(doc, result.language, taken_on, organisation)
    doc.add_page()
    _heading(doc, scan, result, taken_on, organisation)
    _overall(doc, scan, result)
    _domains(doc, scan, result)
    _steps(doc, scan, result)
    _weak(doc, scan, result)
    _firms(doc, firms, result.language, directory_url)
    doc.section(labels["subsidy"])
    doc.paragraph(scan.kmo_note.get(result.language))
    _answers(doc, result)
    return bytes(doc.output())


def find_fonts() -> tuple[Path, Path] | None:
    """DejaVu Sans (regular, bold) where it is usually installed, else None."""
    for regular, bold in FONT_FILES:
        path = Path(regular)
        if path.is_file() and path.with_name(bold).is_file():
            return path, path.with_name(bold)
    return None


# ----------------------------------------------------------------------------- text


def plain(text: str | None, limit: int = LIMITS["paragraph"]) -> str:
    """One line of untrusted text: NFC, without control or format characters, whitespace
    collapsed, at most `limit` characters (cut at a word when one is near, with an ellipsis)."""
    text = unicodedata.normalize("NFC", text or "")
    kept = (" " if ch.isspace() else ch for ch in text if ch.isspace() or _printable(ch))
    return shorten("".join(kept), limit, "…")


def _printable(ch: str) -> bool:
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def to_latin1(text: str) -> str:
    """Text the core fonts can draw: Latin-1 kept, close equivalents, accents dropped, '?'."""
    return "".join(ch if ord(ch) < 256 else _latin1_char(ch) for ch in text)


def _latin1_char(ch: str) -> str:
    if ch in LATIN1:
        return LATIN1[ch]
    if unicodedata.combining(ch):
        return ""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base and all(ord(c) < 256 for c in base) else "?"


def _glyphs(drawn: set[int]) -> Callable[[str], str]:
    """Text a TrueType font can draw (code points with a glyph in every face used):
    characters without a glyph become '?', combining marks vanish."""

    def fit(text: str) -> str:
        return "".join(_glyph_or_not(ch, drawn) for ch in text)

    return fit


def _glyph_or_not(ch: str, drawn: set[int]) -> str:
    if ord(ch) in drawn:
        return ch
    return "" if unicodedata.combining(ch) or unicodedata.category(ch) == "Mn" else "?"


# ----------------------------------------------------------------------------- document


class _Document(FPDF):
    """A4 with the font chosen, a page-number footer and a few drawing helpers."""

    def __init__(self, labels: dict[str, str], fonts: tuple[Path, Path] | None):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.labels = labels
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        if fonts is None:
            self.font_name, self.fit = "Helvetica", to_latin1
        else:
            self.add_font("DejaVu", "", str(fonts[0]))
            self.add_font("DejaVu", "B", str(fonts[1]))
            drawn = set(self.fonts["dejavu"].cmap) & set(self.fonts["dejavuB"].cmap)
            self.font_name, self.fit = "DejaVu", _glyphs(drawn)

    def footer(self) -> None:
        self.set_y(-13)
        self.use(8)
        page = self.labels["page"].format(page=self.page_no(), total="{nb}")
        self.cell(0, 5, self.fit(f"{self.labels['title']} · {page}"), align="C")

    def use(self, size: float, bold: bool = False) -> None:
        self.set_font(self.font_name, "B" if bold else "", size)

    def paragraph(self, text: str, size: float = 10, bold: bool = False, indent: float = 0):
        self.use(size, bold)
        self.set_x(self.l_margin + indent)
        self.multi_cell(
            0, LINE, self.fit(plain(text)), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def section(self, title: str) -> None:
        """A heading, on a new page when fewer than three lines would follow it."""
        if self.will_page_break(8 + 3 * LINE):
            self.add_page()
        self.ln(4)
        self.paragraph(title, size=13, bold=True)
        self.ln(1)

    def bar(self, x: float, y: float, width: float, share: float) -> None:
        """An outlined bar filled in dark grey to `share` (0..1): readable in black and white."""
        self.set_draw_color(0)
        self.set_line_width(0.2)
        self.set_fill_color(90)
        filled = max(0.0, min(1.0, share)) * width
        if filled > 0:
            self.rect(x, y, filled, 3.5, style="F")
        self.rect(x, y, width, 3.5, style="D")


def _metadata(doc: _Document, language: str, taken_on: date, organisation: str | None) -> None:
    title = doc.labels["title"]
    name = plain(organisation, LIMITS["name"])
    doc.set_title(f"{title} — {name}" if name else title)
    doc.set_lang(language)
    doc.set_creator("sme-alerts")
    doc.set_creation_date(datetime.combine(taken_on, time(), tzinfo=UTC))


# ----------------------------------------------------------------------------- sections


def _heading(doc, scan: Scan, result: Result, taken_on: date, organisation: str | None):
    labels, language = doc.labels, result.language
    doc.paragraph(labels["title"], size=20, bold=True)
    doc.ln(2)
    name = plain(organisation, LIMITS["name"])
    if name:
        doc.paragraph(_pair(labels, "organisation", name), size=11, bold=True)
    when = format_date(taken_on, format="long", locale=number_locale(language))
    doc.paragraph(_pair(labels, "taken_on", when))
    doc.paragraph(f"{labels['version']} {plain(scan.version, LIMITS['line'])}")


def _overall(doc: _Document, scan: Scan, result: Result) -> None:
    labels, language = doc.labels, result.language
    doc.section(labels["overall"])
    level = scan.level_name(result.level, language)
    doc.paragraph(f"{level} — {_percent(result.percent, language, labels)}", size=14, bold=True)
    doc.bar(doc.l_margin, doc.get_y() + 1, 120, result.percent / 100)
    doc.ln(7)


def _domains(doc: _Document, scan: Scan, result: Result) -> None:
    labels = doc.labels
    doc.section(labels["domains"])
    _row(doc, (labels["domain"], labels["level"], labels["score"]), None, header=True)
    for domain in result.domains:
        title = scan.domain(domain.domain).title.get(result.language)
        if not domain.assessed:  # every question skipped: no level to show
            _row(doc, (title, labels["not_answered"], "—"), None)
            continue
        cells = (
            title,
            scan.level_name(domain.level, result.language),
            _percent(domain.percent, result.language, labels),
        )
        _row(doc, cells, domain.percent / 100)


def _row(doc: _Document, cells: tuple[str, ...], share: float | None, header=False) -> None:
    """One table row; on a new page (with the header again) when it does not fit."""
    doc.use(9.5, bold=header)
    texts = [doc.fit(plain(cell, LIMITS["line"])) for cell in cells]
    lines = max(len(_lines(doc, w, t)) for w, t in zip(WIDTHS, texts, strict=False))
    height = lines * LINE + 1.5
    if not header and doc.will_page_break(height):
        doc.add_page()
        _row(doc, (doc.labels["domain"], doc.labels["level"], doc.labels["score"]), None, True)
        doc.use(9.5)
    x, y = doc.l_margin, doc.get_y()
    for width, text in zip(WIDTHS, texts, strict=False):
        doc.set_xy(x, y + 0.75)
        doc.multi_cell(width, LINE, text, align="L")
        x += width
    if share is not None:
        doc.bar(x + 1, y + (height - 3.5) / 2, WIDTHS[-1] - 2, share)
    doc.set_draw_color(160)
    doc.line(doc.l_margin, y + height, doc.l_margin + sum(WIDTHS), y + height)
    doc.set_xy(doc.l_margin, y + height)


def _lines(doc: _Document, width: float, text: str) -> list:
    return doc.multi_cell(width, LINE, text, dry_run=True, output="LINES")


def _steps(doc: _Document, scan: Scan, result: Result) -> None:
    doc.section(doc.labels["steps"])
    if not result.steps:
        scored = sum(1 for question in scan.questions if question.kind == "single")
        answered = sum(len(domain.unanswered) for domain in result.domains) < scored
        doc.paragraph(doc.labels["no_steps" if answered else "no_answers"])
    for number, step in enumerate(result.steps, start=1):
        title = scan.domain(step.domain).title.get(result.language)
        doc.paragraph(f"{number}. {title}", bold=True)
        doc.paragraph(step.advice, indent=5)
        doc.ln(1.5)


def _weak(doc: _Document, scan: Scan, result: Result) -> None:
    labels, language = doc.labels, result.language
    doc.section(labels["weak"])
    level = scan.level_name(scan.weak_below, language)
    if not result.weak_domains:
        partly = any(not domain.assessed for domain in result.domains)
        doc.paragraph(labels["weak_none_answered" if partly else "weak_none"].format(level=level))
        return
    doc.paragraph(labels["weak_intro"].format(level=level))
    for domain in result.weak_domains:
        doc.paragraph(f"- {scan.domain(domain).title.get(language)}", indent=5)


def _firms(doc: _Document, firms: Sequence[Firm], language: str, directory_url: str) -> None:
    labels = doc.labels
    doc.section(labels["firms"])
    if not firms:
        doc.paragraph(labels["no_firms"].format(url=plain(directory_url, LIMITS["line"])))
        return
    doc.paragraph(labels["firms_intro"])
    for firm in firms:
        if doc.will_page_break(6 * LINE):
            doc.add_page()
        doc.ln(2)
        doc.paragraph(plain(firm.name, LIMITS["name"]), size=10.5, bold=True)
        for line in _firm_lines(firm, labels, language):
            doc.paragraph(line, size=9.5, indent=5)


def _firm_lines(firm: Firm, labels: dict[str, str], language: str) -> list[str]:
    details = [("website", firm.website), ("phone", firm.phone), ("email", firm.email)]
    lines = [_pair(labels, key, plain(value, LIMITS["line"])) for key, value in details if value]
    lines.append(_pair(labels, "kmo", labels["yes" if firm.kmo_portefeuille else "no"]))
    shown = [plain(speciality_label(code, language), LIMITS["name"]) for code in firm.specialities]
    if shown:
        lines.append(_pair(labels, "specialities", ", ".join(shown)))
    return lines


def _answers(doc: _Document, result: Result) -> None:
    """Scored questions answered "I don't know" or left out (technology questions score
    nothing, so leaving them empty is not counted here)."""
    labels = doc.labels
    unknown = sum(len(domain.unknown) for domain in result.domains)
    unanswered = sum(len(domain.unanswered) for domain in result.domains)
    doc.section(labels["answers"])
    doc.paragraph(labels["unknown"].format(count=unknown))
    doc.paragraph(labels["unanswered"].format(count=unanswered))
    if unknown or unanswered:
        doc.ln(1)
        doc.paragraph(labels["zero_note"])


def _pair(labels: dict[str, str], key: str, value: str) -> str:
    return f"{labels[key]}{labels['sep']}{value}"


def _percent(value: float, language: str, labels: dict[str, str]) -> str:
    return labels["percent"].format(
        value=format_decimal(value, "0.#", locale=number_locale(language))
    )
